//! One connection: the request head (httparse plus this module's framing rules), the request body
//! decoder ([`Body`]), the response writer ([`BodyWriter`]) and the per-connection loop
//! ([`serve`]).
//!
//! # Ground rules
//! - Everything of a connection lives in one `Rc<RefCell<Conn>>` owned by its greenlet; the
//!   handler's [`Body`], [`BodyWriter`] and [`Upgraded`] hold clones and borrow it for one call at
//!   a time. A `Body` used from another greenlet while the connection's own is inside a call fails
//!   with an error ("connection busy") instead of panicking.
//! - A `Body` belongs to one request: after its response is written it reads as empty.
//! - Nothing is written on the connection before the handler's response, except `100 Continue`
//!   (on the handler's first body read) and the refusals.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use ::http::header::{self, HeaderName};
use ::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};

use super::log;
use super::types::{Config, ConnCtx, Phase, Transport};

/// Bytes read from the transport at a time (the buffer grows for long heads).
const READ_BUF: usize = 8 * 1024;
/// The longest chunk-size line (with extensions).
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Header slots on the stack; more (if configured) are allocated.
const STACK_HEADERS: usize = 100;
/// A response body up to this size is copied behind the head (one write); a larger one is
/// written from where it is.
const COPY_BODY: usize = 16 * 1024;
/// How long and how much a closing connection reads and discards after shutting down its
/// sending side, so that the peer reads the last response before the close (not a reset).
const LINGER_TIME: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 256 * 1024;

/// Why a request body could not be read, and what the server answers (if nothing was sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyFail {
    /// Invalid chunked framing: 400.
    Framing,
    /// Longer than `Config::max_body`: 413.
    TooLarge,
    /// No data within `Config::body_timeout`: 408.
    TimedOut,
    /// The client closed or reset the connection: nothing.
    Gone,
}

