//! TLS on [rustls](https://docs.rs/rustls) (gevent's `gevent.ssl`): [`TlsStream`] over any
//! cooperative stream, made by a [`TlsAcceptor`] (servers) or a [`TlsConnector`] (clients), and TLS
//! for [`StreamServer`] ([`StreamServer::bind_tls`]).
//!
//! Cargo feature `ssl` (on by default). The crypto provider is *ring*; every config made here asks
//! for it explicitly, so another crate enabling rustls's `aws-lc-rs` feature changes nothing.
//!
//! # Ground rules
//! - A [`TlsStream`] is a plain `Read + Write` over another `Read + Write` (normally a
//!   [`TcpStream`]): whenever TLS needs bytes from the peer or has records to send, it reads or
//!   writes the inner stream, which parks the calling greenlet. So a TLS connection blocks only its
//!   own greenlet, and any code written against `std::io` works over it.
//! - The handshake runs in [`TlsAcceptor::accept`] / [`TlsConnector::connect`], or, for streams made
//!   with [`accept_lazy`](TlsAcceptor::accept_lazy) / [`connect_lazy`](TlsConnector::connect_lazy),
//!   in [`TlsStream::handshake`] or the first read or write. It is bounded by a handshake timeout
//!   (10 s by default; [`TlsAcceptor::with_handshake_timeout`]), after which it fails with
//!   `TimedOut`.
//! - Errors are `io::Error`s. A TLS protocol failure is `InvalidData` wrapping the
//!   [`rustls::Error`]; a peer that is not speaking TLS at all (a plaintext HTTP client on a TLS
//!   port, or a plaintext server) is `InvalidData` wrapping a [`NotTlsError`] whose message starts
//!   with "peer is not speaking TLS (plaintext HTTP?)". A server also answers a plaintext HTTP client
//!   with `400 Bad Request` (as Go's `net/http` does), so the client sees why.
//! - Closing: [`TlsStream::shutdown`] sends the TLS `close_notify` alert. A read returns `Ok(0)` (EOF)
//!   only after the peer's `close_notify`. A peer that closes TCP without one (a truncation attack,
//!   or just a sloppy peer) makes the read fail with `UnexpectedEof` instead, so a truncated body is
//!   never taken for a whole one; [`TlsStream::set_suppress_ragged_eofs`] turns that into `Ok(0)`
//!   (Python's `suppress_ragged_eofs`). Dropping a `TlsStream` does not send `close_notify` (a drop
//!   must not wait): call `shutdown` first for a clean close.
//! - One greenlet at a time uses a `TlsStream` (its methods take `&mut self`); a connection read by
//!   one greenlet while another writes it needs two TCP connections or a lock around the stream.
//! - Read and write timeouts are the inner stream's: [`TlsStream::set_read_timeout`] and
//!   [`TlsStream::set_write_timeout`] set the [`TcpStream`]'s.
//!
//! # Examples
//! A server and a client on one hub, over loopback:
//! ```
//! use std::io::{Read, Write};
//! use gevent::net::{TcpListener, TcpStream};
//! use gevent::ssl::{TlsAcceptor, TlsConnector};
//! # let key = rcgen::KeyPair::generate().unwrap();
//! # let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
//! #     .unwrap().self_signed(&key).unwrap();
//! # let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
//!
//! // cert_pem, key_pem: a certificate for "localhost" and its key, in PEM.
//! let acceptor = TlsAcceptor::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())
//!     .unwrap()
//!     .with_alpn(&[b"http/1.1"]);
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! let server = gevent::spawn(move || {
//!     let (tcp, _) = listener.accept().unwrap();
//!     let mut tls = acceptor.accept(tcp).unwrap();
//!     assert_eq!(tls.server_name(), Some("localhost"));
//!     let mut buf = [0; 5];
//!     tls.read_exact(&mut buf).unwrap();
//!     tls.write_all(&buf.to_ascii_uppercase()).unwrap();
//!     tls.shutdown().unwrap();
//! });
//!
//! let connector = TlsConnector::with_root_pem(cert_pem.as_bytes())
//!     .unwrap()
//!     .with_alpn(&[b"h2", b"http/1.1"]);
//! let mut tls = connector.connect("localhost", TcpStream::connect(addr).unwrap()).unwrap();
//! assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
//! tls.write_all(b"hello").unwrap();
//! let mut out = String::new();
//! tls.read_to_string(&mut out).unwrap(); // Ok: the server sent close_notify
//! assert_eq!(out, "HELLO");
//! server.join();
//! ```

use std::fmt;
use std::io::{self, BufRead, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig};

use crate::net::{TcpListener, TcpStream, ToSocketAddrs};
use crate::server::StreamServer;

pub use rustls;

/// The handshake timeout acceptors and connectors start with.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The crypto provider every config here is built with: rustls's *ring* provider (TLS 1.2 and
/// 1.3, X25519/P-256/P-384 key exchange). Use it for configs made with rustls directly
/// (`ServerConfig::builder_with_provider(gevent::ssl::crypto_provider())`).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| {
        // rustls 0.23.48 deprecates it only because ring has no post-quantum key exchange;
        // aws-lc-rs (which has) takes too long to build here, and ring is what we chose.
        #[allow(deprecated)]
        let p = rustls::crypto::ring::default_provider();
        Arc::new(p)
    })
    .clone()
}

fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

fn pem_error(what: &str, e: rustls::pki_types::pem::Error) -> io::Error {
    match e {
        rustls::pki_types::pem::Error::Io(e) => io::Error::new(e.kind(), format!("{what}: {e}")),
        e => invalid_input(format!("{what}: {e}")),
    }
}

fn certs_from_iter<'a>(
    what: &str,
    it: impl Iterator<Item = Result<CertificateDer<'a>, rustls::pki_types::pem::Error>>,
) -> io::Result<Vec<CertificateDer<'a>>> {
    let certs = it
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, e))?;
    if certs.is_empty() {
        return Err(invalid_input(format!(
            "{what}: no PEM certificate (-----BEGIN CERTIFICATE-----) found"
        )));
    }
    Ok(certs)
}

fn key_from(
    what: &str,
    r: Result<PrivateKeyDer<'static>, rustls::pki_types::pem::Error>,
) -> io::Result<PrivateKeyDer<'static>> {
    r.map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => invalid_input(format!(
            "{what}: no PEM private key (PKCS#8, PKCS#1 or SEC1) found"
        )),
        e => pem_error(what, e),
    })
}

fn alpn_list(protocols: &[&[u8]]) -> Vec<Vec<u8>> {
    protocols.iter().map(|p| p.to_vec()).collect()
}

/// The server side: makes server [`TlsStream`]s from accepted connections. Cheap to clone, `Send`
/// and `Sync` (one acceptor can serve the workers on every thread).
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
    handshake_timeout: Option<Duration>,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

impl TlsAcceptor {
    /// An acceptor serving the certificate chain in the PEM file `cert` (leaf first, then any
    /// intermediates) with the private key in the PEM file `key` (PKCS#8, PKCS#1 or SEC1). TLS 1.2
    /// and 1.3, no client certificates. The files are read at once, synchronously.
    ///
    /// # Errors
    /// The file's error (`NotFound`, ...) with its path; `InvalidInput` when a file holds no
    /// certificate or key, or when the key does not fit the certificate.
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> io::Result<TlsAcceptor> {
        let (cert, key) = (cert.as_ref(), key.as_ref());
        let cwhat = format!("certificate file {}", cert.display());
        let kwhat = format!("key file {}", key.display());
        let certs = certs_from_iter(
            &cwhat,
            CertificateDer::pem_file_iter(cert).map_err(|e| pem_error(&cwhat, e))?,
        )?;
        let key = key_from(&kwhat, PrivateKeyDer::from_pem_file(key))?;
        TlsAcceptor::from_der(certs, key)
    }

