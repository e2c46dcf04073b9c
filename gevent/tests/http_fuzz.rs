//! A bounded randomized test of `gevent::http`'s request parsing and framing: valid requests,
//! pipelined, chunked with trailers, mutated at random (a seeded xorshift, so every failure
//! reproduces), fed to `serve_connection` over an in-memory transport, each input three times with
//! different splits into reads (all at once, byte by byte, random).
//!
//! Asserted for every input: no panic; the output is the same however the input was split (the
//! parser's decisions never depend on read boundaries); the output is a clean sequence of
//! well-formed responses (no desync: a strict client parses all of it), one per request the
//! handler saw (but a last one whose body never ended), plus at most one refusal that ends the
//! connection; nothing follows a response that
//! says `Connection: close`; the buffers stay bounded.
//!
//! For longer runs: `HTTP_FUZZ_ITERS=1000000 HTTP_FUZZ_SEED=7 cargo test --release -p gevent
//! --test http_fuzz`.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use gevent::http::{serve_connection, Body, Config, Request, Response, ResponseBody, Transport};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// An in-memory connection: reads come from `input` in the given sizes, writes are collected.
struct Mock {
    input: Vec<u8>,
    pos: usize,
    splits: Vec<usize>,
    out: Rc<RefCell<Vec<u8>>>,
}

impl Read for Mock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let step = if self.splits.is_empty() {
            usize::MAX
        } else {
            self.splits[self.pos % self.splits.len()]
        };
        let n = buf.len().min(step).min(self.input.len() - self.pos);
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Mock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.borrow_mut().extend_from_slice(buf);
        assert!(self.out.borrow().len() < 64 << 20, "output unbounded");
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Mock {
    fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    fn set_write_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Serves `input` split as `splits` says; returns the output without `date` lines, and the
/// methods the handler saw.
fn run(input: &[u8], splits: Vec<usize>) -> (Vec<u8>, Vec<String>) {
    let out = Rc::new(RefCell::new(Vec::new()));
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let config = Config {
        max_body: 4096,
        max_header_bytes: 2048,
        max_request_line: 512,
        max_headers: 20,
        drain_limit: 1024,
        ..Config::default()
    };
    let handler = move |mut req: Request<Body>| {
        s.borrow_mut().push(req.method().to_string());
        let mut body = Vec::new();
        let read = req.body_mut().read_to_end(&mut body);
        let summary = format!(
            "{} {} {} {:?} {:?}",
            req.method(),
            req.uri(),
            body.len(),
            read.is_ok(),
            req.body().trailers().map(|t| t.len())
        );
        Response::new(ResponseBody::from(summary))
    };
    let mock = Mock {
        input: input.to_vec(),
        pos: 0,
        splits,
        out: out.clone(),
    };
    let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
    serve_connection(Box::new(mock), peer, Rc::new(config), Rc::new(handler));
    let out = out.borrow();
    let mut cleaned = Vec::with_capacity(out.len());
    for line in out.split_inclusive(|&b| b == b'\n') {
        if !line.starts_with(b"date: ") {
            cleaned.extend_from_slice(line);
        }
    }
    let seen = seen.borrow().clone();
    (cleaned, seen)
}

/// Parses `out` strictly as responses; returns (final responses, whether the last one closed).
fn check_responses(out: &[u8], methods: &[String]) -> Result<(usize, bool), String> {
    let mut pos = 0;
    let mut finals = 0;
    let mut closed = false;
    let line = |pos: &mut usize| -> Result<String, String> {
        let rest = &out[*pos..];
        let i = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("unterminated line")?;
        *pos += i + 2;
        Ok(String::from_utf8_lossy(&rest[..i]).into_owned())
    };
    while pos < out.len() {
        if closed {
            return Err(format!("bytes after a closing response at {pos}"));
        }
        let status_line = line(&mut pos)?;
        let status: u16 = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut cl = None;
        loop {
            let l = line(&mut pos)?;
            if l.is_empty() {
                break;
            }
            let (n, v) = l
                .split_once(": ")
                .ok_or_else(|| format!("bad header {l:?}"))?;
            match n {
                "content-length" => cl = Some(v.parse::<usize>().map_err(|e| e.to_string())?),
                "connection" if v == "close" => closed = true,
                "transfer-encoding" => return Err("unexpected chunked response".into()),
                _ => {}
            }
        }
        if status == 100 {
            continue;
        }
        let is_head = methods.get(finals).is_some_and(|m| m == "HEAD") && status < 400;
        if status == 500 {
            return Err("500: the server panicked".into());
        }
        let n = cl.ok_or("no content-length")?;
        if !is_head {
            if pos + n > out.len() {
                return Err("truncated body".into());
            }
            pos += n;
        }
        finals += 1;
    }
    Ok((finals, closed))
}

const SEEDS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /x?y=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;e=1\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    b"POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
    b"POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
];

