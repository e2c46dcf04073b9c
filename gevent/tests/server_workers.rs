//! `StreamServer::bind_workers`: one address served by an accept loop on each of N hubs
//! (`SO_REUSEPORT`), and a graceful stop across all of them.
//!
//! No upstream test file: gevent serves one address from one hub (users pre-fork for more cores).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use gevent::server::StreamServer;

/// Every wait in these tests gives up after this.
const BOUND: Duration = Duration::from_secs(10);

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let c = TcpStream::connect_timeout(&addr, BOUND).unwrap();
    c.set_read_timeout(Some(BOUND)).unwrap();
    c.set_write_timeout(Some(BOUND)).unwrap();
    c
}

/// Reads the one byte a handler sends first: the index of the hub serving the connection.
fn hub_of(c: &mut TcpStream) -> usize {
    let mut b = [0u8];
    c.read_exact(&mut b).unwrap();
    usize::from(b[0])
}

#[test]
fn two_workers_serve_200_connections_and_both_hubs_serve_some() {
    let server = StreamServer::bind_workers_with("127.0.0.1:0", 2, |i, listener| {
        // Built on hub `i`: a per-hub server, with that hub's own limits.
        let s = StreamServer::new(listener, move |mut conn, _| {
            assert_eq!(gevent::hubs::current_index(), Some(i));
            let thread = std::thread::current();
            assert_eq!(thread.name(), Some(format!("gevent-hub-{i}").as_str()));
            let _ = conn.write_all(&[i as u8]);
            let mut buf = [0u8; 16];
            if let Ok(n @ 1..) = conn.read(&mut buf) {
                let _ = conn.write_all(&buf[..n].to_ascii_uppercase());
            }
        })?;
        Ok(s.max_connections(100))
    })
    .unwrap();
    assert_eq!(server.workers(), 2);
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);
    let mut per_hub = [0usize; 2];
    let started = Instant::now();
    for k in 0..200u32 {
        let mut c = connect(addr);
        let hub = hub_of(&mut c);
        per_hub[hub] += 1;
        let msg = format!("m{k}");
        c.write_all(msg.as_bytes()).unwrap();
        let mut got = vec![0u8; msg.len()];
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, msg.to_ascii_uppercase().as_bytes());
        assert!(started.elapsed() < BOUND, "200 connections took too long");
    }
    eprintln!("connections served per hub: {per_hub:?}");
    assert_eq!(per_hub[0] + per_hub[1], 200);
    assert!(
        per_hub[0] > 0 && per_hub[1] > 0,
        "the kernel spread no connection to one hub: {per_hub:?}"
    );
    let report = server.stop(Duration::from_secs(1));
    assert_eq!(report.alive, vec![0, 0]);
    // Nothing listens any more.
    assert!(TcpStream::connect_timeout(&addr, BOUND).is_err());
}

#[test]
fn stop_is_graceful_on_every_hub_and_kills_what_outlives_the_timeout() {
    // A handler reports its hub, then waits for a request; it answers 100 ms later.
    let server = StreamServer::bind_workers("127.0.0.1:0", 2, |mut conn, _| {
        let hub = gevent::hubs::current_index().unwrap() as u8;
        let _ = conn.write_all(&[hub]);
        let mut b = [0u8];
        if conn.read_exact(&mut b).is_ok() {
            gevent::sleep(Duration::from_millis(100));
            let _ = conn.write_all(&[b[0] + 1]);
        }
    })
    .unwrap();
    let addr = server.local_addr();
    // One busy connection on each hub (connect until both hubs have one; bounded), and one idle
    // connection that never sends its request.
    let mut busy: [Option<TcpStream>; 2] = [None, None];
    let mut idle = None;
    for _ in 0..200 {
        let mut c = connect(addr);
        let hub = hub_of(&mut c);
        if busy[hub].is_none() {
            busy[hub] = Some(c);
        } else if idle.is_none() {
            idle = Some(c);
        }
        if busy.iter().all(Option::is_some) && idle.is_some() {
            break;
        }
    }
    let mut busy: Vec<TcpStream> = busy
        .into_iter()
        .map(|c| c.expect("no connection landed on one of the hubs"))
        .collect();
    let mut idle = idle.unwrap();
    for (k, c) in busy.iter_mut().enumerate() {
        c.write_all(&[10 * k as u8]).unwrap();
    }
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let report = server.stop(timeout);
    let took = started.elapsed();
    // It waited for the idle handler until the timeout, then killed it.
    assert!(took >= timeout, "{took:?}");
    assert!(took < BOUND, "{took:?}");
    assert_eq!(report.alive, vec![0, 0]);
    // The requests in flight on both hubs were answered before the stop returned.
    for (k, c) in busy.iter_mut().enumerate() {
        let mut b = [0u8];
        c.read_exact(&mut b).unwrap();
        assert_eq!(b[0], 10 * k as u8 + 1);
        assert_eq!(c.read(&mut b).unwrap(), 0, "closed after the reply");
    }
    // The idle one was closed when its handler was killed.
    let mut b = [0u8];
    assert_eq!(idle.read(&mut b).unwrap(), 0);
    assert!(TcpStream::connect_timeout(&addr, BOUND).is_err());
}

#[test]
fn bad_arguments_and_failing_factories_are_errors() {
    let e = StreamServer::bind_workers("127.0.0.1:0", 0, |_, _| {}).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let e = StreamServer::bind_workers_with("127.0.0.1:0", 2, |i, l| {
        if i == 1 {
            return Err(std::io::Error::other("no server on hub 1"));
        }
        StreamServer::new(l, |_, _| {})
    })
    .unwrap_err();
    assert!(e.to_string().contains("no server on hub 1"), "{e}");
    // A port taken by a socket without SO_REUSEPORT cannot be shared.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let e = StreamServer::bind_workers(taken.local_addr().unwrap(), 2, |_, _| {}).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
}
