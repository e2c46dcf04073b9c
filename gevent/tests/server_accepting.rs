//! Pausing and resuming a server's accept loop, and `started`.
//!
//! Upstream: gevent `src/gevent/tests/test__server.py`, `TestDefaultSpawn._test_server_start_stop`
//! (through `test_subclass_with_address`: after `stop_accepting` a connection is not accepted,
//! after `start_accepting` the request succeeds), `test_serve_forever` and
//! `test_serve_forever_after_start` (`started` is false before `start`, true after, false after
//! `stop`; `serve_forever` in a greenlet returns once the server stops).

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use gevent::net::{TcpStream, UdpSocket};
use gevent::server::{DatagramServer, StreamServer};

fn echo_upper(mut conn: TcpStream, _: std::net::SocketAddr) {
    let mut buf = [0u8; 64];
    while let Ok(n @ 1..) = conn.read(&mut buf) {
        let _ = conn.write_all(&buf[..n].to_ascii_uppercase());
    }
}

/// One request; `Err` with the read's error kind if no answer came within `wait`.
fn request(server: &StreamServer, wait: Duration) -> Result<Vec<u8>, ErrorKind> {
    let mut c = TcpStream::connect(server.local_addr()).map_err(|e| e.kind())?;
    c.set_read_timeout(Some(wait)).unwrap();
    c.write_all(b"ping").unwrap();
    let mut got = [0u8; 4];
    c.read_exact(&mut got).map_err(|e| e.kind())?;
    Ok(got.to_vec())
}

#[test]
fn stop_accepting_queues_connections_until_start_accepting() {
    let server = StreamServer::bind("127.0.0.1:0", echo_upper).unwrap();
    assert!(!server.started());
    server.start();
    assert!(server.started() && server.is_accepting());
    assert_eq!(request(&server, Duration::from_secs(5)).unwrap(), b"PING");

    server.stop_accepting();
    assert!(server.started(), "paused is still started");
    assert!(!server.is_accepting());
    // The socket stays open: the connect succeeds (kernel backlog), but nobody answers.
    assert_eq!(
        request(&server, Duration::from_millis(200)).unwrap_err(),
        ErrorKind::TimedOut
    );
    // A connection made while paused is served once accepting resumes.
    let mut queued = TcpStream::connect(server.local_addr()).unwrap();
    queued.write_all(b"late").unwrap();
    server.start_accepting();
    assert!(server.is_accepting());
    queued
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = [0u8; 4];
    queued.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"LATE");
    assert_eq!(request(&server, Duration::from_secs(5)).unwrap(), b"PING");
    // Pausing twice, resuming twice: harmless.
    server.stop_accepting();
    server.stop_accepting();
    server.start_accepting();
    server.start_accepting();
    assert_eq!(request(&server, Duration::from_secs(5)).unwrap(), b"PING");

    drop(queued);
    server.stop(Duration::from_secs(1));
    assert!(!server.started());
    assert!(!server.is_accepting());
    assert_eq!(
        request(&server, Duration::from_secs(1)).unwrap_err(),
        ErrorKind::ConnectionRefused
    );
    // A stopped server does not start again.
    server.start_accepting();
    server.start();
    assert!(!server.started() && !server.is_accepting());
}

#[test]
fn serve_forever_in_a_greenlet_returns_on_stop_not_on_pause() {
    let server = StreamServer::bind("127.0.0.1:0", echo_upper).unwrap();
    assert!(!server.started());
    let s2 = server.clone();
    let g = gevent::spawn(move || s2.serve_forever());
    gevent::sleep(Duration::ZERO);
    assert!(server.started());
    assert_eq!(request(&server, Duration::from_secs(5)).unwrap(), b"PING");
    server.stop_accepting();
    assert!(
        !g.join_timeout(Duration::from_millis(50)),
        "serve_forever must outlive a pause"
    );
    server.start_accepting();
    assert_eq!(request(&server, Duration::from_secs(5)).unwrap(), b"PING");
    server.stop(Duration::from_secs(1));
    assert!(g.join_timeout(Duration::from_secs(5)));
    assert!(g.successful());
    assert!(!server.started());
}

#[test]
fn datagram_server_pauses_too() {
    let server = DatagramServer::bind("127.0.0.1:0", |data, peer, sock| {
        let _ = sock.send_to(&data.to_ascii_uppercase(), peer);
    })
    .unwrap();
    assert!(!server.started());
    server.start();
    assert!(server.started());
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 8];
    c.send_to(b"one", server.local_addr()).unwrap();
    assert_eq!(c.recv(&mut buf).unwrap(), 3);
    server.stop_accepting();
    c.send_to(b"two", server.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert_eq!(c.recv(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
    server.start_accepting();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(c.recv(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"TWO");
    server.stop(Duration::from_secs(1));
    assert!(!server.started());
}
