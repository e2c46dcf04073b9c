//! `gevent::select`: cooperative select/poll over fds, including fds already registered by
//! `gevent::net` sockets.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use gevent::net::UnixStream;
use gevent::select::{poll, select};

#[test]
fn select_waits_cooperatively_and_times_out() {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let writer = gevent::spawn(move || {
        gevent::sleep(Duration::from_millis(50));
        (&b).write_all(b"x").unwrap();
        b
    });
    let t = Instant::now();
    let (r, w) = select(&[a.as_raw_fd()], &[], Some(Duration::from_secs(5))).unwrap();
    assert_eq!(r, vec![a.as_raw_fd()]);
    assert!(w.is_empty());
    assert!(t.elapsed() >= Duration::from_millis(40));
    writer.join();
    let t = Instant::now();
    let (r, w) = select(&[], &[], Some(Duration::from_millis(30))).unwrap();
    assert!(r.is_empty() && w.is_empty());
    assert!(t.elapsed() >= Duration::from_millis(30));
}

#[test]
fn select_on_fds_of_gevent_sockets() {
    // These fds are already registered with the hub by UnixStream: select must still work.
    let (x, y) = UnixStream::pair().unwrap();
    let (r, w) = select(
        &[x.as_raw_fd()],
        &[y.as_raw_fd()],
        Some(Duration::from_secs(1)),
    )
    .unwrap();
    assert!(r.is_empty());
    assert_eq!(w, vec![y.as_raw_fd()]);
    let g = gevent::spawn(move || {
        gevent::sleep(Duration::from_millis(20));
        (&y).write_all(b"hi").unwrap();
        y
    });
    let (r, _) = select(&[x.as_raw_fd()], &[], None).unwrap();
    assert_eq!(r, vec![x.as_raw_fd()]);
    g.join();
    // The socket itself still works afterwards (its registration was not disturbed).
    let mut b = [0u8; 2];
    std::io::Read::read_exact(&mut &x, &mut b).unwrap();
    assert_eq!(&b, b"hi");
}

#[test]
fn poll_reports_hangup_and_bad_fds() {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let closer = gevent::spawn(move || {
        gevent::sleep(Duration::from_millis(20));
        drop(b);
    });
    let mut fds = [libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }];
    assert_eq!(poll(&mut fds, Some(Duration::from_secs(5))).unwrap(), 1);
    assert!(fds[0].revents & (libc::POLLHUP | libc::POLLIN) != 0);
    closer.join();
    let e = select(&[1_000_000], &[], Some(Duration::ZERO)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{e:?}");
}

// Port of gevent's src/gevent/tests/test__select.py, TestSelectRead.test_errno: select on an fd
// that was closed fails with EBADF as an OS error (with a zero timeout, as upstream; and with a
// timeout and without one, which must not wait either).
#[test]
fn select_on_a_closed_fd_fails_with_ebadf() {
    // A file opened and closed, as upstream; its number moved to the highest one allowed first, so
    // that other tests' threads, which get the lowest free numbers, do not reuse it meanwhile.
    let f = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
    // SAFETY: rlimit is plain old data; getrlimit gets a valid pointer.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    let high = (lim.rlim_cur.min(65536) - 1) as libc::c_int;
    // SAFETY: dup2 onto a number nothing else uses (the highest allowed), closed right after.
    let fd = unsafe { libc::dup2(f.as_raw_fd(), high) };
    assert_eq!(fd, high, "{}", std::io::Error::last_os_error());
    drop(f);
    // SAFETY: `fd` is the duplicate made above, owned by this test.
    assert_eq!(unsafe { libc::close(fd) }, 0);
    for timeout in [Some(Duration::ZERO), Some(Duration::from_secs(5)), None] {
        let t = Instant::now();
        let e = select(&[fd], &[], timeout).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{timeout:?}: {e:?}");
        assert!(t.elapsed() < Duration::from_secs(1));
        let e = select(&[], &[fd], timeout).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{timeout:?}: {e:?}");
    }
    // Beside an open, ready fd too: the whole call fails, as select(2).
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let e = select(&[fd], &[a.as_raw_fd()], None).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    let e = select(&[-1], &[], Some(Duration::ZERO)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBADF));
}
