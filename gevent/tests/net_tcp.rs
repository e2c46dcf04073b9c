//! `gevent::net` over loopback: TCP streams and listeners, UDP, Unix sockets; the cooperative
//! rules (timeouts by the hub, one waiter per side, close wakes waiters).

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::time::{Duration, Instant};

use gevent::net::{ConcurrentObjectUseError, TcpListener, TcpStream, UdpSocket, UnixStream};

fn listener() -> (TcpListener, std::net::SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

#[test]
fn echo_upper_roundtrip() {
    let (l, addr) = listener();
    let srv = gevent::spawn(move || {
        let (mut c, peer) = l.accept().unwrap();
        assert_eq!(c.peer_addr().unwrap(), peer);
        let mut buf = [0u8; 64];
        loop {
            let n = c.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            c.write_all(&buf[..n].to_ascii_uppercase()).unwrap();
        }
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    assert!(c.nodelay().unwrap());
    for word in ["hello", "gevent", "world"] {
        c.write_all(word.as_bytes()).unwrap();
        let mut got = vec![0; word.len()];
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, word.to_uppercase().as_bytes());
    }
    c.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    srv.join();
    assert!(srv.successful() && srv.exception().is_none());
}

#[test]
fn vectored_io_and_shared_reference() {
    let (l, addr) = listener();
    let srv = gevent::spawn(move || {
        let (c, _) = l.accept().unwrap();
        let mut a = [0u8; 3];
        let mut b = [0u8; 3];
        let mut got = 0;
        while got < 6 {
            let mut bufs = [
                IoSliceMut::new(&mut a[got.min(3)..]),
                IoSliceMut::new(&mut b),
            ];
            let n = (&c).read_vectored(&mut bufs).unwrap();
            assert!(n > 0);
            got += n;
            if got < 6 {
                break; // loopback delivers the 6 bytes at once in practice
            }
        }
        let n = (&c)
            .write_vectored(&[IoSlice::new(&b), IoSlice::new(&a)])
            .unwrap();
        assert_eq!(n, 6);
    });
    let c = TcpStream::connect(addr).unwrap();
    (&c).write_all(b"abcdef").unwrap();
    let mut out = [0u8; 6];
    (&c).read_exact(&mut out).unwrap();
    assert_eq!(&out, b"defabc");
    srv.join();
    assert!(srv.exception().is_none());
}

#[test]
fn connect_refused_and_timeout() {
    // A port that was just free: nothing listens there.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let e = TcpStream::connect(addr).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    let e = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn connect_by_host_name_resolves_off_the_hub() {
    let (l, addr) = listener();
    let ticks = Rc::new(std::cell::Cell::new(0));
    let t2 = ticks.clone();
    let ticker = gevent::spawn(move || {
        for _ in 0..3 {
            t2.set(t2.get() + 1);
            gevent::sleep(Duration::ZERO);
        }
    });
    let c = TcpStream::connect(("localhost", addr.port()));
    // localhost may resolve to ::1 first; the IPv4 address must then work.
    let c = c.unwrap();
    let (s, _) = l.accept().unwrap();
    assert_eq!(s.peer_addr().unwrap(), c.local_addr().unwrap());
    ticker.join();
    assert_eq!(ticks.get(), 3);
    assert!(gevent::net::resolve("no-such-host.invalid:80").is_err());
}

#[test]
fn read_timeout_is_kept_by_the_hub() {
    let (l, addr) = listener();
    let c = TcpStream::connect(addr).unwrap();
    let (_s, _) = l.accept().unwrap();
    assert!(c.set_read_timeout(Some(Duration::ZERO)).is_err());
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_millis(50)));
    let other = gevent::spawn(|| gevent::sleep(Duration::from_millis(10)));
    let t = Instant::now();
    let e = (&c).read(&mut [0u8; 4]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert!(
        other.ready(),
        "the hub ran the other greenlet during the wait"
    );
}

#[test]
fn two_readers_is_concurrent_object_use() {
    let (l, addr) = listener();
    let c = Rc::new(TcpStream::connect(addr).unwrap());
    let (s, _) = l.accept().unwrap();
    let c2 = c.clone();
    let first = gevent::spawn(move || {
        let mut b = [0u8; 1];
        (&*c2).read(&mut b).map(|n| b[..n].to_vec())
    });
    gevent::sleep(Duration::from_millis(5)); // `first` is parked in read
    let e = (&*c).read(&mut [0u8; 1]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ResourceBusy);
    let inner = e
        .get_ref()
        .unwrap()
        .downcast_ref::<ConcurrentObjectUseError>();
    assert_eq!(inner.unwrap().side, "reading");
    assert!(e.to_string().contains("ConcurrentObjectUseError"));
    (&s).write_all(b"x").unwrap();
    first.join();
    assert_eq!(first.take_value().unwrap().unwrap(), b"x");
    // The side is free again.
    (&s).write_all(b"y").unwrap();
    let mut b = [0u8; 1];
    (&*c).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"y");
}

