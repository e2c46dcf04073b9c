//! Test scaffolding for the HTTP tests: a raw HTTP/1.1 client over any byte stream (a std socket
//! to a server process, or a gevent socket in-process) with a strict response reader.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};

/// One response as read off the wire.
#[derive(Debug, Default)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
}

impl Resp {
    /// The value of the first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the response says `Connection: close`.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// A raw HTTP/1.1 client: reads through `r`, writes to `w` (two handles on one connection).
pub struct Client<S> {
    pub r: BufReader<S>,
    pub w: S,
}

impl<S: Read + Write> Client<S> {
    /// A client on the connection that `r` and `w` are two handles of.
    pub fn from_halves(r: S, w: S) -> Client<S> {
        Client {
            r: BufReader::new(r),
            w,
        }
    }

    pub fn send(&mut self, b: &[u8]) {
        self.w.write_all(b).unwrap();
    }

    /// One line, which must end with CRLF (without it).
    pub fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        assert!(l.ends_with("\r\n"), "line without CRLF: {l:?}");
        l.truncate(l.len() - 2);
        l
    }

    /// Header (or trailer) fields up to the empty line.
    pub fn fields(&mut self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        loop {
            let l = self.line();
            if l.is_empty() {
                return v;
            }
            let (n, val) = l.split_once(':').expect("header line");
            v.push((n.to_owned(), val.trim().to_owned()));
        }
    }

    /// One response to a request with method `method`.
    pub fn response_to(&mut self, method: &str) -> Resp {
        let status_line = self.line();
        let status: u16 = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut resp = Resp {
            status,
            headers: self.fields(),
            ..Resp::default()
        };
        if method == "HEAD" || status == 100 || status == 101 || status == 204 || status == 304 {
            return resp;
        }
        if let Some(n) = resp.header("content-length") {
            resp.body = vec![0; n.parse().unwrap()];
            self.r.read_exact(&mut resp.body).unwrap();
        } else if resp.header("transfer-encoding") == Some("chunked") {
            loop {
                let size = usize::from_str_radix(&self.line(), 16).unwrap();
                if size == 0 {
                    resp.trailers = self.fields();
                    break;
                }
                let mut chunk = vec![0; size];
                self.r.read_exact(&mut chunk).unwrap();
                resp.body.extend_from_slice(&chunk);
                assert_eq!(self.line(), "");
            }
        } else {
            self.r.read_to_end(&mut resp.body).unwrap();
        }
        resp
    }

    /// One response to a request that is not HEAD.
    pub fn response(&mut self) -> Resp {
        self.response_to("GET")
    }

    /// Sends `GET path` (with a Host header) and reads the response.
    pub fn get(&mut self, path: &str) -> Resp {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        self.response()
    }

    /// Reads to EOF: what came before it.
    pub fn rest(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        let _ = self.r.read_to_end(&mut v);
        v
    }

    /// Whether the server closed the connection (EOF within the read timeout).
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.r.read(&mut b), Ok(0) | Err(_))
    }
}
