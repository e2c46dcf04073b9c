//! [`TcpListener`] and [`TcpStream`].

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::socket::{
    impl_fd, impl_listener_common, impl_mode_and_clone, impl_std_conversions, impl_stream_common,
    impl_stream_io, impl_timeouts, Socket,
};
use super::{each_addr, ToSocketAddrs};
use crate::io::Interest;

/// A TCP socket server, listening for connections (gevent's listening `socket`; `std::net::TcpListener`'s
/// shape).
///
/// `accept` parks the calling greenlet until a connection arrives; the other greenlets run meanwhile.
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use gevent::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = gevent::spawn(move || {
///     let (mut conn, _) = listener.accept().unwrap();
///     let mut buf = [0; 5];
///     conn.read_exact(&mut buf).unwrap();
///     conn.write_all(&buf.to_ascii_uppercase()).unwrap();
/// });
/// let mut c = TcpStream::connect(addr).unwrap();
/// c.write_all(b"hello").unwrap();
/// let mut out = String::new();
/// c.read_to_string(&mut out).unwrap();
/// assert_eq!(out, "HELLO");
/// server.join();
/// ```
pub struct TcpListener {
    sock: Socket<mio::net::TcpListener>,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TcpListener({:?}, {:?})",
            self.sock,
            self.local_addr().ok()
        )
    }
}

impl TcpListener {
    /// Binds to `addr` (with `SO_REUSEADDR`) and listens with a backlog of
    /// [`DEFAULT_BACKLOG`](super::DEFAULT_BACKLOG) (1024; the kernel caps it at
    /// `net.core.somaxconn`). Host names are resolved on the thread pool; each address is tried in
    /// turn.
    ///
    /// # Errors
    /// As `std::net::TcpListener::bind`; registration with the hub's poller.
    ///
    /// # Cancel safety
    /// Only a host-name lookup can wait; see [`resolve`](super::resolve).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        TcpListener::bind_with_backlog(addr, super::DEFAULT_BACKLOG)
    }

    /// As [`TcpListener::bind`], listening with `backlog`: how many connections the kernel queues
    /// for `accept` before it drops further handshakes (capped at `net.core.somaxconn`; a value
    /// above `i32::MAX` counts as `i32::MAX`).
    ///
    /// # Examples
    /// ```
    /// let l = gevent::net::TcpListener::bind_with_backlog("127.0.0.1:0", 4096).unwrap();
    /// assert!(l.local_addr().unwrap().port() != 0);
    /// ```
    ///
    /// # Errors
    /// As [`TcpListener::bind`], and as `listen(2)`.
    ///
    /// # Cancel safety
    /// As [`TcpListener::bind`].
    pub fn bind_with_backlog<A: ToSocketAddrs>(addr: A, backlog: u32) -> io::Result<TcpListener> {
        each_addr(&addr, |a| {
            let l = mio::net::TcpListener::bind(a)?;
            // mio listened with std's 128; listening again sets the queue's length.
            super::listen(l.as_raw_fd(), backlog)?;
            Ok(TcpListener {
                sock: Socket::new(l)?,
            })
        })
    }

    /// Sets the length of the accept queue (`listen(2)` again, as Python's `sock.listen(backlog)`
    /// on a listening socket): for connections that arrive from now on; capped as in
    /// [`TcpListener::bind_with_backlog`].
    ///
    /// # Errors
    /// `NotConnected` after [`TcpListener::close`]; as `listen(2)`.
    pub fn listen(&self, backlog: u32) -> io::Result<()> {
        super::listen(self.sock.open()?.as_raw_fd(), backlog)
    }

    /// Takes over a std listener (made non-blocking and registered with this thread's hub).
    ///
    /// # Errors
    /// If it cannot be made non-blocking or registered.
    pub fn from_std(l: std::net::TcpListener) -> io::Result<TcpListener> {
        l.set_nonblocking(true)?;
        Ok(TcpListener {
            sock: Socket::new(mio::net::TcpListener::from_std(l))?,
        })
    }

    /// Gives the socket back as a std listener, in blocking mode again.
    pub fn into_std(self) -> std::net::TcpListener {
        let l = std::net::TcpListener::from(self.sock.into_inner());
        let _ = l.set_nonblocking(false);
        l
    }

    /// Waits for a connection; returns it (registered, non-blocking underneath) and the peer address.
    ///
    /// # Errors
    /// As `accept4(2)` (for example `EMFILE` when out of file descriptors); `NotConnected` after
    /// [`TcpListener::close`]; `ResourceBusy` ([`ConcurrentObjectUseError`](super::ConcurrentObjectUseError))
    /// if another greenlet is already waiting in `accept` on it.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it; no connection is lost (it stays queued in the
    /// kernel for the next `accept`).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, a) = self.sock.read(|l| l.accept())?;
        Ok((TcpStream::from_mio(s)?, a))
    }

    /// Like [`TcpListener::accept`], giving up after `timeout` with `TimedOut`.
    ///
    /// # Errors
    /// As [`TcpListener::accept`], and `TimedOut`.
    ///
    /// # Cancel safety
    /// As [`TcpListener::accept`].
    pub fn accept_timeout(&self, timeout: Duration) -> io::Result<(TcpStream, SocketAddr)> {
        let deadline = Instant::now() + timeout;
        let (s, a) = self
            .sock
            .op(Interest::Read, Some(deadline), || self.sock.get().accept())?;
        Ok((TcpStream::from_mio(s)?, a))
    }

    /// The pending socket error (`SO_ERROR`), if any.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.open()?.take_error()
    }

    /// Sets `IP_TTL` (inherited by the accepted connections).
    ///
    /// # Errors
    /// `NotConnected` after `close`; as `setsockopt(2)`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.open()?.set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    ///
    /// # Errors
    /// `NotConnected` after `close`; as `getsockopt(2)`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.open()?.ttl()
    }
}

