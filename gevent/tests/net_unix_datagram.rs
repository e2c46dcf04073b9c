//! `gevent::net::UnixDatagram`: pairs and bound paths, a receiver parked while others run, senders
//! parked while the receiver's queue is full, close waking a waiter, timeouts, one waiter per side,
//! std conversions.

use std::time::{Duration, Instant};

use gevent::net::{ConcurrentObjectUseError, UnixDatagram};

fn temp_path(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("gevent-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn bound_sockets_exchange_datagrams_with_addresses() {
    let (pa, pb) = (temp_path("dgram-a"), temp_path("dgram-b"));
    let a = UnixDatagram::bind(&pa).unwrap();
    let b = UnixDatagram::bind(&pb).unwrap();
    assert_eq!(a.local_addr().unwrap().as_pathname(), Some(pa.as_path()));
    b.send_to(b"hello", &pa).unwrap();
    let mut buf = [0u8; 32];
    let (n, from) = a.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    assert_eq!(from.as_pathname(), Some(pb.as_path()));
    a.connect(&pb).unwrap();
    assert_eq!(a.peer_addr().unwrap().as_pathname(), Some(pb.as_path()));
    a.send(b"back").unwrap();
    assert_eq!(b.recv(&mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"back");
    std::fs::remove_file(&pa).unwrap();
    std::fs::remove_file(&pb).unwrap();
}

#[test]
fn a_receiver_parks_while_other_greenlets_run() {
    let (a, b) = UnixDatagram::pair().unwrap();
    let receiver = gevent::spawn(move || {
        let mut buf = [0u8; 16];
        let n = b.recv(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    // The receiver is parked; this greenlet keeps running.
    gevent::sleep(Duration::from_millis(20));
    assert!(!receiver.ready());
    a.send(b"late").unwrap();
    receiver.join();
    assert_eq!(receiver.value().unwrap(), b"late");
}

#[test]
fn senders_park_while_the_queue_is_full_and_every_datagram_arrives_in_order() {
    let (a, b) = UnixDatagram::pair().unwrap();
    const N: u32 = 2000;
    let sender = gevent::spawn(move || {
        for i in 0..N {
            let mut msg = vec![0u8; 4096];
            msg[..4].copy_from_slice(&i.to_le_bytes());
            assert_eq!(a.send(&msg).unwrap(), 4096);
        }
    });
    // Let the sender fill the queue and park.
    gevent::sleep(Duration::from_millis(20));
    assert!(
        !sender.ready(),
        "8 MB cannot fit in a datagram socket's queue"
    );
    let mut buf = vec![0u8; 8192];
    for i in 0..N {
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(n, 4096);
        assert_eq!(u32::from_le_bytes(buf[..4].try_into().unwrap()), i);
    }
    sender.join();
    assert!(sender.successful());
}

#[test]
fn close_wakes_a_waiting_receiver_with_not_connected() {
    let (_a, b) = UnixDatagram::pair().unwrap();
    let b = std::rc::Rc::new(b);
    let b2 = b.clone();
    let receiver = gevent::spawn(move || b2.recv(&mut [0u8; 8]).map_err(|e| e.kind()));
    gevent::sleep(Duration::from_millis(10));
    b.close();
    assert!(b.is_closed());
    receiver.join();
    assert_eq!(
        receiver.value().unwrap(),
        Err(std::io::ErrorKind::NotConnected)
    );
    assert_eq!(
        b.send(b"x").unwrap_err().kind(),
        std::io::ErrorKind::NotConnected
    );
}

#[test]
fn read_timeout_and_one_waiter_per_side() {
    let (_a, b) = UnixDatagram::pair().unwrap();
    b.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    assert_eq!(b.read_timeout().unwrap(), Some(Duration::from_millis(30)));
    let t = Instant::now();
    let e = b.recv(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    assert!(t.elapsed() >= Duration::from_millis(30));
    b.set_read_timeout(None).unwrap();
    assert!(b.set_read_timeout(Some(Duration::ZERO)).is_err());

    let b = std::rc::Rc::new(b);
    let b2 = b.clone();
    let first = gevent::spawn(move || b2.recv(&mut [0u8; 8]).map_err(|e| e.kind()));
    gevent::sleep(Duration::from_millis(5));
    let e = b.recv(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ResourceBusy);
    let inner = e.get_ref().unwrap();
    assert_eq!(
        inner.downcast_ref::<ConcurrentObjectUseError>(),
        Some(&ConcurrentObjectUseError { side: "reading" })
    );
    b.close();
    first.join();
}

#[test]
fn std_conversions_keep_the_socket() {
    let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
    let a = UnixDatagram::try_from(a).unwrap();
    let b = UnixDatagram::from_std(b).unwrap();
    a.send(b"one").unwrap();
    let b: std::os::unix::net::UnixDatagram = b.into();
    // Back in blocking mode.
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(&mut buf).unwrap(), 3);
    let unbound = UnixDatagram::unbound().unwrap();
    assert!(unbound.local_addr().unwrap().is_unnamed());
}