    /// As [`from_pem_files`](TlsAcceptor::from_pem_files), from PEM text in memory.
    ///
    /// # Errors
    /// `InvalidInput` when there is no certificate or key, or they do not fit.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> io::Result<TlsAcceptor> {
        let certs = certs_from_iter("certificate PEM", CertificateDer::pem_slice_iter(cert_pem))?
            .into_iter()
            .map(|c| c.into_owned())
            .collect();
        let key = key_from("key PEM", PrivateKeyDer::from_pem_slice(key_pem))?;
        TlsAcceptor::from_der(certs, key)
    }

    /// As [`from_pem_files`](TlsAcceptor::from_pem_files), from DER values.
    ///
    /// # Errors
    /// `InvalidInput` when the key is unusable or does not fit the certificate.
    pub fn from_der(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> io::Result<TlsAcceptor> {
        let config = ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| invalid_input(format!("certificate and key: {e}")))?;
        Ok(TlsAcceptor::from_config(Arc::new(config)))
    }

    /// An acceptor for a config made with rustls directly (client certificates, certificates chosen
    /// by SNI, session storage, ...). Build it with [`crypto_provider`]
    /// (`ServerConfig::builder_with_provider`) to stay off the process-wide default.
    pub fn from_config(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor {
            config,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }

    /// Offers these ALPN protocols (`b"h2"`, `b"http/1.1"`, ...), in order of preference. A client
    /// offering none of them fails the handshake (`no_application_protocol`); a client offering no
    /// ALPN at all is accepted, with [`TlsStream::alpn_protocol`] `None`.
    pub fn with_alpn(mut self, protocols: &[&[u8]]) -> TlsAcceptor {
        Arc::make_mut(&mut self.config).alpn_protocols = alpn_list(protocols);
        self
    }

    /// Bounds every handshake of this acceptor's streams (`None`: no bound). Default 10 s.
    pub fn with_handshake_timeout(mut self, timeout: Option<Duration>) -> TlsAcceptor {
        self.handshake_timeout = timeout;
        self
    }

    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> Option<Duration> {
        self.handshake_timeout
    }

    /// The rustls config.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// Wraps an accepted connection and runs the handshake.
    ///
    /// # Errors
    /// `TimedOut` when the handshake timeout passes; `InvalidData` for a TLS failure or a peer not
    /// speaking TLS ([`NotTlsError`]); `UnexpectedEof` when the peer closes during the handshake;
    /// the inner stream's errors.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it; the connection is dropped (closed).
    pub fn accept<S: Read + Write>(&self, stream: S) -> io::Result<TlsStream<S>> {
        let mut s = self.accept_lazy(stream)?;
        s.handshake()?;
        Ok(s)
    }

    /// Wraps an accepted connection without a handshake yet: it runs in [`TlsStream::handshake`]
    /// or the first read or write.
    ///
    /// # Errors
    /// Only if rustls cannot make a connection from the config.
    pub fn accept_lazy<S>(&self, stream: S) -> io::Result<TlsStream<S>> {
        let conn = rustls::ServerConnection::new(self.config.clone()).map_err(tls_error)?;
        Ok(TlsStream::new(
            Connection::Server(conn),
            stream,
            None,
            self.handshake_timeout,
        ))
    }

    /// Turns a handler of TLS streams into a [`StreamServer`] handler: each connection's handshake
    /// runs in that connection's own greenlet (never in the accept loop, so a slow or silent client
    /// delays nobody), bounded by the handshake timeout; then `handler` gets the stream. A failed
    /// handshake is logged on stderr (`gevent: TLS handshake with PEER failed: ...`) and the
    /// connection closed.
    pub fn wrap_handler(
        &self,
        handler: impl Fn(TlsStream<TcpStream>, SocketAddr) + 'static,
    ) -> impl Fn(TcpStream, SocketAddr) + 'static {
        let acceptor = self.clone();
        move |tcp, peer| match acceptor.accept(tcp) {
            Ok(tls) => handler(tls, peer),
            Err(e) => eprintln!("gevent: TLS handshake with {peer} failed: {e}"),
        }
    }
}

/// The client side: makes client [`TlsStream`]s over connected streams. Cheap to clone, `Send` and
/// `Sync`.
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    handshake_timeout: Option<Duration>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

