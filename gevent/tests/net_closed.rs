//! A closed socket fails every later operation with `NotConnected`, as the `gevent::net` docs say.
//!
//! Port of gevent's src/gevent/tests/test__socket_close.py, TestClosedSocket.test (a send on a
//! closed socket raises instead of succeeding), widened to every operation of every socket type:
//! before, `shutdown` and `peer_addr` (and the other calls that make no I/O wait) still reached the
//! socket after `close()`.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::time::Duration;

use gevent::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};

#[track_caller]
fn closed<T: std::fmt::Debug>(r: std::io::Result<T>) {
    match r {
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotConnected, "{e:?}"),
        Ok(v) => panic!("an operation on a closed socket succeeded: {v:?}"),
    }
}

#[test]
fn tcp_stream_after_close() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut s, _) = l.accept().unwrap();
    // Before close these all work.
    c.peer_addr().unwrap();
    c.set_nodelay(true).unwrap();
    c.close();
    assert!(c.is_closed());
    closed(c.write(b"a"));
    closed(c.read(&mut [0; 4]));
    closed(c.peek(&mut [0; 4]));
    closed(c.shutdown(Shutdown::Both));
    closed(c.shutdown(Shutdown::Write));
    closed(c.peer_addr());
    closed(c.local_addr());
    closed(c.set_nodelay(false));
    closed(c.nodelay());
    closed(c.set_ttl(10));
    closed(c.take_error());
    closed(c.try_clone());
    // Still answered: hub-kept timeouts and the fd (open until the value is dropped).
    c.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_secs(1)));
    assert!(c.as_raw_fd() >= 0);
    // The peer saw the close as EOF.
    assert_eq!(s.read(&mut [0; 4]).unwrap(), 0);
}

#[test]
fn tcp_listener_after_close() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.close();
    closed(l.accept());
    closed(l.accept_timeout(Duration::from_millis(10)));
    closed(l.local_addr());
    closed(l.take_error());
    closed(l.listen(10));
}

#[test]
fn udp_after_close() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.connect(b.local_addr().unwrap()).unwrap();
    a.close();
    closed(a.send(b"x"));
    closed(a.send_to(b"x", b.local_addr().unwrap()));
    closed(a.recv(&mut [0; 4]));
    closed(a.recv_from(&mut [0; 4]));
    closed(a.peek_from(&mut [0; 4]));
    closed(a.connect(b.local_addr().unwrap()));
    closed(a.local_addr());
    closed(a.peer_addr());
    closed(a.set_broadcast(true));
    closed(a.take_error());
}

#[test]
fn unix_types_after_close() {
    let (mut x, mut y) = UnixStream::pair().unwrap();
    x.close();
    closed(x.write(b"a"));
    closed(x.read(&mut [0; 4]));
    closed(x.shutdown(Shutdown::Read));
    closed(x.peer_addr());
    closed(x.local_addr());
    assert_eq!(y.read(&mut [0; 4]).unwrap(), 0);

    let path = std::env::temp_dir().join(format!("gevent-closed-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    l.close();
    closed(l.accept());
    closed(l.local_addr());
    closed(l.listen(3));
    drop(l);
    std::fs::remove_file(&path).unwrap();

    let (d, e) = UnixDatagram::pair().unwrap();
    d.close();
    closed(d.send(b"x"));
    closed(d.recv(&mut [0; 4]));
    closed(d.recv_from(&mut [0; 4]));
    closed(d.local_addr());
    closed(d.peer_addr());
    closed(d.take_error());
    closed(d.connect(&path));
    drop(e);
}
