//! The hooks keep an fd's registration between waits (one `epoll_ctl` per fd, not two per wait).
//! What must still hold: a gevent type can take over an fd the hooks waited on, and an fd closed on
//! another thread whose number is then reused is waited on afresh (no wait on a dead registration).
//! One test, run in order: the second part depends on fd numbers being reused.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

/// A read in a greenlet that parks (the peer writes 30 ms later), through the `recv` hook.
fn parked_read(r: &Rc<UnixStream>, w: &Rc<UnixStream>) {
    let w = w.clone();
    let writer = gevent::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        (&*w).write_all(b"ping").unwrap();
    });
    let r = r.clone();
    let reader = gevent::spawn(move || {
        r.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = [0u8; 4];
        (&*r)
            .read_exact(&mut buf)
            .expect("the parked read must see the data");
        assert_eq!(&buf, b"ping");
    });
    gevent::joinall([&reader, &writer]);
    reader.get().unwrap();
    writer.get().unwrap();
}

#[test]
fn kept_registrations_give_way() {
    gevent::monkey::patch_all();

    // 1. A std TcpStream the hooks waited on becomes a gevent::net::TcpStream (registers the same fd).
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = gevent::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap(); // parks in the hook: the registration is kept
        let mut g = gevent::net::TcpStream::from_std(c).expect("a gevent type takes the fd over");
        g.write_all(&buf).unwrap();
        g.read_exact(&mut buf).unwrap(); // parks on the gevent type's own registration
        g.write_all(&buf).unwrap();
    });
    let client = gevent::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut back = [0u8; 5];
        for msg in [b"hello", b"again"] {
            std::thread::sleep(Duration::from_millis(20));
            s.write_all(msg).unwrap();
            s.read_exact(&mut back).unwrap();
            assert_eq!(&back, msg);
        }
    });
    gevent::joinall([&client, &server]);
    client.get().unwrap();
    server.get().unwrap();

    // 2. An fd the hooks waited on is closed on another thread; its number comes back for a new
    //    socket, which must be waited on with a registration of its own.
    let (a, b) = UnixStream::pair().unwrap();
    let (a, b) = (Rc::new(a), Rc::new(b));
    parked_read(&a, &b);
    let a = Rc::try_unwrap(a).unwrap();
    let n = a.as_raw_fd();
    let raw = a.into_raw_fd();
    std::thread::spawn(move || {
        // SAFETY: this test owns the fd (taken out of `a`) and nothing else uses it.
        assert_eq!(unsafe { libc::close(raw) }, 0);
    })
    .join()
    .unwrap();
    drop(b);
    let (c, d) = UnixStream::pair().unwrap();
    assert!(
        c.as_raw_fd() == n || d.as_raw_fd() == n,
        "fd {n} was not reused ({} {})",
        c.as_raw_fd(),
        d.as_raw_fd()
    );
    let (c, d) = (Rc::new(c), Rc::new(d));
    parked_read(&c, &d);
    // And the other way round, on the same pair.
    parked_read(&d, &c);
}
