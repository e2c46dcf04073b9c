//! An HTTP/1.1 server whose handlers are plain blocking Rust (gevent's `pywsgi`).
//!
//! A handler is a function of a [`Request<Body>`](Request) returning a
//! [`Response<ResponseBody>`](Response) (the `http` crate's types, re-exported here). Each connection
//! is served in its own greenlet, so a handler may call anything in gevent (sleep, sockets, pools)
//! and every other connection keeps being served. The request [`Body`] implements [`std::io::Read`]
//! and reads cooperatively; the response body is bytes, a reader, a callback that writes it
//! incrementally ([`ResponseBody::stream`]), or a takeover of the connection after
//! `101 Switching Protocols` ([`ResponseBody::upgrade`], used by [`websocket`]).
//!
//! # Protocol
//! - Keep-alive (HTTP/1.1 by default, HTTP/1.0 with `Connection: keep-alive`), pipelining (requests
//!   are answered in order; a response is flushed at once unless the next request is already
//!   buffered), `Connection: close`, `Expect: 100-continue` (the `100 Continue` is sent when the
//!   handler first reads the body; a handler that never reads it gets the connection closed after
//!   its response instead), HEAD (headers only), `Date` and `Server` headers.
//! - Request bodies: `Content-Length` or `Transfer-Encoding: chunked` (trailers available from
//!   [`Body::trailers`]). Response bodies: `Content-Length` when the length is known, otherwise
//!   chunked for HTTP/1.1 (with trailers from [`BodyWriter::trailer`]) or close-delimited for
//!   HTTP/1.0.
//! - A body the handler did not read is drained before the next request, up to
//!   [`Config::drain_limit`] (256 KiB, as Go); a longer one closes the connection instead.
//!
//! # Refusals (never a desync)
//! Each answers with an error status and `Connection: close`, then closes the connection:
//! - 400: `Content-Length` together with `Transfer-Encoding`; repeated `Content-Length` values that
//!   differ, or one that is not a decimal number; a `Transfer-Encoding` that does not end in
//!   `chunked` (or has `chunked` twice), or any in an HTTP/1.0 request; an invalid chunk size or
//!   chunk framing (when the handler reads the body or the server drains it, before any byte of the
//!   response was sent); obsolete line folding; a bare CR; whitespace in or after a header name; no
//!   or several `Host` headers in HTTP/1.1; a trailer section that is malformed or larger than
//!   the header limits; an HTTP version other than 1.0 and 1.1; anything else `httparse` rejects.
//! - 417: an `Expect` other than `100-continue`.
//! - 414: a request line longer than [`Config::max_request_line`] (8 KiB).
//! - 431: a header section over [`Config::max_header_bytes`] (64 KiB) or over
//!   [`Config::max_headers`] (100) headers.
//! - 413: a `Content-Length` over [`Config::max_body`] (16 MiB), before the handler runs and
//!   without reading the body; a chunked body that grows past it makes the body's read fail and
//!   the server answer 413.
//!
//! # Timeouts (Go's net/http shape)
//! - [`Config::header_timeout`] (10 s): the whole request head must arrive within it, counted from
//!   the accept for a connection's first request and from the first byte for later ones. When it
//!   passes the server answers 408 and closes.
//! - [`Config::idle_timeout`] (60 s): how long a kept-alive connection may wait for the first byte of
//!   its next request; then it is closed without a word.
//! - [`Config::body_timeout`] (30 s): how long one read of the request body may wait for data; when
//!   it passes the read fails with `TimedOut` and the server answers 408 (if the handler's response
//!   was not sent yet) and closes.
//! - [`Config::write_timeout`] (60 s): how long one write may wait for the client to make room.
//!
//! # Failures
//! - A handler that panics: the panic is logged on stderr with the connection greenlet's name, the
//!   client gets a 500 if no byte of the response was sent, and the connection closes; the server
//!   goes on.
//! - A kill or [`Timeout`](crate::Timeout) landing in a handler unwinds it and closes that
//!   connection only (nothing is sent).
//!
//! # Graceful stop
//! [`Server::stop`] stops accepting, closes idle keep-alive connections at once, lets in-flight
//! requests finish (their responses say `Connection: close`) until the timeout, then kills the rest.
//!
//! # Access log
//! [`Config::access_log`] (off by default): one line per response in the combined log format,
//! through a [`LogWriter`](crate::logging::LogWriter), whose writer thread never blocks the hub. The client's address is
//! also available to handlers from [`Body::peer_addr`].
//!
//! # Parser
//! Request heads are parsed by `httparse` (the parser under hyper), with the framing rules above
//! checked here; the chunked decoder is this module's own and strict (CRLF line ends, at most 16 hex
//! digits, nothing but extensions after the size).
//!
//! # Transports and TLS
//! A connection is anything that implements [`Transport`] (`Read + Write`, timeouts, shutdown):
//! [`TcpStream`], and (cargo feature `ssl`) `gevent::ssl::TlsStream<TcpStream>`.
//! [`Server::with_tls`] / [`Server::bind_tls`] serve HTTPS: the handshake runs in the
//! connection's greenlet under the header timeout, a plaintext client gets a 400 and the server
//! goes on, and connections end with `close_notify`. [`Server::with_transport`] takes any other
//! wrapping of accepted connections.
//!
//! # Several cores
//! [`Server::bind_workers`] / [`Server::bind_workers_with`] run a server on each of N hubs (one
//! OS thread each), every hub with its own `SO_REUSEPORT` listener and accept loop; the handler
//! is shared (`Send + Sync`) or made per hub. [`MultiServer::stop`] stops them all gracefully.
//!
//! # Examples
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use gevent::http::{Response, ResponseBody, Server};
//!
//! let server = Server::bind("127.0.0.1:0", |req| {
//!     let greeting = format!("Hello, {}!", req.uri().path());
//!     Response::new(ResponseBody::from(greeting))
//! })
//! .unwrap();
//! server.start();
//! let mut c = gevent::net::TcpStream::connect(server.local_addr()).unwrap();
//! c.write_all(b"GET /world HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
//! let mut got = String::new();
//! c.read_to_string(&mut got).unwrap();
//! assert!(got.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(got.ends_with("\r\n\r\nHello, /world!"));
//! server.stop(Duration::from_secs(1));
//! ```

mod conn;
mod log;
mod server;
mod types;
pub mod websocket;

pub use ::http::{
    header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version,
};

pub use self::conn::{Body, BodyWriter, ResponseBody, Upgraded};
pub use self::server::{serve_connection, MultiServer, Server, BACKLOG};
pub use self::types::{Config, Handler, Transport};

#[cfg(doc)]
use crate::net::TcpStream;
