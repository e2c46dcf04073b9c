//! `gevent::server`: handlers in their own greenlets, a panicking handler, the connection limit,
//! `stop(timeout)` with handlers still running, and the datagram server.

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use gevent::net::{TcpStream, UdpSocket};
use gevent::server::{DatagramServer, StreamServer};

fn upper(mut conn: TcpStream) {
    let mut buf = [0u8; 1024];
    while let Ok(n @ 1..) = conn.read(&mut buf) {
        if conn.write_all(&buf[..n].to_ascii_uppercase()).is_err() {
            break;
        }
    }
}

fn ask(addr: std::net::SocketAddr, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut c = TcpStream::connect(addr)?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    c.write_all(msg)?;
    let mut got = vec![0; msg.len()];
    c.read_exact(&mut got)?;
    Ok(got)
}

#[test]
fn a_panicking_handler_does_not_stop_the_server() {
    let n = Rc::new(Cell::new(0));
    let n2 = n.clone();
    let server = StreamServer::bind("127.0.0.1:0", move |conn, _| {
        n2.set(n2.get() + 1);
        if n2.get() == 1 {
            panic!("handler boom");
        }
        upper(conn);
    })
    .unwrap();
    server.start();
    let addr = server.local_addr();
    // The first connection's handler panics: the client sees EOF.
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"x").unwrap();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert!(rest.is_empty());
    assert_eq!(ask(addr, b"still here").unwrap(), b"STILL HERE");
    assert_eq!(n.get(), 2);
    server.stop(Duration::from_secs(1));
}

#[test]
fn stop_kills_handlers_still_running_after_the_timeout() {
    struct Flag(Rc<Cell<u32>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let unwound = Rc::new(Cell::new(0));
    let u2 = unwound.clone();
    let server = StreamServer::bind("127.0.0.1:0", move |_conn, _| {
        let _f = Flag(u2.clone());
        gevent::sleep(Duration::from_secs(30));
    })
    .unwrap();
    server.start();
    let addr = server.local_addr();
    let clients: Vec<_> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let t = Instant::now();
    while server.connections() < 3 && t.elapsed() < Duration::from_secs(5) {
        gevent::sleep(Duration::from_millis(5));
    }
    assert_eq!(server.connections(), 3);
    let t = Instant::now();
    server.stop(Duration::from_millis(100));
    let el = t.elapsed();
    assert!(el >= Duration::from_millis(100), "{el:?}");
    assert!(el < Duration::from_secs(2), "{el:?}");
    assert_eq!(server.connections(), 0);
    assert_eq!(unwound.get(), 3, "destructors of killed handlers ran");
    assert!(server.is_stopped());
    // The listening socket is closed: new connections are refused.
    let e = TcpStream::connect(addr).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    drop(clients);
}

#[test]
fn stop_lets_handlers_finish_within_the_timeout() {
    let server = StreamServer::bind("127.0.0.1:0", |mut conn, _| {
        let mut b = [0u8; 4];
        conn.read_exact(&mut b).unwrap();
        gevent::sleep(Duration::from_millis(100));
        conn.write_all(&b.to_ascii_uppercase()).unwrap();
    })
    .unwrap();
    server.start();
    let addr = server.local_addr();
    let client = gevent::spawn(move || ask(addr, b"slow").map_err(|e| e.to_string()));
    let t = Instant::now();
    while server.connections() < 1 && t.elapsed() < Duration::from_secs(5) {
        gevent::sleep(Duration::from_millis(5));
    }
    let t = Instant::now();
    server.stop(Duration::from_secs(5));
    assert!(t.elapsed() < Duration::from_secs(2));
    client.join();
    assert_eq!(client.value().unwrap().unwrap(), b"SLOW");
}

#[test]
fn max_connections_limits_concurrent_handlers() {
    let live = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    let (l2, p2) = (live.clone(), peak.clone());
    let server = StreamServer::bind("127.0.0.1:0", move |conn, _| {
        l2.set(l2.get() + 1);
        p2.set(p2.get().max(l2.get()));
        gevent::sleep(Duration::from_millis(30));
        l2.set(l2.get() - 1);
        upper(conn);
    })
    .unwrap()
    .max_connections(2);
    server.start();
    let addr = server.local_addr();
    let clients: Vec<_> = (0..6)
        .map(|i| {
            gevent::spawn(move || {
                let msg = format!("c{i}");
                ask(addr, msg.as_bytes()).unwrap() == msg.to_uppercase().as_bytes()
            })
        })
        .collect();
    gevent::joinall(&clients);
    assert!(clients.iter().all(|c| c.value() == Some(true)));
    assert_eq!(peak.get(), 2);
    server.stop(Duration::from_secs(1));
}

#[test]
fn serve_forever_returns_after_stop_from_a_handler() {
    let slot: Rc<std::cell::RefCell<Option<StreamServer>>> = Rc::default();
    let s2 = slot.clone();
    let server = StreamServer::bind("127.0.0.1:0", move |_conn, _| {
        let s = s2.borrow().clone().unwrap();
        s.stop(Duration::from_millis(10));
    })
    .unwrap();
    *slot.borrow_mut() = Some(server.clone());
    let addr = server.local_addr();
    let c = gevent::spawn(move || TcpStream::connect(addr).map(|_| ()).is_ok());
    let t = Instant::now();
    server.serve_forever();
    assert!(t.elapsed() < Duration::from_secs(5));
    c.join();
    slot.borrow_mut().take();
}

#[test]
fn datagram_server_replies_and_survives_a_panicking_handler() {
    let server = DatagramServer::bind("127.0.0.1:0", |data, peer, sock| {
        if data == b"panic" {
            panic!("datagram boom");
        }
        sock.send_to(&data.to_ascii_uppercase(), peer).unwrap();
    })
    .unwrap();
    server.start();
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.send_to(b"panic", server.local_addr()).unwrap();
    let mut buf = [0u8; 64];
    for i in 0..20 {
        let msg = format!("dgram {i}");
        c.send_to(msg.as_bytes(), server.local_addr()).unwrap();
        let (n, from) = c.recv_from(&mut buf).unwrap();
        assert_eq!(from, server.local_addr());
        assert_eq!(&buf[..n], msg.to_uppercase().as_bytes());
    }
    server.stop(Duration::from_secs(1));
}
