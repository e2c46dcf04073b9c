//! A panic inside a greenlet, with `RUST_BACKTRACE=1`, shows the greenlet's own frames, and the
//! backtrace continues across the switch into the frames of the greenlet that resumed it
//! (the root frame of every greenlet stack links to the frames of the greenlet that switched to it; see
//! `greenlet/src/arch`). Run in a child process so the backtrace can be read.

use std::env;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::Command;

use greenlet::{Greenlet, Value};

const CHILD: &str = "GREENLET_BACKTRACE_CHILD";

#[inline(never)]
fn greenlet_backtrace_marker_inside(depth: u32) -> u32 {
    if depth == 0 {
        panic!("panic inside a greenlet");
    }
    std::hint::black_box(greenlet_backtrace_marker_inside(depth - 1)) + 1
}

#[inline(never)]
fn resumer_backtrace_marker_outside() {
    let g = Greenlet::new(|_: Value| Value::new(greenlet_backtrace_marker_inside(3)));
    let r = catch_unwind(AssertUnwindSafe(|| g.switch(())));
    assert!(r.is_err(), "the panic reached the parent's switch");
}

#[test]
fn panic_backtrace_shows_greenlet_frames_and_crosses_the_switch() {
    if env::var(CHILD).is_ok() {
        resumer_backtrace_marker_outside();
        return;
    }
    let out = Command::new(env::current_exe().unwrap())
        .args([
            "panic_backtrace_shows_greenlet_frames_and_crosses_the_switch",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("panic inside a greenlet"), "{err}");
    let inside = err
        .find("greenlet_backtrace_marker_inside")
        .unwrap_or_else(|| panic!("{err}"));
    let outside = err
        .find("resumer_backtrace_marker_outside")
        .unwrap_or_else(|| panic!("{err}"));
    assert!(inside < outside, "the greenlet's frames come first: {err}");
}
