//! `gevent::signal::handle`: the handler runs in a new greenlet of the hub when the signal is
//! raised (to the thread or the process), two signals, several handlers, the guard restoring the
//! previous disposition, one owning thread per signal, refused signals.
//!
//! Tests in this binary run in parallel threads and dispositions are process-wide, so each test
//! uses signals of its own.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use gevent::signal::handle;

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(5), "timed out: {what}");
        gevent::sleep(Duration::from_millis(1));
    }
}

fn raise(sig: libc::c_int) {
    // SAFETY: raise(3) has no memory-safety preconditions; the callers handle `sig`.
    assert_eq!(unsafe { libc::raise(sig) }, 0);
}

fn kill_self(sig: libc::c_int) {
    // SAFETY: kill(2) to our own pid; the callers handle `sig`.
    assert_eq!(unsafe { libc::kill(libc::getpid(), sig) }, 0);
}

/// The handler installed for `sig` right now (`SIG_DFL`, `SIG_IGN` or a function's address).
fn disposition(sig: libc::c_int) -> libc::sighandler_t {
    // SAFETY: all-zero is a valid sigaction; querying with a null new action changes nothing.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(sig, std::ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

fn set_disposition(sig: libc::c_int, handler: libc::sighandler_t) {
    // SAFETY: a zeroed sigaction with an empty mask and SIG_IGN/SIG_DFL as handler is valid.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(sig, &sa, std::ptr::null_mut()), 0);
    }
}

#[test]
fn sigusr1_runs_the_handler_in_a_new_greenlet_that_may_block() {
    let main = gevent::getcurrent();
    let seen: Rc<RefCell<Vec<greenlet::Greenlet>>> = Rc::default();
    let done = Rc::new(Cell::new(false));
    let (s2, d2) = (seen.clone(), done.clone());
    let guard = handle(libc::SIGUSR1, move || {
        s2.borrow_mut().push(gevent::getcurrent());
        // A handler is an ordinary greenlet: it may wait.
        gevent::sleep(Duration::from_millis(10));
        d2.set(true);
    })
    .unwrap();
    assert_eq!(guard.signum(), libc::SIGUSR1);
    raise(libc::SIGUSR1);
    wait_until("the SIGUSR1 handler", || done.get());
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0] != main,
        "the handler must not run in the raising greenlet"
    );
    drop(guard);
}

#[test]
fn two_signals_each_reach_their_handler() {
    let (usr2, winch) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let (u2, w2) = (usr2.clone(), winch.clone());
    let g1 = handle(libc::SIGUSR2, move || u2.set(u2.get() + 1)).unwrap();
    let g2 = handle(libc::SIGWINCH, move || w2.set(w2.get() + 1)).unwrap();
    kill_self(libc::SIGUSR2);
    kill_self(libc::SIGWINCH);
    wait_until("both handlers", || usr2.get() == 1 && winch.get() == 1);
    // The same signal again (after the first was handled: pending signals coalesce).
    raise(libc::SIGUSR2);
    wait_until("the second SIGUSR2", || usr2.get() == 2);
    gevent::sleep(Duration::from_millis(20));
    assert_eq!((usr2.get(), winch.get()), (2, 1));
    drop((g1, g2));
}

#[test]
fn several_handlers_for_one_signal_all_run_and_leave_one_by_one() {
    let sig = libc::SIGURG; // default: ignored
    let (a, b) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let (a2, b2) = (a.clone(), b.clone());
    let ga = handle(sig, move || a2.set(a2.get() + 1)).unwrap();
    let gb = handle(sig, move || b2.set(b2.get() + 1)).unwrap();
    raise(sig);
    wait_until("both handlers", || a.get() == 1 && b.get() == 1);
    drop(ga);
    // Still ours: the other handler remains.
    assert_ne!(disposition(sig), libc::SIG_DFL);
    raise(sig);
    wait_until("the remaining handler", || b.get() == 2);
    gevent::sleep(Duration::from_millis(20));
    assert_eq!(a.get(), 1);
    drop(gb);
    assert_eq!(disposition(sig), libc::SIG_DFL);
}

#[test]
fn the_guard_restores_the_previous_disposition() {
    let sig = libc::SIGRTMIN() + 3;
    set_disposition(sig, libc::SIG_IGN);
    let n = Rc::new(Cell::new(0));
    let n2 = n.clone();
    let guard = handle(sig, move || n2.set(n2.get() + 1)).unwrap();
    let ours = disposition(sig);
    assert_ne!(ours, libc::SIG_IGN);
    raise(sig);
    wait_until("the handler", || n.get() == 1);
    drop(guard);
    assert_eq!(disposition(sig), libc::SIG_IGN);
    // Ignored again: raising it neither kills the process nor runs the handler.
    raise(sig);
    gevent::sleep(Duration::from_millis(20));
    assert_eq!(n.get(), 1);
    // From SIG_DFL too, and installing again after a restore works.
    set_disposition(sig, libc::SIG_DFL);
    let guard = handle(sig, || {}).unwrap();
    assert_eq!(disposition(sig), ours);
    drop(guard);
    assert_eq!(disposition(sig), libc::SIG_DFL);
}

#[test]
fn a_signal_handled_by_one_threads_hub_is_refused_to_another() {
    let sig = libc::SIGRTMIN() + 4;
    let guard = handle(sig, || {}).unwrap();
    let other = std::thread::spawn(move || handle(sig, || {}).map(drop).map_err(|e| e.kind()));
    assert_eq!(other.join().unwrap(), Err(std::io::ErrorKind::ResourceBusy));
    drop(guard);
    // Released: another thread may take it now, and its own hub runs the handler.
    let other = std::thread::spawn(move || {
        let hits = Rc::new(Cell::new(0));
        let h2 = hits.clone();
        let g = handle(sig, move || h2.set(h2.get() + 1)).unwrap();
        kill_self(sig);
        wait_until("the other thread's handler", || hits.get() == 1);
        drop(g);
        hits.get()
    });
    assert_eq!(other.join().unwrap(), 1);
}

#[test]
fn signals_that_cannot_be_handled_in_a_greenlet_are_refused() {
    for sig in [
        0,
        -1,
        65,
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
    ] {
        let e = handle(sig, || {}).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "signal {sig}");
    }
}