impl BodyFail {
    fn error(self, max: u64) -> io::Error {
        match self {
            BodyFail::Framing => {
                io::Error::new(io::ErrorKind::InvalidData, "invalid chunked request body")
            }
            BodyFail::TooLarge => io::Error::new(
                io::ErrorKind::InvalidData,
                format!("request body larger than the server's limit of {max} bytes"),
            ),
            BodyFail::TimedOut => {
                io::Error::new(io::ErrorKind::TimedOut, "request body read timed out")
            }
            BodyFail::Gone => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the client closed the connection inside the request body",
            ),
        }
    }

    fn status(self) -> Option<StatusCode> {
        match self {
            BodyFail::Framing => Some(StatusCode::BAD_REQUEST),
            BodyFail::TooLarge => Some(StatusCode::PAYLOAD_TOO_LARGE),
            BodyFail::TimedOut => Some(StatusCode::REQUEST_TIMEOUT),
            BodyFail::Gone => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyState {
    Done,
    /// Bytes left.
    Length(u64),
    Chunked(Chunk),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    Size,
    /// Bytes left in this chunk.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    Trailers,
}

/// How a response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    /// No body may follow (1xx, 204, 304), or the handler's own `Content-Length` for HEAD.
    NoBody,
    Length(u64),
    Chunked,
    /// Until the connection closes (HTTP/1.0, length unknown).
    Close,
}

pub(crate) struct Conn {
    io: Box<dyn Transport>,
    /// # Invariant
    /// `rstart <= rend <= rbuf.len()`; `rbuf[rstart..rend]` is received and not yet consumed.
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    wbuf: Vec<u8>,
    peer: SocketAddr,
    /// Where the current response starts in `wbuf` (responses to earlier pipelined requests may
    /// be waiting before it).
    resp_start: usize,
    cfg: Rc<Config>,
    /// The current request's number; a [`Body`] of an earlier one reads as empty.
    req_id: u64,
    body: BodyState,
    /// Bytes of the current chunked body announced so far.
    body_total: u64,
    body_fail: Option<BodyFail>,
    /// `Expect: 100-continue` and the `100 Continue` not sent yet.
    continue_pending: bool,
    trailers: Option<HeaderMap>,
    /// Some byte of the current response was handed to the transport.
    sent: bool,
    /// Body bytes of the current response (for the access log).
    body_bytes: u64,
    /// A read or write failed: no further request on this connection.
    broken: bool,
    read_timeout: Option<Duration>,
}

impl Conn {
    fn new(io: Box<dyn Transport>, cfg: Rc<Config>, peer: SocketAddr) -> Conn {
        Conn {
            io,
            peer,
            rbuf: vec![0; READ_BUF],
            rstart: 0,
            rend: 0,
            wbuf: Vec::with_capacity(1024),
            resp_start: 0,
            cfg,
            req_id: 0,
            body: BodyState::Done,
            body_total: 0,
            body_fail: None,
            continue_pending: false,
            trailers: None,
            sent: false,
            body_bytes: 0,
            broken: false,
            read_timeout: None,
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.rbuf[self.rstart..self.rend]
    }

    fn set_read_timeout(&mut self, t: Duration) {
        if self.read_timeout != Some(t) {
            let _ = self.io.set_read_timeout(Some(t));
            self.read_timeout = Some(t);
        }
    }

    /// Reads more into the buffer, compacting it or growing it up to `limit` bytes.
    fn fill(&mut self, limit: usize) -> io::Result<usize> {
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        }
        if self.rend == self.rbuf.len() {
            if self.rstart > 0 {
                self.rbuf.copy_within(self.rstart..self.rend, 0);
                self.rend -= self.rstart;
                self.rstart = 0;
            } else if self.rbuf.len() < limit {
                let n = (self.rbuf.len() * 2).min(limit);
                self.rbuf.resize(n, 0);
            } else {
                return Err(io::Error::other("http: read buffer full"));
            }
        }
        let n = self.io.read(&mut self.rbuf[self.rend..])?;
        self.rend += n;
        Ok(n)
    }

    /// Forgets what was buffered of the current response (to replace it with an error).
    fn discard_response(&mut self) {
        self.wbuf.truncate(self.resp_start);
    }

    /// Sends what is buffered for writing.
    fn flush(&mut self) -> io::Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        if self.wbuf.len() > self.resp_start {
            self.sent = true;
        }
        let r = self.io.write_all(&self.wbuf).and_then(|()| self.io.flush());
        self.wbuf.clear();
        self.resp_start = 0;
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    fn head_limit(&self) -> usize {
        self.cfg.max_request_line + self.cfg.max_header_bytes + 8
    }

    /// Waits for and parses the next request head.
    fn read_head(&mut self, first: bool, phase: &Cell<Phase>) -> Result<Head, HeadErr> {
        let header_timeout = self.cfg.header_timeout;
        let mut deadline = first.then(|| Instant::now() + header_timeout);
        let mut scanned: usize = 0;
        loop {
            // Empty lines before a request line are ignored (RFC 9112, 2.2).
            while self.rstart < self.rend {
                match self.rbuf[self.rstart] {
                    b'\n' => self.rstart += 1,
                    b'\r' if self.rstart + 1 < self.rend && self.rbuf[self.rstart + 1] == b'\n' => {
                        self.rstart += 2
                    }
                    _ => break,
                }
                scanned = 0;
            }
            let avail = self.rend - self.rstart;
            if avail > 0 {
                phase.set(Phase::Busy);
                let buf = self.buffered();
                let from = scanned.saturating_sub(3);
                if let Some(end) = find_head_end(&buf[from..]) {
                    return self.parse_head(from + end);
                }
                scanned = avail;
                match memchr::memchr(b'\n', buf) {
                    None if avail > self.cfg.max_request_line => {
                        return Err(HeadErr::Refuse(StatusCode::URI_TOO_LONG))
                    }
                    Some(i) if i > self.cfg.max_request_line => {
                        return Err(HeadErr::Refuse(StatusCode::URI_TOO_LONG))
                    }
                    Some(i) if avail - i - 1 > self.cfg.max_header_bytes => {
                        return Err(HeadErr::Refuse(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE))
                    }
                    _ => {}
                }
            }
            // Before waiting: send responses held back for pipelined requests.
            if self.flush().is_err() {
                return Err(HeadErr::Closed);
            }
            // The header timeout counts from the first byte of the request (from here, when the
            // head did not come whole: no clock read for one that did).
            if deadline.is_none() && self.rend > self.rstart {
                deadline = Some(Instant::now() + header_timeout);
            }
            let wait = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(HeadErr::Timeout);
                    }
                    left
                }
                None => self.cfg.idle_timeout,
            };
            self.set_read_timeout(wait);
            match self.fill(self.head_limit()) {
                Ok(0) => return Err(HeadErr::Closed),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) && deadline.is_some() => return Err(HeadErr::Timeout),
                Err(_) => return Err(HeadErr::Closed),
            }
        }
    }

    /// Parses `buffered()[..end]`, a complete head, and consumes it.
    fn parse_head(&mut self, end: usize) -> Result<Head, HeadErr> {
        use HeadErr::Refuse;
        let bad = Refuse(StatusCode::BAD_REQUEST);
        let cfg = self.cfg.clone();
        let head = &self.rbuf[self.rstart..self.rstart + end];
        let line_end = memchr::memchr(b'\n', head).unwrap_or(end);
        if line_end > cfg.max_request_line {
            return Err(Refuse(StatusCode::URI_TOO_LONG));
        }
        if (end - line_end).saturating_sub(1) > cfg.max_header_bytes {
            return Err(Refuse(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
        }
        // Bare CRs, obsolete line folding and whitespace before or in a header name: httparse
        // refuses them all (`Error::{HeaderName, HeaderValue, NewLine, Token}`; the tests in
        // `http_example.rs` hold it to that), so the head is not scanned twice for them.
        let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
        let mut heap;
        let slots: &mut [httparse::Header<'_>] = if cfg.max_headers <= STACK_HEADERS {
            &mut stack[..cfg.max_headers]
        } else {
            heap = vec![httparse::EMPTY_HEADER; cfg.max_headers];
            &mut heap
        };
        let mut req = httparse::Request::new(slots);
        match req.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(bad),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Refuse(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE))
            }
            Err(_) => return Err(bad),
        }
        let method = Method::from_bytes(req.method.unwrap_or("").as_bytes()).map_err(|_| bad)?;
        let uri: Uri = req.path.unwrap_or("").parse().map_err(|_| bad)?;
        let version = match req.version {
            Some(1) => Version::HTTP_11,
            Some(0) => Version::HTTP_10,
            _ => return Err(Refuse(StatusCode::HTTP_VERSION_NOT_SUPPORTED)),
        };
        let mut headers = HeaderMap::with_capacity(req.headers.len());
        let mut content_length: Option<u64> = None;
        let mut has_te = false;
        let mut chunked = false;
        let mut hosts = 0;
        let mut close = false;
        let mut keep_alive = false;
        let mut expect_continue = false;
        for h in req.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| bad)?;
            let value = HeaderValue::from_bytes(h.value).map_err(|_| bad)?;
            if name == header::CONTENT_LENGTH {
                for part in h.value.split(|&b| b == b',') {
                    let n = parse_decimal(trim(part)).ok_or(bad)?;
                    if content_length.is_some_and(|c| c != n) {
                        return Err(bad);
                    }
                    content_length = Some(n);
                }
            } else if name == header::TRANSFER_ENCODING {
                has_te = true;
                for coding in h.value.split(|&b| b == b',') {
                    let coding = trim(coding);
                    if coding.is_empty() {
                        continue;
                    }
                    // `chunked` must be the last coding, and only once.
                    if chunked {
                        return Err(bad);
                    }
                    chunked = coding.eq_ignore_ascii_case(b"chunked");
                }
            } else if name == header::HOST {
                hosts += 1;
            } else if name == header::CONNECTION {
                for token in h.value.split(|&b| b == b',') {
                    let token = trim(token);
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name == header::EXPECT {
                if trim(h.value).eq_ignore_ascii_case(b"100-continue") {
                    expect_continue = true;
                } else {
                    return Err(Refuse(StatusCode::EXPECTATION_FAILED));
                }
            }
            headers.append(name, value);
        }
        if has_te && (!chunked || content_length.is_some() || version == Version::HTTP_10) {
            return Err(bad);
        }
        if hosts > 1 || (hosts == 0 && version == Version::HTTP_11) {
            return Err(bad);
        }
        let body = if has_te {
            BodyState::Chunked(Chunk::Size)
        } else {
            match content_length {
                Some(n) if n > cfg.max_body => {
                    return Err(Refuse(StatusCode::PAYLOAD_TOO_LARGE));
                }
                Some(n) if n > 0 => BodyState::Length(n),
                _ => BodyState::Done,
            }
        };
        let keep_alive = if version == Version::HTTP_11 {
            !close
        } else {
            keep_alive && !close
        };
        self.rstart += end;
        Ok(Head {
            method,
            uri,
            version,
            headers,
            body,
            keep_alive,
            expect_continue: expect_continue && version == Version::HTTP_11,
        })
    }

    /// Makes sure `n` bytes are buffered.
    fn need(&mut self, n: usize) -> io::Result<()> {
        while self.rend - self.rstart < n {
            if self.fill(READ_BUF.max(n))? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(())
    }

    /// Finds a buffered line ending in CRLF, reading as needed: the offset of its `\n`.
    fn need_line(&mut self, max: usize) -> io::Result<Option<usize>> {
        let mut scanned = 0;
        loop {
            let buf = self.buffered();
            if let Some(i) = memchr::memchr(b'\n', &buf[scanned..]) {
                // The same answer however the bytes were split into reads.
                return Ok((scanned + i <= max).then_some(scanned + i));
            }
            scanned = buf.len();
            if scanned > max {
                return Ok(None);
            }
            if self.fill(READ_BUF.max(max + 8))? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Reads up to `out.len()` and `rem` body bytes (at least one), from the buffer or the
    /// transport.
    fn read_data(&mut self, out: &mut [u8], rem: u64) -> io::Result<usize> {
        let want = (out.len() as u64).min(rem) as usize;
        if self.rstart == self.rend {
            if want >= READ_BUF {
                let n = self.io.read(&mut out[..want])?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                return Ok(n);
            }
            if self.fill(READ_BUF)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        let n = want.min(self.rend - self.rstart);
        out[..n].copy_from_slice(&self.rbuf[self.rstart..self.rstart + n]);
        self.rstart += n;
        Ok(n)
    }

    fn fail(&mut self, f: BodyFail) -> io::Error {
        self.body_fail = Some(f);
        f.error(self.cfg.max_body)
    }

    /// [`Body::read`]: sends `100 Continue` if pending, then decodes.
    fn read_body(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(f) = self.body_fail {
            return Err(f.error(self.cfg.max_body));
        }
        if out.is_empty() || self.body == BodyState::Done {
            return Ok(0);
        }
        if self.continue_pending {
            self.continue_pending = false;
            self.wbuf
                .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            let sent = self.sent;
            let r = self.flush();
            self.sent = sent; // an interim response: a final one may still replace the handler's
            if let Err(e) = r {
                self.fail(BodyFail::Gone);
                return Err(e);
            }
        }
        self.set_read_timeout(self.cfg.body_timeout);
        match self.decode(out) {
            Ok(n) => Ok(n),
            Err(e) => {
                if self.body_fail.is_none() {
                    self.broken = true;
                    let f = if is_timeout(&e) {
                        BodyFail::TimedOut
                    } else {
                        BodyFail::Gone
                    };
                    return Err(self.fail(f));
                }
                Err(e)
            }
        }
    }

    fn decode(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.body {
                BodyState::Done => return Ok(0),
                BodyState::Length(rem) => {
                    let n = self.read_data(out, rem)?;
                    let rem = rem - n as u64;
                    self.body = if rem == 0 {
                        BodyState::Done
                    } else {
                        BodyState::Length(rem)
                    };
                    return Ok(n);
                }
                BodyState::Chunked(Chunk::Size) => {
                    let Some(nl) = self.need_line(MAX_CHUNK_LINE)? else {
                        return Err(self.fail(BodyFail::Framing));
                    };
                    let line = &self.rbuf[self.rstart..self.rstart + nl];
                    let Some(size) = line.strip_suffix(b"\r").and_then(parse_chunk_size) else {
                        return Err(self.fail(BodyFail::Framing));
                    };
                    self.rstart += nl + 1;
                    if size == 0 {
                        self.body = BodyState::Chunked(Chunk::Trailers);
                    } else {
                        self.body_total = self.body_total.saturating_add(size);
                        if self.body_total > self.cfg.max_body {
                            return Err(self.fail(BodyFail::TooLarge));
                        }
                        self.body = BodyState::Chunked(Chunk::Data(size));
                    }
                }
                BodyState::Chunked(Chunk::Data(rem)) => {
                    let n = self.read_data(out, rem)?;
                    let rem = rem - n as u64;
                    self.body = BodyState::Chunked(if rem == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(rem)
                    });
                    return Ok(n);
                }
                BodyState::Chunked(Chunk::DataEnd) => {
                    self.need(2)?;
                    if self.buffered()[..2] != *b"\r\n" {
                        return Err(self.fail(BodyFail::Framing));
                    }
                    self.rstart += 2;
                    self.body = BodyState::Chunked(Chunk::Size);
                }
                BodyState::Chunked(Chunk::Trailers) => {
                    self.need(2)?;
                    if self.buffered()[..2] == *b"\r\n" {
                        self.rstart += 2;
                        self.body = BodyState::Done;
                        return Ok(0);
                    }
                    let end = loop {
                        if let Some(i) = find(self.buffered(), b"\r\n\r\n") {
                            if i > self.cfg.max_header_bytes {
                                return Err(self.fail(BodyFail::Framing));
                            }
                            break i + 4;
                        }
                        if self.rend - self.rstart > self.cfg.max_header_bytes {
                            return Err(self.fail(BodyFail::Framing));
                        }
                        if self.fill(self.head_limit())? == 0 {
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                    };
                    let block = &self.rbuf[self.rstart..self.rstart + end];
                    let trailers = parse_trailers(block, self.cfg.max_headers);
                    match trailers {
                        Some(t) => {
                            self.trailers = Some(t);
                            self.rstart += end;
                            self.body = BodyState::Done;
                            return Ok(0);
                        }
                        None => return Err(self.fail(BodyFail::Framing)),
                    }
                }
            }
        }
    }

    /// Reads and discards the rest of the request body, up to `Config::drain_limit` bytes.
    /// Whether the connection can carry another request afterwards.
    fn drain(&mut self) -> bool {
        if self.body == BodyState::Done {
            return self.body_fail.is_none();
        }
        if self.continue_pending || self.body_fail.is_some() || self.broken {
            return false;
        }
        if let BodyState::Length(rem) = self.body {
            if rem > self.cfg.drain_limit {
                return false;
            }
        }
        let mut left = self.cfg.drain_limit;
        let mut scratch = [0u8; READ_BUF];
        loop {
            match self.read_body(&mut scratch) {
                Ok(0) => return true,
                Ok(n) => {
                    left = left.saturating_sub(n as u64);
                    if left == 0 {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Appends a response head.
    fn write_head(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        out: Out,
        close: bool,
        v10: bool,
    ) {
        let w = &mut self.wbuf;
        w.extend_from_slice(b"HTTP/1.1 ");
        w.extend_from_slice(status.as_str().as_bytes());
        w.push(b' ');
        w.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
        w.extend_from_slice(b"\r\n");
        if !headers.contains_key(header::DATE) {
            log::append_date_header(w);
        }
        if let Some(s) = &self.cfg.server_name {
            if !headers.contains_key(header::SERVER) {
                w.extend_from_slice(b"server: ");
                w.extend_from_slice(s.as_bytes());
                w.extend_from_slice(b"\r\n");
            }
        }
        let mut said_close = false;
        for (name, value) in headers {
            if (name == header::CONTENT_LENGTH && out != Out::NoBody)
                || name == header::TRANSFER_ENCODING
            {
                continue;
            }
            if name == header::CONNECTION {
                said_close |= has_token(value.as_bytes(), b"close");
            }
            w.extend_from_slice(name.as_str().as_bytes());
            w.extend_from_slice(b": ");
            w.extend_from_slice(value.as_bytes());
            w.extend_from_slice(b"\r\n");
        }
        match out {
            Out::Length(n) => {
                w.extend_from_slice(b"content-length: ");
                w.extend_from_slice(itoa(n, &mut [0; 20]));
                w.extend_from_slice(b"\r\n");
            }
            Out::Chunked => w.extend_from_slice(b"transfer-encoding: chunked\r\n"),
            Out::NoBody | Out::Close => {}
        }
        if close && !said_close && status != StatusCode::SWITCHING_PROTOCOLS {
            w.extend_from_slice(b"connection: close\r\n");
        } else if !close && v10 {
            w.extend_from_slice(b"connection: keep-alive\r\n");
        }
        w.extend_from_slice(b"\r\n");
    }

    /// A response of the server's own (a refusal), with `Connection: close`.
    fn write_error(&mut self, status: StatusCode) {
        let reason = status.canonical_reason().unwrap_or("error");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        let body = format!("{} {reason}\n", status.as_str());
        self.write_head(
            status,
            &headers,
            Out::Length(body.len() as u64),
            true,
            false,
        );
        self.wbuf.extend_from_slice(body.as_bytes());
        self.body_bytes = body.len() as u64;
    }

    /// Ends the connection: sends what is buffered, then (`linger`) shuts down the sending side and
    /// reads what the peer still sends for a moment, so that the peer reads our last response
    /// rather than a reset.
    fn close(&mut self, linger: bool) {
        if self.flush().is_err() {
            return;
        }
        if !linger {
            let _ = self.io.finish();
            return;
        }
        if self.io.shutdown_write().is_err() {
            return;
        }
        let until = Instant::now() + LINGER_TIME;
        let mut left = LINGER_BYTES;
        let mut scratch = [0u8; READ_BUF];
        while left > 0 {
            let wait = until.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                return;
            }
            self.set_read_timeout(wait);
            match self.io.read(&mut scratch) {
                Ok(n @ 1..) => left = left.saturating_sub(n),
                _ => return,
            }
        }
    }
}

/// A parsed request head.
struct Head {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: BodyState,
    keep_alive: bool,
    expect_continue: bool,
}

#[derive(Clone, Copy)]
enum HeadErr {
    /// The peer closed, the idle time passed, or the connection failed: close quietly.
    Closed,
    /// The head did not arrive within the header timeout: 408.
    Timeout,
    /// Refused with this status.
    Refuse(StatusCode),
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// The end (exclusive) of the first `\n\r\n` or `\n\n` in `buf`.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'\n', &buf[i..]) {
        let at = i + p;
        match buf.get(at + 1) {
            Some(b'\n') => return Some(at + 2),
            Some(b'\r') if buf.get(at + 2) == Some(&b'\n') => return Some(at + 3),
            _ => i = at + 1,
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// Refuses a CR not followed by LF, and a line that starts with whitespace (obsolete folding, or
/// whitespace before the first header name).
fn check_line_breaks(head: &[u8]) -> Result<(), ()> {
    let n = head.len();
    for i in 0..n {
        match head[i] {
            b'\r' if i + 1 >= n || head[i + 1] != b'\n' => return Err(()),
            b'\n' if i + 1 < n && matches!(head[i + 1], b' ' | b'\t') => return Err(()),
            _ => {}
        }
    }
    Ok(())
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &s[start..end]
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| trim(t).eq_ignore_ascii_case(token))
}

/// A `Content-Length` value: 1 to 19 decimal digits, nothing else.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// A chunk-size line without its CRLF: 1 to 16 hex digits, then optional whitespace and
/// extensions (`;name[=value]`, no control characters).
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return None;
    }
    let size = line[..digits].iter().fold(0u64, |n, &d| {
        n * 16 + u64::from((d as char).to_digit(16).unwrap_or(0))
    });
    let rest = trim(&line[digits..]);
    if rest.is_empty() {
        return Some(size);
    }
    if rest[0] != b';' || rest.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return None;
    }
    Some(size)
}

/// A trailer section (ending in an empty line), or `None` if malformed.
fn parse_trailers(block: &[u8], max: usize) -> Option<HeaderMap> {
    check_line_breaks(block).ok()?;
    let mut slots = vec![httparse::EMPTY_HEADER; max.max(1)];
    let (_, parsed) = match httparse::parse_headers(block, &mut slots) {
        Ok(httparse::Status::Complete(r)) => r,
        _ => return None,
    };
    let mut map = HeaderMap::with_capacity(parsed.len());
    for h in parsed {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value).ok()?;
        map.append(name, value);
    }
    Some(map)
}

fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// The body of a request: reads cooperatively from the connection (`Content-Length` or chunked).
///
/// # Errors
/// Reads fail with `InvalidData` for a malformed chunked body or one over the server's limit, with
/// `TimedOut` when no data arrives within the body timeout, with `UnexpectedEof` when the client
/// closes inside the body; the server then answers 400, 413 or 408 (if nothing of the handler's
/// response was sent yet) and closes the connection.
///
/// # Cancel safety
/// A kill or Timeout landing in a read loses the bytes of that read; the connection is closed.
pub struct Body {
    conn: Option<Rc<RefCell<Conn>>>,
    id: u64,
}

impl Body {
    /// A body with no bytes (for calling handlers directly, in tests).
    pub fn empty() -> Body {
        Body { conn: None, id: 0 }
    }

    /// The client's address (`None` for [`Body::empty`]).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        Some(self.conn.as_ref()?.try_borrow().ok()?.peer)
    }

    /// The chunked body's trailer fields, once the body was read to its end (`None` before, and
    /// for bodies that are not chunked).
    pub fn trailers(&self) -> Option<HeaderMap> {
        let conn = self.conn.as_ref()?.try_borrow().ok()?;
        if conn.req_id != self.id {
            return None;
        }
        conn.trailers.clone()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Body")
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(conn) = &self.conn else {
            return Ok(0);
        };
        let Ok(mut c) = conn.try_borrow_mut() else {
            return Err(io::Error::other(
                "http: connection busy (body read from two greenlets)",
            ));
        };
        if c.req_id != self.id {
            return Ok(0);
        }
        c.read_body(buf)
    }
}

type StreamFn = Box<dyn FnOnce(&mut BodyWriter) -> io::Result<()>>;
type UpgradeFn = Box<dyn FnOnce(Upgraded)>;

enum Kind {
    Empty,
    Bytes(std::borrow::Cow<'static, [u8]>),
    Reader(Box<dyn Read>, Option<u64>),
    Stream(StreamFn),
    Upgrade(UpgradeFn),
}

/// The body of a response: bytes, a reader, a callback that writes it, or a takeover of the
/// connection after `101 Switching Protocols`.
pub struct ResponseBody(Kind);

impl ResponseBody {
    /// No body.
    pub fn empty() -> ResponseBody {
        ResponseBody(Kind::Empty)
    }

    /// The bytes of `r` until its end: chunked (HTTP/1.1), or the connection closes after it
    /// (HTTP/1.0); or `Content-Length` if the handler set that header.
    pub fn reader(r: impl Read + 'static) -> ResponseBody {
        ResponseBody(Kind::Reader(Box::new(r), None))
    }

    /// Exactly `len` bytes of `r`, with `Content-Length: len` (if `r` ends early, the connection
    /// closes).
    pub fn sized_reader(r: impl Read + 'static, len: u64) -> ResponseBody {
        ResponseBody(Kind::Reader(Box::new(r), Some(len)))
    }

    /// A body written incrementally by `f` (after the head); framed like [`ResponseBody::reader`].
    /// `f` runs in the connection's greenlet and may block cooperatively; [`BodyWriter::flush`]
    /// sends what was written so far. An error from `f` closes the connection.
    pub fn stream(f: impl FnOnce(&mut BodyWriter) -> io::Result<()> + 'static) -> ResponseBody {
        ResponseBody(Kind::Stream(Box::new(f)))
    }

    /// Takes over the connection: after the response head (whose status must be
    /// `101 Switching Protocols`) is sent, `f` gets the connection and the server forgets it.
    pub fn upgrade(f: impl FnOnce(Upgraded) + 'static) -> ResponseBody {
        ResponseBody(Kind::Upgrade(Box::new(f)))
    }
}

impl Default for ResponseBody {
    fn default() -> ResponseBody {
        ResponseBody::empty()
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Empty => f.write_str("ResponseBody::Empty"),
            Kind::Bytes(b) => write!(f, "ResponseBody::Bytes({} bytes)", b.len()),
            Kind::Reader(_, len) => write!(f, "ResponseBody::Reader({len:?})"),
            Kind::Stream(_) => f.write_str("ResponseBody::Stream"),
            Kind::Upgrade(_) => f.write_str("ResponseBody::Upgrade"),
        }
    }
}

impl From<Vec<u8>> for ResponseBody {
    fn from(v: Vec<u8>) -> ResponseBody {
        ResponseBody(Kind::Bytes(v.into()))
    }
}

impl From<String> for ResponseBody {
    fn from(s: String) -> ResponseBody {
        ResponseBody(Kind::Bytes(s.into_bytes().into()))
    }
}

impl From<&'static str> for ResponseBody {
    fn from(s: &'static str) -> ResponseBody {
        ResponseBody(Kind::Bytes(s.as_bytes().into()))
    }
}

impl From<&'static [u8]> for ResponseBody {
    fn from(s: &'static [u8]) -> ResponseBody {
        ResponseBody(Kind::Bytes(s.into()))
    }
}

