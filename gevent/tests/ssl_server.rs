//! `StreamServer` serving TLS (`StreamServer::bind_tls`, PEM files from rcgen): handshakes run in the
//! connections' greenlets, so a silent or plaintext client stalls nobody; 100 TLS connections are
//! served at once; fds stay flat.

mod ssl_common;

use std::cell::Cell;
use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use gevent::event::Event;
use gevent::net::TcpStream;
use gevent::server::StreamServer;
use gevent::ssl::{TlsConnector, TlsStream};
use ssl_common::{fds_flat, serial, Pki};

/// Reads one line, answers it upper-cased, sends close_notify.
fn upper_line(mut tls: TlsStream, _peer: SocketAddr) {
    let mut line = String::new();
    if tls.read_line(&mut line).is_ok() {
        let _ = tls.write_all(line.to_uppercase().as_bytes());
        let _ = tls.shutdown();
    }
}

fn ask(connector: &TlsConnector, addr: SocketAddr, line: &str) -> io::Result<String> {
    let mut tls = connector.connect("localhost", TcpStream::connect(addr)?)?;
    tls.write_all(line.as_bytes())?;
    let mut out = String::new();
    tls.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn stream_server_serves_tls_from_pem_files() {
    let _s = serial();
    let pki = Pki::new(&[]);
    fds_flat(|| {
        let acceptor = pki.acceptor().with_alpn(&[b"x-upper"]);
        let seen = Rc::new(Cell::new(0));
        let s = seen.clone();
        let server = StreamServer::bind_tls("127.0.0.1:0", acceptor, move |tls, peer| {
            // The handshake is done before the handler runs.
            assert!(!tls.is_handshaking());
            assert_eq!(tls.server_name(), Some("localhost"));
            assert_eq!(tls.alpn_protocol(), Some(&b"x-upper"[..]));
            assert_eq!(tls.peer_addr().unwrap(), peer);
            s.set(s.get() + 1);
            upper_line(tls, peer);
        })
        .unwrap();
        server.start();
        let connector = pki.connector().with_alpn(&[b"x-upper"]);
        for i in 0..3 {
            let got = ask(&connector, server.local_addr(), &format!("hello {i}\n")).unwrap();
            assert_eq!(got, format!("HELLO {i}\n"));
        }
        assert_eq!(seen.get(), 3);
        server.stop(Duration::from_secs(1));
    });
}

#[test]
fn a_silent_client_stalls_nobody_and_is_dropped_at_the_handshake_timeout() {
    let _s = serial();
    let pki = Pki::new(&[]);
    fds_flat(|| {
        let timeout = Duration::from_millis(1500);
        let acceptor = pki.acceptor().with_handshake_timeout(Some(timeout));
        let server = StreamServer::bind_tls("127.0.0.1:0", acceptor, upper_line).unwrap();
        server.start();
        let start = Instant::now();
        let mut silent = TcpStream::connect(server.local_addr()).unwrap();
        // Served while the silent client's handshake is still pending.
        let got = ask(&pki.connector(), server.local_addr(), "next\n").unwrap();
        assert_eq!(got, "NEXT\n");
        assert!(start.elapsed() < timeout, "{:?}", start.elapsed());
        assert_eq!(
            server.connections(),
            1,
            "the silent client's greenlet waits"
        );
        // Then the server gives up on it and closes the connection.
        let mut rest = Vec::new();
        silent.read_to_end(&mut rest).unwrap();
        let took = start.elapsed();
        assert!(rest.is_empty());
        assert!(took >= timeout && took < timeout * 3, "{took:?}");
        server.stop(Duration::from_secs(1));
        assert_eq!(server.connections(), 0);
    });
}

#[test]
fn stop_kills_a_handshake_in_progress() {
    let _s = serial();
    let pki = Pki::new(&[]);
    fds_flat(|| {
        let server = StreamServer::bind_tls("127.0.0.1:0", pki.acceptor(), upper_line).unwrap();
        server.start();
        let mut silent = TcpStream::connect(server.local_addr()).unwrap();
        for _ in 0..1000 {
            if server.connections() > 0 {
                break;
            }
            gevent::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            server.connections(),
            1,
            "the handshake greenlet never started"
        );
        let start = Instant::now();
        server.stop(Duration::from_millis(50));
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(server.connections(), 0);
        let mut rest = Vec::new();
        silent.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    });
}

#[test]
fn a_plaintext_client_gets_a_400_and_the_server_goes_on() {
    let _s = serial();
    let pki = Pki::new(&[]);
    fds_flat(|| {
        let server = StreamServer::bind_tls("127.0.0.1:0", pki.acceptor(), upper_line).unwrap();
        server.start();
        for _ in 0..2 {
            let mut plain = TcpStream::connect(server.local_addr()).unwrap();
            plain
                .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            let mut answer = String::new();
            plain.read_to_string(&mut answer).unwrap();
            assert!(
                answer.starts_with("HTTP/1.0 400 Bad Request\r\n"),
                "{answer}"
            );
            let got = ask(&pki.connector(), server.local_addr(), "still here\n").unwrap();
            assert_eq!(got, "STILL HERE\n");
        }
        server.stop(Duration::from_secs(1));
    });
}

#[test]
fn hundred_concurrent_tls_connections_are_served_at_once() {
    let _s = serial();
    let pki = Pki::new(&[]);
    const N: usize = 100;
    fds_flat(|| {
        // Every handler waits until all N are inside a handler at the same time: if the server
        // served them one by one, the first would time out.
        let inside = Rc::new(Cell::new(0));
        let all_in = Event::new();
        let (i, a) = (inside.clone(), all_in.clone());
        let server = StreamServer::bind_tls("127.0.0.1:0", pki.acceptor(), move |tls, peer| {
            i.set(i.get() + 1);
            if i.get() == N {
                a.set();
            }
            assert!(
                a.wait_timeout(Duration::from_secs(20)),
                "not all {N} at once"
            );
            gevent::sleep(Duration::from_millis(200));
            upper_line(tls, peer);
        })
        .unwrap();
        server.start();
        let addr = server.local_addr();
        let connector = pki.connector();
        let start = Instant::now();
        let clients: Vec<_> = (0..N)
            .map(|k| {
                let c = connector.clone();
                gevent::spawn(move || ask(&c, addr, &format!("client {k}\n")).unwrap())
            })
            .collect();
        for (k, c) in clients.iter().enumerate() {
            c.join();
            assert_eq!(c.take_value().unwrap(), format!("CLIENT {k}\n"));
        }
        let took = start.elapsed();
        eprintln!("{N} TLS connections with a 200 ms handler: {took:?}");
        assert_eq!(inside.get(), N);
        // One after another would take N x 200 ms = 20 s.
        assert!(took < Duration::from_secs(10), "{took:?}");
        server.stop(Duration::from_secs(1));
    });
}
