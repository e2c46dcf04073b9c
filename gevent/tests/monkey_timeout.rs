//! Issue 10, item 1: a `Timeout` that fires while a greenlet is parked inside a cooperative libc call
//! (under `monkey::patch_all`) reaches the caller. The C call returns (`ETIMEDOUT`, or a sleep cut
//! short), and the timeout surfaces at the next gevent wait or, at the latest, at `with_timeout`'s
//! boundary. gevent raises the Timeout through the patched call (src/gevent/tests/test__timeout.py,
//! `test_with_timeout` around a patched `time.sleep`); here C cannot unwind, so the rule is the
//! boundary. Every wait is bounded.

use std::cell::Cell;
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use gevent::{GetError, Timeout};

/// A loopback listener whose connections complete (the kernel's backlog) but never get an answer.
/// Kept alive by the caller.
fn silent_server() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

#[test]
fn std_sleep_cut_by_with_timeout_is_an_error() {
    gevent::monkey::patch_all();
    let g = gevent::spawn(|| {
        let t = Instant::now();
        let r = gevent::with_timeout(Duration::from_millis(100), || {
            std::thread::sleep(Duration::from_secs(2));
        });
        (r.map_err(|e| e.duration()), t.elapsed())
    });
    let (r, elapsed) = g.get().unwrap();
    assert_eq!(r, Err(Duration::from_millis(100)));
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
}

#[test]
fn std_tcp_read_cut_by_with_timeout_is_an_error_and_sees_timed_out() {
    gevent::monkey::patch_all();
    let (_l, addr) = silent_server();
    let seen = Rc::new(Cell::new(None));
    let s2 = seen.clone();
    let g = gevent::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        gevent::with_timeout(Duration::from_millis(100), move || {
            let mut buf = [0u8; 16];
            // The library swallows the error and carries on: the timeout still reaches the caller.
            let e = s.read(&mut buf).unwrap_err();
            s2.set(Some((e.kind(), e.raw_os_error())));
            "swallowed"
        })
    });
    assert!(g.get_timeout(Duration::from_secs(5)).unwrap().is_err());
    assert_eq!(
        seen.get(),
        Some((ErrorKind::TimedOut, Some(libc::ETIMEDOUT))),
        "what the library saw"
    );
}

#[test]
fn ureq_call_cut_by_with_timeout_is_an_error() {
    gevent::monkey::patch_all();
    let (_l, addr) = silent_server();
    let url = format!("http://{addr}/");
    let g = gevent::spawn(move || {
        let t = Instant::now();
        let r = gevent::with_timeout(Duration::from_millis(200), || {
            ureq::get(&url)
                .call()
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        (r.is_err(), t.elapsed())
    });
    let (timed_out, elapsed) = g.get_timeout(Duration::from_secs(5)).unwrap();
    assert!(timed_out, "with_timeout returned Ok after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[test]
fn kill_in_hooked_read_is_ecanceled_and_ends_the_greenlet_killed() {
    gevent::monkey::patch_all();
    let (_l, addr) = silent_server();
    let seen = Rc::new(Cell::new(None));
    let s2 = seen.clone();
    let g = gevent::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut buf = [0u8; 16];
        let e = s.read(&mut buf).unwrap_err();
        s2.set(Some((e.kind(), e.raw_os_error())));
        7 // returns normally: the kill still counts
    });
    gevent::sleep(Duration::from_millis(20)); // let it park
    assert!(g.kill_timeout(Duration::from_secs(5)));
    assert_eq!(g.get(), Err(GetError::Killed));
    let (kind, errno) = seen.get().expect("the read returned");
    assert_eq!(errno, Some(libc::ECANCELED));
    assert_ne!(kind, ErrorKind::TimedOut);
}

#[test]
fn cancelled_timeout_that_fired_in_a_hook_does_not_surface_later() {
    gevent::monkey::patch_all();
    let (_l, addr) = silent_server();
    let g = gevent::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut kinds = Vec::new();
        // Dropped ...
        let t = Timeout::start_new(Duration::from_millis(50));
        let mut buf = [0u8; 16];
        kinds.push(s.read(&mut buf).unwrap_err().kind());
        drop(t);
        gevent::sleep(Duration::from_millis(100)); // unrelated wait: nothing raised here
                                                   // ... or cancelled.
        let t = Timeout::start_new(Duration::from_millis(50));
        kinds.push(s.read(&mut buf).unwrap_err().kind());
        t.cancel();
        gevent::sleep(Duration::from_millis(100));
        kinds
    });
    assert_eq!(
        g.get_timeout(Duration::from_secs(5)),
        Ok(vec![ErrorKind::TimedOut, ErrorKind::TimedOut])
    );
}

#[test]
fn timeout_in_a_hook_is_raised_at_the_next_gevent_wait() {
    gevent::monkey::patch_all();
    let (_l, addr) = silent_server();
    let g = gevent::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let after = Rc::new(Cell::new(false));
        let a2 = after.clone();
        let r = gevent::with_timeout(Duration::from_millis(50), move || {
            let mut buf = [0u8; 16];
            let _ = s.read(&mut buf);
            // A second cooperative call fails at once with the same error.
            let again = s.read(&mut buf).unwrap_err().kind();
            gevent::sleep(Duration::from_secs(2)); // raised here
            a2.set(true);
            again
        });
        (r.is_err(), after.get())
    });
    let t = Instant::now();
    assert_eq!(g.get_timeout(Duration::from_secs(5)), Ok((true, false)));
    assert!(t.elapsed() < Duration::from_millis(1500));
}

#[test]
fn the_main_greenlet_gets_the_same_rule() {
    gevent::monkey::patch_all();
    let t = Instant::now();
    let r = gevent::with_timeout(Duration::from_millis(100), || {
        std::thread::sleep(Duration::from_secs(2));
    });
    assert!(r.is_err());
    let (_l, addr) = silent_server();
    let mut s = TcpStream::connect(addr).unwrap();
    let r = gevent::with_timeout(Duration::from_millis(100), || {
        let mut buf = [0u8; 4];
        s.read(&mut buf).map_err(|e| e.kind())
    });
    assert!(r.is_err());
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    // Nothing is left to surface at a later wait.
    gevent::sleep(Duration::from_millis(10));
}
