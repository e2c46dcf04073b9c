//! The `http_server` example (`examples/http_server.rs`) driven through its fixed command line by
//! clients nobody here wrote (curl, Python's `http.client`, tungstenite's WebSocket client) and
//! by raw sockets: every refusal of `gevent::http`, keep-alive, pipelining, chunked bodies,
//! `Expect: 100-continue`, HEAD, the header timeout against a slowloris client, 1,000 concurrent
//! sleeping requests, and the server's descriptor count afterwards.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "support/example.rs"]
mod example;
use example::{collect, Example};

#[path = "support/http_client.rs"]
mod http_client;
use http_client::Client;

#[path = "ssl_common/mod.rs"]
mod ssl_common;
use ssl_common::Pki;

struct Server {
    ex: Example,
    port: u16,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let args: Vec<&str> = ["--port", "0"].iter().chain(extra).copied().collect();
        let mut ex = example::start("http_server", &args, Stdio::piped());
        // Nothing here reads what the server prints after its first line.
        drop(ex.child.stdout.take());
        let (stderr, _) = collect(ex.child.stderr.take().unwrap());
        Server {
            port: ex.port,
            ex,
            stderr,
        }
    }

    /// What the server wrote to stderr so far.
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.ex.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Waits (bounded) until the server's descriptor count is back to `want`.
    fn assert_fds_back_to(&self, want: usize) {
        let t = Instant::now();
        while self.fds() > want && t.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(self.fds(), want, "descriptors left open by the server");
    }

    /// The server's CPU time so far (user + system).
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.ex.child.id()))
            .unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
            + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
        Duration::from_millis(ticks * 10)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Client<TcpStream> {
    fn new(port: u16) -> Client<TcpStream> {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Client::from_halves(s.try_clone().unwrap(), s)
    }

    /// Whether the connection is still open: nothing arrives within 200 ms.
    fn still_open(&mut self) -> bool {
        self.w
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut b = [0u8; 1];
        let r = self.r.read(&mut b);
        self.w
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        matches!(r, Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut)
    }
}

/// Sends `req` on a new connection: the server answers `status` with `Connection: close`, then
/// closes.
fn refused(port: u16, req: impl AsRef<[u8]>, status: u16) {
    let req = req.as_ref();
    let mut c = Client::new(port);
    c.send(req);
    let r = c.response();
    let shown = String::from_utf8_lossy(req);
    assert_eq!(r.status, status, "for {shown:?}");
    assert!(r.closes(), "no Connection: close for {shown:?}");
    assert!(c.closed(), "connection left open for {shown:?}");
}

const H: &str = "Host: t\r\n";