impl From<()> for ResponseBody {
    fn from((): ()) -> ResponseBody {
        ResponseBody::empty()
    }
}

/// Writes a streamed response body ([`ResponseBody::stream`]): chunked, length-delimited or
/// close-delimited as the response's framing says (a HEAD response discards it).
///
/// # Cancel safety
/// A kill or Timeout landing in a write closes the connection; the client sees a truncated body.
pub struct BodyWriter {
    conn: Rc<RefCell<Conn>>,
    out: Out,
    /// HEAD: nothing is sent.
    discard: bool,
    /// Bytes still allowed (`Out::Length`).
    left: u64,
    trailers: HeaderMap,
}

impl BodyWriter {
    /// Adds a trailer field, sent after a chunked body (ignored for other framings).
    pub fn trailer(&mut self, name: HeaderName, value: HeaderValue) {
        self.trailers.append(name, value);
    }

    fn finish(mut self) -> io::Result<()> {
        if self.discard {
            return Ok(());
        }
        let mut c = borrow(&self.conn)?;
        match self.out {
            Out::Chunked => {
                c.wbuf.extend_from_slice(b"0\r\n");
                for (name, value) in std::mem::take(&mut self.trailers).iter() {
                    c.wbuf.extend_from_slice(name.as_str().as_bytes());
                    c.wbuf.extend_from_slice(b": ");
                    c.wbuf.extend_from_slice(value.as_bytes());
                    c.wbuf.extend_from_slice(b"\r\n");
                }
                c.wbuf.extend_from_slice(b"\r\n");
                Ok(())
            }
            Out::Length(_) if self.left > 0 => {
                c.broken = true;
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "http: response body shorter than its Content-Length",
                ))
            }
            _ => Ok(()),
        }
    }
}

