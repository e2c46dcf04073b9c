//! Stack overflow is never silent: a guard-page hit and a dense canary hit both print
//! `stack overflow in greenlet <name>` and abort. Each test runs the overflow in a child process.

mod stack_util;

use std::hint::black_box;

use greenlet::{Builder, StackConfig, Value};
use stack_util::{describe, is_child, run_child, signal_of};

/// Recurses forever (as far as the compiler can tell), using about 1 KiB of stack per level.
#[inline(never)]
fn recurse_forever(n: u64) -> u64 {
    let buf = black_box([n; 128]);
    if black_box(n) == u64::MAX {
        return 0;
    }
    black_box(recurse_forever(buf[3] + 1)).wrapping_add(buf[7])
}

/// Recurses `depth` levels of about 1 KiB each, then returns.
#[inline(never)]
fn recurse_to(depth: u64) -> u64 {
    let buf = black_box([depth; 128]);
    if depth == 0 {
        return buf[0];
    }
    black_box(recurse_to(buf[5] - 1)).wrapping_add(buf[9])
}

#[test]
fn guarded_overflow_is_reported_and_aborts() {
    const NAME: &str = "guarded_overflow_is_reported_and_aborts";
    if is_child(NAME) {
        let g = Builder::new()
            .name("deep-guarded")
            .stack(StackConfig::guarded(64 * 1024))
            .build(|_| Value::new(recurse_forever(0)))
            .unwrap();
        g.switch(());
        unreachable!("the overflow must abort");
    }
    let out = run_child(NAME);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", describe(&out));
    assert_eq!(signal_of(&out), Some(libc::SIGABRT), "{}", describe(&out));
    assert!(
        stderr.contains("stack overflow in greenlet deep-guarded\n"),
        "{}",
        describe(&out)
    );
}

#[test]
fn guarded_overflow_of_unnamed_greenlet_names_it_by_id() {
    const NAME: &str = "guarded_overflow_of_unnamed_greenlet_names_it_by_id";
    if is_child(NAME) {
        let g = Builder::new()
            .build(|_| Value::new(recurse_forever(0)))
            .unwrap();
        println!("id={}", g.id());
        g.switch(());
        unreachable!("the overflow must abort");
    }
    let out = run_child(NAME);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let id = stdout
        .lines()
        .find_map(|l| l.split("id=").nth(1))
        .map(str::trim)
        .unwrap_or_else(|| panic!("{}", describe(&out)));
    let want = format!("stack overflow in greenlet greenlet-{id}\n");
    assert_eq!(signal_of(&out), Some(libc::SIGABRT), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&want),
        "{}",
        describe(&out)
    );
}

#[test]
fn dense_overflow_is_detected_at_next_switch() {
    const NAME: &str = "dense_overflow_is_detected_at_next_switch";
    if is_child(NAME) {
        // SAFETY: this test overflows on purpose, in a child process, and the victims below it are
        // never run again.
        let cfg = unsafe { StackConfig::dense(16 * 1024) };
        // Neighbours below the victim (slots are carved upwards), suspended inside their run.
        let neighbours: Vec<_> = (0..4)
            .map(|i| {
                let g = Builder::new()
                    .name(format!("neighbour-{i}"))
                    .stack(cfg)
                    .build(|_| stack_util::to_parent(()))
                    .unwrap();
                g.switch(());
                g
            })
            .collect();
        let victim = Builder::new()
            .name("dense-victim")
            .stack(cfg)
            .build(|_| {
                // About 24 KiB deep in a 16 KiB slot: runs into the neighbour's slot, then returns.
                let r = recurse_to(black_box(24));
                stack_util::to_parent(r);
                Value::none()
            })
            .unwrap();
        eprintln!("switching to the victim");
        victim.switch(());
        eprintln!("the overflow was not detected");
        std::mem::forget(neighbours);
        std::process::exit(0);
    }
    let out = run_child(NAME);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("switching to the victim"),
        "{}",
        describe(&out)
    );
    assert!(!out.status.success(), "{}", describe(&out));
    assert_eq!(signal_of(&out), Some(libc::SIGABRT), "{}", describe(&out));
    assert!(
        stderr.contains("stack overflow in greenlet dense-victim\n"),
        "{}",
        describe(&out)
    );
}

#[test]
fn other_faults_in_a_greenlet_are_passed_on() {
    const NAME: &str = "other_faults_in_a_greenlet_are_passed_on";
    if is_child(NAME) {
        let g = Builder::new()
            .name("wild-pointer")
            .build(|_| {
                let p = black_box(64usize) as *const u8;
                // SAFETY: not safe at all: this reads an unmapped address on purpose, to check
                // that a fault which is not an overflow reaches the default action (SIGSEGV).
                Value::new(unsafe { p.read_volatile() })
            })
            .unwrap();
        g.switch(());
        unreachable!("the fault must kill the process");
    }
    let out = run_child(NAME);
    assert_eq!(signal_of(&out), Some(libc::SIGSEGV), "{}", describe(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("stack overflow"),
        "{}",
        describe(&out)
    );
}

#[test]
fn thread_overflow_outside_greenlets_still_reaches_std() {
    const NAME: &str = "thread_overflow_outside_greenlets_still_reaches_std";
    if is_child(NAME) {
        // Install our handler first (it is installed with the first guarded stack).
        let g = Builder::new().build(|v| v).unwrap();
        g.switch(());
        std::thread::Builder::new()
            .name("plain-thread".into())
            .stack_size(256 * 1024)
            .spawn(|| recurse_forever(0))
            .unwrap()
            .join()
            .unwrap();
        unreachable!("the overflow must abort");
    }
    let out = run_child(NAME);
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'plain-thread'") && stderr.contains("has overflowed its stack"),
        "{}",
        describe(&out)
    );
    assert!(!stderr.contains("in greenlet"), "{}", describe(&out));
}