#[test]
fn close_wakes_a_waiting_reader_with_an_error() {
    let (l, addr) = listener();
    let c = Rc::new(TcpStream::connect(addr).unwrap());
    let (_s, _) = l.accept().unwrap();
    let c2 = c.clone();
    let reader = gevent::spawn(move || (&*c2).read(&mut [0u8; 8]).map_err(|e| e.kind()));
    gevent::sleep(Duration::from_millis(5));
    assert!(!reader.ready());
    c.close();
    assert!(c.is_closed());
    reader.join();
    assert_eq!(
        reader.take_value().unwrap(),
        Err(std::io::ErrorKind::NotConnected)
    );
    assert_eq!(
        (&*c).write(b"x").unwrap_err().kind(),
        std::io::ErrorKind::NotConnected
    );
}

#[test]
fn close_wakes_a_waiting_accept() {
    let (l, _) = listener();
    let l = Rc::new(l);
    let l2 = l.clone();
    let acc = gevent::spawn(move || l2.accept().map(|_| ()).map_err(|e| e.kind()));
    gevent::sleep(Duration::from_millis(5));
    l.close();
    acc.join();
    assert_eq!(
        acc.take_value().unwrap(),
        Err(std::io::ErrorKind::NotConnected)
    );
}

#[test]
fn kill_during_read_leaves_the_socket_usable() {
    let (l, addr) = listener();
    let c = Rc::new(TcpStream::connect(addr).unwrap());
    let (s, _) = l.accept().unwrap();
    let c2 = c.clone();
    let g = gevent::spawn(move || (&*c2).read(&mut [0u8; 8]).ok());
    gevent::sleep(Duration::from_millis(5));
    g.kill();
    (&s).write_all(b"ok").unwrap();
    let mut b = [0u8; 2];
    (&*c).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ok");
    let r = gevent::with_timeout(Duration::from_millis(20), || (&*c).read(&mut [0u8; 1]));
    assert!(r.is_err(), "Timeout unwound the read");
    (&s).write_all(b"!").unwrap();
    (&*c).read_exact(&mut b[..1]).unwrap();
    assert_eq!(b[0], b'!');
}

#[test]
fn two_greenlets_doing_blocking_style_tcp_overlap() {
    let (l, addr) = listener();
    // The server answers each connection after 200 ms.
    let srv = gevent::spawn(move || {
        for _ in 0..2 {
            let (c, _) = l.accept().unwrap();
            gevent::spawn(move || {
                let mut b = [0u8; 4];
                (&c).read_exact(&mut b).unwrap();
                gevent::sleep(Duration::from_millis(200));
                (&c).write_all(&b.to_ascii_uppercase()).unwrap();
            });
        }
    });
    let t = Instant::now();
    let clients: Vec<_> = ["ping", "pong"]
        .into_iter()
        .map(|w| {
            gevent::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                c.write_all(w.as_bytes()).unwrap();
                let mut b = [0u8; 4];
                c.read_exact(&mut b).unwrap();
                String::from_utf8(b.to_vec()).unwrap()
            })
        })
        .collect();
    gevent::joinall(&clients);
    let el = t.elapsed();
    assert_eq!(clients[0].value().as_deref(), Some("PING"));
    assert_eq!(clients[1].value().as_deref(), Some("PONG"));
    assert!(el >= Duration::from_millis(200));
    assert!(el < Duration::from_millis(390), "not overlapped: {el:?}");
    srv.join();
}

