//! No file descriptor leaks: a server session with well-behaved, idle, and killed connections, a
//! thread-pool lookup and UDP leave `/proc/self/fd` as it was. One test in this binary, so no other
//! test opens descriptors meanwhile.

use std::io::{Read, Write};
use std::time::Duration;

use gevent::net::{TcpStream, UdpSocket};
use gevent::server::{DatagramServer, StreamServer};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn server_sessions_leave_no_descriptors_behind() {
    gevent::sleep(Duration::ZERO); // the hub's own poller and waker
    let _ = gevent::net::resolve(("localhost", 1)); // the default pool's threads (no fds)
    let before = open_fds();
    for round in 0..2 {
        let server = StreamServer::bind("127.0.0.1:0", |mut conn, _| {
            let mut buf = [0u8; 256];
            while let Ok(n @ 1..) = conn.read(&mut buf) {
                if conn.write_all(&buf[..n].to_ascii_uppercase()).is_err() {
                    break;
                }
            }
        })
        .unwrap();
        server.start();
        let addr = server.local_addr();
        let clients: Vec<_> = (0..50)
            .map(|i| {
                gevent::spawn(move || {
                    let mut c = TcpStream::connect(addr).unwrap();
                    match i % 3 {
                        0 => {
                            c.write_all(b"abc").unwrap();
                            let mut b = [0u8; 3];
                            c.read_exact(&mut b).unwrap();
                            assert_eq!(&b, b"ABC");
                        }
                        1 => {}                                      // connects and leaves
                        _ => gevent::sleep(Duration::from_secs(30)), // killed below
                    }
                })
            })
            .collect();
        gevent::sleep(Duration::from_millis(100));
        gevent::killall(&clients);
        server.stop(Duration::from_millis(50 * round));
        let udp = DatagramServer::bind("127.0.0.1:0", |d, p, s| {
            let _ = s.send_to(&d, p);
        })
        .unwrap();
        udp.start();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.send_to(b"u", udp.local_addr()).unwrap();
        let mut b = [0u8; 1];
        c.recv_from(&mut b).unwrap();
        udp.stop(Duration::ZERO);
    }
    gevent::sleep(Duration::from_millis(10)); // deferred slot releases
    assert_eq!(open_fds(), before);
}
