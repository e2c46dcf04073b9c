//! `gevent::monitor`: a greenlet that blocks its hub (an unhooked blocking call, a std Mutex held
//! across a switch) is reported with its name and backtrace instead of silently freezing the rest.
//! Scenarios after gevent's src/gevent/tests/test__monitor.py.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[inline(never)]
fn block_in_raw_syscall(d: Duration) {
    // The monitor's signal interrupts nanosleep (EINTR): sleep again until the end.
    let end = Instant::now() + d;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: left.as_nanos() as libc::c_long,
        };
        // SAFETY: a valid timespec; a raw system call nothing can interpose.
        unsafe {
            libc::syscall(
                libc::SYS_nanosleep,
                &ts,
                std::ptr::null_mut::<libc::timespec>(),
            )
        };
    }
}

#[test]
fn unhooked_blocking_call_is_reported_with_name_and_backtrace() {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let r = reports.clone();
    let m = gevent::monitor::start_with(Duration::from_millis(100), move |rep| {
        r.lock().unwrap().push(rep.clone());
    });
    let polite = gevent::spawn(|| {
        for _ in 0..20 {
            gevent::sleep(Duration::from_millis(5));
        }
    });
    let g = gevent::spawn(|| block_in_raw_syscall(Duration::from_millis(400)));
    g.set_name("sleepy-raw");
    gevent::joinall([&g]);
    polite.join();
    m.stop();
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let rep = &reports[0];
    assert_eq!(rep.greenlet, "sleepy-raw");
    assert!(rep.blocked_for >= Duration::from_millis(100));
    assert!(
        rep.backtrace.contains("block_in_raw_syscall"),
        "{}",
        rep.backtrace
    );
}

#[test]
fn switching_greenlets_are_never_reported() {
    let reports = Arc::new(Mutex::new(0));
    let r = reports.clone();
    let m = gevent::monitor::start_with(Duration::from_millis(50), move |_| {
        *r.lock().unwrap() += 1;
    });
    let gs: Vec<_> = (0..4)
        .map(|_| {
            gevent::spawn(|| {
                for _ in 0..20 {
                    gevent::sleep(Duration::from_millis(10));
                }
            })
        })
        .collect();
    gevent::joinall(&gs);
    // The hub idling in its poller is not blocking either.
    gevent::sleep(Duration::from_millis(150));
    m.stop();
    assert_eq!(*reports.lock().unwrap(), 0);
}

/// In a child process (it deadlocks for good): greenlet "holder" keeps a std Mutex across a switch,
/// greenlet "waiter" then blocks on it in a futex. The monitor names "waiter" and shows the lock.
#[test]
fn std_mutex_held_across_a_switch_is_reported() {
    if std::env::var_os("GEVENT_MONITOR_CHILD").is_some() {
        child_deadlock();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "std_mutex_held_across_a_switch_is_reported",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GEVENT_MONITOR_CHILD", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut all = String::new();
        let mut buf = [0u8; 4096];
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            match err.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
            if all.contains("has blocked its hub") && all.contains("\n\n") {
                break;
            }
        }
        all
    });
    let t = Instant::now();
    while !reader.is_finished() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let out = reader.join().unwrap();
    assert!(
        out.contains("greenlet \"waiter\" has blocked its hub"),
        "{out}"
    );
    assert!(out.contains("Mutex"), "{out}");
}

static LOCK: Mutex<u32> = Mutex::new(0);

fn child_deadlock() {
    let _m = gevent::monitor::start(Duration::from_millis(200));
    let holder = gevent::spawn(|| {
        let mut g = LOCK.lock().unwrap();
        gevent::sleep(Duration::from_millis(50)); // the bug: a std lock held across a switch
        *g += 1;
    });
    holder.set_name("holder");
    let waiter = gevent::spawn(|| {
        *LOCK.lock().unwrap() += 1; // blocks the whole thread: holder can never run again
        eprintln!("\n");
    });
    waiter.set_name("waiter");
    gevent::joinall([&holder, &waiter]);
}
