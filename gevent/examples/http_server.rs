//! An HTTP/1.1 server on `gevent::http`: a greenlet per connection, blocking handlers.
//!
//! ```text
//! cargo run --release -p gevent --example http_server -- --port 8080
//!     [--tls CERT.pem KEY.pem] [--header-timeout-ms MS] [--workers N]
//! ```
//! Listens on 127.0.0.1:PORT (0: any free port) and prints `listening on 127.0.0.1:PORT` once
//! ready. Routes:
//! - `GET /` -> 200 `text/plain` `Hello, World!`
//! - `POST /echo` -> 200 with the request body (Content-Length or chunked, up to 16 MiB)
//! - `GET /stream?n=K` -> 200 chunked, K chunks `chunk <i>\n`
//! - `GET /sleep?ms=M` -> sleeps cooperatively M ms, then 200 `slept`
//! - `GET /work?us=N` -> spins the CPU N microseconds without yielding, then 200 `done`
//! - `GET /panic` -> the handler panics; the server answers 500 and goes on
//! - `GET /ws` -> WebSocket; every text message comes back upper-cased
//!
//! Try: `curl -s localhost:8080/stream?n=3`, `curl -s --data-binary @file localhost:8080/echo`.
//! Set `HTTP_SERVER_ACCESS_LOG=1` for an access log on stderr.
//!
//! `--tls CERT.pem KEY.pem`: HTTPS (TLS 1.2/1.3 on rustls, ALPN `http/1.1`), the handshake under the
//! header timeout; a plaintext client gets a 400 and the server goes on.
//!
//! `--workers N` (default 1): N hubs on N threads, each with its own `SO_REUSEPORT` listener and
//! accept loop (`Server::bind_workers_with`); the kernel spreads connections across them. A
//! CPU-bound handler (`/work`) then delays only its own hub.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use gevent::http::websocket::{self, tungstenite::Message};
use gevent::http::{
    header, Body, Config, Method, Request, Response, ResponseBody, Server, StatusCode, BACKLOG,
};
use gevent::logging::LogWriter;
use gevent::net::TcpListener;
use gevent::ssl::TlsAcceptor;

struct Args {
    port: u16,
    tls: Option<(String, String)>,
    header_timeout: Option<Duration>,
    workers: usize,
}

