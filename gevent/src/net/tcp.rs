//! [`TcpListener`] and [`TcpStream`].

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, RawFd};
use std::time::{Duration, Instant};

use super::{each_addr, Evented, ToSocketAddrs};
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
    // Declared first: deregistered before `inner` closes the fd.
    ev: Evented,
    inner: mio::net::TcpListener,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TcpListener({:?}, {:?})",
            self.ev,
            self.local_addr().ok()
        )
    }
}

impl TcpListener {
    /// Binds to `addr` (with `SO_REUSEADDR`, backlog 1024) and listens. Host names are resolved on
    /// the thread pool; each address is tried in turn.
    ///
    /// # Errors
    /// As `std::net::TcpListener::bind`; registration with the hub's poller.
    ///
    /// # Cancel safety
    /// Only a host-name lookup can wait; see [`resolve`](super::resolve).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(&addr, |a| {
            let inner = mio::net::TcpListener::bind(a)?;
            Ok(TcpListener {
                ev: Evented::new(inner.as_raw_fd())?,
                inner,
            })
        })
    }

    /// Takes over a std listener (made non-blocking and registered with this thread's hub).
    ///
    /// # Errors
    /// If it cannot be made non-blocking or registered.
    pub fn from_std(l: std::net::TcpListener) -> io::Result<TcpListener> {
        l.set_nonblocking(true)?;
        let inner = mio::net::TcpListener::from_std(l);
        Ok(TcpListener {
            ev: Evented::new(inner.as_raw_fd())?,
            inner,
        })
    }

    /// Gives the socket back as a std listener, in blocking mode again.
    pub fn into_std(self) -> std::net::TcpListener {
        let TcpListener { ev, inner } = self;
        drop(ev);
        let l = std::net::TcpListener::from(inner);
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
        let (s, a) = self.ev.read(|| self.inner.accept())?;
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
            .ev
            .op(Interest::Read, Some(deadline), || self.inner.accept())?;
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
        self.inner.local_addr()
    }

    /// Stops listening for greenlets: a greenlet waiting in `accept` gets `NotConnected`, as does every
    /// later `accept`. The fd is closed when the value is dropped.
    pub fn close(&self) {
        self.ev.close();
    }

    /// Whether [`TcpListener::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.ev.is_closed()
    }

    /// The pending socket error (`SO_ERROR`), if any.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl IntoRawFd for TcpListener {
    /// The fd, still non-blocking, no longer registered with the hub.
    fn into_raw_fd(self) -> RawFd {
        let TcpListener { ev, inner } = self;
        drop(ev);
        inner.into_raw_fd()
    }
}

impl TryFrom<std::net::TcpListener> for TcpListener {
    type Error = io::Error;
    /// As [`TcpListener::from_std`]. (`TryFrom`, not `From`: registering with the poller can fail.)
    fn try_from(l: std::net::TcpListener) -> io::Result<TcpListener> {
        TcpListener::from_std(l)
    }
}

impl From<TcpListener> for std::net::TcpListener {
    /// As [`TcpListener::into_std`].
    fn from(l: TcpListener) -> std::net::TcpListener {
        l.into_std()
    }
}

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
    // Declared first: deregistered before `inner` closes the fd.
    ev: Evented,
    inner: std::net::TcpStream,
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TcpStream({:?}, {:?} -> {:?})",
            self.ev,
            self.local_addr().ok(),
            self.peer_addr().ok()
        )
    }
}

impl TcpStream {
    fn from_mio(s: mio::net::TcpStream) -> io::Result<TcpStream> {
        let inner = std::net::TcpStream::from(s);
        Ok(TcpStream {
            ev: Evented::new(inner.as_raw_fd())?,
            inner,
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
        loop {
            if let Some(e) = s.inner.take_error()? {
                return Err(e);
            }
            match s.inner.peer_addr() {
                Ok(_) => return Ok(s),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                Err(e) => return Err(e),
            }
            s.ev.wait(Interest::Write, deadline)?;
        }
    }

    /// Takes over a std stream (made non-blocking and registered with this thread's hub).
    ///
    /// # Errors
    /// If it cannot be made non-blocking or registered.
    pub fn from_std(s: std::net::TcpStream) -> io::Result<TcpStream> {
        s.set_nonblocking(true)?;
        Ok(TcpStream {
            ev: Evented::new(s.as_raw_fd())?,
            inner: s,
        })
    }

    /// Gives the socket back as a std stream, in blocking mode again (timeouts set here are not carried
    /// over: they were the hub's).
    pub fn into_std(self) -> std::net::TcpStream {
        let TcpStream { ev, inner } = self;
        drop(ev);
        let _ = inner.set_nonblocking(false);
        inner
    }

    /// The local address.
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    /// As `getpeername(2)`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Shuts down the read side, write side or both (`shutdown(2)`); a peer sees EOF after `Write`.
    ///
    /// # Errors
    /// As `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// Closes the socket for greenlets: the ones waiting on it wake with `NotConnected`, later calls
    /// fail the same way, and the connection is shut down both ways (the peer sees EOF). The fd is
    /// released when the value is dropped.
    pub fn close(&self) {
        self.ev.close();
        let _ = self.inner.shutdown(Shutdown::Both);
    }

    /// Whether [`TcpStream::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.ev.is_closed()
    }

    /// How long a read may wait before failing with `TimedOut` (`None`: forever). Enforced by the hub.
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)` (as std).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.ev.set_read_timeout(t)
    }

    /// How long a write may wait before failing with `TimedOut` (`None`: forever).
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)` (as std).
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.ev.set_write_timeout(t)
    }

    /// The read timeout.
    ///
    /// # Errors
    /// Never; `io::Result` for std's shape.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.ev.read_timeout())
    }

    /// The write timeout.
    ///
    /// # Errors
    /// Never; `io::Result` for std's shape.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.ev.write_timeout())
    }

    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_nodelay(on)
    }

    /// Reads `TCP_NODELAY`.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.nodelay()
    }

    /// Sets `IP_TTL`.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_ttl(ttl)
    }

    /// The pending socket error (`SO_ERROR`), if any.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// Reads without consuming, waiting for data like `read`.
    ///
    /// # Errors
    /// As `read`.
    ///
    /// # Cancel safety
    /// As `read`.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.ev.read(|| self.inner.peek(buf))
    }

    /// A second handle on the same connection (a `dup`'d fd, registered on its own). The
    /// one-greenlet-per-side rule applies to each handle separately.
    ///
    /// # Errors
    /// As `dup(2)`; registration.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        let inner = self.inner.try_clone()?;
        Ok(TcpStream {
            ev: Evented::new(inner.as_raw_fd())?,
            inner,
        })
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.ev.read(|| (&self.inner).read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.ev.read(|| (&self.inner).read_vectored(bufs))
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.ev.write(|| (&self.inner).write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.ev.write(|| (&self.inner).write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl IntoRawFd for TcpStream {
    /// The fd, still non-blocking, no longer registered with the hub.
    fn into_raw_fd(self) -> RawFd {
        let TcpStream { ev, inner } = self;
        drop(ev);
        inner.into_raw_fd()
    }
}

impl TryFrom<std::net::TcpStream> for TcpStream {
    type Error = io::Error;
    /// As [`TcpStream::from_std`]. (`TryFrom`, not `From`: registering with the poller can fail.)
    fn try_from(s: std::net::TcpStream) -> io::Result<TcpStream> {
        TcpStream::from_std(s)
    }
}

impl From<TcpStream> for std::net::TcpStream {
    /// As [`TcpStream::into_std`].
    fn from(s: TcpStream) -> std::net::TcpStream {
        s.into_std()
    }
}
