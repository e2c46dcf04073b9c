//! The socket surface beyond `std::net`'s basics: `try_clone` on every type, `UnixListener::incoming`,
//! TTL / linger / multicast options, gevent's non-blocking mode, any `std::net::ToSocketAddrs`, and
//! `create_connection`.
//!
//! Upstream: gevent `src/gevent/tests/test__socket.py` (`TestTCP.test_fullduplex`,
//! `TestTCP.test_sendall_nonblocking`, `TestTCP.test_connect_ex_nonblocking_bad_connection`,
//! `TestCreateConnection.test_refuses`, `TestCreateConnection.test_refuses_from_port`), and
//! CPython's `Lib/test/test_socket.py` (`testDup`, `testSetSockOpt`, the multicast option tests)
//! that gevent runs against its sockets.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use gevent::net::{
    create_connection, StdAddrs, TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener,
    UnixStream,
};

fn sock_path(tag: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("gevent-net-surface-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// A port nobody listens on (bound, then released).
fn unused_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// test__socket.py `TestTCP.test_fullduplex`: one greenlet reads a connection while another writes
/// 100 000 bytes through a clone of it; neither hangs.
#[test]
fn tcp_try_clone_gives_a_full_duplex_second_handle() {
    const N: usize = 100_000;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = gevent::spawn(move || {
        let (conn, _) = l.accept().unwrap();
        let writer = conn.try_clone().unwrap();
        assert_ne!(
            std::os::fd::AsRawFd::as_raw_fd(&writer),
            std::os::fd::AsRawFd::as_raw_fd(&conn)
        );
        let sender = gevent::spawn(move || (&writer).write_all(&vec![b't'; N]).unwrap());
        let mut buf = [0; 11];
        (&conn).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello world");
        sender.join();
    });
    let mut c = TcpStream::connect(addr).unwrap();
    let reader = c.try_clone().unwrap();
    let r = gevent::spawn(move || {
        let mut got = Vec::new();
        (&reader).take(N as u64).read_to_end(&mut got).unwrap();
        got.len()
    });
    c.write_all(b"hello world").unwrap();
    assert_eq!(r.get().unwrap(), N);
    server.join();
    assert!(server.successful());
}

/// CPython test_socket.py `testDup` for the listeners and datagram sockets: the clone is the same
/// socket (same address, same queue), and closing (a listener) or dropping one handle leaves the
/// other working.
#[test]
fn every_type_has_try_clone_and_handles_are_independent() {
    // TcpListener: a connection is accepted through the clone after the original is closed.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let l2 = l.try_clone().unwrap();
    assert_eq!(l.local_addr().unwrap(), l2.local_addr().unwrap());
    l.close();
    assert_eq!(l.try_clone().unwrap_err().kind(), ErrorKind::NotConnected);
    let addr = l2.local_addr().unwrap();
    let c = gevent::spawn(move || TcpStream::connect(addr).is_ok());
    l2.accept_timeout(Duration::from_secs(5)).unwrap();
    assert!(c.get().unwrap());

    // UdpSocket: a datagram sent to the original is received by the clone.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let u2 = u.try_clone().unwrap();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(b"ping", u.local_addr().unwrap()).unwrap();
    let mut buf = [0; 8];
    u2.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(u2.recv_from(&mut buf).unwrap().0, 4);

    // UnixListener / UnixStream.
    let path = sock_path("clone");
    let ul = UnixListener::bind(&path).unwrap();
    let ul2 = ul.try_clone().unwrap();
    drop(ul);
    let c = UnixStream::connect(&path).unwrap();
    let (s, _) = ul2.accept().unwrap();
    let s2 = s.try_clone().unwrap();
    drop(s);
    (&c).write_all(b"x").unwrap();
    let mut one = [0; 1];
    // Dropping a handle releases only its fd: the clone still reads the connection.
    (&s2).read_exact(&mut one).unwrap();
    assert_eq!(&one, b"x");
    std::fs::remove_file(&path).unwrap();

    // UnixDatagram.
    let (a, b) = UnixDatagram::pair().unwrap();
    let a2 = a.try_clone().unwrap();
    a2.send(b"dg").unwrap();
    assert_eq!(b.recv(&mut buf).unwrap(), 2);
    drop(a2);
    a.send(b"dg2").unwrap();
    assert_eq!(b.recv(&mut buf).unwrap(), 3);
}

/// `UnixListener::incoming`, as std's: each item is one accepted connection.
#[test]
fn unix_incoming_yields_connections() {
    let path = sock_path("incoming");
    let l = UnixListener::bind(&path).unwrap();
    let p2 = path.clone();
    let clients = gevent::spawn(move || {
        for i in 0..3u8 {
            let mut c = UnixStream::connect(&p2).unwrap();
            c.write_all(&[i]).unwrap();
        }
    });
    let mut got = Vec::new();
    for conn in l.incoming().take(3) {
        let mut b = [0; 1];
        conn.unwrap().read_exact(&mut b).unwrap();
        got.push(b[0]);
    }
    clients.join();
    assert_eq!(got, [0, 1, 2]);
    l.close();
    assert_eq!(
        l.incoming().next().unwrap().unwrap_err().kind(),
        ErrorKind::NotConnected
    );
    std::fs::remove_file(&path).unwrap();
}

/// CPython test_socket.py `testSetSockOpt`-style round trips for TTL and `SO_LINGER`; a zero
/// linger resets the connection (the peer reads `ConnectionReset`, not EOF).
#[test]
fn ttl_and_linger_round_trip() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_ttl(17).unwrap();
    assert_eq!(l.ttl().unwrap(), 17);
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    c.set_ttl(33).unwrap();
    assert_eq!(c.ttl().unwrap(), 33);
    assert_eq!(c.linger().unwrap(), None);
    c.set_linger(Some(Duration::from_millis(1500))).unwrap();
    assert_eq!(
        c.linger().unwrap(),
        Some(Duration::from_secs(2)),
        "rounded up"
    );
    c.set_linger(Some(Duration::ZERO)).unwrap();
    assert_eq!(c.linger().unwrap(), Some(Duration::ZERO));
    drop(c);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0; 4];
    assert_eq!(
        (&s).read(&mut buf).unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );

    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_ttl(9).unwrap();
    assert_eq!(u.ttl().unwrap(), 9);
    u.set_broadcast(true).unwrap();
    assert!(u.broadcast().unwrap());
    u.close();
    assert_eq!(u.ttl().unwrap_err().kind(), ErrorKind::NotConnected);
}

