//! The blocking detector on by default (issue 15.5): with no call at all, a greenlet that keeps its
//! hub past the threshold is reported on stderr with its (gevent) name and backtrace. Scenarios
//! after gevent's `src/gevent/tests/test__monitor.py` (`TestPeriodicMonitorBlocking`:
//! `test_previous_active_greenlet_blocked` / `test_hub_not_blocked` / `test_greenlet_not_blocked`),
//! run in a child process so that the environment (`GEVENT_MONITOR_THREAD_ENABLE`,
//! `GEVENT_MAX_BLOCKING_TIME`, read once per process) is its own.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[inline(never)]
fn crunch_without_yielding(d: Duration) {
    // A CPU loop: no system call for the signal to interrupt, nothing gevent could hook.
    let end = Instant::now() + d;
    let mut x = 0u64;
    while Instant::now() < end {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
    }
}

/// Keeps the hub (a CPU loop) until stdin has something to read, at most `limit`: the parent
/// says so once it has seen the report (resolving a debug binary's symbols takes seconds).
#[inline(never)]
fn crunch_until_told(limit: Duration) {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        crunch_without_yielding(Duration::from_millis(1));
        let mut fds = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; a zero timeout: it never waits.
        if unsafe { libc::poll(&mut fds, 1, 0) } == 1 {
            return;
        }
    }
}

/// What the child runs, selected by `WATCHDOG_SCENARIO`.
fn scenario(which: &str) {
    match which {
        "blocking" | "blocking-until-told" => {
            let polite = gevent::spawn(|| {
                for _ in 0..10 {
                    gevent::sleep(Duration::from_millis(5));
                }
            });
            let until_told = which == "blocking-until-told";
            let g = gevent::Greenlet::new(move || {
                if until_told {
                    crunch_until_told(Duration::from_secs(60));
                } else {
                    crunch_without_yielding(Duration::from_millis(600));
                }
            });
            g.set_name("cruncher");
            g.start();
            gevent::joinall([&g]);
            polite.join();
        }
        "switching" => {
            // Greenlets that yield often, and a hub asleep in its poller: never reported.
            let gs: Vec<_> = (0..4)
                .map(|_| {
                    gevent::spawn(|| {
                        for _ in 0..30 {
                            crunch_without_yielding(Duration::from_millis(2));
                            gevent::sleep(Duration::from_millis(5));
                        }
                    })
                })
                .collect();
            gevent::joinall(&gs);
            gevent::sleep(Duration::from_millis(300));
            // The main greenlet computing once nothing is scheduled keeps no one waiting.
            crunch_without_yielding(Duration::from_millis(400));
        }
        other => panic!("unknown scenario {other}"),
    }
}

fn child_command(which: &str, env: &[(&str, &str)]) -> Command {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .stdout(Stdio::null())
        .env("WATCHDOG_SCENARIO", which)
        .env_remove("GEVENT_MONITOR_THREAD_ENABLE")
        .env_remove("GEVENT_MAX_BLOCKING_TIME");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn run_child(which: &str, env: &[(&str, &str)]) -> String {
    let out = child_command(which, env).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child failed: {stderr}");
    stderr
}

/// The child's entry (does nothing when run as an ordinary test).
#[test]
fn child() {
    if let Ok(which) = std::env::var("WATCHDOG_SCENARIO") {
        scenario(&which);
    }
}

#[test]
fn blocking_greenlet_is_reported_without_any_call() {
    let mut child = child_command(
        "blocking-until-told",
        &[
            ("GEVENT_MONITOR_THREAD_ENABLE", "1"),
            ("GEVENT_MAX_BLOCKING_TIME", "0.1"),
        ],
    )
    .stdin(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr = String::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Until the report's backtrace shows up (or the child ends: its cruncher gives up after 60 s).
    for line in lines.by_ref() {
        let line = line.unwrap();
        stderr.push_str(&line);
        stderr.push('\n');
        if line.contains("crunch_until_told") {
            break;
        }
    }
    stdin.write_all(b"go\n").unwrap();
    for line in lines {
        stderr.push_str(&line.unwrap());
        stderr.push('\n');
    }
    assert!(child.wait().unwrap().success(), "{stderr}");
    assert_eq!(
        stderr
            .matches("gevent::watchdog: greenlet \"cruncher\" has blocked its hub")
            .count(),
        1,
        "one report per blocking episode, with the gevent name:\n{stderr}"
    );
    assert!(
        stderr.contains("crunch_until_told"),
        "the report has the blocked greenlet's backtrace:\n{stderr}"
    );
}

#[test]
fn disabled_by_the_environment() {
    let stderr = run_child(
        "blocking",
        &[
            ("GEVENT_MONITOR_THREAD_ENABLE", "0"),
            ("GEVENT_MAX_BLOCKING_TIME", "0.1"),
        ],
    );
    assert!(!stderr.contains("gevent::watchdog"), "{stderr}");
}

#[test]
fn default_threshold_in_debug_builds() {
    // Debug builds: on by default, threshold 1 s: a 600 ms block is not reported. Release builds:
    // off by default.
    let stderr = run_child("blocking", &[]);
    assert!(!stderr.contains("gevent::watchdog"), "{stderr}");
}

#[test]
fn switching_greenlets_and_an_idle_main_are_not_reported() {
    let stderr = run_child(
        "switching",
        &[
            ("GEVENT_MONITOR_THREAD_ENABLE", "1"),
            ("GEVENT_MAX_BLOCKING_TIME", "0.1"),
        ],
    );
    assert!(!stderr.contains("gevent::watchdog"), "{stderr}");
}
