//! `monkey::patch_socket`: a plain `std::net` server and std clients, written without any gevent
//! type, run concurrently in greenlets on one thread after `patch_all()`. Scenarios after gevent's
//! src/gevent/tests/test__socket.py (patched blocking sockets in greenlets) and the seed's socket
//! server example.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn echo(mut conn: TcpStream) {
    let mut buf = [0u8; 512];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

#[test]
fn std_net_echo_server_and_clients_in_one_thread() {
    gevent::monkey::patch_all();
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    const CLIENTS: usize = 100;
    let acceptor = gevent::spawn(move || {
        for _ in 0..CLIENTS {
            let (c, _) = server.accept().unwrap();
            gevent::spawn_raw(move || echo(c));
        }
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            gevent::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                let msg = format!("hello from client {i}");
                let mut back = vec![0u8; msg.len()];
                for _ in 0..3 {
                    s.write_all(msg.as_bytes()).unwrap();
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg.as_bytes());
                    // A std sleep in the middle: every other client keeps going meanwhile.
                    std::thread::sleep(Duration::from_millis(20));
                }
                i
            })
        })
        .collect();
    let t = Instant::now();
    gevent::joinall(&clients);
    acceptor.join();
    for (i, c) in clients.iter().enumerate() {
        assert_eq!(c.get(), Ok(i));
    }
    // 100 clients x 3 x 20 ms sleeps would take 6 s one after another.
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[test]
fn so_rcvtimeo_is_honoured() {
    gevent::monkey::patch_all();
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let g = gevent::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut b = [0u8; 4];
        let t = Instant::now();
        let e = s.read(&mut b).unwrap_err();
        (e.kind(), t.elapsed())
    });
    let (kind, elapsed) = g.get().unwrap();
    drop(server);
    assert_eq!(kind, std::io::ErrorKind::WouldBlock);
    assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
}

#[test]
fn outside_greenlets_nothing_changes() {
    gevent::monkey::patch_all();
    // Another thread has no hub: plain blocking std networking works there as always.
    std::thread::spawn(|| {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (c, _) = server.accept().unwrap();
            echo(c);
        });
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ping");
        drop(s);
        t.join().unwrap();
    })
    .join()
    .unwrap();
}
