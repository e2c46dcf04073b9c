//! `gevent::subprocess`: children waited for concurrently (the hub keeps running), large output
//! through both pipes without deadlock, stdin/stdout round trips, kill, exit codes, wait timeouts
//! and cancellation, and a pipeline between two children.

use std::cell::Cell;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use gevent::subprocess::{Command, Stdio};

#[test]
fn three_children_wait_concurrently_and_the_hub_keeps_running() {
    let ticks = Rc::new(Cell::new(0u32));
    let t2 = ticks.clone();
    let ticker = gevent::spawn(move || loop {
        gevent::sleep(Duration::from_millis(20));
        t2.set(t2.get() + 1);
    });
    let t = Instant::now();
    let runs: Vec<_> = (0..3)
        .map(|_| {
            gevent::spawn(|| {
                let mut c = Command::new("sleep").arg("0.3").spawn().unwrap();
                c.wait().unwrap()
            })
        })
        .collect();
    gevent::joinall(&runs);
    let el = t.elapsed();
    ticker.kill();
    assert!(runs.iter().all(|g| g.value().unwrap().success()));
    assert!(el >= Duration::from_millis(290), "{el:?}");
    assert!(el < Duration::from_millis(800), "not concurrent: {el:?}");
    // The hub ran the ticker all along (it would not tick while a wait blocked the thread).
    assert!(ticks.get() >= 8, "only {} ticks", ticks.get());
}

#[test]
fn output_reads_both_pipes_concurrently_without_deadlock() {
    // The child fills stderr (far beyond a 64 KiB pipe buffer) before it writes stdout: reading
    // stdout first and stderr afterwards would deadlock.
    let out = Command::new("sh")
        .args([
            "-c",
            "head -c 1000000 /dev/zero | tr '\\0' e >&2; head -c 1500000 /dev/zero | tr '\\0' o",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), 1_500_000);
    assert!(out.stdout.iter().all(|&b| b == b'o'));
    assert_eq!(out.stderr.len(), 1_000_000);
    assert!(out.stderr.iter().all(|&b| b == b'e'));
}

#[test]
fn stdin_to_stdout_round_trip_of_megabytes() {
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    let expected = data.clone();
    let mut stdin = child.stdin.take().unwrap();
    // A writer greenlet and this reader: neither pipe can fill up for good.
    let writer = gevent::spawn(move || {
        stdin.write_all(&data).unwrap();
        // Dropped here: cat sees EOF.
    });
    let mut got = Vec::new();
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    writer.join();
    assert!(writer.successful());
    assert_eq!(got.len(), expected.len());
    assert!(got == expected);
    assert!(child.wait().unwrap().success());
}

#[test]
fn kill_ends_a_child_and_wait_reports_the_signal() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let t = Instant::now();
    child.kill().unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    assert!(!st.success());
    assert!(t.elapsed() < Duration::from_secs(5));
    // Killing a child already waited for does nothing.
    child.kill().unwrap();
}

#[test]
fn exit_codes() {
    let code = |script: &str| {
        Command::new("sh")
            .args(["-c", script])
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(code("exit 0"), Some(0));
    assert_eq!(code("exit 3"), Some(3));
    assert_eq!(code("exit 255"), Some(255));
    assert!(Command::new("true").status().unwrap().success());
    assert_eq!(Command::new("false").status().unwrap().code(), Some(1));
    let e = Command::new("/nonexistent/gevent-test-program")
        .spawn()
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    let mut c = Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
    assert_eq!(c.wait().unwrap().code(), Some(7));
    // Waiting again returns the same status.
    assert_eq!(c.wait().unwrap().code(), Some(7));
    assert_eq!(c.try_wait().unwrap().and_then(|s| s.code()), Some(7));
}

#[test]
fn wait_timeout_gives_up_and_the_child_runs_on() {
    let mut child = Command::new("sleep").arg("5").spawn().unwrap();
    let t = Instant::now();
    assert!(child
        .wait_timeout(Duration::from_millis(50))
        .unwrap()
        .is_none());
    let el = t.elapsed();
    assert!(
        el >= Duration::from_millis(50) && el < Duration::from_secs(2),
        "{el:?}"
    );
    assert!(child.try_wait().unwrap().is_none());
    child.kill().unwrap();
    let st = child
        .wait_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("exited after kill");
    assert_eq!(st.signal(), Some(libc::SIGKILL));
}

#[test]
fn a_timeout_landing_in_wait_leaves_the_child_waitable() {
    let mut child = Command::new("sleep").arg("0.3").spawn().unwrap();
    let r = gevent::with_timeout(Duration::from_millis(30), || child.wait());
    assert!(r.is_err());
    assert!(child.try_wait().unwrap().is_none());
    assert!(child.wait().unwrap().success());
}

#[test]
fn killing_a_greenlet_parked_in_wait_output() {
    let g = gevent::spawn(|| {
        Command::new("sh")
            .args(["-c", "echo started; sleep 2"])
            .output()
    });
    gevent::sleep(Duration::from_millis(50));
    let t = Instant::now();
    g.kill();
    assert!(g.ready());
    assert!(g.take_value().is_none(), "killed, so no output");
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_pipeline_between_two_children() {
    let mut producer = Command::new("echo")
        .arg("hello pipes")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Command::new("tr")
        .args(["a-z", "A-Z"])
        .stdin(producer.stdout.take().unwrap())
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"HELLO PIPES\n");
    assert!(producer.wait().unwrap().success());
}

#[test]
fn env_and_current_dir_reach_the_child() {
    let out = Command::new("sh")
        .args(["-c", "printf '%s %s' \"$GEVENT_TEST_VAR\" \"$(pwd)\""])
        .env("GEVENT_TEST_VAR", "value")
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"value /");
}
