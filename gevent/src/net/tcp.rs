//! [`TcpListener`] and [`TcpStream`].

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::socket::{
    impl_fd, impl_std_conversions, impl_stream_common, impl_stream_io, impl_timeouts, Socket,
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

    /// An endless iterator over [`TcpListener::accept`]'s connections (as std's `incoming`).
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::repeat_with(move || self.accept().map(|(s, _)| s))
    }

    /// The address it listens on.
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.open()?.local_addr()
    }

    /// Stops listening for greenlets: a greenlet waiting in `accept` gets `NotConnected`, as does every
    /// later `accept`. The fd is closed when the value is dropped.
    pub fn close(&self) {
        self.sock.close();
    }

    /// Whether [`TcpListener::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.sock.is_closed()
    }

    /// The pending socket error (`SO_ERROR`), if any.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.open()?.take_error()
    }
}

impl_fd!(TcpListener);
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

    /// A second handle on the same connection (a `dup`'d fd, registered on its own). The
    /// one-greenlet-per-side rule applies to each handle separately.
    ///
    /// # Errors
    /// As `dup(2)`; registration.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            sock: Socket::new(self.sock.open()?.try_clone()?)?,
        })
    }
}

impl_stream_io!(TcpStream);
impl_stream_common!(TcpStream, SocketAddr);
impl_timeouts!(TcpStream);
impl_fd!(TcpStream);
impl_std_conversions!(TcpStream, std::net::TcpStream);