impl TlsConnector {
    /// A connector trusting exactly the CA certificates in `pem` (one or more). TLS 1.2 and 1.3,
    /// SNI on, no client certificate.
    ///
    /// # Errors
    /// `InvalidInput` when `pem` holds no certificate or one that cannot be a trust anchor.
    pub fn with_root_pem(pem: &[u8]) -> io::Result<TlsConnector> {
        let certs = certs_from_iter("root certificate PEM", CertificateDer::pem_slice_iter(pem))?;
        TlsConnector::with_root_der(certs)
    }

    /// As [`with_root_pem`](TlsConnector::with_root_pem), reading a PEM file (synchronously).
    ///
    /// # Errors
    /// The file's error with its path; as [`with_root_pem`](TlsConnector::with_root_pem).
    pub fn with_root_pem_file(path: impl AsRef<Path>) -> io::Result<TlsConnector> {
        let path = path.as_ref();
        let what = format!("root certificate file {}", path.display());
        let certs = certs_from_iter(
            &what,
            CertificateDer::pem_file_iter(path).map_err(|e| pem_error(&what, e))?,
        )?;
        TlsConnector::with_root_der(certs)
    }

    /// As [`with_root_pem`](TlsConnector::with_root_pem), from DER certificates.
    ///
    /// # Errors
    /// `InvalidInput` for a certificate that cannot be a trust anchor.
    pub fn with_root_der(certs: Vec<CertificateDer<'_>>) -> io::Result<TlsConnector> {
        let mut roots = RootCertStore::empty();
        for c in certs {
            roots
                .add(c)
                .map_err(|e| invalid_input(format!("root certificate: {e}")))?;
        }
        let config = ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsConnector::from_config(Arc::new(config)))
    }

    /// A connector for a config made with rustls directly (other roots such as `webpki-roots`, client
    /// certificates, ...). Build it with [`crypto_provider`]
    /// (`ClientConfig::builder_with_provider`) to stay off the process-wide default.
    pub fn from_config(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector {
            config,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }

    /// Offers these ALPN protocols, in order of preference. A server that picks none is accepted,
    /// with [`TlsStream::alpn_protocol`] `None`.
    pub fn with_alpn(mut self, protocols: &[&[u8]]) -> TlsConnector {
        Arc::make_mut(&mut self.config).alpn_protocols = alpn_list(protocols);
        self
    }

    /// Bounds every handshake of this connector's streams (`None`: no bound). Default 10 s.
    pub fn with_handshake_timeout(mut self, timeout: Option<Duration>) -> TlsConnector {
        self.handshake_timeout = timeout;
        self
    }

    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> Option<Duration> {
        self.handshake_timeout
    }

    /// The rustls config.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// Wraps a connected stream and runs the handshake with the server `server_name`: a DNS name
    /// (sent as SNI, and the certificate must be valid for it) or an IP address (no SNI; the
    /// certificate must hold that address).
    ///
    /// # Errors
    /// `InvalidInput` for a malformed name; `InvalidData` for a TLS failure (a certificate that is
    /// not trusted or not for `server_name`, ...) or a server not speaking TLS ([`NotTlsError`]);
    /// `TimedOut` when the handshake timeout passes; `UnexpectedEof` when the server closes during
    /// the handshake; the inner stream's errors.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it; the connection is dropped (closed).
    pub fn connect<S: Read + Write>(
        &self,
        server_name: &str,
        stream: S,
    ) -> io::Result<TlsStream<S>> {
        let mut s = self.connect_lazy(server_name, stream)?;
        s.handshake()?;
        Ok(s)
    }

    /// As [`connect`](TlsConnector::connect) without the handshake yet: it runs in
    /// [`TlsStream::handshake`] or the first read or write.
    ///
    /// # Errors
    /// `InvalidInput` for a malformed name.
    pub fn connect_lazy<S>(&self, server_name: &str, stream: S) -> io::Result<TlsStream<S>> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| invalid_input(format!("TLS server name {server_name:?}: {e}")))?;
        let conn = ClientConnection::new(self.config.clone(), name).map_err(tls_error)?;
        Ok(TlsStream::new(
            Connection::Client(conn),
            stream,
            Some(server_name.to_owned().into_boxed_str()),
            self.handshake_timeout,
        ))
    }
}