fn borrow(conn: &Rc<RefCell<Conn>>) -> io::Result<std::cell::RefMut<'_, Conn>> {
    conn.try_borrow_mut()
        .map_err(|_| io::Error::other("http: connection busy (used from two greenlets)"))
}

impl Write for BodyWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.discard || buf.is_empty() {
            return Ok(buf.len());
        }
        let mut c = borrow(&self.conn)?;
        if c.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let mut buf = buf;
        if self.out != Out::Chunked && self.out != Out::Close {
            if self.left == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "http: response body longer than its Content-Length",
                ));
            }
            buf = &buf[..(buf.len() as u64).min(self.left) as usize];
            self.left -= buf.len() as u64;
        }
        c.body_bytes += buf.len() as u64;
        if self.out == Out::Chunked {
            let mut hex = [0u8; 16];
            let mut i = hex.len();
            let mut n = buf.len();
            loop {
                i -= 1;
                hex[i] = b"0123456789abcdef"[n % 16];
                n /= 16;
                if n == 0 {
                    break;
                }
            }
            c.wbuf.extend_from_slice(&hex[i..]);
            c.wbuf.extend_from_slice(b"\r\n");
        }
        if buf.len() > COPY_BODY {
            c.flush()?;
            c.sent = true;
            if let Err(e) = c.io.write_all(buf) {
                c.broken = true;
                return Err(e);
            }
        } else {
            c.wbuf.extend_from_slice(buf);
        }
        if self.out == Out::Chunked {
            c.wbuf.extend_from_slice(b"\r\n");
        }
        if c.wbuf.len() >= COPY_BODY {
            c.flush()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.discard {
            return Ok(());
        }
        borrow(&self.conn)?.flush()
    }
}

