//! `gevent::monitor`: a [`Monitor`](gevent::monitor::Monitor) that outlives the thread it monitors
//! (it is `Send`: moved out of the thread, or leaked) must not signal the dead thread's `pthread_t`.
//! `pthread_kill` on a thread that was joined is undefined behaviour; with glibc it reads the
//! thread's descriptor, which lives in its stack mapping, unmapped once the stack cache overflows.
//!
//! Runs in a child process (the failure is a crash).

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CHILD: &str = "GEVENT_MONITOR_THREAD_EXIT_CHILD";

#[test]
fn a_monitor_outliving_its_thread_never_signals_it() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_monitor_outliving_its_thread_never_signals_it",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn child() {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let r = reports.clone();
    // The monitored thread returns its monitor and exits; the main greenlet (not the hub) was the
    // last to run there, so the watchdog sees a "blocked" greenlet once the threshold passes.
    let monitor = std::thread::spawn(move || {
        gevent::monitor::start_with(Duration::from_millis(150), move |rep| {
            r.lock().unwrap().push(rep.clone())
        })
    })
    .join()
    .unwrap();
    // Overflow glibc's stack cache (40 MiB) so the dead thread's stack, and the thread descriptor
    // in it, are unmapped before the watchdog looks.
    for _ in 0..3 {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(|| {})
            .unwrap()
            .join()
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(600));
    drop(monitor);
    let reports = reports.lock().unwrap();
    assert!(
        reports.iter().all(|r| r.backtrace.is_empty()),
        "the dead thread was signalled: {reports:?}"
    );
}