/// The peer is not speaking TLS: its first bytes cannot start a TLS record. Carried inside an
/// `io::Error` of kind `InvalidData` (get it back with `err.get_ref()` and `downcast_ref`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotTlsError {
    /// Up to the first 8 bytes the peer sent.
    pub first_bytes: Vec<u8>,
}

impl fmt::Display for NotTlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "peer is not speaking TLS (plaintext HTTP?): its first bytes are {:?}",
            String::from_utf8_lossy(&self.first_bytes)
        )
    }
}

impl std::error::Error for NotTlsError {}

/// What a server answers a client that sent plaintext HTTP to the TLS port (Go's words).
const PLAINTEXT_HTTP_ANSWER: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; \
    charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// TLS record content types a peer may open with: handshake (0x16) and, from a server refusing us,
/// alert (0x15).
const TLS_HANDSHAKE: u8 = 0x16;
const TLS_ALERT: u8 = 0x15;

/// Passes reads through, keeping a copy of the first few bytes of the first non-empty one.
struct Tap<'a, S> {
    io: &'a mut S,
    first: &'a mut Vec<u8>,
}

impl<S: Read> Read for Tap<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.io.read(buf)?;
        if self.first.is_empty() {
            self.first.extend_from_slice(&buf[..n.min(8)]);
        }
        Ok(n)
    }
}

/// A TLS connection over the stream `S` (by default a [`TcpStream`]), client or server side: made
/// by [`TlsConnector::connect`] or [`TlsAcceptor::accept`]. Implements `Read`, `BufRead` and `Write`;
/// see the [module docs](self) for the rules.
///
/// # Errors
/// Every I/O method may fail as the inner stream does (`TimedOut` after its timeout, ...), with
/// `InvalidData` for a TLS protocol failure or a handshake failure (the lazy handshake runs in the
/// first read or write), and with `UnexpectedEof` when the peer closed TCP without `close_notify`.
///
/// # Cancel safety
/// A kill or Timeout landing in a read unwinds out of it and loses nothing. One landing in a write
/// unwinds after the data may have been taken in (encrypted and queued; the queue goes out before any
/// later write's data): do not write it again, treat the stream as broken. One landing in a
/// handshake leaves it half done; it resumes on the next call.
pub struct TlsStream<S = TcpStream> {
    conn: Connection,
    io: S,
    /// The name a client connected to (a server reads the SNI from `conn`).
    client_name: Option<Box<str>>,
    handshake_timeout: Option<Duration>,
    /// Whether the peer's first bytes were checked for being TLS.
    sniffed: bool,
    suppress_ragged_eofs: bool,
}

impl<S> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("side", &if self.is_server() { "server" } else { "client" })
            .field("server_name", &self.server_name())
            .field("handshaking", &self.conn.is_handshaking())
            .field("protocol_version", &self.conn.protocol_version())
            .field("alpn", &self.alpn_protocol().map(String::from_utf8_lossy))
            .finish()
    }
}

impl<S> TlsStream<S> {
    fn new(
        conn: Connection,
        io: S,
        client_name: Option<Box<str>>,
        handshake_timeout: Option<Duration>,
    ) -> TlsStream<S> {
        TlsStream {
            conn,
            io,
            client_name,
            handshake_timeout,
            sniffed: false,
            suppress_ragged_eofs: false,
        }
    }

    /// The inner stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The inner stream, mutably (reading or writing it directly corrupts the TLS stream).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// The inner stream, dropping the TLS state (nothing is sent: no `close_notify`).
    pub fn into_inner(self) -> S {
        self.io
    }

    /// The rustls connection (for what this type does not forward: exporters, key updates, ...).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The rustls connection, mutably (for what this type does not forward).
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Whether this is the server side.
    pub fn is_server(&self) -> bool {
        matches!(self.conn, Connection::Server(_))
    }

    /// Whether the handshake has yet to finish.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The server name: on a server, the one the client asked for with SNI (`None` if it sent none,
    /// as clients connecting to an IP address do, or before the ClientHello arrived); on a client,
    /// the name it connected to.
    pub fn server_name(&self) -> Option<&str> {
        match &self.conn {
            Connection::Server(c) => c.server_name(),
            Connection::Client(_) => self.client_name.as_deref(),
        }
    }

