//! Issue 10, item 6: under `monkey::patch_all`, a signal interrupts a hooked call as it interrupts
//! the real one (signal(7)): a handler installed without `SA_RESTART` ends a blocking `read` with
//! `EINTR`; `nanosleep`/`clock_nanosleep` end with `EINTR` and the time left whatever the flags;
//! a `SA_RESTART` handler lets the read keep waiting. Signals go to this test's own thread
//! (`pthread_kill`), and each test uses its own signal, so tests running in parallel do not
//! interfere. Every wait is bounded.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static HITS: [AtomicUsize; 65] = [const { AtomicUsize::new(0) }; 65];

extern "C" fn count(sig: libc::c_int) {
    HITS[sig as usize].fetch_add(1, Ordering::SeqCst);
}

/// Installs `count` for `sig` with `flags` through `sigaction(2)`.
fn install(sig: libc::c_int, flags: libc::c_int) {
    // SAFETY: plain data, filled below; `count` is async-signal-safe (one atomic add).
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = count as extern "C" fn(libc::c_int) as libc::sighandler_t;
        act.sa_flags = flags;
        libc::sigemptyset(&mut act.sa_mask);
        assert_eq!(libc::sigaction(sig, &act, std::ptr::null_mut()), 0);
    }
}

/// Delivers `sig` to this thread (the handler has run when this returns).
fn signal_me(sig: libc::c_int) {
    // SAFETY: pthread_kill to the calling thread with a handled signal.
    assert_eq!(unsafe { libc::pthread_kill(libc::pthread_self(), sig) }, 0);
}

/// What a read of up to 8 bytes gave: the bytes, or the error's kind and errno.
type ReadResult = Result<Vec<u8>, (ErrorKind, Option<i32>)>;

/// Spawns a greenlet that reads up to 8 bytes from `a` (through the patched `read`), and lets it
/// start and park in that read.
fn parked_read(mut a: UnixStream) -> gevent::Greenlet<ReadResult> {
    let g = gevent::spawn(move || {
        let mut buf = [0u8; 8];
        a.read(&mut buf)
            .map(|n| buf[..n].to_vec())
            .map_err(|e| (e.kind(), e.raw_os_error()))
    });
    gevent::sleep(Duration::ZERO);
    g
}

/// The read `g` is parked in is still waiting after a few hub turns, and returns `data` once `b`
/// sends it.
fn still_waiting_until_data_comes(
    g: &gevent::Greenlet<ReadResult>,
    b: &mut UnixStream,
    data: &[u8],
) {
    assert!(!g.join_timeout(Duration::from_millis(50)));
    b.write_all(data).unwrap();
    assert_eq!(g.get_timeout(Duration::from_secs(5)), Ok(Ok(data.to_vec())));
}

#[test]
fn read_is_interrupted_by_a_handler_without_sa_restart() {
    gevent::monkey::patch_all();
    let sig = libc::SIGUSR1;
    install(sig, 0);
    let (a, _b) = UnixStream::pair().unwrap();
    let g = parked_read(a);
    assert!(!g.ready());
    signal_me(sig);
    assert_eq!(HITS[sig as usize].load(Ordering::SeqCst), 1);
    assert_eq!(
        g.get_timeout(Duration::from_secs(5)),
        Ok(Err((ErrorKind::Interrupted, Some(libc::EINTR))))
    );
}

#[test]
fn read_keeps_waiting_through_a_sa_restart_handler() {
    gevent::monkey::patch_all();
    let sig = libc::SIGUSR2;
    install(sig, libc::SA_RESTART);
    let (a, mut b) = UnixStream::pair().unwrap();
    let g = parked_read(a);
    signal_me(sig);
    assert_eq!(HITS[sig as usize].load(Ordering::SeqCst), 1);
    // Restarted, as the kernel restarts it: still waiting after a few hub turns.
    still_waiting_until_data_comes(&g, &mut b, b"hi");
}

#[test]
fn nanosleep_is_interrupted_with_the_time_left() {
    gevent::monkey::patch_all();
    let sig = libc::SIGRTMIN() + 1;
    // SA_RESTART does not restart sleeps (signal(7)).
    install(sig, libc::SA_RESTART);
    let g = gevent::spawn(|| {
        let req = libc::timespec {
            tv_sec: 3,
            tv_nsec: 0,
        };
        let mut rem = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let t = Instant::now();
        // SAFETY: valid timespecs.
        let r = unsafe { libc::nanosleep(&req, &mut rem) };
        let e = std::io::Error::last_os_error().raw_os_error();
        (
            r,
            e,
            Duration::new(rem.tv_sec as u64, rem.tv_nsec as u32),
            t.elapsed(),
        )
    });
    gevent::sleep(Duration::ZERO);
    signal_me(sig);
    let (r, e, rem, slept) = g.get_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((r, e), (-1, Some(libc::EINTR)));
    assert!(slept < Duration::from_secs(2), "{slept:?}");
    // The time left is what the kernel would say: the request minus what was slept.
    let total = rem + slept;
    assert!(
        total > Duration::from_millis(2900) && total <= Duration::from_millis(3100),
        "rem {rem:?} + slept {slept:?}"
    );
}