fn usage(msg: &str) -> ! {
    eprintln!("http_server: {msg}");
    eprintln!(
        "usage: http_server --port P [--tls CERT.pem KEY.pem] [--header-timeout-ms MS] [--workers N]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut args = std::env::args().skip(1);
    let mut port = None;
    let mut tls = None;
    let mut header_timeout = None;
    let mut workers = 1;
    let value = |args: &mut dyn Iterator<Item = String>, flag: &str| {
        args.next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => {
                let v = value(&mut args, "--port");
                port = Some(
                    v.parse()
                        .unwrap_or_else(|_| usage(&format!("bad port {v:?}"))),
                );
            }
            "--tls" => {
                let cert = value(&mut args, "--tls");
                let key = value(&mut args, "--tls");
                tls = Some((cert, key));
            }
            "--header-timeout-ms" => {
                let v = value(&mut args, "--header-timeout-ms");
                let ms: u64 = v
                    .parse()
                    .ok()
                    .filter(|&ms| ms > 0)
                    .unwrap_or_else(|| usage(&format!("bad --header-timeout-ms {v:?}")));
                header_timeout = Some(Duration::from_millis(ms));
            }
            "--workers" => {
                let v = value(&mut args, "--workers");
                workers = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage(&format!("bad --workers {v:?}")));
            }
            "-h" | "--help" => usage("an HTTP/1.1 server on gevent::http"),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    Args {
        port: port.unwrap_or_else(|| usage("--port is required")),
        tls,
        header_timeout,
        workers,
    }
}

fn main() {
    let args = parse_args();
    let tls = args.tls.as_ref().map(|(cert, key)| {
        TlsAcceptor::from_pem_files(cert, key)
            .unwrap_or_else(|e| {
                eprintln!("http_server: --tls: {e}");
                std::process::exit(1);
            })
            .with_alpn(&[b"http/1.1"])
    });
    let mut config = Config::default();
    if let Some(t) = args.header_timeout {
        config.header_timeout = t;
    }
    if std::env::var_os("HTTP_SERVER_ACCESS_LOG").is_some() {
        match LogWriter::stderr() {
            Ok(log) => config.access_log = Some(log),
            Err(e) => eprintln!("http_server: no access log: {e}"),
        }
    }
    let failed = |e: io::Error| -> ! {
        eprintln!("http_server: cannot listen on 127.0.0.1:{}: {e}", args.port);
        std::process::exit(1);
    };
    let make = move |listener| {
        let server = Server::new(listener, route)?.with_config(config.clone());
        Ok(match &tls {
            Some(acceptor) => server.with_tls(acceptor.clone()),
            None => server,
        })
    };
    if args.workers > 1 {
        // A hub per worker thread, each with its own SO_REUSEPORT listener and accept loop.
        let servers =
            Server::bind_workers_with(("127.0.0.1", args.port), args.workers, move |_, l| make(l))
                .unwrap_or_else(|e| failed(e));
        println!("listening on {}", servers.local_addr());
        let _ = io::Write::flush(&mut io::stdout());
        loop {
            std::thread::park();
        }
    }
    let listener = TcpListener::bind_with_backlog(("127.0.0.1", args.port), BACKLOG as u32)
        .unwrap_or_else(|e| failed(e));
    let server = make(listener).unwrap_or_else(|e| failed(e));
    println!("listening on {}", server.local_addr());
    let _ = io::Write::flush(&mut io::stdout());
    server.serve_forever();
}

fn text(status: StatusCode, body: impl Into<ResponseBody>) -> Response<ResponseBody> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(body.into())
        .expect("a valid response")
}

/// The value of `name` in the query string, as a number.
fn query(req: &Request<Body>, name: &str) -> Option<u64> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

fn route(mut req: Request<Body>) -> Response<ResponseBody> {
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    match (req.uri().path(), get, req.method() == Method::POST) {
        ("/", true, _) => text(StatusCode::OK, "Hello, World!"),
        ("/echo", _, true) => {
            let mut body = Vec::new();
            match req.body_mut().read_to_end(&mut body) {
                Ok(_) => text(StatusCode::OK, body),
                // The server answers 400 / 413 / 408 itself for body errors; this is a fallback.
                Err(e) => text(StatusCode::BAD_REQUEST, format!("{e}\n")),
            }
        }
        ("/stream", true, _) => {
            let n = query(&req, "n").unwrap_or(0);
            text(
                StatusCode::OK,
                ResponseBody::stream(move |w| {
                    for i in 0..n {
                        io::Write::write_all(w, format!("chunk {i}\n").as_bytes())?;
                    }
                    Ok(())
                }),
            )
        }
        ("/sleep", true, _) => {
            gevent::sleep(Duration::from_millis(query(&req, "ms").unwrap_or(0)));
            text(StatusCode::OK, "slept")
        }
        ("/work", true, _) => {
            let d = Duration::from_micros(query(&req, "us").unwrap_or(0));
            let t = Instant::now();
            while t.elapsed() < d {
                std::hint::spin_loop();
            }
            text(StatusCode::OK, "done")
        }
        ("/panic", true, _) => panic!("the /panic route panics, as asked"),
        ("/ws", true, _) => websocket::upgrade(&req, |mut ws| loop {
            let reply = match ws.read() {
                Ok(Message::Text(t)) => Message::text(t.to_uppercase()),
                Ok(Message::Binary(b)) => Message::binary(b.to_ascii_uppercase()),
                Ok(_) => continue,
                Err(_) => return,
            };
            if ws.send(reply).is_err() {
                return;
            }
        }),
        ("/" | "/echo" | "/stream" | "/sleep" | "/work" | "/panic" | "/ws", _, _) => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}