    /// The ALPN protocol both sides agreed on (`None` before the handshake, or if there was none).
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// The TLS version agreed on (`None` before the handshake).
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// The cipher suite agreed on (`None` before the handshake).
    pub fn cipher_suite(&self) -> Option<rustls::SupportedCipherSuite> {
        self.conn.negotiated_cipher_suite()
    }

    /// The peer's certificate chain (a client: the server's; a server: the client's, if it asked for
    /// one), leaf first.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.conn.peer_certificates()
    }

    /// When on, a peer closing TCP without `close_notify` reads as a plain EOF (`Ok(0)`) instead of
    /// an `UnexpectedEof` error (Python's `suppress_ragged_eofs`). Off by default: only turn it on
    /// when the protocol above finds truncation itself (HTTP with `Content-Length` or chunked).
    pub fn set_suppress_ragged_eofs(&mut self, on: bool) {
        self.suppress_ragged_eofs = on;
    }

    /// Whether [`set_suppress_ragged_eofs`](TlsStream::set_suppress_ragged_eofs) is on.
    pub fn suppress_ragged_eofs(&self) -> bool {
        self.suppress_ragged_eofs
    }
}

impl<S: Read + Write> TlsStream<S> {
    /// Runs the handshake if it has not finished (a no-op afterwards), bounded by the acceptor's or
    /// connector's handshake timeout.
    ///
    /// # Errors
    /// As [`TlsAcceptor::accept`] or [`TlsConnector::connect`].
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it, the handshake half done; calling again
    /// resumes it.
    pub fn handshake(&mut self) -> io::Result<()> {
        if !self.conn.is_handshaking() {
            return Ok(());
        }
        match self.handshake_timeout {
            None => self.drive_handshake(),
            Some(t) => match crate::with_timeout(t, || self.drive_handshake()) {
                Ok(r) => r,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("TLS handshake timed out after {t:?}"),
                )),
            },
        }
    }

    fn drive_handshake(&mut self) -> io::Result<()> {
        while self.conn.is_handshaking() {
            self.write_pending()?;
            if !self.conn.is_handshaking() {
                break;
            }
            if !self.conn.wants_read() {
                return Err(io::Error::other("TLS handshake stalled"));
            }
            if self.read_tls()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed the connection during the TLS handshake",
                ));
            }
            self.process()?;
        }
        // The last flight (a client's Finished, a server's session tickets).
        self.write_pending()
    }

    /// Sends the TLS `close_notify` alert (and anything still queued): the peer reads EOF. Reading
    /// goes on working until the peer's own `close_notify`. Calling it again sends nothing more.
    ///
    /// # Errors
    /// The inner stream's write errors.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it; the alert may not have gone out.
    pub fn shutdown(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        self.write_pending()?;
        self.io.flush()
    }

    /// Writes every queued TLS record to the inner stream.
    fn write_pending(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.io)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Reads TLS bytes from the peer into rustls (waiting for them); checks the very first ones.
    fn read_tls(&mut self) -> io::Result<usize> {
        if self.sniffed {
            return self.conn.read_tls(&mut self.io);
        }
        let mut first = Vec::new();
        let n = self.conn.read_tls(&mut Tap {
            io: &mut self.io,
            first: &mut first,
        })?;
        if let Some(&b) = first.first() {
            self.sniffed = true;
            let ok = b == TLS_HANDSHAKE || (!self.is_server() && b == TLS_ALERT);
            if !ok {
                if self.is_server() && b.is_ascii_uppercase() {
                    // An HTTP request line: tell the client why (one small write; errors ignored).
                    let _ = self.io.write(PLAINTEXT_HTTP_ANSWER);
                }
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    NotTlsError { first_bytes: first },
                ));
            }
        }
        Ok(n)
    }

    /// Lets rustls process what was read; on a TLS error, sends the alert it queued.
    fn process(&mut self) -> io::Result<()> {
        match self.conn.process_new_packets() {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = self.write_pending();
                Err(tls_error(e))
            }
        }
    }

    /// Waits until plaintext is ready to read (`Ok(true)`) or the peer closed (`Ok(false)`).
    fn fill(&mut self) -> io::Result<bool> {
        self.handshake()?;
        loop {
            match self.conn.reader().into_first_chunk() {
                Ok([]) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    if self.suppress_ragged_eofs {
                        return Ok(false);
                    }
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "peer closed the connection without a TLS close_notify (the data may be \
                         truncated)",
                    ));
                }
                Err(e) => return Err(e),
            }
            // Records rustls queued in reply (a TLS 1.3 key update, ...) go out before we wait.
            self.write_pending()?;
            self.read_tls()?;
            self.process()?;
        }
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.fill()? {
            return Ok(0);
        }
        self.conn.reader().read(buf)
    }
}

