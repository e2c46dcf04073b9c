//! `gevent::http::Server` in-process: graceful stop, a Timeout inside a handler, the access log,
//! trailers both ways, the configurable limits and timeouts, reader and streamed bodies, a handler
//! that panics mid-stream, and a connection taken over after `101 Switching Protocols`.
//! The clients are gevent sockets in the test's main greenlet.

use std::io::{Cursor, Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gevent::http::{
    header, Body, Config, HeaderValue, Request, Response, ResponseBody, Server, StatusCode,
};
use gevent::net::TcpStream;

#[path = "support/http_client.rs"]
mod http_client;
use http_client::Client;

impl Client<TcpStream> {
    fn new(addr: SocketAddr) -> Client<TcpStream> {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Client::from_halves(s.try_clone().unwrap(), s)
    }
}

fn query(req: &Request<Body>) -> u64 {
    req.uri()
        .query()
        .and_then(|q| q.split('=').nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn handler(mut req: Request<Body>) -> Response<ResponseBody> {
    match req.uri().path() {
        "/slow" => {
            gevent::sleep(Duration::from_millis(query(&req)));
            Response::new("ok".into())
        }
        "/timeout" => {
            let _t = gevent::Timeout::start_new(Duration::from_millis(50));
            gevent::sleep(Duration::from_secs(5));
            Response::new("unreachable".into())
        }
        "/echo" => {
            let mut body = Vec::new();
            let _ = req.body_mut().read_to_end(&mut body);
            Response::new(body.into())
        }
        "/ignore" => Response::new("ignored".into()),
        "/peer" => Response::new(format!("{:?}", req.body().peer_addr()).into()),
        "/trailers" => {
            let mut body = Vec::new();
            req.body_mut().read_to_end(&mut body).unwrap();
            let check = req
                .body()
                .trailers()
                .and_then(|t| t.get("x-check").cloned())
                .unwrap_or(HeaderValue::from_static("none"));
            Response::new(ResponseBody::stream(move |w| {
                w.write_all(&body)?;
                w.write_all(b" / ")?;
                w.write_all(check.as_bytes())?;
                w.trailer(
                    header::HeaderName::from_static("x-len"),
                    HeaderValue::from(body.len()),
                );
                Ok(())
            }))
        }
        "/sized" => Response::new(ResponseBody::sized_reader(Cursor::new(b"abcdef"), 6)),
        "/reader" => Response::new(ResponseBody::reader(Cursor::new(b"from a reader"))),
        "/short" => Response::new(ResponseBody::sized_reader(Cursor::new(b"abc"), 10)),
        "/stream-panic" => Response::new(ResponseBody::stream(|w| {
            w.write_all(&[b'x'; 40_000])?;
            w.flush()?;
            panic!("mid-stream");
        })),
        "/raw" => Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::UPGRADE, "reverse")
            .header(header::CONNECTION, "upgrade")
            .body(ResponseBody::upgrade(|mut conn| {
                let mut buf = [0u8; 5];
                while conn.read_exact(&mut buf).is_ok() {
                    buf.reverse();
                    if conn.write_all(&buf).is_err() {
                        break;
                    }
                }
            }))
            .unwrap(),
        _ => Response::new("hello".into()),
    }
}

fn start(config: Config) -> Server {
    let s = Server::bind("127.0.0.1:0", handler)
        .unwrap()
        .with_config(config);
    s.start();
    s
}

#[test]
fn graceful_stop_closes_idle_finishes_in_flight_then_kills() {
    let server = start(Config::default());
    let addr = server.local_addr();
    let mut idle = Client::new(addr);
    assert_eq!(idle.get("/").status, 200);
    let never_sent = Client::new(addr);
    let mut busy = Client::new(addr);
    busy.send(b"GET /slow?ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n");
    gevent::sleep(Duration::from_millis(50));
    assert_eq!(server.connections(), 3);
    let s = server.clone();
    let stopper = gevent::spawn(move || {
        let t = Instant::now();
        s.stop(Duration::from_secs(5));
        t.elapsed()
    });
    let t = Instant::now();
    assert!(
        idle.rest().is_empty(),
        "the idle connection is closed without a word"
    );
    assert!(
        t.elapsed() < Duration::from_millis(1000), // at once: long before the busy one ends
        "{:?}",
        t.elapsed()
    );
    let r = busy.response();
    assert_eq!((r.status, &r.body[..]), (200, &b"ok"[..]));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(busy.rest().is_empty());
    let took = stopper.get().unwrap();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(server.connections(), 0);
    drop(never_sent);
    assert!(TcpStream::connect(addr).is_err(), "no longer accepting");

    // In-flight past the timeout: killed, the connection closes with nothing sent.
    let server = start(Config::default());
    let mut busy = Client::new(server.local_addr());
    busy.send(b"GET /slow?ms=5000 HTTP/1.1\r\nHost: t\r\n\r\n");
    gevent::sleep(Duration::from_millis(50));
    let t = Instant::now();
    server.stop(Duration::from_millis(100));
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(busy.rest().is_empty());
    assert_eq!(server.connections(), 0);
}

#[test]
fn the_peer_address_comes_with_the_body() {
    let server = start(Config::default());
    let mut c = Client::new(server.local_addr());
    let want = format!("{:?}", Some(c.w.local_addr().unwrap()));
    assert_eq!(String::from_utf8(c.get("/peer").body).unwrap(), want);
    assert_eq!(Body::empty().peer_addr(), None);
    server.stop(Duration::from_secs(1));
}

#[test]
fn a_timeout_in_a_handler_closes_that_connection_only() {
    let server = start(Config::default());
    let mut other = Client::new(server.local_addr());
    assert_eq!(other.get("/").status, 200);
    let mut c = Client::new(server.local_addr());
    c.send(b"GET /timeout HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(c.rest().is_empty(), "nothing sent, connection closed");
    assert_eq!(other.get("/").status, 200, "the other connection goes on");
    assert_eq!(Client::new(server.local_addr()).get("/").status, 200);
    server.stop(Duration::from_secs(1));
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn access_log_in_combined_format() {
    let sink = Shared::default();
    let server = start(Config {
        access_log: Some(gevent::logging::LogWriter::new(sink.clone()).unwrap()),
        ..Config::default()
    });
    let mut c = Client::new(server.local_addr());
    c.send(
        b"GET /?q=1 HTTP/1.1\r\nHost: t\r\nReferer: http://ref/\r\nUser-Agent: agent \"1\"\r\n\r\n",
    );
    assert_eq!(c.response().status, 200);
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(c.response().body, b"abc");
    let t = Instant::now();
    let text = loop {
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        if text.lines().count() >= 2 || t.elapsed() > Duration::from_secs(3) {
            break text;
        }
        gevent::sleep(Duration::from_millis(10));
    };
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("127.0.0.1 - - ["), "{text}");
    assert!(
        lines[0].contains("] \"GET /?q=1 HTTP/1.1\" 200 5 \"http://ref/\" \"agent \\\"1\\\"\" "),
        "{text}"
    );
    assert!(
        lines[1].contains("\"POST /echo HTTP/1.1\" 200 3 \"-\" \"-\" "),
        "{text}"
    );
    server.stop(Duration::from_secs(1));
}

#[test]
fn trailers_in_and_out() {
    let server = start(Config::default());
    let mut c = Client::new(server.local_addr());
    c.send(b"POST /trailers HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\nX-Check: yes\r\n\r\n");
    let r = c.response();
    assert_eq!(r.body, b"body / yes");
    assert_eq!(r.trailers, vec![("x-len".to_owned(), "4".to_owned())]);
    server.stop(Duration::from_secs(1));
}

#[test]
fn configured_limits_and_timeouts() {
    let server = start(Config {
        max_body: 10,
        body_timeout: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(150),
        ..Config::default()
    });
    let addr = server.local_addr();
    let mut c = Client::new(addr);
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n");
    assert_eq!(c.response().status, 413);
    assert!(c.rest().is_empty());
    let mut c = Client::new(addr);
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n");
    assert_eq!(c.response().status, 413);
    // The body stalls: 408 after the body timeout.
    let mut c = Client::new(addr);
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    let t = Instant::now();
    let r = c.response();
    assert_eq!((r.status, r.header("connection")), (408, Some("close")));
    assert!(
        t.elapsed() >= Duration::from_millis(90),
        "{:?}",
        t.elapsed()
    );
    // Idle keep-alive: closed without a word after the idle timeout.
    let mut c = Client::new(addr);
    assert_eq!(c.get("/").status, 200);
    let t = Instant::now();
    assert!(c.rest().is_empty());
    let idle = t.elapsed();
    assert!(
        idle >= Duration::from_millis(140) && idle < Duration::from_secs(2),
        "{idle:?}"
    );
    // Expect: 100-continue and a handler that never reads: no 100, the connection closes after.
    let mut c = Client::new(addr);
    c.send(
        b"POST /ignore HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    let r = c.response();
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    // An unread body over the drain limit closes the connection after the response.
    let server2 = start(Config {
        drain_limit: 4,
        ..Config::default()
    });
    let mut c = Client::new(server2.local_addr());
    c.send(b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 8\r\n\r\n12345678");
    let r = c.response();
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    assert!(c.rest().is_empty());
    server.stop(Duration::from_secs(1));
    server2.stop(Duration::from_secs(1));
}

#[test]
fn reader_and_streamed_bodies() {
    let server = start(Config::default());
    let mut c = Client::new(server.local_addr());
    let r = c.get("/sized");
    assert_eq!(
        (r.header("content-length"), &r.body[..]),
        (Some("6"), &b"abcdef"[..])
    );
    let r = c.get("/reader");
    assert_eq!(
        (r.header("transfer-encoding"), &r.body[..]),
        (Some("chunked"), &b"from a reader"[..])
    );
    c.send(b"HEAD /reader HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.response_to("HEAD");
    assert_eq!(r.status, 200);
    assert_eq!(c.get("/").body, b"hello", "HEAD sent no body");
    // A reader shorter than its declared length, before anything was sent: 500.
    let r = c.get("/short");
    assert_eq!((r.status, r.header("connection")), (500, Some("close")));
    // A stream that panics after bytes went out: the connection just closes.
    let mut c = Client::new(server.local_addr());
    c.send(b"GET /stream-panic HTTP/1.1\r\nHost: t\r\n\r\n");
    let got = c.rest();
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(!got.ends_with(b"0\r\n\r\n") && !got.windows(3).any(|w| w == b"500"));
    server.stop(Duration::from_secs(1));
}

#[test]
fn upgrade_takes_over_the_connection() {
    let server = start(Config::default());
    let mut c = Client::new(server.local_addr());
    // The first bytes of the new protocol come in the same write as the request.
    c.send(b"GET /raw HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: reverse\r\n\r\nhello");
    let r = c.response();
    assert_eq!((r.status, r.header("upgrade")), (101, Some("reverse")));
    let mut got = [0u8; 5];
    c.r.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"olleh");
    c.send(b"abcde");
    c.r.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"edcba");
    drop(c);
    server.stop(Duration::from_secs(1));
}
