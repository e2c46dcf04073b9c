//! Blocking TLS clients nobody here wrote, unmodified, against the gevent TLS server after
//! `patch_all()`: ureq 3 (its `rustls` feature, on ring) from 20 greenlets at once, and a plain
//! `rustls::StreamOwned` over a `std::net::TcpStream`. Server and clients share one hub: if a client
//! blocked the thread, the server could not answer and the test would hang (each request is bounded
//! by a timeout).

mod ssl_common;

use std::io::{BufRead, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gevent::server::StreamServer;
use gevent::ssl::rustls;
use ssl_common::{fds_flat, serial, Pki};

const DELAY: Duration = Duration::from_millis(200);

/// Answers one HTTP request per connection after `DELAY`, then close_notify.
fn slow_https_server(pki: &Pki) -> StreamServer {
    let server = StreamServer::bind_tls("127.0.0.1:0", pki.acceptor(), |mut tls, _| {
        let mut line = String::new();
        loop {
            line.clear();
            match tls.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => {}
            }
        }
        gevent::sleep(DELAY);
        let _ = tls
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
        let _ = tls.shutdown();
    })
    .unwrap();
    server.start();
    server
}

#[test]
fn ureq_over_tls_from_greenlets_against_the_gevent_tls_server() {
    let _s = serial();
    gevent::monkey::patch_all();
    let pki = Pki::new(&[]);
    fds_flat(|| {
        let server = slow_https_server(&pki);
        let url = format!("https://127.0.0.1:{}/", server.local_addr().port());
        let ca = ureq::tls::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
                    .build(),
            )
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let get = move |agent: &ureq::Agent, url: &str| -> String {
            agent
                .get(url)
                .call()
                .unwrap()
                .body_mut()
                .read_to_string()
                .unwrap()
        };

        let t = Instant::now();
        let (a, u) = (agent.clone(), url.clone());
        let one = gevent::spawn(move || get(&a, &u));
        one.join();
        assert_eq!(one.take_value().unwrap(), "hello");
        let one = t.elapsed();

        let t = Instant::now();
        let gs: Vec<_> = (0..20)
            .map(|_| {
                let (a, u) = (agent.clone(), url.clone());
                gevent::spawn(move || get(&a, &u))
            })
            .collect();
        for g in &gs {
            g.join();
            assert_eq!(g.take_value().unwrap(), "hello");
        }
        let all = t.elapsed();
        eprintln!("ureq over TLS: one request {one:?}, 20 concurrent {all:?}");
        assert!(one >= DELAY);
        // One after another would be 20 x 200 ms = 4 s.
        assert!(
            all < DELAY * 10,
            "20 requests took {all:?}, one took {one:?}"
        );
        drop((agent, gs));
        server.stop(Duration::from_secs(1));
    });
}

#[test]
fn rustls_stream_over_std_tcp_against_the_gevent_tls_server() {
    let _s = serial();
    gevent::monkey::patch_all();
    let pki = Pki::new(&[]);
    fds_flat(|| {
        let server = slow_https_server(&pki);
        let addr = server.local_addr();
        // The connector's rustls config, used by rustls's own blocking stream.
        let config: Arc<rustls::ClientConfig> = pki.connector().config().clone();
        let client = gevent::spawn(move || {
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let conn = rustls::ClientConnection::new(config, name).unwrap();
            let tcp = std::net::TcpStream::connect(addr).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            tls.read_to_string(&mut out).unwrap();
            out
        });
        client.join();
        let out = client.take_value().unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\nhello"), "{out}");
        server.stop(Duration::from_secs(1));
    });
}