#[test]
fn refusals_answer_and_close() {
    let srv = Server::start(&[]);
    let p = srv.port;
    // Framing conflicts: request smuggling vectors.
    for req in [
        format!("POST /echo HTTP/1.1\r\n{H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n{H}\r\n"),
        format!("POST /echo HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"),
        format!("POST /echo HTTP/1.1\r\n{H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
        format!("POST /echo HTTP/1.1\r\n{H}Content-Length: 5, 6\r\n\r\nhello!"),
    ] {
        refused(p, req, 400);
    }
    for cl in ["+5", "-5", "0x5", "5.0", "", "99999999999999999999"] {
        refused(
            p,
            format!("POST /echo HTTP/1.1\r\n{H}Content-Length: {cl}\r\n\r\nhello"),
            400,
        );
    }
    for te in [
        "gzip",
        "chunked, gzip",
        "chunked, chunked",
        "chunked;q=1",
        "identity",
    ] {
        refused(
            p,
            format!("POST /echo HTTP/1.1\r\n{H}Transfer-Encoding: {te}\r\n\r\n0\r\n\r\n"),
            400,
        );
    }
    refused(
        p,
        "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
    // Invalid chunk sizes and chunk framing.
    for body in [
        "zz\r\nhello\r\n0\r\n\r\n",
        "-1\r\nhello\r\n0\r\n\r\n",
        "0x5\r\nhello\r\n0\r\n\r\n",
        " 5\r\nhello\r\n0\r\n\r\n",
        "10000000000000005\r\nhello\r\n0\r\n\r\n",
        "5\r\nhelloXX0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n",
        "5 x\r\nhello\r\n0\r\n\r\n",
        "\r\nhello\r\n0\r\n\r\n",
    ] {
        refused(
            p,
            format!("POST /echo HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n{body}"),
            400,
        );
    }
    for req in [
        // Obsolete line folding, bare CR, whitespace in or after header names.
        format!("GET / HTTP/1.1\r\n{H}X-A: one\r\n two\r\n\r\n"),
        format!("GET / HTTP/1.1\r\n{H}X-A: one\r\n\ttwo\r\n\r\n"),
        format!("GET / HTTP/1.1\r\n{H}X-A: one\rtwo\r\n\r\n"),
        format!("GET /\r HTTP/1.1\r\n{H}\r\n"),
        format!("GET / HTTP/1.1\r\n{H}Bad Name: x\r\n\r\n"),
        format!("GET / HTTP/1.1\r\n{H}X-A : x\r\n\r\n"),
        format!("GET / HTTP/1.1\r\n X-A: x\r\n{H}\r\n"),
        // Host: required once in HTTP/1.1.
        "GET / HTTP/1.1\r\n\r\n".to_owned(),
        format!("GET / HTTP/1.1\r\n{H}{H}\r\n"),
        // Garbage and unknown versions.
        "HELLO\r\n\r\n".to_owned(),
        format!("GET / HTTP/2.0\r\n{H}\r\n"),
    ] {
        refused(p, req, 400);
    }
    // Sizes: request line over 8 KiB (414), header section over 64 KiB or 100 headers (431),
    // body over 16 MiB (413, before it is sent).
    let long = "a".repeat(9000);
    refused(p, format!("GET /{long} HTTP/1.1\r\n{H}\r\n"), 414);
    let big = "b".repeat(1000);
    let many: String = (0..70).map(|i| format!("X-{i}: {big}\r\n")).collect();
    refused(p, format!("GET / HTTP/1.1\r\n{H}{many}\r\n"), 431);
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    refused(p, format!("GET / HTTP/1.1\r\n{H}{many}\r\n"), 431);
    let many: String = (0..99).map(|i| format!("X-{i}: v\r\n")).collect();
    let mut c = Client::new(p);
    c.send(format!("GET / HTTP/1.1\r\n{H}{many}\r\n").as_bytes());
    assert_eq!(c.response().status, 200, "100 headers are allowed");
    refused(
        p,
        format!("POST /echo HTTP/1.1\r\n{H}Content-Length: 16777217\r\n\r\n").as_bytes(),
        413,
    );
    // A chunked body that grows past the limit.
    let mut c = Client::new(p);
    c.send(format!("POST /echo HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n").as_bytes());
    let chunk = vec![b'x'; 1 << 20];
    let mut status = 0;
    for _ in 0..17 {
        c.send(b"100000\r\n");
        if c.w.write_all(&chunk).is_err() || c.w.write_all(b"\r\n").is_err() {
            break;
        }
    }
    if let Ok(r) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.response())) {
        status = r.status;
    }
    assert_eq!(status, 413);
    // Identical repeated Content-Length values are one.
    let mut c = Client::new(p);
    c.send(
        format!("POST /echo HTTP/1.1\r\n{H}Content-Length: 5\r\nContent-Length: 5, 5\r\n\r\nhello")
            .as_bytes(),
    );
    let r = c.response();
    assert_eq!((r.status, &r.body[..]), (200, &b"hello"[..]));
    assert!(srv.stderr().is_empty(), "{}", srv.stderr());
}