#[test]
fn clock_nanosleep_is_interrupted_with_the_time_left() {
    gevent::monkey::patch_all();
    let sig = libc::SIGRTMIN() + 2;
    install(sig, 0);
    let g = gevent::spawn(|| {
        let req = libc::timespec {
            tv_sec: 3,
            tv_nsec: 0,
        };
        let mut rem = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid timespecs.
        let r = unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &req, &mut rem) };
        (r, Duration::new(rem.tv_sec as u64, rem.tv_nsec as u32))
    });
    gevent::sleep(Duration::ZERO);
    signal_me(sig);
    let (r, rem) = g.get_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(r, libc::EINTR);
    assert!(rem > Duration::from_secs(2), "{rem:?}");
}

#[test]
fn std_sleep_restarts_after_a_signal_as_std_does() {
    // std's sleep retries on EINTR with the time left: the signal wakes it, it sleeps the rest.
    gevent::monkey::patch_all();
    let sig = libc::SIGRTMIN() + 3;
    install(sig, 0);
    let g = gevent::spawn(|| {
        let t = Instant::now();
        std::thread::sleep(Duration::from_millis(300));
        t.elapsed()
    });
    gevent::sleep(Duration::ZERO);
    signal_me(sig);
    let slept = g.get_timeout(Duration::from_secs(5)).unwrap();
    assert!(slept >= Duration::from_millis(300), "{slept:?}");
}

#[test]
fn sigaction_reports_the_users_handler_and_flags() {
    gevent::monkey::patch_all();
    let sig = libc::SIGRTMIN() + 4;
    install(sig, libc::SA_RESTART);
    // SAFETY: a query into a valid out-pointer.
    let old = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(sig, std::ptr::null(), &mut old), 0);
        old
    };
    assert_eq!(
        old.sa_sigaction,
        count as extern "C" fn(libc::c_int) as libc::sighandler_t
    );
    assert_eq!(
        old.sa_flags & (libc::SA_RESTART | libc::SA_SIGINFO),
        libc::SA_RESTART
    );
}

extern "C" {
    fn siginterrupt(sig: libc::c_int, flag: libc::c_int) -> libc::c_int;
}

#[test]
fn signal_handlers_restart_until_siginterrupt() {
    gevent::monkey::patch_all();
    let sig = libc::SIGRTMIN() + 5;
    // signal(3) installs with SA_RESTART (glibc's BSD semantics).
    // SAFETY: `count` is async-signal-safe.
    let prev = unsafe {
        libc::signal(
            sig,
            count as extern "C" fn(libc::c_int) as libc::sighandler_t,
        )
    };
    assert_eq!(prev, libc::SIG_DFL);
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let first_done = std::rc::Rc::new(gevent::event::Event::new());
    let fd2 = first_done.clone();
    let g = gevent::spawn(move || {
        let mut buf = [0u8; 8];
        let first = a.read(&mut buf).map(|n| buf[..n].to_vec());
        fd2.set();
        let second = a.read(&mut buf).map_err(|e| e.kind()).map(|_| ());
        (first.unwrap(), second)
    });
    gevent::sleep(Duration::ZERO);
    signal_me(sig);
    assert!(!g.join_timeout(Duration::from_millis(50)), "restarted");
    b.write_all(b"x").unwrap();
    assert!(first_done.wait_timeout(Duration::from_secs(5)));
    gevent::sleep(Duration::ZERO); // it parks in the second read
                                   // SAFETY: plain call on a handled signal.
    assert_eq!(unsafe { siginterrupt(sig, 1) }, 0);
    signal_me(sig);
    assert_eq!(
        g.get_timeout(Duration::from_secs(5)),
        Ok((b"x".to_vec(), Err(ErrorKind::Interrupted)))
    );
}

#[test]
fn poll_is_interrupted_whatever_the_flags() {
    gevent::monkey::patch_all();
    let sig = libc::SIGRTMIN() + 6;
    install(sig, libc::SA_RESTART);
    let (a, _b) = UnixStream::pair().unwrap();
    let g = gevent::spawn(move || {
        let mut p = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&a),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, 3000) };
        (r, std::io::Error::last_os_error().raw_os_error())
    });
    gevent::sleep(Duration::ZERO);
    signal_me(sig);
    assert_eq!(
        g.get_timeout(Duration::from_secs(5)),
        Ok((-1, Some(libc::EINTR)))
    );
}

#[test]
fn a_signal_on_another_thread_does_not_interrupt_this_ones_calls() {
    gevent::monkey::patch_all();
    let sig = libc::SIGRTMIN() + 7;
    install(sig, 0);
    let (a, mut b) = UnixStream::pair().unwrap();
    let g = parked_read(a);
    let before = HITS[sig as usize].load(Ordering::SeqCst);
    std::thread::spawn(move || signal_me(sig)).join().unwrap();
    assert_eq!(HITS[sig as usize].load(Ordering::SeqCst), before + 1);
    still_waiting_until_data_comes(&g, &mut b, b"ok");
}

#[test]
fn a_signal_sent_from_another_thread_wakes_the_sleeping_hub() {
    gevent::monkey::patch_all();
    let sig = libc::SIGRTMIN() + 8;
    install(sig, 0);
    let (a, _b) = UnixStream::pair().unwrap();
    let g = parked_read(a);
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as usize;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let sender = std::thread::spawn(move || {
        rx.recv().unwrap();
        // SAFETY: `me` is the test's thread, alive until `sender` is joined below.
        unsafe { libc::pthread_kill(me as libc::pthread_t, sig) }
    });
    tx.send(()).unwrap();
    // The hub sleeps in epoll_wait (or is about to) when the signal lands.
    let r = g.get_timeout(Duration::from_secs(5));
    assert_eq!(sender.join().unwrap(), 0);
    assert_eq!(r, Ok(Err((ErrorKind::Interrupted, Some(libc::EINTR)))));
}