impl fmt::Debug for BodyWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BodyWriter({:?})", self.out)
    }
}

/// A connection taken over after `101 Switching Protocols` ([`ResponseBody::upgrade`]): bytes the
/// client sent after its request come first. Closed when dropped.
///
/// # Cancel safety
/// A kill or Timeout landing in a read or write closes the connection when the value drops.
pub struct Upgraded {
    conn: Rc<RefCell<Conn>>,
}

impl Upgraded {
    /// How long one read may wait (`None`, the default after the upgrade: forever).
    ///
    /// # Errors
    /// As the transport's.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        let mut c = borrow(&self.conn)?;
        c.read_timeout = t;
        c.io.set_read_timeout(t)
    }

    /// How long one write may wait (`None`: forever; the server's write timeout until set).
    ///
    /// # Errors
    /// As the transport's.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        borrow(&self.conn)?.io.set_write_timeout(t)
    }
}

impl Read for Upgraded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut c = borrow(&self.conn)?;
        if c.rstart < c.rend {
            let n = buf.len().min(c.rend - c.rstart);
            let s = c.rstart;
            buf[..n].copy_from_slice(&c.rbuf[s..s + n]);
            c.rstart += n;
            return Ok(n);
        }
        c.io.read(buf)
    }
}

impl Write for Upgraded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        borrow(&self.conn)?.io.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        borrow(&self.conn)?.io.flush()
    }
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Upgraded")
    }
}

