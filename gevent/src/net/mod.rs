//! Cooperative sockets shaped like `std::net`: [`TcpListener`], [`TcpStream`], [`UdpSocket`],
//! [`UnixListener`], [`UnixStream`] (gevent's `gevent.socket`).
//!
//! Every socket is non-blocking underneath and registered with the hub once, when it is made.
//! Each operation tries the syscall first; only on `WouldBlock` does the greenlet park until the hub's
//! poller reports the socket ready, and the other greenlets run meanwhile. To the caller it looks
//! like ordinary blocking I/O, so `std::io::Read`/`Write` and any code written against them work.
//!
//! # Ground rules
//! - One greenlet at a time may wait to read a socket, and one to write it: a second one that would
//!   have to wait gets an `io::Error` of kind `ResourceBusy` wrapping [`ConcurrentObjectUseError`]
//!   (gevent raises `ConcurrentObjectUseError`). Operations that complete without waiting never
//!   conflict.
//! - `close()` (any socket type, through `&self`) wakes the greenlets waiting on the socket with a
//!   `NotConnected` error and makes every later operation fail the same way; the fd itself is closed
//!   when the value is dropped.
//! - Read and write timeouts ([`TcpStream::set_read_timeout`], ...) are deadlines kept by the hub (not
//!   `SO_RCVTIMEO`); when one passes the operation fails with `io::ErrorKind::TimedOut`.
//! - Host names go through [`resolve`], which runs `getaddrinfo` on the hub's default
//!   [`ThreadPool`](crate::threadpool::ThreadPool); numeric addresses never leave the thread.
//!
//! # Examples
//! The seed's server, one greenlet per connection:
//! ```no_run
//! use std::io::{Read, Write};
//! use gevent::net::TcpListener;
//!
//! let server = TcpListener::bind("127.0.0.1:8800").unwrap();
//! loop {
//!     let (mut conn, _addr) = server.accept().unwrap();
//!     gevent::spawn(move || {
//!         let mut buf = [0u8; 1024];
//!         while let Ok(n @ 1..) = conn.read(&mut buf) {
//!             conn.write_all(&buf[..n].to_ascii_uppercase()).unwrap();
//!         }
//!     });
//! }
//! ```

use std::cell::Cell;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::io::{Interest, IoSource};

mod tcp;
mod udp;
mod unix;

pub use self::tcp::{TcpListener, TcpStream};
pub use self::udp::UdpSocket;
pub use self::unix::{UnixListener, UnixStream};
pub use crate::io::{wait_read, wait_write};

/// Two greenlets tried to wait on the same side (read or write) of one socket at once.
///
/// Carried inside an `io::Error` of kind `ResourceBusy`; get it back with `err.get_ref()` and
/// `downcast_ref`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcurrentObjectUseError {
    /// `"reading"` or `"writing"`.
    pub side: &'static str,
}

impl fmt::Display for ConcurrentObjectUseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ConcurrentObjectUseError: this socket is already used by another greenlet for {}",
            self.side
        )
    }
}

impl std::error::Error for ConcurrentObjectUseError {}

/// The registration and per-side state every socket type shares.
pub(crate) struct Evented {
    src: IoSource,
    reading: Cell<bool>,
    writing: Cell<bool>,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl fmt::Debug for Evented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fd {}", self.src.fd())
    }
}

fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the socket was closed")
}

fn check_timeout(t: Option<Duration>) -> io::Result<()> {
    if t == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(())
}

impl Evented {
    /// Registers `fd`, which must already be non-blocking and outlive the value.
    pub(crate) fn new(fd: RawFd) -> io::Result<Evented> {
        Ok(Evented {
            src: IoSource::new(fd)?,
            reading: Cell::new(false),
            writing: Cell::new(false),
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
        })
    }

