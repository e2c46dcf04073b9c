//! Helpers shared by the `stack_*` tests: running one test in a child process, reading memory use.
#![allow(dead_code)]

use std::env;
use std::process::{Command, Output};

/// Set (to the test's name) in the environment of a child that must do the dangerous part.
pub const CHILD_ENV: &str = "GREENLET_STACK_TEST_CHILD";

/// Whether this process is the child running test `name`.
pub fn is_child(name: &str) -> bool {
    env::var(CHILD_ENV).as_deref() == Ok(name)
}

/// Re-runs this test binary with only test `name`, as a child, and returns its output.
pub fn run_child(name: &str) -> Output {
    Command::new(env::current_exe().expect("current_exe"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("spawn the test binary")
}

/// Like [`run_child`], with extra environment variables for the child.
pub fn run_child_with_env(name: &str, vars: &[(&str, &str)]) -> Output {
    Command::new(env::current_exe().expect("current_exe"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .env("RUST_BACKTRACE", "0")
        .envs(vars.iter().copied())
        .output()
        .expect("spawn the test binary")
}

/// The signal that killed the child, if one did.
pub fn signal_of(out: &Output) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    out.status.signal()
}

/// Both output streams, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// This process's resident memory (`VmRSS` of `/proc/self/status`), in bytes.
pub fn rss_bytes() -> usize {
    status_bytes("VmRSS")
}

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmPTE`, ...), in bytes.
pub fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
        .expect("status line");
    let kb: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value");
    kb * 1024
}

/// How many memory mappings this process has (`/proc/self/maps` lines).
pub fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("read /proc/self/maps")
        .lines()
        .count()
}

/// Switches to the current greenlet's parent.
///
/// Not written `getcurrent().parent().unwrap().switch(v)`: that temporary handle to the current
/// greenlet would live on its own stack for as long as the switch is pending, so dropping the last
/// outside handle would not unwind (nor free) a greenlet suspended there.
pub fn to_parent<V: 'static>(v: V) -> greenlet::Value {
    let parent = greenlet::getcurrent().parent().expect("a parent");
    parent.switch(v)
}