/// What to do after a response.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    KeepAlive,
    Close,
    /// Close after reading what the client still sends for a moment.
    CloseLinger,
}

/// Serves requests on `io` until the connection closes.
pub(crate) fn serve(io: Box<dyn Transport>, ctx: &ConnCtx) {
    let conn = Rc::new(RefCell::new(Conn::new(io, ctx.config.clone(), ctx.peer)));
    let _ = conn
        .borrow()
        .io
        .set_write_timeout(Some(ctx.config.write_timeout));
    let mut first = true;
    loop {
        if ctx.stopping.get() {
            conn.borrow_mut().close(false);
            return;
        }
        ctx.phase.set(Phase::Idle);
        let head = conn.borrow_mut().read_head(first, &ctx.phase);
        first = false;
        ctx.phase.set(Phase::Busy);
        let next = match head {
            Ok(head) => handle(&conn, head, ctx),
            Err(HeadErr::Closed) => Next::Close,
            Err(HeadErr::Timeout) => {
                let mut c = conn.borrow_mut();
                c.write_error(StatusCode::REQUEST_TIMEOUT);
                Next::CloseLinger
            }
            Err(HeadErr::Refuse(status)) => {
                let mut c = conn.borrow_mut();
                c.write_error(status);
                Next::CloseLinger
            }
        };
        let mut c = conn.borrow_mut();
        match next {
            Next::KeepAlive if !c.broken => {
                // Pipelined requests already buffered: their responses go out together.
                if c.rstart == c.rend || c.wbuf.len() >= COPY_BODY {
                    let _ = c.flush();
                }
            }
            Next::KeepAlive | Next::Close => {
                // Unread input (a pipelined request after `Connection: close`, a body not
                // read): closing now could reset the connection before the client reads the
                // response.
                let linger = (c.rstart < c.rend || c.body != BodyState::Done) && !c.broken;
                return c.close(linger);
            }
            Next::CloseLinger => return c.close(true),
        }
    }
}