/// The multicast options of CPython's test_socket.py (`IP_MULTICAST_LOOP`, `IP_MULTICAST_TTL`,
/// joining and leaving a group), and a datagram to a joined group looped back on 127.0.0.1 when
/// the host routes it (skipped, with a message, where the container has no multicast route).
#[test]
fn udp_multicast_options_and_membership() {
    let group = Ipv4Addr::new(239, 255, 43, 21);
    let r = UdpSocket::bind("0.0.0.0:0").unwrap();
    r.set_multicast_loop_v4(false).unwrap();
    assert!(!r.multicast_loop_v4().unwrap());
    r.set_multicast_loop_v4(true).unwrap();
    assert!(r.multicast_loop_v4().unwrap());
    r.set_multicast_ttl_v4(4).unwrap();
    assert_eq!(r.multicast_ttl_v4().unwrap(), 4);
    // Not a multicast address: a clear error, not a silent success.
    assert!(r
        .join_multicast_v4(&Ipv4Addr::new(127, 0, 0, 1), &Ipv4Addr::LOCALHOST)
        .is_err());
    match r.join_multicast_v4(&group, &Ipv4Addr::LOCALHOST) {
        Ok(()) => {
            // Leaving twice: the second says it is no member.
            r.leave_multicast_v4(&group, &Ipv4Addr::LOCALHOST).unwrap();
            assert!(r.leave_multicast_v4(&group, &Ipv4Addr::LOCALHOST).is_err());
        }
        Err(e) => eprintln!("skipping the IPv4 group join: no multicast on lo here ({e})"),
    }
    if let Ok(r6) = UdpSocket::bind("[::1]:0") {
        r6.set_multicast_loop_v6(false).unwrap();
        assert!(!r6.multicast_loop_v6().unwrap());
        r6.set_multicast_loop_v6(true).unwrap();
        assert!(r6.multicast_loop_v6().unwrap());
        let g6: std::net::Ipv6Addr = "ff02::1:ff00:4321".parse().unwrap();
        match r6.join_multicast_v6(&g6, 0) {
            Ok(()) => r6.leave_multicast_v6(&g6, 0).unwrap(),
            Err(e) => eprintln!("skipping the IPv6 group join ({e})"),
        }
    } else {
        eprintln!("skipping the IPv6 options: no ::1 here");
    }
}