    pub(crate) fn close(&self) {
        self.src.close();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.src.is_closed()
    }

    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.read_timeout.set(t);
        Ok(())
    }

    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.write_timeout.set(t);
        Ok(())
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout.get()
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout.get()
    }

    /// Runs a read-side syscall, parking on readability while it says `WouldBlock`.
    pub(crate) fn read<R>(&self, f: impl FnMut() -> io::Result<R>) -> io::Result<R> {
        let deadline = self.read_timeout.get().map(|t| Instant::now() + t);
        self.op(Interest::Read, deadline, f)
    }

    /// Runs a write-side syscall, parking on writability while it says `WouldBlock`.
    pub(crate) fn write<R>(&self, f: impl FnMut() -> io::Result<R>) -> io::Result<R> {
        let deadline = self.write_timeout.get().map(|t| Instant::now() + t);
        self.op(Interest::Write, deadline, f)
    }

    /// The fast path and the park loop. `deadline` overrides the socket's timeout.
    pub(crate) fn op<R>(
        &self,
        interest: Interest,
        deadline: Option<Instant>,
        mut f: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let (busy, side) = match interest {
            Interest::Read => (&self.reading, "reading"),
            Interest::Write => (&self.writing, "writing"),
        };
        let mut claimed = false;
        struct Release<'a>(&'a Cell<bool>, bool);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                if self.1 {
                    self.0.set(false);
                }
            }
        }
        let mut release = Release(busy, false);
        loop {
            if self.src.is_closed() {
                return Err(closed_error());
            }
            match f() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
            if !claimed {
                if busy.get() {
                    return Err(io::Error::new(
                        io::ErrorKind::ResourceBusy,
                        ConcurrentObjectUseError { side },
                    ));
                }
                busy.set(true);
                claimed = true;
                release.1 = true;
            }
            // No readiness can be dispatched between the syscall and here (the hub is not running).
            self.src.clear_ready(interest);
            self.src.wait(interest, deadline)?;
        }
    }

    /// Parks until `interest` readiness (for connect), honouring `deadline`.
    pub(crate) fn wait(&self, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
        self.src.clear_ready(interest);
        self.src.wait(interest, deadline)
    }
}

/// Addresses a socket can be bound or connected to: gevent's version of `std::net::ToSocketAddrs`.
///
/// Implemented for the same types as std's trait. Numeric addresses are parsed in place; host names
/// are looked up with [`resolve`] on the default thread pool, so the hub never blocks on DNS.
pub trait ToSocketAddrs {
    /// The addresses, in the order to try them.
    ///
    /// # Errors
    /// What the lookup returns.
    ///
    /// # Cancel safety
    /// As [`resolve`].
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>>;
}

macro_rules! plain_addrs {
    ($($t:ty),*) => {$(
        impl ToSocketAddrs for $t {
            fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
                Ok(std::net::ToSocketAddrs::to_socket_addrs(self)?.collect())
            }
        }
    )*};
}
plain_addrs!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl ToSocketAddrs for [SocketAddr] {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.to_vec())
    }
}

impl ToSocketAddrs for str {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        if let Ok(a) = self.parse::<SocketAddr>() {
            return Ok(vec![a]);
        }
        resolve(self.to_owned())
    }
}

impl ToSocketAddrs for String {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.as_str().to_socket_addrs()
    }
}

impl ToSocketAddrs for (&str, u16) {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        if let Ok(ip) = self.0.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.1)]);
        }
        resolve((self.0.to_owned(), self.1))
    }
}

impl ToSocketAddrs for (String, u16) {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (self.0.as_str(), self.1).to_socket_addrs()
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (**self).to_socket_addrs()
    }
}

/// Looks up `addr` (`"host:port"`, `(host, port)`, ...) with the system resolver on the hub's
/// default [`ThreadPool`](crate::threadpool::ThreadPool); the calling greenlet waits, the others run.
///
/// # Examples
/// ```
/// let addrs = gevent::net::resolve(("localhost", 80)).unwrap();
/// assert!(addrs.iter().all(|a| a.ip().is_loopback()));
/// ```
///
/// # Errors
/// What `getaddrinfo` returns (no such host, ...).
///
/// # Cancel safety
/// A kill or Timeout landing here unwinds at once; the lookup finishes on its thread and is dropped.
pub fn resolve<A>(addr: A) -> io::Result<Vec<SocketAddr>>
where
    A: std::net::ToSocketAddrs + Send + 'static,
{
    match crate::threadpool::default_pool().spawn(move || {
        std::net::ToSocketAddrs::to_socket_addrs(&addr).map(|it| it.collect::<Vec<_>>())
    }) {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// Tries `f` on every address `addr` resolves to; the last error if none works.
pub(crate) fn each_addr<A: ToSocketAddrs + ?Sized, T>(
    addr: &A,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match f(a) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}
