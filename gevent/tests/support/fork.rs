//! Test scaffolding for the tests that fork from a greenlet: the child's life ended with `_exit`,
//! a bounded reap, a reader greenlet parked in the parent across the fork, and the parent's side of
//! the check that the parent keeps its events while the child runs its own hub.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The forked child's whole life: runs `f` and ends the process with its code (99 if it panics).
pub fn child_main(f: impl FnOnce() -> i32) -> ! {
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(99);
    // SAFETY: _exit(2) ends the process at once; nothing of the parent's (harness, atexit) runs.
    unsafe { libc::_exit(code) }
}

/// Reaps `pid` within `limit` (cooperatively); kills it and fails if it does not exit.
pub fn reap(pid: libc::pid_t, limit: Duration) -> i32 {
    match gevent::os::waitpid(pid, Some(limit)).expect("waitpid") {
        Some(status) => status
            .code()
            .unwrap_or_else(|| panic!("the child was killed: {status}")),
        None => {
            // SAFETY: SIGKILL to our own child, then reaping it (it dies at once).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            panic!("the child did not exit within {limit:?}");
        }
    }
}

/// In a child: a greenlet echoes one read of `c1`; `ping` sent on `c2` (a read timeout set on it)
/// must come back, and the greenlet end. `Err` with the child's exit code if not: 2 when the echo
/// did not come back, 3 when the greenlet did not end within 5 s.
pub fn echo_works<S: 'static>(c1: S, c2: &S) -> Result<(), i32>
where
    for<'a> &'a S: Read + Write,
{
    let echo = gevent::spawn(move || {
        let mut buf = [0u8; 16];
        let n = (&c1).read(&mut buf).unwrap();
        (&c1).write_all(&buf[..n]).unwrap();
    });
    { c2 }.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    if { c2 }.read_exact(&mut buf).is_err() || &buf != b"ping" {
        return Err(2);
    }
    if !echo.join_timeout(Duration::from_secs(5)) {
        return Err(3);
    }
    Ok(())
}

/// In a child: a greenlet waits for the parent's `bye` on `bye_r` (an fd inherited from it, with a
/// read timeout) while the child tells the parent on `ready_w` that its hub runs and then sleeps in
/// 5 ms steps with `sleep` (at most 10 s; the sleep must let the waiter run). Whether the bye came
/// and the waiter ended.
pub fn bye_arrives_while_sleeping<S: 'static>(bye_r: S, ready_w: &S, sleep: fn(Duration)) -> bool
where
    for<'a> &'a S: Read + Write,
{
    let bye = Rc::new(Cell::new(false));
    let bye2 = bye.clone();
    let waiter = gevent::spawn(move || {
        let mut b = [0u8; 3];
        if (&bye_r).read_exact(&mut b).is_ok() && &b == b"bye" {
            bye2.set(true);
        }
    });
    { ready_w }.write_all(b"r").unwrap();
    let t = Instant::now();
    while !bye.get() && t.elapsed() < Duration::from_secs(10) {
        sleep(Duration::from_millis(5));
    }
    bye.get() && waiter.join_timeout(Duration::from_secs(1))
}

/// What a parked reader read (or the error) and when.
pub type Got = Rc<RefCell<Option<(io::Result<Vec<u8>>, Instant)>>>;

/// A greenlet parked in a read of `a` (a gevent socket, or a std one under `patch_all`); what it
/// read (or the error) and when, in `got`.
pub fn park_reader<S: 'static>(a: S) -> (gevent::Greenlet<()>, Got)
where
    for<'a> &'a S: Read,
{
    let got: Got = Rc::new(RefCell::new(None));
    let g2 = got.clone();
    let reader = gevent::spawn(move || {
        let mut buf = [0u8; 16];
        let r = (&a).read(&mut buf).map(|n| buf[..n].to_vec());
        *g2.borrow_mut() = Some((r, Instant::now()));
    });
    // sleep(0) runs every ready greenlet once: the reader is parked in its read afterwards.
    gevent::sleep(Duration::ZERO);
    assert!(got.borrow().is_none(), "the reader is parked");
    (reader, got)
}

/// The parent's side once child `pid` is forked: waits (bounded by `ready_r`'s read timeout) for
/// the child to report on `ready_r` that its hub runs, sends the data on `b` that the parent's
/// parked `reader` waits for, says bye to the child on `bye_w` and reaps it. Asserts that the
/// reader woke with the data within 500 ms and that the child's own checks passed (exit code 0).
pub fn parent_keeps_its_events<S>(
    pid: libc::pid_t,
    ready_r: &S,
    b: &S,
    bye_w: &S,
    reader: &gevent::Greenlet<()>,
    got: &Got,
) where
    for<'a> &'a S: Read + Write,
{
    let mut r = [0u8; 1];
    if let Err(e) = { ready_r }.read_exact(&mut r) {
        let code = reap(pid, Duration::from_secs(15));
        panic!("the child did not report that its hub runs ({e}); it exited with {code}");
    }
    // The child's hub is running now (it sleeps and polls until the bye): the data arrives.
    let sent = Instant::now();
    { b }.write_all(b"hello").unwrap();
    let woke = reader.join_timeout(Duration::from_secs(3));
    let latency = sent.elapsed();
    let _ = { bye_w }.write_all(b"bye"); // the child may be gone already (a failure): reap it anyway
    let code = reap(pid, Duration::from_secs(15));
    assert!(
        woke,
        "the parent's reader never woke: the child took its event"
    );
    let (r, at) = got.borrow_mut().take().unwrap();
    assert_eq!(r.unwrap(), b"hello");
    let latency = latency.min(at.duration_since(sent));
    assert!(
        latency < Duration::from_millis(500),
        "the parent's reader woke {latency:?} after the data arrived"
    );
    assert_eq!(code, 0, "the child's check failed (code {code})");
}
