//! `StreamServer::idle_timeout` and `TcpStream::set_idle_timeout`: a connection that waits on a
//! silent (or non-reading) peer for the idle timeout is closed, its handler ends and its fd is
//! freed; a peer that keeps talking is never cut off. Every wait here is bounded.

use std::cell::RefCell;
use std::io::{ErrorKind, Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use gevent::net::{TcpListener, TcpStream};
use gevent::server::StreamServer;

/// Echo handler: reads until EOF or an error, records the error kind.
fn echo_server(idle: Duration, errors: Rc<RefCell<Vec<ErrorKind>>>) -> StreamServer {
    StreamServer::bind("127.0.0.1:0", move |mut conn, _| {
        let mut buf = [0u8; 256];
        loop {
            match conn.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if let Err(e) = conn.write_all(&buf[..n]) {
                        errors.borrow_mut().push(e.kind());
                        return;
                    }
                }
                Err(e) => {
                    errors.borrow_mut().push(e.kind());
                    return;
                }
            }
        }
    })
    .unwrap()
    .idle_timeout(idle)
}

/// Waits (cooperatively, at most `limit`) until `f` holds.
fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while !f() {
        if t.elapsed() > limit {
            return false;
        }
        gevent::sleep(Duration::from_millis(5));
    }
    true
}

#[test]
fn silent_peers_are_closed_after_the_idle_timeout() {
    let errors = Rc::new(RefCell::new(Vec::new()));
    let server = echo_server(Duration::from_millis(150), errors.clone());
    server.start();
    let t = Instant::now();
    // 200 peers connect and say nothing.
    let mut peers: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(server.local_addr()).unwrap())
        .collect();
    assert!(wait_until(Duration::from_secs(5), || server.connections() == 200));
    for p in &mut peers {
        p.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // EOF: the server closed it (not our read timeout).
        assert_eq!(p.read(&mut [0; 8]).unwrap(), 0);
    }
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert!(wait_until(Duration::from_secs(5), || server.connections() == 0));
    assert_eq!(errors.borrow().len(), 200);
    assert!(errors.borrow().iter().all(|k| *k == ErrorKind::TimedOut));
    server.stop(Duration::from_secs(1));
}

#[test]
fn a_talking_peer_is_not_cut_off() {
    let errors = Rc::new(RefCell::new(Vec::new()));
    let idle = Duration::from_millis(300);
    let server = echo_server(idle, errors.clone());
    server.start();
    let mut c = TcpStream::connect(server.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t = Instant::now();
    // Talks for well past the idle timeout, never pausing for long.
    while t.elapsed() < idle * 3 {
        c.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        c.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
        gevent::sleep(Duration::from_millis(20));
    }
    assert!(errors.borrow().is_empty(), "{:?}", errors.borrow());
    assert_eq!(server.connections(), 1);
    // Then falls silent: closed.
    assert_eq!(c.read(&mut [0; 4]).unwrap(), 0);
    assert_eq!(*errors.borrow(), vec![ErrorKind::TimedOut]);
    server.stop(Duration::from_secs(1));
}

#[test]
fn a_peer_that_does_not_read_is_closed_too() {
    let seen: Rc<RefCell<Option<std::io::Error>>> = Rc::new(RefCell::new(None));
    let s2 = seen.clone();
    let server = StreamServer::bind("127.0.0.1:0", move |conn, _| {
        let chunk = vec![b'x'; 64 * 1024];
        // Writes until the peer's window and our buffer are full, then waits: the idle timeout.
        let r = loop {
            if let Err(e) = (&conn).write_all(&chunk) {
                break e;
            }
        };
        *s2.borrow_mut() = Some(r);
        assert!(conn.is_closed());
    })
    .unwrap()
    .idle_timeout(Duration::from_millis(100));
    server.start();
    let c = TcpStream::connect(server.local_addr()).unwrap();
    assert!(wait_until(Duration::from_secs(5), || seen
        .borrow()
        .is_some()));
    assert_eq!(seen.borrow().as_ref().unwrap().kind(), ErrorKind::TimedOut);
    assert!(wait_until(Duration::from_secs(5), || server.connections() == 0));
    drop(c);
    server.stop(Duration::from_secs(1));
}

#[test]
fn set_idle_timeout_on_a_stream_and_beside_a_read_timeout() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    assert_eq!(s.idle_timeout(), None);
    assert_eq!(
        s.set_idle_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    // A shorter read timeout passes first: TimedOut, the connection stays open.
    s.set_idle_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    let e = (&s).read(&mut [0; 4]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert!(!s.is_closed());
    // The idle timeout passes first: TimedOut, and the connection is closed.
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_idle_timeout(Some(Duration::from_millis(30))).unwrap();
    let t = Instant::now();
    let e = (&s).read(&mut [0; 4]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(s.is_closed());
    assert_eq!(
        (&s).read(&mut [0; 4]).unwrap_err().kind(),
        ErrorKind::NotConnected
    );
    assert_eq!((&c).read(&mut [0; 4]).unwrap(), 0);
}

#[test]
#[should_panic(expected = "idle_timeout must be more than zero")]
fn zero_idle_timeout_is_refused() {
    let _ = StreamServer::bind("127.0.0.1:0", |_c, _p| {})
        .unwrap()
        .idle_timeout(Duration::ZERO);
}
