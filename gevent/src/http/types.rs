//! What the connection code and the server share: [`Config`], [`Transport`], [`Handler`],
//! and a connection's view of its server.

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use super::{Body, Request, Response, ResponseBody};
use crate::logging::LogWriter;
use crate::net::TcpStream;

/// Whether a connection waits for a request (graceful stop closes those at once) or serves one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Idle,
    Busy,
}

/// What a server calls for every request: plain blocking Rust, run in the connection's greenlet.
pub type Handler = Rc<dyn Fn(Request<Body>) -> Response<ResponseBody>>;

/// A connection the server can speak HTTP over: a [`TcpStream`], or a TLS stream over one.
///
/// Reads and writes park the calling greenlet (never the hub); the timeouts are per call.
pub trait Transport: Read + Write {
    /// How long one read may wait before failing with `TimedOut` or `WouldBlock` (`None`: forever).
    ///
    /// # Errors
    /// As the underlying socket's.
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    /// How long one write may wait before failing with `TimedOut` or `WouldBlock` (`None`: forever).
    ///
    /// # Errors
    /// As the underlying socket's.
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    /// Ends the sending side politely (TCP: `shutdown(Write)`; TLS: `close_notify` first). The
    /// server still reads (and discards) what the peer sends afterwards for a moment, so that
    /// closing does not reset a response the peer has not read yet.
    ///
    /// # Errors
    /// As the underlying socket's.
    fn shutdown_write(&mut self) -> io::Result<()>;
    /// Called before the server drops a connection it ends without lingering: a TLS stream
    /// sends `close_notify` here, so that its peer reads a clean end rather than a truncation.
    /// The default does nothing (dropping a TCP stream closes it).
    ///
    /// # Errors
    /// As the underlying socket's; the server ignores them.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for TcpStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, t)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        TcpStream::shutdown(self, std::net::Shutdown::Write)
    }
}

/// TLS over TCP: timeouts on the TCP stream; shutting down sends `close_notify`, then the TCP FIN.
#[cfg(feature = "ssl")]
impl Transport for crate::ssl::TlsStream<TcpStream> {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        crate::ssl::TlsStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        crate::ssl::TlsStream::set_write_timeout(self, t)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        crate::ssl::TlsStream::shutdown(self)?;
        self.get_ref().shutdown(std::net::Shutdown::Write)
    }
    fn finish(&mut self) -> io::Result<()> {
        crate::ssl::TlsStream::shutdown(self)
    }
}

/// Limits and timeouts, with Go-like defaults (see the [module docs](super)).
#[derive(Clone, Debug)]
pub struct Config {
    /// The whole request head must arrive within this (10 s); then 408 and close.
    pub header_timeout: Duration,
    /// How long a kept-alive connection waits for its next request (60 s).
    pub idle_timeout: Duration,
    /// How long one read of a request body may wait for data (30 s).
    pub body_timeout: Duration,
    /// How long one write may wait for the client to make room (60 s).
    pub write_timeout: Duration,
    /// The longest request line, in bytes (8 KiB); longer: 414.
    pub max_request_line: usize,
    /// The largest header section, in bytes (64 KiB); larger: 431 (a larger chunked trailer
    /// section: 400).
    pub max_header_bytes: usize,
    /// The most header fields in a request (100); more: 431.
    pub max_headers: usize,
    /// The largest request body, in bytes (16 MiB); larger: 413.
    pub max_body: u64,
    /// How much of a body the handler did not read is read and discarded to keep the connection
    /// (256 KiB); more closes the connection.
    pub drain_limit: u64,
    /// The `Server` header (unless the handler sets one); `None`: no header.
    pub server_name: Option<String>,
    /// Where one line per response goes, in the combined log format (Apache's, as pywsgi's)
    /// followed by the seconds taken (`None`, the default: no access log):
    ///
    /// `127.0.0.1 - - [07/Dec/2026:08:55:24 +0000] "GET / HTTP/1.1" 200 13 "-" "curl/7.88.1" 0.000120`
    ///
    /// A [`LogWriter`] never blocks the hub: lines that do not fit its buffer are dropped and
    /// counted ([`LogWriter::dropped`]). One writer may serve every worker of
    /// [`Server::bind_workers_with`](super::Server::bind_workers_with).
    pub access_log: Option<LogWriter>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(60),
            max_request_line: 8 * 1024,
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_body: 16 * 1024 * 1024,
            drain_limit: 256 * 1024,
            server_name: Some("gevent-rs".to_owned()),
            access_log: None,
        }
    }
}

/// What a connection's greenlet needs from its server.
pub(crate) struct ConnCtx {
    pub(crate) handler: Handler,
    pub(crate) config: Rc<Config>,
    /// Whether the connection waits for a request (graceful stop closes it at once).
    pub(crate) phase: Rc<Cell<Phase>>,
    pub(crate) stopping: Rc<Cell<bool>>,
    /// The greenlet's name, for log lines.
    pub(crate) name: Rc<RefCell<String>>,
    pub(crate) peer: SocketAddr,
}
