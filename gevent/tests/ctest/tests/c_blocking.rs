//! A C library that blocks in `recv`, `read` and `poll` (fortified: `__recv_chk`, `__read_chk`,
//! `__poll_chk`) runs in greenlets after `patch_all()`: each call parks its greenlet, the others go on.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

#[test]
fn c_recv_read_and_poll_are_cooperative() {
    gevent::monkey::patch_all();
    let (a, b) = UnixStream::pair().unwrap();
    let (c, d) = UnixStream::pair().unwrap();
    let (e, f) = UnixStream::pair().unwrap();
    let (fa, fc, fe) = (a.as_raw_fd(), c.as_raw_fd(), e.as_raw_fd());
    let t = Instant::now();
    let recv = gevent::spawn(move || {
        let mut buf = [0u8; 16];
        let n = gevent_ctest::recv(fa, &mut buf);
        (n, buf[..n.max(0) as usize].to_vec(), t.elapsed())
    });
    let read = gevent::spawn(move || {
        let mut buf = [0u8; 16];
        let n = gevent_ctest::read(fc, &mut buf);
        (n, buf[..n.max(0) as usize].to_vec(), t.elapsed())
    });
    let poll = gevent::spawn(move || (gevent_ctest::poll(&[fe], 5000), t.elapsed()));
    let idle_poll = gevent::spawn(|| {
        let (x, _y) = UnixStream::pair().unwrap();
        gevent_ctest::poll(&[x.as_raw_fd()], 150) // times out: 0
    });
    // While the C code waits, this greenlet keeps running and feeds it, one by one.
    let ticks = gevent::spawn(move || {
        for (i, s) in [&b, &d, &f].into_iter().enumerate() {
            std::thread::sleep(Duration::from_millis(50));
            (&*s).write_all(format!("msg{i}").as_bytes()).unwrap();
        }
        gevent::sleep(Duration::from_millis(50));
    });
    let (n, got, at) = recv.get().unwrap();
    assert_eq!((n, got.as_slice()), (4, &b"msg0"[..]));
    assert!(at >= Duration::from_millis(50), "{at:?}");
    let (n, got, _) = read.get().unwrap();
    assert_eq!((n, got.as_slice()), (4, &b"msg1"[..]));
    let (n, at) = poll.get().unwrap();
    assert_eq!(n, 1);
    assert!(
        at >= Duration::from_millis(150) && at < Duration::from_secs(3),
        "{at:?}"
    );
    assert_eq!(idle_poll.get().unwrap(), 0);
    ticks.join();
    drop((a, c, e));
    // All of it overlapped: about 200 ms, not 5 s of poll or a thread stuck in recv.
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}