impl_listener_common!(TcpListener, TcpStream, SocketAddr);
impl_fd!(TcpListener);
impl_mode_and_clone!(TcpListener, |fd| {
    mio::net::TcpListener::from_std(std::net::TcpListener::from(fd))
});
impl_std_conversions!(TcpListener, std::net::TcpListener);

/// A TCP connection (gevent's cooperative `socket`; `std::net::TcpStream`'s shape).
///
/// Implements `Read` and `Write` (also for `&TcpStream`, so one greenlet can read while another
/// writes). A call that would block parks the calling greenlet instead.
///
/// # Errors
/// Every I/O method can also fail with `NotConnected` after [`TcpStream::close`], `TimedOut` when a
/// read or write timeout passes, and `ResourceBusy`
/// ([`ConcurrentObjectUseError`](super::ConcurrentObjectUseError)) when another greenlet already waits
/// on the same side.
///
/// # Cancel safety
/// A kill or Timeout landing in a read or write unwinds out of it; nothing is registered afterwards.
/// A read that unwinds consumed nothing; a `write_all` that unwinds may have sent a prefix.
pub struct TcpStream {
    sock: Socket<std::net::TcpStream>,
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TcpStream({:?}, {:?} -> {:?})",
            self.sock,
            self.local_addr().ok(),
            self.peer_addr().ok()
        )
    }
}

impl TcpStream {
    fn from_mio(s: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            sock: Socket::new(std::net::TcpStream::from(s))?,
        })
    }

    /// Connects to `addr`, trying each address it resolves to; the greenlet waits for the handshake.
    ///
    /// # Errors
    /// As `std::net::TcpStream::connect` (`ConnectionRefused`, ...).
    ///
    /// # Cancel safety
    /// A kill or Timeout unwinds out of it; the half-made socket is closed.
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(&addr, |a| TcpStream::connect_deadline(a, None))
    }

    /// Connects to one address, giving up after `timeout` with `TimedOut`.
    ///
    /// # Errors
    /// As [`TcpStream::connect`], and `TimedOut`.
    ///
    /// # Cancel safety
    /// As [`TcpStream::connect`].
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        TcpStream::connect_deadline(*addr, Some(Instant::now() + timeout))
    }

    fn connect_deadline(addr: SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let s = TcpStream::from_mio(mio::net::TcpStream::connect(addr)?)?;
        s.sock.finish_connect(
            deadline,
            std::net::TcpStream::take_error,
            std::net::TcpStream::peer_addr,
        )?;
        Ok(s)
    }

    /// Takes over a std stream (made non-blocking and registered with this thread's hub).
    ///
    /// # Errors
    /// If it cannot be made non-blocking or registered.
    pub fn from_std(s: std::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            sock: Socket::from_std(s)?,
        })
    }

    /// Gives the socket back as a std stream, in blocking mode again (timeouts set here are not carried
    /// over: they were the hub's).
    pub fn into_std(self) -> std::net::TcpStream {
        self.sock.into_std()
    }

    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.sock.open()?.set_nodelay(on)
    }

    /// Reads `TCP_NODELAY`.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock.open()?.nodelay()
    }

    /// Sets `IP_TTL`.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.open()?.set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.open()?.ttl()
    }

    /// Sets `SO_LINGER`: with `Some(d)`, dropping the last handle on the connection (closing the
    /// fd) makes the kernel try to send what is still queued for up to `d` and then resets the
    /// connection; `Some(Duration::ZERO)` resets it at once (the peer gets `ConnectionReset`
    /// instead of EOF); `None` (the default): the close returns at once and the kernel sends the
    /// rest in the background. The fd is non-blocking, so the close itself never waits (Linux).
    /// Whole seconds are used (rounded up).
    ///
    /// # Errors
    /// `NotConnected` after `close`; as `setsockopt(2)`.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        let l = libc::linger {
            l_onoff: linger.is_some().into(),
            l_linger: linger.map_or(0, |d| {
                let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
                libc::c_int::try_from(secs).unwrap_or(libc::c_int::MAX)
            }),
        };
        let fd = self.sock.open()?.as_raw_fd();
        // SAFETY: `l` is a valid `linger` that outlives the call, and its size is passed.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                std::ptr::addr_of!(l).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads `SO_LINGER` (see [`TcpStream::set_linger`]).
    ///
    /// # Errors
    /// `NotConnected` after `close`; as `getsockopt(2)`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        let mut l = libc::linger {
            l_onoff: 0,
            l_linger: 0,
        };
        let mut len = std::mem::size_of::<libc::linger>() as libc::socklen_t;
        let fd = self.sock.open()?.as_raw_fd();
        // SAFETY: `l` and `len` are valid for writes and outlive the call; `len` is `l`'s size.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                std::ptr::addr_of_mut!(l).cast(),
                &mut len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((l.l_onoff != 0).then(|| Duration::from_secs(l.l_linger.max(0) as u64)))
    }

    /// The pending socket error (`SO_ERROR`), if any.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.open()?.take_error()
    }

    /// Reads without consuming, waiting for data like `read`.
    ///
    /// # Errors
    /// As `read`.
    ///
    /// # Cancel safety
    /// As `read`.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(|s| s.peek(buf))
    }
}