/// test__socket.py `TestTCP.test_sendall_nonblocking` and
/// `test_connect_ex_nonblocking_bad_connection`'s premise: a socket in non-blocking mode answers
/// `WouldBlock` where it would park, still sends what fits at once, and goes back to parking
/// when switched back.
#[test]
fn nonblocking_mode_returns_would_block_instead_of_parking() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    assert!(l.is_nonblocking());
    assert_eq!(l.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    c.set_nonblocking(true).unwrap();
    let mut buf = [0; 8];
    assert_eq!(c.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    // A send that fits goes out at once.
    c.write_all(b"hi\n").unwrap();
    // The handshake is done, so the connection is queued: a nonblocking accept takes it at once.
    let (mut s, _) = l.accept().unwrap();
    let mut three = [0; 3];
    s.read_exact(&mut three).unwrap();
    assert_eq!(&three, b"hi\n");

    // Filling the send buffer: a nonblocking write stops with WouldBlock instead of parking.
    let chunk = vec![0u8; 1 << 16];
    let mut sent = 0usize;
    let err = loop {
        match c.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) => break e,
        }
        assert!(sent < 512 << 20, "the send buffer never filled");
    };
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    // Blocking mode again: the write parks until the reader drains.
    c.set_nonblocking(false).unwrap();
    let drain = gevent::spawn(move || {
        let mut total = 0usize;
        let mut b = vec![0u8; 1 << 16];
        while total < sent + chunk_len() {
            total += s.read(&mut b).unwrap();
        }
        total
    });
    c.write_all(&chunk).unwrap();
    assert_eq!(drain.get().unwrap(), sent + chunk_len());

    // UDP and the Unix types too.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_nonblocking(true).unwrap();
    assert_eq!(u.recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    let (a, _b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    assert_eq!(
        (&a).read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let clone = a.try_clone().unwrap();
    assert!(clone.is_nonblocking(), "a clone starts in the same mode");
    a.close();
    assert_eq!(
        a.set_nonblocking(false).unwrap_err().kind(),
        ErrorKind::NotConnected
    );
}

fn chunk_len() -> usize {
    1 << 16
}

/// Generic code bound by std's trait reaches the gevent constructors through `StdAddrs`, and the
/// address lists std has no impl for (`Vec`, arrays) work directly.
#[test]
fn any_std_to_socket_addrs() {
    fn connect_generic<A>(a: A) -> std::io::Result<TcpStream>
    where
        A: std::net::ToSocketAddrs + Clone + Send + 'static,
    {
        TcpStream::connect(StdAddrs(a))
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    connect_generic(addr).unwrap();
    connect_generic(("localhost".to_string(), addr.port())).unwrap_or_else(|e| {
        // localhost may resolve to ::1 first; one of its addresses is 127.0.0.1.
        panic!("localhost:{}: {e}", addr.port())
    });
    let refused: SocketAddr = ([127, 0, 0, 1], unused_port()).into();
    TcpStream::connect(vec![refused, addr]).unwrap();
    TcpStream::connect([refused, addr]).unwrap();
    let u = UdpSocket::bind(StdAddrs("127.0.0.1:0")).unwrap();
    assert!(u.local_addr().unwrap().ip().is_loopback());

    // A type of the user's own, implementing only std's trait: converted off the hub's thread
    // (test__socket_dns.py's premise: lookups never block the hub).
    #[derive(Clone)]
    struct Service {
        port: u16,
        seen_on: std::sync::Arc<std::sync::Mutex<Option<std::thread::ThreadId>>>,
    }
    impl std::net::ToSocketAddrs for Service {
        type Iter = std::vec::IntoIter<SocketAddr>;
        fn to_socket_addrs(&self) -> std::io::Result<Self::Iter> {
            *self.seen_on.lock().unwrap() = Some(std::thread::current().id());
            Ok(vec![SocketAddr::from(([127, 0, 0, 1], self.port))].into_iter())
        }
    }
    let svc = Service {
        port: addr.port(),
        seen_on: Default::default(),
    };
    TcpStream::connect(StdAddrs(svc.clone())).unwrap();
    let seen = svc.seen_on.lock().unwrap().expect("converted");
    assert_ne!(seen, std::thread::current().id(), "ran on the hub's thread");
}

/// test__socket.py `TestCreateConnection.test_refuses` and `test_refuses_from_port`, and
/// `create_connection`'s other promises: the next address after a refused one, the source address
/// (the server sees it as the peer), the timeout on the connection.
#[test]
fn create_connection_like_gevent() {
    let refused: SocketAddr = ([127, 0, 0, 1], unused_port()).into();
    let e = create_connection(refused, Some(Duration::from_secs(30)), None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    let source: SocketAddr = ([127, 0, 0, 1], unused_port()).into();
    let e = create_connection(refused, Some(Duration::from_secs(30)), Some(source)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");

    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let source: SocketAddr = ([127, 0, 0, 1], unused_port()).into();
    let c = create_connection(
        vec![refused, addr],
        Some(Duration::from_millis(700)),
        Some(source),
    )
    .unwrap();
    let (s, peer) = l.accept().unwrap();
    assert_eq!(peer, source);
    assert_eq!(c.local_addr().unwrap(), source);
    assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_millis(700)));
    assert_eq!(c.write_timeout().unwrap(), Some(Duration::from_millis(700)));
    // The timeout holds for reads: nothing comes, TimedOut.
    let mut buf = [0; 1];
    assert_eq!((&c).read(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
    drop(s);

    // A source of the other family fails that address (EAFNOSUPPORT / EINVAL), with no timeout set.
    let v6_source: SocketAddr = "[::1]:0".parse().unwrap();
    assert!(create_connection(addr, None, Some(v6_source)).is_err());
    let plain = create_connection(addr, None, None).unwrap();
    assert_eq!(plain.read_timeout().unwrap(), None);
    assert_eq!(
        create_connection(addr, Some(Duration::ZERO), None)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}