#[test]
fn keep_alive_pipelining_head_and_continue() {
    let srv = Server::start(&[]);
    let p = srv.port;
    srv.assert_fds_back_to(srv.fds());
    let base = srv.fds();
    // Keep-alive (1.1 default): two requests, one connection, left open.
    let mut c = Client::new(p);
    for _ in 0..2 {
        c.send(format!("GET / HTTP/1.1\r\n{H}\r\n").as_bytes());
        let r = c.response();
        assert_eq!((r.status, &r.body[..]), (200, &b"Hello, World!"[..]));
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert!(r.header("date").is_some() && r.header("server").is_some());
    }
    assert!(c.still_open());
    // Pipelining: three requests in one write, answered in order (the first sleeps).
    c.send(
        format!(
            "GET /sleep?ms=50 HTTP/1.1\r\n{H}\r\nPOST /echo HTTP/1.1\r\n{H}Content-Length: 3\r\n\r\nabcGET /stream?n=2 HTTP/1.1\r\n{H}\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(c.response().body, b"slept");
    assert_eq!(c.response().body, b"abc");
    let r = c.response();
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body, b"chunk 0\nchunk 1\n");
    // HEAD: the headers of GET, no body.
    c.send(format!("HEAD / HTTP/1.1\r\n{H}\r\n").as_bytes());
    let r = c.response_to("HEAD");
    assert_eq!((r.status, r.header("content-length")), (200, Some("13")));
    // An unread body is drained: POST / is refused by the route without reading it.
    c.send(format!("POST / HTTP/1.1\r\n{H}Content-Length: 10\r\n\r\n0123456789").as_bytes());
    assert_eq!(c.response().status, 405);
    c.send(format!("GET / HTTP/1.1\r\n{H}\r\n").as_bytes());
    assert_eq!(c.response().status, 200);
    // Expect: 100-continue: the interim response comes when the handler reads.
    c.send(
        format!("POST /echo HTTP/1.1\r\n{H}Expect: 100-continue\r\nContent-Length: 4\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(c.response().status, 100);
    c.send(b"ping");
    assert_eq!(c.response().body, b"ping");
    // Chunked upload with extensions and trailers.
    c.send(
        format!("POST /echo HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(c.response().body, b"abcde");
    // Connection: close: answered, then closed.
    c.send(format!("GET / HTTP/1.1\r\n{H}Connection: close\r\n\r\n").as_bytes());
    let r = c.response();
    assert!(r.status == 200 && r.closes());
    assert!(c.closed());
    // A request pipelined after `Connection: close` is not answered, and the close does not
    // destroy the answer to the first.
    let mut c = Client::new(p);
    c.send(
        format!(
            "GET / HTTP/1.1\r\n{H}Connection: close\r\n\r\nGET /stream?n=1 HTTP/1.1\r\n{H}\r\n"
        )
        .as_bytes(),
    );
    let r = c.response();
    assert_eq!((r.status, &r.body[..]), (200, &b"Hello, World!"[..]));
    assert!(c.closed());
    // HTTP/1.0: closes by default, keep-alive on request.
    let mut c = Client::new(p);
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(c.response().status, 200);
    assert!(c.closed());
    let mut c = Client::new(p);
    for _ in 0..2 {
        c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = c.response();
        assert_eq!(r.header("connection"), Some("keep-alive"));
    }
    // HTTP/1.0 and a body of unknown length: close-delimited.
    c.send(b"GET /stream?n=2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.response();
    assert_eq!(
        (r.header("transfer-encoding"), &r.body[..]),
        (None, &b"chunk 0\nchunk 1\n"[..])
    );
    drop(c);
    // A handler that panics: 500, the connection closes, the server goes on.
    let mut c = Client::new(p);
    c.send(format!("GET /panic HTTP/1.1\r\n{H}\r\n").as_bytes());
    let r = c.response();
    assert!(r.status == 500 && r.closes());
    assert!(c.closed());
    let mut c = Client::new(p);
    c.send(format!("GET / HTTP/1.1\r\n{H}Connection: close\r\n\r\n").as_bytes());
    assert_eq!(c.response().status, 200);
    drop(c);
    let err = srv.stderr();
    assert!(
        err.contains("> http handler panicked: the /panic route panics"),
        "{err}"
    );
    srv.assert_fds_back_to(base);
}

#[test]
fn slowloris_gets_408_at_the_header_timeout() {
    let srv = Server::start(&["--header-timeout-ms", "300"]);
    srv.assert_fds_back_to(srv.fds());
    let base = srv.fds();
    // One header byte every 50 ms: never a complete head.
    let mut c = Client::new(srv.port);
    let t = Instant::now();
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ");
    c.w.set_nonblocking(true).unwrap();
    while t.elapsed() < Duration::from_secs(3) {
        if c.w.write_all(b"a").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        let mut b = [0u8; 1];
        if c.w.peek(&mut b).is_ok() {
            break;
        }
    }
    c.w.set_nonblocking(false).unwrap();
    let r = c.response();
    let took = t.elapsed();
    assert!(r.status == 408 && r.closes(), "{r:?}");
    assert!(c.closed());
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(2000),
        "{took:?}"
    );
    // A connection that sends nothing at all: the same.
    let mut c = Client::new(srv.port);
    let t = Instant::now();
    assert_eq!(c.response().status, 408);
    assert!(t.elapsed() >= Duration::from_millis(250));
    // A complete request within the timeout is served.
    let mut c = Client::new(srv.port);
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response().status, 200);
    drop(c);
    srv.assert_fds_back_to(base);
}

#[test]
fn a_thousand_concurrent_sleeps() {
    let srv = Server::start(&[]);
    srv.assert_fds_back_to(srv.fds());
    let base = srv.fds();
    let port = srv.port;
    let t = Instant::now();
    // One thread: open all 1,000 connections and send every request, then read every response.
    let mut clients: Vec<Client<TcpStream>> = (0..1000)
        .map(|_| {
            let mut c = Client::new(port);
            c.send(b"GET /sleep?ms=200 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            c
        })
        .collect();
    let sent = t.elapsed();
    for c in &mut clients {
        assert_eq!(c.response().body, b"slept");
    }
    drop(clients);
    eprintln!("all 1000 requests sent after {sent:?}");
    let took = t.elapsed();
    eprintln!("1000 x /sleep?ms=200: {took:?}, server CPU {:?}", srv.cpu());
    assert!(took < Duration::from_millis(1500), "{took:?}");
    srv.assert_fds_back_to(base);
}

#[test]
fn websocket_round_trip_with_tungstenite() {
    use gevent::http::websocket::tungstenite;
    let srv = Server::start(&[]);
    srv.assert_fds_back_to(srv.fds());
    let base = srv.fds();
    let stream = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (mut ws, resp) =
        tungstenite::client::client(format!("ws://127.0.0.1:{}/ws", srv.port), stream).unwrap();
    assert_eq!(resp.status(), 101);
    ws_upper_echo_then_close(&mut ws, &["hello", "gevent über alles", ""]);
    // Not a handshake: 400.
    let mut c = Client::new(srv.port);
    c.send(b"GET /ws HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response().status, 400);
    drop(c);
    drop(ws);
    srv.assert_fds_back_to(base);
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn curl_keep_alive_chunked_upload() {
    if !have("curl") {
        eprintln!("SKIPPED: curl is not installed (apt-get install -y curl)");
        return;
    }
    let srv = Server::start(&[]);
    srv.assert_fds_back_to(srv.fds());
    let base = srv.fds();
    // Two URLs, one connection.
    let out = Command::new("curl")
        .args(["-sv", "--max-time", "10"])
        .arg(srv.url("/"))
        .arg(srv.url("/stream?n=3"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Hello, World!chunk 0\nchunk 1\nchunk 2\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Re-using existing connection"), "{err}");
    // A chunked upload of 3 MB of bytes that are not text.
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut child = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "20",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            "@-",
        ])
        .arg(srv.url("/echo"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let d = data.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&d));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    assert!(out.stdout == data, "echoed {} bytes", out.stdout.len());
    // HEAD, and an HTTP/1.0 request.
    let out = Command::new("curl")
        .args(["-sI", "--http1.0", "--max-time", "10"])
        .arg(srv.url("/"))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains("content-length: 13"),
        "{head}"
    );
    srv.assert_fds_back_to(base);
}

const PY_CLIENT: &str = r#"
import http.client, ssl, sys
port = int(sys.argv[1])
if len(sys.argv) > 2:
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    c = http.client.HTTPSConnection('localhost', port, timeout=10, context=ctx)
else:
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
c.request('GET', '/'); r = c.getresponse()
assert (r.status, r.read()) == (200, b'Hello, World!'), r.status
sock = c.sock
c.request('POST', '/echo', body=b'x' * 100000); r = c.getresponse()
assert r.read() == b'x' * 100000
c.request('POST', '/echo', body=iter([b'one ', b'two ', b'three']), encode_chunked=True)
r = c.getresponse(); assert r.read() == b'one two three'
c.request('GET', '/stream?n=4'); r = c.getresponse()
assert r.getheader('Transfer-Encoding') == 'chunked'
assert r.read() == b''.join(b'chunk %d\n' % i for i in range(4))
c.request('HEAD', '/'); r = c.getresponse()
assert r.getheader('Content-Length') == '13' and r.read() == b''
c.request('GET', '/sleep?ms=10'); r = c.getresponse(); assert r.read() == b'slept'
c.request('GET', '/work?us=100'); r = c.getresponse(); assert r.read() == b'done'
assert c.sock is sock, 'keep-alive: one connection for all'
c.request('GET', '/panic'); r = c.getresponse(); assert r.status == 500; r.read()
c.request('GET', '/nowhere'); r = c.getresponse(); assert r.status == 404; r.read()
print('ok')
"#;

/// Runs [`PY_CLIENT`] against `srv` (over TLS when `ca` is given) and checks it passed.
fn run_python_client(srv: &Server, ca: Option<&std::path::Path>) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(PY_CLIENT)
        .arg(srv.port.to_string())
        .args(ca)
        .output()
        .expect("python3 is needed for this test");
    assert!(
        out.status.success() && out.stdout.starts_with(b"ok"),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn python_http_client() {
    let srv = Server::start(&[]);
    srv.assert_fds_back_to(srv.fds());
    let base = srv.fds();
    run_python_client(&srv, None);
    srv.assert_fds_back_to(base);
}

/// Python's `websocket-client` (PyPI; `.ci/tools` installs it) against `/ws`: three text messages
/// (one of 70,000 bytes, so fragmented by neither side but long-framed) come back upper-cased, and
/// the close handshake completes.
const PY_WS_CLIENT: &str = r#"
import sys, websocket
ws = websocket.create_connection("ws://127.0.0.1:%s/ws" % sys.argv[1], timeout=10)
for msg in ["hello", "gevent über alles", "x" * 70000]:
    ws.send(msg)
    got = ws.recv()
    assert got == msg.upper(), (msg[:20], got[:20])
ws.close()
print("ok")
"#;

#[test]
fn python_websocket_client() {
    if Command::new("python3")
        .args(["-c", "import websocket"])
        .status()
        .is_ok_and(|s| !s.success())
    {
        eprintln!("SKIPPED (python websocket): the websocket-client module is not installed");
        return;
    }
    let srv = Server::start(&[]);
    let base = srv.fds();
    let out = Command::new("python3")
        .arg("-c")
        .arg(PY_WS_CLIENT)
        .arg(srv.port.to_string())
        .output()
        .expect("python3");
    assert!(
        out.status.success() && out.stdout.starts_with(b"ok"),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    srv.assert_fds_back_to(base);
}

#[test]
fn command_line_errors_are_clear() {
    let out = Command::new(example::example_binary("http_server"))
        .args(["--port", "0", "--tls", "/nonexistent/cert.pem", "key.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--tls") && err.contains("/nonexistent/cert.pem"),
        "{err}"
    );
    let out = Command::new(example::example_binary("http_server"))
        .args(["--port", "0", "--tls", "cert.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls needs a value"));
    let out = Command::new(example::example_binary("http_server"))
        .args(["--port", "0", "--workers", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad --workers"));
    let out = Command::new(example::example_binary("http_server"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--port is required"));
    let out = Command::new(example::example_binary("http_server"))
        .args(["--port", "0", "--header-timeout-ms", "soon"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad --header-timeout-ms"));
}

/// `Pki`'s certificate and key as `--tls` arguments.
fn tls_args(pki: &Pki) -> [&str; 3] {
    [
        "--tls",
        pki.cert_file.to_str().unwrap(),
        pki.key_file.to_str().unwrap(),
    ]
}

#[test]
fn tls_curl_keep_alive_upload_and_a_plaintext_client() {
    if !have("curl") {
        eprintln!("SKIPPED: curl is not installed (apt-get install -y curl)");
        return;
    }
    let pki = Pki::new(&[]);
    let srv = Server::start(&tls_args(&pki));
    srv.assert_fds_back_to(srv.fds());
    let base = srv.fds();
    let https = |path: &str| format!("https://localhost:{}{path}", srv.port);
    let curl = |args: &[&str]| {
        Command::new("curl")
            .args(["-sv", "--max-time", "10", "--cacert"])
            .arg(&pki.ca_file)
            .args(["--resolve", &format!("localhost:{}:127.0.0.1", srv.port)])
            .args(args)
            .output()
            .unwrap()
    };
    // Two URLs, one TLS connection; ALPN settles on http/1.1.
    let out = curl(&[&https("/"), &https("/stream?n=3")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Hello, World!chunk 0\nchunk 1\nchunk 2\n"
    );
    assert!(err.contains("Re-using existing connection"), "{err}");
    assert!(err.contains("ALPN: server accepted http/1.1"), "{err}");
    // A chunked upload over TLS.
    let out = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "0123456789abcdef",
        &https("/echo"),
    ]);
    assert_eq!(out.stdout, b"0123456789abcdef");
    // A plaintext client on the TLS port: a clear 400, and the server goes on.
    let mut c = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut got = String::new();
    let _ = c.read_to_string(&mut got);
    assert!(
        got.starts_with("HTTP/1.0 400 Bad Request\r\n")
            && got.ends_with("Client sent an HTTP request to an HTTPS server.\n"),
        "{got:?}"
    );
    drop(c);
    let out = curl(&[&https("/")]);
    assert_eq!(out.stdout, b"Hello, World!");
    // A certificate the client does not trust: the handshake fails, the server goes on.
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .arg(https("/"))
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", srv.port)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(curl(&[&https("/")]).stdout, b"Hello, World!");
    srv.assert_fds_back_to(base);
    let log = srv.stderr();
    assert!(log.contains("not speaking TLS"), "{log}");
}

#[test]
fn tls_handshake_under_the_header_timeout() {
    let pki = Pki::new(&[]);
    let mut args = tls_args(&pki).to_vec();
    args.extend(["--header-timeout-ms", "300"]);
    let srv = Server::start(&args);
    srv.assert_fds_back_to(srv.fds());
    let base = srv.fds();
    // A silent client, and one that sends half a ClientHello record: both closed at the header
    // timeout, while a real client is served meanwhile.
    let t = Instant::now();
    let mut silent = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    let mut slow = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    slow.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    let tcp = gevent::net::TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    let mut ok = BufReader::new(pki.connector().connect("localhost", tcp).unwrap());
    ok.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = String::new();
    ok.read_to_string(&mut got).unwrap();
    assert!(got.ends_with("Hello, World!"), "{got}");
    for c in [&mut silent, &mut slow] {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest); // EOF or a reset, with no HTTP answer
        assert!(!rest.starts_with(b"HTTP/"), "{rest:?}");
    }
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
    drop((silent, slow, ok));
    srv.assert_fds_back_to(base);
}

#[test]
fn tls_python_http_client_one_and_two_workers() {
    let pki = Pki::new(&[]);
    let srv = Server::start(&tls_args(&pki));
    srv.assert_fds_back_to(srv.fds());
    let base = srv.fds();
    run_python_client(&srv, Some(&pki.ca_file));
    srv.assert_fds_back_to(base);
    drop(srv);
    let mut args = tls_args(&pki).to_vec();
    args.extend(["--workers", "2"]);
    let srv = Server::start(&args);
    for _ in 0..3 {
        run_python_client(&srv, Some(&pki.ca_file));
    }
}

#[test]
fn tls_openssl_s_client() {
    if !Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("SKIPPED: openssl is not installed (apt-get install -y openssl)");
        return;
    }
    let pki = Pki::new(&[]);
    let srv = Server::start(&tls_args(&pki));
    // `timeout` bounds the client, should the server never close.
    let mut child = Command::new("timeout")
        .args([
            "20",
            "openssl",
            "s_client",
            "-quiet",
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(&pki.ca_file)
        .args(["-servername", "localhost", "-alpn", "http/1.1", "-connect"])
        .arg(format!("127.0.0.1:{}", srv.port))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n\
              GET /stream?n=2 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\n") && text.contains("\r\n\r\nHello, World!"),
        "{text}\n{err}"
    );
    assert!(
        text.ends_with("chunk 0\n\r\n8\r\nchunk 1\n\r\n0\r\n\r\n"),
        "{text}"
    );
    assert!(err.contains("verify return:1"), "{err}");
}

#[test]
fn tls_websocket_wss_with_tungstenite() {
    use gevent::http::websocket::tungstenite;
    let pki = Pki::new(&[]);
    let srv = Server::start(&tls_args(&pki));
    let tcp = gevent::net::TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let tls = pki.connector().connect("localhost", tcp).unwrap();
    let (mut ws, resp) =
        tungstenite::client::client(format!("wss://localhost:{}/ws", srv.port), tls).unwrap();
    assert_eq!(resp.status(), 101);
    ws_upper_echo_then_close(&mut ws, &["hello over tls", "wss"]);
}

#[test]
fn two_workers_serve_every_route() {
    let srv = Server::start(&["--workers", "2"]);
    run_python_client(&srv, None);
    // WebSocket and concurrent sleeps on the workers.
    let stream = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (mut ws, _) = gevent::http::websocket::tungstenite::client::client(
        format!("ws://127.0.0.1:{}/ws", srv.port),
        stream,
    )
    .unwrap();
    ws.send(gevent::http::websocket::tungstenite::Message::text("two"))
        .unwrap();
    assert_eq!(ws.read().unwrap().into_text().unwrap().as_str(), "TWO");
    let t = Instant::now();
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let port = srv.port;
            std::thread::spawn(move || {
                let mut c = Client::new(port);
                c.send(b"GET /sleep?ms=200 HTTP/1.1\r\nHost: t\r\n\r\n");
                c.response().status
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), 200);
    }
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

/// Sends each of `msgs` as a text message on `ws` and expects it back upper-cased, then closes
/// the WebSocket and reads until the server has closed it too.
fn ws_upper_echo_then_close<S: Read + Write>(ws: &mut tungstenite::WebSocket<S>, msgs: &[&str]) {
    use gevent::http::websocket::tungstenite::{self, Message};
    for msg in msgs {
        ws.send(Message::text(*msg)).unwrap();
        match ws.read().unwrap() {
            Message::Text(t) => assert_eq!(t.as_str(), msg.to_uppercase()),
            other => panic!("unexpected {other:?}"),
        }
    }
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("closing: {e}"),
        }
    }
}
