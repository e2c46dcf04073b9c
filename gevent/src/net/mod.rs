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
//! - `set_nonblocking(true)` (every type) makes an operation that cannot complete at once fail
//!   with `WouldBlock` instead of parking, as a non-blocking std socket does (gevent's
//!   `setblocking(False)`); the default is to park.
//! - Read and write timeouts ([`TcpStream::set_read_timeout`], ...) are deadlines kept by the hub (not
//!   `SO_RCVTIMEO`); when one passes the operation fails with `io::ErrorKind::TimedOut`.
//! - [`create_connection`] is gevent's `create_connection(address, timeout, source_address)`.
//! - Host names go through [`resolve`], which runs `getaddrinfo` on the hub's default
//!   [`ThreadPool`](crate::threadpool::ThreadPool); numeric addresses never leave the thread.
//!
//! # From `gevent.socket`
//! | gevent | here |
//! |---|---|
//! | `socket.socket(AF_INET, SOCK_STREAM)` + `connect` | [`TcpStream::connect`] (any [`ToSocketAddrs`]) |
//! | `socket.create_connection(addr, timeout, source_address)` | [`create_connection`] |
//! | `sock.bind(addr); sock.listen(n)` | [`TcpListener::bind`], [`TcpListener::bind_with_backlog`], [`TcpListener::listen`] |
//! | `sock.accept()` | [`TcpListener::accept`], [`TcpListener::accept_timeout`], [`TcpListener::incoming`] |
//! | `sock.settimeout(t)` | `set_read_timeout` / `set_write_timeout` (`TimedOut` when it passes) |
//! | `sock.setblocking(False)` | `set_nonblocking(true)`: `WouldBlock` instead of parking |
//! | `sock.dup()` | `try_clone` (every type) |
//! | `setsockopt(IP_TTL / SO_LINGER / IP_ADD_MEMBERSHIP ...)` | `set_ttl`, [`TcpStream::set_linger`], [`UdpSocket::join_multicast_v4`] ... |
//! | `sock.close()` | `close()` (wakes the waiters), or drop |
//! | `getaddrinfo(host, port)` | [`resolve`] (on the thread pool) |
//! | `wait_read(fd)` / `wait_write(fd)` | [`wait_read`] / [`wait_write`] |
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

pub use self::tcp::{create_connection, TcpListener, TcpStream};
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
/// Implemented for the same types as std's trait (and `Vec<SocketAddr>`, `[SocketAddr; N]`).
/// Numeric addresses are parsed in place; host names are looked up with [`resolve`] on the
/// default thread pool, so the hub never blocks on DNS. Any other `std::net::ToSocketAddrs`
/// value (a type of yours, a generic parameter) goes in through [`StdAddrs`].
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

impl ToSocketAddrs for Vec<SocketAddr> {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.clone())
    }
}

impl<const N: usize> ToSocketAddrs for [SocketAddr; N] {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.to_vec())
    }
}

/// Any `std::net::ToSocketAddrs` value, for the gevent constructors: `TcpStream::connect(StdAddrs(a))`.
///
/// [`ToSocketAddrs`] is implemented for every type std implements its trait for (numeric
/// addresses parsed in place, host names looked up on the thread pool), but not for a type of
/// yours, nor for a generic `A: std::net::ToSocketAddrs` parameter: the compiler cannot tell
/// whether such a value names a host, and std's lookup would block the whole hub. Wrapped in
/// `StdAddrs`, the value is converted on the hub's default
/// [`ThreadPool`](crate::threadpool::ThreadPool), as [`resolve`] does: always cooperative, at
/// the cost of a round trip to a thread even for a numeric address.
///
/// # Examples
/// ```
/// use gevent::net::{StdAddrs, TcpListener, TcpStream};
///
/// fn connect_any<A: std::net::ToSocketAddrs + Clone + Send + 'static>(a: A) -> std::io::Result<TcpStream> {
///     TcpStream::connect(StdAddrs(a))
/// }
/// let l = TcpListener::bind("127.0.0.1:0").unwrap();
/// let port = l.local_addr().unwrap().port();
/// let c = connect_any(("localhost".to_string(), port));
/// # let _ = c;
/// ```
///
/// # Cancel safety
/// As [`resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StdAddrs<A>(pub A);

impl<A> ToSocketAddrs for StdAddrs<A>
where
    A: std::net::ToSocketAddrs + Clone + Send + 'static,
{
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        resolve(self.0.clone())
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

/// A std listener bound to `addr` with `SO_REUSEADDR` and `SO_REUSEPORT` set before `bind`, listening
/// with `backlog`: several such sockets (one per hub) may be bound to the same address, and the
/// kernel spreads incoming connections across them (Linux: by a hash of the connection's
/// addresses). Blocking mode, close-on-exec; registered with no hub yet.
pub(crate) fn bind_reuseport(addr: SocketAddr, backlog: u32) -> io::Result<std::net::TcpListener> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: socket(2) takes no memory.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    for opt in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
        // SAFETY: `one` lives across the call and its size is passed with it.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                std::ptr::from_ref(&one).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let r = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: an all-zero sockaddr_in is a valid value of this plain C struct.
            let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_port = a.port().to_be();
            sa.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            // SAFETY: `sa` lives across the call and its size is passed with it.
            unsafe {
                libc::bind(
                    fd,
                    std::ptr::from_ref(&sa).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
        }
        SocketAddr::V6(a) => {
            // SAFETY: an all-zero sockaddr_in6 is a valid value of this plain C struct.
            let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sa.sin6_port = a.port().to_be();
            sa.sin6_addr.s6_addr = a.ip().octets();
            sa.sin6_flowinfo = a.flowinfo();
            sa.sin6_scope_id = a.scope_id();
            // SAFETY: `sa` lives across the call and its size is passed with it.
            unsafe {
                libc::bind(
                    fd,
                    std::ptr::from_ref(&sa).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    listen(fd, backlog)?;
    Ok(std::net::TcpListener::from(owned))
}