/// What the access log needs of a request.
struct LogInfo {
    line: String,
    referer: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    start: Instant,
}

/// One request: the handler, its response, the body's drain.
fn handle(conn: &Rc<RefCell<Conn>>, head: Head, ctx: &ConnCtx) -> Next {
    let id = {
        let mut c = conn.borrow_mut();
        c.req_id += 1;
        c.body = head.body;
        c.body_total = 0;
        c.body_fail = None;
        c.continue_pending = head.expect_continue && head.body != BodyState::Done;
        c.trailers = None;
        c.sent = false;
        c.resp_start = c.wbuf.len();
        c.body_bytes = 0;
        c.req_id
    };
    let log = ctx.config.access_log.as_ref().map(|_| LogInfo {
        line: format!("{} {} {:?}", head.method, head.uri, head.version),
        referer: head.headers.get(header::REFERER).cloned(),
        user_agent: head.headers.get(header::USER_AGENT).cloned(),
        start: Instant::now(),
    });
    let is_head = head.method == Method::HEAD;
    let v10 = head.version == Version::HTTP_10;
    let keep = head.keep_alive;
    let mut req = Request::new(Body {
        conn: Some(conn.clone()),
        id,
    });
    *req.method_mut() = head.method;
    *req.uri_mut() = head.uri;
    *req.version_mut() = head.version;
    *req.headers_mut() = head.headers;

    let r = catch_unwind(AssertUnwindSafe(|| {
        let resp = (ctx.handler)(req);
        respond(conn, resp, keep && !ctx.stopping.get(), is_head, v10)
    }));
    let (next, status) = match r {
        Ok(r) => r,
        Err(p) if p.is::<String>() || p.is::<&'static str>() => {
            eprintln!(
                "<{}> http handler panicked: {}",
                ctx.name.borrow(),
                greenlet::panic_message(&*p)
            );
            let mut c = conn.borrow_mut();
            if c.sent {
                return Next::Close;
            }
            c.discard_response();
            c.write_error(StatusCode::INTERNAL_SERVER_ERROR);
            (Next::CloseLinger, StatusCode::INTERNAL_SERVER_ERROR)
        }
        // A kill or a Timeout: unwind on; the connection closes as its greenlet ends.
        Err(p) => resume_unwind(p),
    };
    if let (Some(info), Some(sink)) = (log, &ctx.config.access_log) {
        let bytes = conn.borrow().body_bytes;
        super::log::access_line(
            sink,
            ctx.peer,
            &info.line,
            status,
            bytes,
            info.referer.as_ref(),
            info.user_agent.as_ref(),
            info.start.elapsed(),
        );
    }
    next
}