impl<S: Read + Write> BufRead for TlsStream<S> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if !self.fill()? {
            return Ok(&[]);
        }
        self.conn.reader().into_first_chunk()
    }

    fn consume(&mut self, amt: usize) {
        self.conn.reader().consume(amt);
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        self.handshake()?;
        // Anything still queued (a half-sent earlier write) goes first, so rustls has room.
        self.write_pending()?;
        let n = self.conn.writer().write_vectored(bufs)?;
        self.write_pending()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_pending()?;
        self.io.flush()
    }
}

impl TlsStream<TcpStream> {
    /// Sets the TCP stream's read timeout: every read (and handshake read) that waits longer fails
    /// with `TimedOut`. See [`TcpStream::set_read_timeout`].
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)`.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.io.set_read_timeout(t)
    }

    /// Sets the TCP stream's write timeout. See [`TcpStream::set_write_timeout`].
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)`.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.io.set_write_timeout(t)
    }

    /// The TCP stream's read timeout.
    ///
    /// # Errors
    /// Never; `io::Result` for std's shape.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.io.read_timeout()
    }

    /// The TCP stream's write timeout.
    ///
    /// # Errors
    /// Never; `io::Result` for std's shape.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.io.write_timeout()
    }

    /// The local address.
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    /// As `getpeername(2)`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }
}

/// TLS servers: [`StreamServer`]s whose handler gets a [`TlsStream`] (gevent's
/// `StreamServer(.., keyfile=, certfile=)`).
impl StreamServer {
    /// A TLS server on an already bound listener: each connection's handshake runs in that
    /// connection's greenlet (see [`TlsAcceptor::wrap_handler`]), then `handler` gets the stream.
    ///
    /// # Errors
    /// If the listener's address cannot be read.
    pub fn new_tls(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        handler: impl Fn(TlsStream<TcpStream>, SocketAddr) + 'static,
    ) -> io::Result<StreamServer> {
        StreamServer::new(listener, acceptor.wrap_handler(handler))
    }

    /// Binds `addr` and makes a TLS server (not started yet); see
    /// [`new_tls`](StreamServer::new_tls).
    ///
    /// # Examples
    /// ```no_run
    /// use std::io::Write;
    /// use gevent::server::StreamServer;
    /// use gevent::ssl::TlsAcceptor;
    ///
    /// let acceptor = TlsAcceptor::from_pem_files("cert.pem", "key.pem").unwrap();
    /// let server = StreamServer::bind_tls("127.0.0.1:8443", acceptor, |mut tls, _peer| {
    ///     let _ = tls.write_all(b"hello over TLS\n");
    ///     let _ = tls.shutdown();
    /// })
    /// .unwrap();
    /// server.serve_forever();
    /// ```
    ///
    /// # Errors
    /// As [`TcpListener::bind`].
    ///
    /// # Cancel safety
    /// As [`TcpListener::bind`] (only a host-name lookup waits).
    pub fn bind_tls<A: ToSocketAddrs>(
        addr: A,
        acceptor: TlsAcceptor,
        handler: impl Fn(TlsStream<TcpStream>, SocketAddr) + 'static,
    ) -> io::Result<StreamServer> {
        StreamServer::new_tls(TcpListener::bind(addr)?, acceptor, handler)
    }
}
