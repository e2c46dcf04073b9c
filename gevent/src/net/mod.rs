//! Cooperative sockets shaped like `std::net`: [`TcpListener`], [`TcpStream`], [`UdpSocket`],
//! [`UnixListener`], [`UnixStream`], [`UnixDatagram`] (gevent's `gevent.socket`).
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
//!   `NotConnected` error and makes every later operation on the socket fail the same way (I/O,
//!   `accept`, `connect`, `shutdown`, `local_addr`, `peer_addr`, socket options, `take_error`,
//!   `try_clone`, `listen`); what touches no socket state still answers (`is_closed`, the hub-kept
//!   timeouts, `as_raw_fd`). The fd itself is closed when the value is dropped.
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

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

pub(crate) mod socket;
mod tcp;
mod udp;
mod unix;

pub use self::tcp::{TcpListener, TcpStream};
pub use self::udp::UdpSocket;
pub use self::unix::{UnixDatagram, UnixListener, UnixStream};
pub use crate::io::{wait_read, wait_write};

/// The accept-queue length [`TcpListener::bind`] and [`UnixListener::bind`] listen with (the kernel
/// caps it at `net.core.somaxconn`). See [`TcpListener::bind_with_backlog`] to choose another.
pub const DEFAULT_BACKLOG: u32 = 1024;

/// `listen(2)` on `fd` with `backlog` (clamped to `i32::MAX`): on a listening socket, sets its
/// accept queue's length.
fn listen(fd: std::os::fd::RawFd, backlog: u32) -> io::Result<()> {
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    // SAFETY: listen(2) takes no memory; an fd that is not a socket is reported as an error.
    if unsafe { libc::listen(fd, backlog) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

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
    match crate::threadpool::default_pool()
        .spawn(move || {
            std::net::ToSocketAddrs::to_socket_addrs(&addr).map(|it| it.collect::<Vec<_>>())
        })
        .join()
    {
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
