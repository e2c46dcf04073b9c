//! `gevent::signal`: the self-pipe's lifetime when the installing thread exits while its handler is
//! still installed (a guard leaked with `mem::forget`, or dropped only after the thread's
//! thread-locals): the C handler must never write to the closed pipe's fd number, which the next
//! `socket`/`pipe`/`open` reuses, and the signal must not stay owned by the dead thread.
//!
//! One test per binary: dispositions are process-wide.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

/// The handler installed for `sig` right now.
fn disposition(sig: libc::c_int) -> libc::sighandler_t {
    // SAFETY: all-zero is a valid sigaction; querying with a null new action changes nothing.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(sig, std::ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

fn set_disposition(sig: libc::c_int, handler: libc::sighandler_t) {
    // SAFETY: a zeroed sigaction with an empty mask and SIG_IGN as handler is valid.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(sig, &sa, std::ptr::null_mut()), 0);
    }
}

/// Bytes waiting on `fd` (non-blocking peek).
fn pending(fd: &impl AsRawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    assert_eq!(
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) },
        0
    );
    n as usize
}

#[test]
fn a_thread_that_exits_with_a_leaked_guard_leaves_no_route_to_a_reused_fd() {
    let sig = libc::SIGUSR1;
    set_disposition(sig, libc::SIG_IGN);
    std::thread::spawn(move || {
        let guard = gevent::signal::handle(sig, || {}).unwrap();
        std::mem::forget(guard);
    })
    .join()
    .unwrap();

    // The fds the thread's pipe had are free now; the next ones opened reuse their numbers.
    let pairs: Vec<(UnixStream, UnixStream)> =
        (0..8).map(|_| UnixStream::pair().unwrap()).collect();
    // SAFETY: raise(3) has no memory-safety preconditions.
    assert_eq!(unsafe { libc::raise(sig) }, 0);
    for (a, b) in &pairs {
        assert_eq!(
            (pending(a), pending(b)),
            (0, 0),
            "the signal handler wrote into an fd it does not own (fds {} / {})",
            a.as_raw_fd(),
            b.as_raw_fd()
        );
    }
    drop(pairs);

    // The dead thread no longer owns the signal: its previous disposition is back, and another
    // thread may handle it.
    assert_eq!(disposition(sig), libc::SIG_IGN);
    std::thread::spawn(move || {
        let got = std::rc::Rc::new(std::cell::Cell::new(false));
        let g2 = got.clone();
        let guard = gevent::signal::handle(sig, move || g2.set(true)).unwrap();
        // SAFETY: as above; handled just now.
        assert_eq!(unsafe { libc::raise(sig) }, 0);
        let t = std::time::Instant::now();
        while !got.get() {
            assert!(t.elapsed() < std::time::Duration::from_secs(5));
            gevent::sleep(std::time::Duration::from_millis(1));
        }
        drop(guard);
    })
    .join()
    .unwrap();
}