#[test]
fn std_conversions_round_trip() {
    let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_l.local_addr().unwrap();
    let l = TcpListener::try_from(std_l).unwrap();
    let std_c = std::net::TcpStream::connect(addr).unwrap();
    let c = TcpStream::try_from(std_c).unwrap();
    let (s, _) = l.accept().unwrap();
    (&s).write_all(b"z").unwrap();
    let mut std_c: std::net::TcpStream = c.into();
    let mut b = [0u8; 1];
    std_c.read_exact(&mut b).unwrap(); // blocking mode again
    assert_eq!(&b, b"z");
    let back: std::net::TcpListener = l.into();
    assert_eq!(back.local_addr().unwrap(), addr);
}

#[test]
fn big_transfer_parks_on_write() {
    let (l, addr) = listener();
    const N: usize = 8 << 20;
    let srv = gevent::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let data: Vec<u8> = (0..N).map(|i| (i % 251) as u8).collect();
        c.write_all(&data).unwrap();
    });
    let mut c = TcpStream::connect(addr).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), N);
    assert!(got.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    srv.join();
}

#[test]
fn udp_round_trip_and_timeout() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let aa = a.local_addr().unwrap();
    let a = Rc::new(a);
    let a2 = a.clone();
    let echo = gevent::spawn(move || {
        let mut buf = [0u8; 64];
        let (n, from) = a2.recv_from(&mut buf).unwrap();
        a2.send_to(&buf[..n].to_ascii_uppercase(), from).unwrap();
    });
    b.connect(aa).unwrap();
    b.send(b"dgram").unwrap();
    let mut buf = [0u8; 64];
    let n = b.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"DGRAM");
    echo.join();
    b.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    assert_eq!(
        b.recv(&mut buf).unwrap_err().kind(),
        std::io::ErrorKind::TimedOut
    );
}

