//! `gevent::monkey` edge cases found in review: a forked child that closes an fd the parent's
//! greenlet is parked on (the epoll instance is shared across `fork`, the fd table is not), and
//! `MSG_WAITALL` on datagram sockets (the kernel ignores it there: one datagram per call).

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::Duration;

#[test]
fn a_forked_child_closing_a_parked_fd_does_not_deregister_it_in_the_parent() {
    gevent::monkey::patch_all();
    let (a, mut b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let reader = gevent::spawn(move || {
        let mut buf = [0u8; 5];
        // SAFETY: a valid buffer of its length; `a` lives until the end of the closure.
        let n = unsafe { libc::recv(a.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        (n, buf)
    });
    gevent::sleep(Duration::from_millis(20)); // the reader parks in recv
                                              // SAFETY: the child only calls close(2) (the interposed one) and _exit(2).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: the child's copy of the fd; closing it does not affect the parent's fd table.
        unsafe {
            libc::close(fd);
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: our child; `status` is a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    b.write_all(b"hello").unwrap();
    let r = gevent::with_timeout(Duration::from_secs(2), || reader.get());
    let (n, buf) = r
        .expect("the parked reader never woke: the child's close deregistered the parent's fd")
        .unwrap();
    assert_eq!((n, &buf), (5, b"hello"));
}

#[test]
fn msg_waitall_on_a_datagram_socket_receives_one_datagram() {
    gevent::monkey::patch_all();
    let (a, b) = UnixDatagram::pair().unwrap();
    b.send(b"ab").unwrap();
    b.send(b"cd").unwrap();
    let g = gevent::spawn(move || {
        let mut buf = [0u8; 16];
        // SAFETY: a valid buffer of its length.
        let n = unsafe {
            libc::recv(
                a.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_WAITALL,
            )
        };
        (n, buf[..n.max(0) as usize].to_vec())
    });
    let r = gevent::with_timeout(Duration::from_secs(2), || g.get());
    let r = r.expect("recv(MSG_WAITALL) on a datagram socket waited for a second datagram");
    assert_eq!(r.unwrap(), (2, b"ab".to_vec()));
}

#[test]
fn sleeping_forever_in_a_greenlet_sleeps() {
    gevent::monkey::patch_all();
    // std's sleep passes i64::MAX seconds to clock_nanosleep; no Instant is that far away.
    let g = gevent::spawn(|| std::thread::sleep(Duration::MAX));
    gevent::sleep(Duration::from_millis(100));
    assert!(
        !g.ready(),
        "thread::sleep(Duration::MAX) returned: {:?}",
        g.get()
    );
    g.kill();
    assert!(matches!(g.get(), Err(gevent::GetError::Killed)));
}
