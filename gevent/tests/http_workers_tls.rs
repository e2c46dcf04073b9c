//! `gevent::http::Server` on several hubs (`Server::bind_workers`: both hubs serve, graceful stop
//! across them) and over TLS (`Server::bind_tls`: keep-alive reuse, a plaintext client refused).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

use gevent::http::{Body, Request, Response, ResponseBody, Server};

#[path = "ssl_common/mod.rs"]
mod ssl_common;
use ssl_common::Pki;

/// `/hub`: the index of the hub serving the request; `/slow`: 800 ms, then `ok`; else `hi`.
fn handler(req: Request<Body>) -> Response<ResponseBody> {
    match req.uri().path() {
        "/hub" => {
            let i = gevent::hubs::current_index().expect("served on a hub of the group");
            Response::new(ResponseBody::from(i.to_string()))
        }
        "/slow" => {
            gevent::sleep(Duration::from_millis(800));
            Response::new(ResponseBody::from("ok"))
        }
        _ => Response::new(ResponseBody::from("hi")),
    }
}

/// One response's status line, headers (lower-cased) and Content-Length body.
fn response(r: &mut impl BufRead) -> (String, Vec<String>, String) {
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let mut headers = Vec::new();
    let mut len = 0;
    loop {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        let l = l.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length: ") {
            len = v.parse().unwrap();
        }
        headers.push(l);
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (
        status.trim_end().to_owned(),
        headers,
        String::from_utf8(body).unwrap(),
    )
}

fn connect(addr: std::net::SocketAddr) -> BufReader<std::net::TcpStream> {
    let c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    BufReader::new(c)
}

fn get(c: &mut BufReader<std::net::TcpStream>, path: &str) -> (String, Vec<String>, String) {
    write!(c.get_mut(), "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    response(c)
}

#[test]
fn two_workers_both_hubs_serve_then_stop_gracefully() {
    let servers = Server::bind_workers("127.0.0.1:0", 2, handler).unwrap();
    assert_eq!(servers.workers(), 2);
    let addr = servers.local_addr();
    // The kernel spreads connections by a hash of their addresses: new connections (new source
    // ports) reach both hubs soon.
    let mut seen = HashSet::new();
    let mut kept = Vec::new();
    for _ in 0..200 {
        let mut c = connect(addr);
        let (status, _, body) = get(&mut c, "/hub");
        assert_eq!(status, "HTTP/1.1 200 OK");
        seen.insert(body);
        kept.push(c);
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(
        seen,
        HashSet::from(["0".to_owned(), "1".to_owned()]),
        "both hubs serve"
    );
    // Graceful stop across both: idle keep-alive connections close at once, an in-flight request
    // finishes (with `Connection: close`).
    let mut busy = connect(addr);
    write!(busy.get_mut(), "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100)); // let the request reach its handler
    let stopper = std::thread::spawn(move || {
        let t = Instant::now();
        let report = servers.stop(Duration::from_secs(5));
        (t.elapsed(), report)
    });
    let t = Instant::now();
    for c in &mut kept {
        let mut rest = Vec::new();
        assert_eq!(
            c.read_to_end(&mut rest).unwrap(),
            0,
            "idle: closed silently"
        );
    }
    assert!(
        t.elapsed() < Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );
    let (status, headers, body) = response(&mut busy);
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "ok"));
    assert!(
        headers.contains(&"connection: close".to_owned()),
        "{headers:?}"
    );
    let (took, report) = stopper.join().unwrap();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(report.total_alive(), 0, "{report:?}");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "no longer accepting"
    );
}

#[test]
fn bind_workers_refuses_zero_workers() {
    let e = Server::bind_workers("127.0.0.1:0", 0, handler).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn tls_keep_alive_and_a_plaintext_client() {
    let pki = Pki::new(&[]);
    let acceptor = pki.acceptor().with_alpn(&[b"http/1.1"]);
    let server = Server::bind_tls("127.0.0.1:0", acceptor, handler).unwrap();
    server.start();
    let addr = server.local_addr();
    let tcp = gevent::net::TcpStream::connect(addr).unwrap();
    let tls = pki
        .connector()
        .with_alpn(&[b"http/1.1"])
        .connect("localhost", tcp)
        .unwrap();
    assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut c = BufReader::new(tls);
    for path in ["/", "/hub-less", "/"] {
        write!(c.get_mut(), "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let (status, _, body) = response(&mut c);
        assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "hi"));
    }
    assert_eq!(
        server.connections(),
        1,
        "one connection for the three requests"
    );
    // `Connection: close`: the server ends with close_notify, read as a clean EOF.
    write!(
        c.get_mut(),
        "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let (_, headers, _) = response(&mut c);
    assert!(headers.contains(&"connection: close".to_owned()));
    let mut rest = Vec::new();
    assert_eq!(c.read_to_end(&mut rest).unwrap(), 0);
    // Plaintext on the TLS port: a clear 400, and the server goes on.
    let mut p = gevent::net::TcpStream::connect(addr).unwrap();
    p.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut got = String::new();
    let _ = p.read_to_string(&mut got);
    assert!(
        got.contains("400 Bad Request") && got.contains("HTTP request to an HTTPS server"),
        "{got:?}"
    );
    let tcp = gevent::net::TcpStream::connect(addr).unwrap();
    let mut c = BufReader::new(pki.connector().connect("localhost", tcp).unwrap());
    write!(c.get_mut(), "GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(response(&mut c).2, "hi");
    drop(c);
    server.stop(Duration::from_secs(1));
    assert_eq!(server.connections(), 0);
}