#[test]
fn unix_pair_and_listener() {
    let (x, y) = UnixStream::pair().unwrap();
    let g = gevent::spawn(move || {
        let mut b = [0u8; 3];
        (&y).read_exact(&mut b).unwrap();
        (&y).write_all(&b.to_ascii_uppercase()).unwrap();
    });
    (&x).write_all(b"abc").unwrap();
    let mut b = [0u8; 3];
    (&x).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ABC");
    g.join();

    let path = std::env::temp_dir().join(format!("gevent-net-test-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let l = gevent::net::UnixListener::bind(&path).unwrap();
    let p2 = path.clone();
    let cl = gevent::spawn(move || {
        let mut c = UnixStream::connect(&p2).unwrap();
        c.write_all(b"unix").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        s
    });
    let (mut s, _) = l.accept().unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    s.write_all(&got.to_ascii_uppercase()).unwrap();
    drop(s);
    cl.join();
    assert_eq!(cl.value().as_deref(), Some("UNIX"));
    std::fs::remove_file(&path).unwrap();
}

/// After a short read the next read parks before its syscall (the queue was drained): data sent
/// after it, while the reading greenlet still held the thread (no hub turn in between) or while it
/// was parked, is read; with nothing sent, the read timeout fires.
#[test]
fn short_read_then_more_data_is_never_missed() {
    let (l, addr) = listener();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<u8>();
    let client = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.write_all(b"first").unwrap();
        while let Ok(b) = go_rx.recv() {
            s.write_all(&[b; 3]).unwrap();
        }
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        rest
    });
    let (c, _) = l.accept().unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    let mut got = (&c).read(&mut buf).unwrap();
    while got < 5 {
        got += (&c).read(&mut buf[got..]).unwrap();
    }
    assert_eq!(&buf[..5], b"first");
    for i in 0..20u8 {
        go_tx.send(i).unwrap();
        if i % 2 == 0 {
            // The data arrives while this greenlet keeps the thread: its edge waits in the poller.
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut got = 0;
        while got < 3 {
            got += (&c).read(&mut buf[got..]).unwrap();
        }
        assert_eq!(&buf[..3], &[i; 3]);
    }
    // Nothing more comes: the read after a short one waits for its timeout.
    c.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    let e = (&c).read(&mut buf).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    drop(go_tx);
    (&c).write_all(b"bye").unwrap();
    drop(c);
    assert_eq!(client.join().unwrap(), b"bye");
}

/// Data and EOF that arrive together raise one edge; after the short read that takes the data, the
/// next read must see the EOF at once, not park for an edge that never comes (TCP and Unix).
#[test]
fn short_read_then_eof_that_came_with_the_data() {
    let (l, addr) = listener();
    let mut c = TcpStream::connect(addr).unwrap();
    let (s, _) = l.accept().unwrap();
    c.write_all(b"abc").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    // Let the hub take the edge while nobody waits on the socket.
    gevent::sleep(Duration::from_millis(20));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!((&s).read(&mut buf).unwrap(), 3);
    assert_eq!((&s).read(&mut buf).unwrap(), 0);

    let (x, y) = UnixStream::pair().unwrap();
    (&x).write_all(b"abc").unwrap();
    x.shutdown(Shutdown::Write).unwrap();
    gevent::sleep(Duration::from_millis(20));
    y.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!((&y).read(&mut buf).unwrap(), 3);
    assert_eq!((&y).read(&mut buf).unwrap(), 0);
}

/// A peek that parks after a short read consumes the edge; the read after it must not park on the
/// short read's hint (the data is there and no new edge comes).
#[test]
fn short_read_then_parked_peek_then_read() {
    let (l, addr) = listener();
    let mut c = TcpStream::connect(addr).unwrap();
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"ab").unwrap();
    let mut buf = [0u8; 64];
    let mut got = 0;
    while got < 2 {
        got += (&s).read(&mut buf[got..]).unwrap();
    }
    let writer = gevent::spawn(move || {
        gevent::sleep(Duration::from_millis(20));
        c.write_all(b"cd").unwrap();
        c
    });
    let n = s.peek(&mut buf).unwrap();
    assert!(n > 0 && buf[..n] == b"cd"[..n]);
    let t = Instant::now();
    let mut got = 0;
    while got < 2 {
        got += (&s).read(&mut buf[got..]).unwrap();
    }
    assert_eq!(&buf[..2], b"cd");
    assert!(t.elapsed() < Duration::from_secs(2));
    writer.join();
}

/// Vectored reads and writes with more buffers than one system call takes (std passes the first
/// UIO_MAXIOV): the first transfer is full, not short, so nothing waits for an edge that the
/// queued data will not raise.
#[test]
fn vectored_io_past_uio_maxiov() {
    let (l, addr) = listener();
    let c = TcpStream::connect(addr).unwrap();
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (&c).write_all(&[7u8; 3000]).unwrap();
    gevent::sleep(Duration::from_millis(20));
    let mut one = vec![[0u8; 1]; 2000];
    let mut got = 0;
    while got < 3000 {
        let mut bufs: Vec<IoSliceMut<'_>> = one.iter_mut().map(|b| IoSliceMut::new(b)).collect();
        got += (&s).read_vectored(&mut bufs).unwrap();
    }
    assert_eq!(got, 3000);
    let bytes = vec![[9u8; 1]; 2000];
    let bufs: Vec<IoSlice<'_>> = bytes.iter().map(|b| IoSlice::new(b)).collect();
    let n = (&s).write_vectored(&bufs).unwrap();
    assert_eq!(n, 1024);
    let n2 = (&s).write_vectored(&bufs[n..]).unwrap();
    assert_eq!(n2, 976);
}