impl_stream_io!(TcpStream);
impl_stream_common!(TcpStream, SocketAddr);
impl_timeouts!(TcpStream);
impl_fd!(TcpStream);
impl_mode_and_clone!(TcpStream, std::net::TcpStream::from);
impl_std_conversions!(TcpStream, std::net::TcpStream);

/// Connects to `addr` as gevent's (and Python's) `socket.create_connection(address, timeout,
/// source_address)`: tries each address `addr` resolves to in turn, each attempt limited to
/// `timeout`, binding the socket to `source` first when given (port 0: any port); returns the
/// first connection made, or the last attempt's error. The `timeout` also becomes the
/// connection's read and write timeout, as the Python function sets it on the socket.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let l = gevent::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let c = gevent::net::create_connection(
///     l.local_addr().unwrap(),
///     Some(Duration::from_secs(5)),
///     Some("127.0.0.1:0".parse().unwrap()),
/// )
/// .unwrap();
/// assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_secs(5)));
/// ```
///
/// # Errors
/// `InvalidInput` for `Some(Duration::ZERO)` or an `addr` that resolves to nothing; `TimedOut`
/// when the last attempt timed out; else as `socket(2)`, `bind(2)` (`AddrInUse`, or
/// `AddrNotAvailable`/`InvalidInput` for a source of the other address family: that address is
/// skipped) and `connect(2)`.
///
/// # Cancel safety
/// A kill or Timeout unwinds out of it (from the lookup or an attempt); the half-made socket is
/// closed.
pub fn create_connection<A: ToSocketAddrs>(
    addr: A,
    timeout: Option<Duration>,
    source: Option<SocketAddr>,
) -> io::Result<TcpStream> {
    if timeout == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    each_addr(&addr, |a| {
        let deadline = timeout.map(|t| Instant::now() + t);
        let s = connect_from(a, source, deadline)?;
        s.set_read_timeout(timeout)?;
        s.set_write_timeout(timeout)?;
        Ok(s)
    })
}

/// A socket for `to`'s family, bound to `from` if given, connected (the greenlet waits) by
/// `deadline`.
fn connect_from(
    to: SocketAddr,
    from: Option<SocketAddr>,
    deadline: Option<Instant>,
) -> io::Result<TcpStream> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let domain = if to.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket(2) takes no memory.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just made and is owned by nothing else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    if let Some(from) = from {
        let (sa, len) = raw_addr(&from);
        // SAFETY: `sa` holds a valid address of `len` bytes and outlives the call.
        if unsafe { libc::bind(fd, std::ptr::addr_of!(sa).cast(), len) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let (sa, len) = raw_addr(&to);
    // SAFETY: as for bind.
    if unsafe { libc::connect(fd, std::ptr::addr_of!(sa).cast(), len) } < 0 {
        let e = io::Error::last_os_error();
        // Non-blocking: the handshake goes on (an interrupted connect too); finish_connect waits.
        if !matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EINTR)) {
            return Err(e);
        }
    }
    let s = TcpStream {
        sock: Socket::new(std::net::TcpStream::from(owned))?,
    };
    s.sock.finish_connect(
        deadline,
        std::net::TcpStream::take_error,
        std::net::TcpStream::peer_addr,
    )?;
    Ok(s)
}

/// `a` as a `sockaddr_in`/`sockaddr_in6` in a `sockaddr_storage`, and its length.
fn raw_addr(a: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid `sockaddr_storage` (plain integers).
    let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match a {
        SocketAddr::V4(v) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: `sockaddr_storage` is larger than and aligned for `sockaddr_in`.
            unsafe { std::ptr::write(std::ptr::addr_of_mut!(st).cast(), sin) };
            (
                st,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(v) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v.port().to_be(),
                sin6_flowinfo: v.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v.ip().octets(),
                },
                sin6_scope_id: v.scope_id(),
            };
            // SAFETY: `sockaddr_storage` is larger than and aligned for `sockaddr_in6`.
            unsafe { std::ptr::write(std::ptr::addr_of_mut!(st).cast(), sin6) };
            (
                st,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}