/// Writes the handler's response (or the refusal that replaces it). Returns what to do next and
/// the status sent.
fn respond(
    conn: &Rc<RefCell<Conn>>,
    resp: Response<ResponseBody>,
    keep: bool,
    is_head: bool,
    v10: bool,
) -> (Next, StatusCode) {
    let (parts, body) = resp.into_parts();
    let status = parts.status;
    let mut keep = keep
        && !parts
            .headers
            .get(header::CONNECTION)
            .is_some_and(|v| has_token(v.as_bytes(), b"close"));
    let refuse = |c: &mut Conn, f: BodyFail| match f.status() {
        Some(s) if !c.sent => {
            c.discard_response();
            c.write_error(s);
            (Next::CloseLinger, s)
        }
        _ => (Next::Close, status),
    };
    let no_body = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    match body.0 {
        Kind::Upgrade(f) => {
            let mut c = conn.borrow_mut();
            if status != StatusCode::SWITCHING_PROTOCOLS {
                eprintln!("gevent: http: an upgrade response must have status 101, not {status}");
                c.write_error(StatusCode::INTERNAL_SERVER_ERROR);
                return (Next::CloseLinger, StatusCode::INTERNAL_SERVER_ERROR);
            }
            c.write_head(status, &parts.headers, Out::NoBody, false, false);
            if c.flush().is_err() {
                return (Next::Close, status);
            }
            c.read_timeout = None;
            let _ = c.io.set_read_timeout(None);
            drop(c);
            f(Upgraded { conn: conn.clone() });
            (Next::Close, status)
        }
        Kind::Empty | Kind::Bytes(_) => {
            let mut c = conn.borrow_mut();
            // Drain first, so that a malformed body the handler did not read still gets its 400.
            if !c.drain() {
                keep = false;
                if let Some(f) = c.body_fail {
                    return refuse(&mut c, f);
                }
            }
            let bytes: &[u8] = match &body.0 {
                Kind::Bytes(b) => b,
                _ => &[],
            };
            let out = if no_body || (is_head && matches!(body.0, Kind::Empty)) {
                Out::NoBody
            } else {
                Out::Length(bytes.len() as u64)
            };
            c.write_head(status, &parts.headers, out, !keep, v10);
            if !is_head && out != Out::NoBody {
                c.body_bytes = bytes.len() as u64;
                if bytes.len() > COPY_BODY {
                    if c.flush().is_ok() && c.io.write_all(bytes).is_err() {
                        c.broken = true;
                    }
                } else {
                    c.wbuf.extend_from_slice(bytes);
                }
            }
            (if keep { Next::KeepAlive } else { Next::Close }, status)
        }
        Kind::Reader(..) | Kind::Stream(_) => {
            let mut c = conn.borrow_mut();
            if let Some(f) = c.body_fail {
                return refuse(&mut c, f);
            }
            let declared = match &body.0 {
                Kind::Reader(_, Some(n)) => Some(*n),
                _ => parts
                    .headers
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| parse_decimal(v.as_bytes())),
            };
            let out = match declared {
                _ if no_body => Out::NoBody,
                Some(n) => Out::Length(n),
                None if v10 => Out::Close,
                None if is_head => Out::NoBody,
                None => Out::Chunked,
            };
            if out == Out::Close {
                keep = false;
            }
            c.write_head(status, &parts.headers, out, !keep, v10);
            drop(c);
            let mut w = BodyWriter {
                conn: conn.clone(),
                out,
                discard: is_head || out == Out::NoBody,
                left: declared.unwrap_or(0),
                trailers: HeaderMap::new(),
            };
            let r = match body.0 {
                Kind::Reader(r, Some(n)) => io::copy(&mut r.take(n), &mut w).map(drop),
                Kind::Reader(mut r, None) => io::copy(&mut r, &mut w).map(drop),
                Kind::Stream(f) if !w.discard => f(&mut w),
                _ => Ok(()),
            };
            let r = r.and_then(|()| w.finish());
            let mut c = conn.borrow_mut();
            if let Err(e) = r {
                if !c.sent {
                    // Nothing went out: the head is replaced by a 500.
                    eprintln!("gevent: http: writing a response body failed: {e}");
                    c.discard_response();
                    c.write_error(StatusCode::INTERNAL_SERVER_ERROR);
                    return (Next::CloseLinger, StatusCode::INTERNAL_SERVER_ERROR);
                }
                return (Next::Close, status);
            }
            if !keep || !c.drain() {
                return (Next::Close, status);
            }
            (Next::KeepAlive, status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"0"), Some(0));
        assert_eq!(parse_chunk_size(b"1a"), Some(26));
        assert_eq!(parse_chunk_size(b"A;ext=1"), Some(10));
        assert_eq!(parse_chunk_size(b"ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(parse_chunk_size(b"10000000000000000"), None);
        assert_eq!(parse_chunk_size(b""), None);
        assert_eq!(parse_chunk_size(b"-1"), None);
        assert_eq!(parse_chunk_size(b"0x10"), None);
        assert_eq!(parse_chunk_size(b"1 2"), None);
        assert_eq!(parse_chunk_size(b" 1"), None);
    }

    #[test]
    fn decimals() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"+1"), None);
        assert_eq!(parse_decimal(b"1.0"), None);
        assert_eq!(parse_decimal(b"99999999999999999999"), None);
    }

    #[test]
    fn head_ends() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\n"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }
}
