//! `StreamServer::with_pool` / `DatagramServer::with_pool`: handlers run in a `gevent::pool::Pool`,
//! the server stops accepting while it is full, a pool shared with other work limits both, and
//! `stop` kills only the server's own handlers.

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use gevent::event::Event;
use gevent::net::{TcpStream, UdpSocket};
use gevent::pool::Pool;
use gevent::server::{DatagramServer, StreamServer};

fn ask(addr: std::net::SocketAddr, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut c = TcpStream::connect(addr)?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    c.write_all(msg)?;
    let mut got = vec![0; msg.len()];
    c.read_exact(&mut got)?;
    Ok(got)
}

/// Counts live handlers and remembers the peak.
#[derive(Clone, Default)]
struct Gauge {
    live: Rc<Cell<usize>>,
    peak: Rc<Cell<usize>>,
}

impl Gauge {
    fn enter(&self) -> impl Drop {
        struct Leave(Rc<Cell<usize>>);
        impl Drop for Leave {
            fn drop(&mut self) {
                self.0.set(self.0.get() - 1);
            }
        }
        self.live.set(self.live.get() + 1);
        self.peak.set(self.peak.get().max(self.live.get()));
        Leave(self.live.clone())
    }
}

fn slow_upper(gauge: &Gauge, mut conn: TcpStream) {
    let _in = gauge.enter();
    let mut buf = [0u8; 64];
    let n = conn.read(&mut buf).unwrap_or(0);
    gevent::sleep(Duration::from_millis(30));
    let _ = conn.write_all(&buf[..n].to_ascii_uppercase());
}

#[test]
fn a_pool_limits_concurrent_handlers_and_every_client_is_served() {
    let gauge = Gauge::default();
    let g2 = gauge.clone();
    let pool = Pool::new(3);
    let server = StreamServer::bind("127.0.0.1:0", move |conn, _| slow_upper(&g2, conn))
        .unwrap()
        .with_pool(pool.clone());
    assert_eq!(server.pool().and_then(|p| p.size()), Some(3));
    server.start();
    let addr = server.local_addr();
    let clients: Vec<_> = (0..12)
        .map(|i| {
            gevent::spawn(move || {
                let msg = format!("client {i}");
                ask(addr, msg.as_bytes()).unwrap() == msg.to_uppercase().as_bytes()
            })
        })
        .collect();
    let t = Instant::now();
    gevent::joinall(&clients);
    assert!(clients.iter().all(|c| c.value() == Some(true)));
    assert_eq!(gauge.peak.get(), 3);
    // 12 clients, 3 at a time, 30 ms each: at least 4 rounds.
    assert!(
        t.elapsed() >= Duration::from_millis(110),
        "{:?}",
        t.elapsed()
    );
    server.stop(Duration::from_secs(1));
    assert!(pool.is_empty());
}

#[test]
fn a_shared_pool_limits_the_server_and_other_work_together() {
    let gauge = Gauge::default();
    let g2 = gauge.clone();
    let pool = Pool::new(2);
    // Other work holds one of the two slots until `release` is set.
    let release = Event::new();
    let r2 = release.clone();
    let other = pool.spawn(move || r2.wait());
    let server = StreamServer::bind("127.0.0.1:0", move |conn, _| slow_upper(&g2, conn))
        .unwrap()
        .with_pool(pool.clone());
    server.start();
    let addr = server.local_addr();
    let clients = |base: usize| -> Vec<_> {
        (base..base + 4)
            .map(|i| gevent::spawn(move || ask(addr, format!("m{i}").as_bytes()).unwrap()))
            .collect()
    };
    let first = clients(0);
    gevent::joinall(&first);
    // While `other` ran, one handler at a time.
    assert_eq!(gauge.peak.get(), 1);
    release.set();
    other.join();
    let second = clients(4);
    gevent::joinall(&second);
    assert_eq!(gauge.peak.get(), 2);
    server.stop(Duration::from_secs(1));
}

#[test]
fn stop_kills_the_servers_handlers_but_not_the_pools_other_greenlets() {
    let pool = Pool::new(10);
    let other = pool.spawn(|| {
        gevent::sleep(Duration::from_millis(300));
        "other done"
    });
    let server = StreamServer::bind("127.0.0.1:0", |_conn, _| {
        gevent::sleep(Duration::from_secs(30));
    })
    .unwrap()
    .with_pool(pool.clone());
    server.start();
    let _clients: Vec<_> = (0..3)
        .map(|_| TcpStream::connect(server.local_addr()).unwrap())
        .collect();
    let t = Instant::now();
    while server.connections() < 3 && t.elapsed() < Duration::from_secs(5) {
        gevent::sleep(Duration::from_millis(5));
    }
    assert_eq!(server.connections(), 3);
    assert_eq!(pool.len(), 4);
    server.stop(Duration::from_millis(50));
    assert_eq!(server.connections(), 0);
    assert!(!other.ready());
    other.join();
    assert_eq!(other.value(), Some("other done"));
}

#[test]
fn max_connections_is_a_pool_of_its_own() {
    let server = StreamServer::bind("127.0.0.1:0", |_conn, _| {})
        .unwrap()
        .max_connections(5);
    assert_eq!(server.pool().and_then(|p| p.size()), Some(5));
    assert!(StreamServer::bind("127.0.0.1:0", |_conn, _| {})
        .unwrap()
        .pool()
        .is_none());
}

#[test]
fn a_datagram_server_in_a_pool() {
    let gauge = Gauge::default();
    let g2 = gauge.clone();
    let server = DatagramServer::bind("127.0.0.1:0", move |data, peer, sock| {
        let _in = g2.enter();
        gevent::sleep(Duration::from_millis(20));
        let _ = sock.send_to(&data.to_ascii_uppercase(), peer);
    })
    .unwrap()
    .with_pool(Pool::new(2));
    server.start();
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for i in 0..6 {
        c.send_to(format!("d{i}").as_bytes(), server.local_addr())
            .unwrap();
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 16];
    for _ in 0..6 {
        let (n, _) = c.recv_from(&mut buf).unwrap();
        got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    got.sort();
    assert_eq!(got, ["D0", "D1", "D2", "D3", "D4", "D5"]);
    assert_eq!(gauge.peak.get(), 2);
    server.stop(Duration::from_secs(1));
}