const PIECES: &[&[u8]] = &[
    b"\r",
    b"\n",
    b"\r\n",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b"0",
    b"a",
    b"f",
    b"\x00",
    b"\xff",
    b"Content-Length: 3\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b" folded\r\n",
    b"Expect: 100-continue\r\n",
    b"Host: b\r\n",
    b"Connection: close\r\n",
    b"ffffffffffffffff",
    b"\r\n\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
    b"Content-Length: 99999\r\n",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    if input.is_empty() {
        input.push(b'G');
    }
    let at = rng.below(input.len() + 1);
    match rng.below(5) {
        0 => {
            let i = rng.below(input.len());
            input[i] = rng.next() as u8;
        }
        1 => {
            let p = PIECES[rng.below(PIECES.len())];
            input.splice(at..at, p.iter().copied());
        }
        2 => {
            let end = (at + 1 + rng.below(8)).min(input.len());
            if at < end {
                input.drain(at..end);
            }
        }
        3 => {
            let from = rng.below(input.len());
            let end = (from + 1 + rng.below(32)).min(input.len());
            let piece = input[from..end].to_vec();
            input.splice(at..at, piece);
        }
        _ => input.truncate(at),
    }
}

#[test]
fn random_requests_never_panic_or_desync() {
    let iters: usize = std::env::var("HTTP_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let seed: u64 = std::env::var("HTTP_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng(seed);
    let mut refusals = 0;
    let mut served = 0;
    for iter in 0..iters {
        let mut input = Vec::new();
        for _ in 0..1 + rng.below(3) {
            input.extend_from_slice(SEEDS[rng.below(SEEDS.len())]);
        }
        for _ in 0..rng.below(5) {
            mutate(&mut rng, &mut input);
        }
        let random_splits: Vec<usize> = (0..7).map(|_| 1 + rng.below(40)).collect();
        let (whole, methods) = run(&input, Vec::new());
        let shown = String::from_utf8_lossy(&input);
        for splits in [vec![1], random_splits] {
            let (split, m2) = run(&input, splits.clone());
            assert!(
                whole == split && methods == m2,
                "iteration {iter}: output depends on read boundaries {splits:?} for {shown:?}:\n{}\n---\n{}",
                String::from_utf8_lossy(&whole),
                String::from_utf8_lossy(&split)
            );
        }
        let (finals, _closed) = check_responses(&whole, &methods).unwrap_or_else(|e| {
            panic!(
                "iteration {iter}: {e} for {shown:?}:\n{}",
                String::from_utf8_lossy(&whole)
            )
        });
        // One response per request, plus a refusal; minus a last request whose body never ended.
        assert!(
            finals + 1 >= methods.len() && finals <= methods.len() + 1,
            "iteration {iter}: {finals} responses for {} requests, input {shown:?}",
            methods.len()
        );
        refusals += finals.saturating_sub(methods.len());
        served += methods.len();
    }
    eprintln!("{iters} inputs: {served} requests served, {refusals} refused");
    assert!(
        served > iters / 2 && refusals > iters / 10,
        "the mix exercises both paths"
    );
}

#[test]
fn smuggling_variants_are_never_served_as_a_second_request() {
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 43\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2;\nxx\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nAB\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\rContent-Length: 44\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    ];
    for c in cases {
        let (out, methods) = run(c, Vec::new());
        let text = String::from_utf8_lossy(&out);
        assert!(
            !text.contains("/smuggled"),
            "{}: {text}",
            String::from_utf8_lossy(c)
        );
        assert!(methods.len() <= 1);
        assert!(
            text.contains("HTTP/1.1 400 Bad Request"),
            "{}: {text}",
            String::from_utf8_lossy(c)
        );
        assert!(text.contains("connection: close"));
    }
}
