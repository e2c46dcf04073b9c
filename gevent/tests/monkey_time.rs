//! `monkey::patch_time`: std's blocking sleep becomes cooperative inside greenlets and stays a plain
//! sleep elsewhere. Scenario from gevent's src/gevent/tests/test__monkey.py (patched `time.sleep`
//! yields) and the seed's monkey example.

use std::cell::RefCell;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[test]
fn std_sleeps_in_greenlets_interleave_and_overlap() {
    gevent::monkey::patch_all();
    assert!(gevent::monkey::is_patched());
    let log = Rc::new(RefCell::new(Vec::new()));
    let t = Instant::now();
    let gs: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let log = log.clone();
            gevent::spawn(move || {
                for i in 0..2 {
                    log.borrow_mut().push(format!("{name}{i}"));
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        })
        .collect();
    gevent::joinall(&gs);
    let elapsed = t.elapsed();
    assert_eq!(*log.borrow(), ["a0", "b0", "c0", "a1", "b1", "c1"]);
    // Three greenlets each sleeping 2 x 200 ms: about 400 ms together, not 1200 ms.
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1000), "{elapsed:?}");
}

#[test]
fn sleep_on_another_thread_is_a_plain_sleep() {
    gevent::monkey::patch_all();
    let t = Instant::now();
    std::thread::spawn(|| std::thread::sleep(Duration::from_millis(50)))
        .join()
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(50));
}

#[test]
fn timeout_in_patched_sleep_is_raised_at_next_wait() {
    gevent::monkey::patch_all();
    let g = gevent::spawn(|| {
        let r = gevent::with_timeout(Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_secs(30)); // cut short, cannot unwind through libc
            gevent::sleep(Duration::ZERO); // the Timeout is raised here
            "not reached"
        });
        r.is_err()
    });
    let t = Instant::now();
    assert_eq!(g.get(), Ok(true));
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn seed_monkey_example_prints_seven_lines_in_about_1_5_s() {
    let out = Command::new(env!("CARGO"))
        .args([
            "build",
            "-q",
            "-p",
            "gevent",
            "--features",
            "monkey",
            "--example",
            "monkey_sleep",
        ])
        .status()
        .expect("cargo build");
    assert!(out.success());
    let exe = example_path("monkey_sleep");
    let t = Instant::now();
    let out = Command::new(&exe).output().expect("run example");
    let elapsed = t.elapsed();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "noah is eat...0\nbobo is play...0\nnoah is eat...1\nbobo is play...1\n\
         noah is eat...2\nbobo is play...2\n主...\n"
    );
    assert!(elapsed >= Duration::from_millis(1400), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
}

/// The path of an example binary built into this test's target directory.
fn example_path(name: &str) -> std::path::PathBuf {
    // target/<profile>/deps/<test-binary> -> target/<profile>/examples/<name>
    let mut p = std::env::current_exe().expect("current exe");
    p.pop();
    p.pop();
    p.push("examples");
    p.push(name);
    p
}
