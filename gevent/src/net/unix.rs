//! [`UnixListener`] and [`UnixStream`].

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::Evented;
use crate::io::Interest;

/// A Unix-domain stream listener (`std::os::unix::net::UnixListener`'s shape).
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use gevent::net::{UnixListener, UnixStream};
/// let dir = std::env::temp_dir().join(format!("gevent-doc-{}", std::process::id()));
/// let _ = std::fs::remove_file(&dir);
/// let l = UnixListener::bind(&dir).unwrap();
/// let mut c = UnixStream::connect(&dir).unwrap();
/// let (mut s, _) = l.accept().unwrap();
/// c.write_all(b"hi").unwrap();
/// let mut buf = [0; 2];
/// s.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"hi");
/// std::fs::remove_file(&dir).unwrap();
/// ```
pub struct UnixListener {
    ev: Evented,
    inner: std::os::unix::net::UnixListener,
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnixListener({:?})", self.ev)
    }
}

impl UnixListener {
    /// Binds to `path` and listens.
    ///
    /// # Errors
    /// As std's `bind` (`AddrInUse` if the path exists); registration.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::from_std(std::os::unix::net::UnixListener::bind(path)?)
    }

    /// Takes over a std listener (made non-blocking and registered).
    ///
    /// # Errors
    /// If it cannot be made non-blocking or registered.
    pub fn from_std(l: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        l.set_nonblocking(true)?;
        Ok(UnixListener {
            ev: Evented::new(l.as_raw_fd())?,
            inner: l,
        })
    }

    /// Gives the socket back as a std listener in blocking mode.
    pub fn into_std(self) -> std::os::unix::net::UnixListener {
        let UnixListener { ev, inner } = self;
        drop(ev);
        let _ = inner.set_nonblocking(false);
        inner
    }

    /// Waits for a connection.
    ///
    /// # Errors
    /// As `accept(2)`; `NotConnected` after `close`; `ResourceBusy` if another greenlet waits here.
    ///
    /// # Cancel safety
    /// A kill or Timeout unwinds out of it; no connection is lost.
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, a) = self.ev.read(|| self.inner.accept())?;
        Ok((UnixStream::from_std(s)?, a))
    }

    /// The bound address.
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Wakes a greenlet waiting in `accept` with `NotConnected`; later calls fail the same way.
    pub fn close(&self) {
        self.ev.close();
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl IntoRawFd for UnixListener {
    /// The fd, still non-blocking, no longer registered.
    fn into_raw_fd(self) -> RawFd {
        self.into_std_nonblocking().into_raw_fd()
    }
}

impl UnixListener {
    fn into_std_nonblocking(self) -> std::os::unix::net::UnixListener {
        let UnixListener { ev, inner } = self;
        drop(ev);
        inner
    }
}

impl TryFrom<std::os::unix::net::UnixListener> for UnixListener {
    type Error = io::Error;
    /// As [`UnixListener::from_std`].
    fn try_from(l: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        UnixListener::from_std(l)
    }
}

impl From<UnixListener> for std::os::unix::net::UnixListener {
    /// As [`UnixListener::into_std`].
    fn from(l: UnixListener) -> Self {
        l.into_std()
    }
}

/// A Unix-domain stream connection (`std::os::unix::net::UnixStream`'s shape), `Read` + `Write`.
///
/// # Errors
/// As [`TcpStream`](super::TcpStream): `NotConnected` after `close`, `TimedOut`, `ResourceBusy`.
///
/// # Cancel safety
/// As [`TcpStream`](super::TcpStream).
pub struct UnixStream {
    ev: Evented,
    inner: std::os::unix::net::UnixStream,
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnixStream({:?})", self.ev)
    }
}

impl UnixStream {
    /// Connects to the socket at `path`; the greenlet waits if the listener's backlog is full.
    ///
    /// # Errors
    /// As `connect(2)`.
    ///
    /// # Cancel safety
    /// A kill unwinds out of it; the half-made socket is closed.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let m = mio::net::UnixStream::connect(path)?;
        let s = UnixStream::from_std_nonblocking(std::os::unix::net::UnixStream::from(m))?;
        loop {
            if let Some(e) = s.inner.take_error()? {
                return Err(e);
            }
            match s.inner.peer_addr() {
                Ok(_) => return Ok(s),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                Err(e) => return Err(e),
            }
            s.ev.wait(Interest::Write, None)?;
        }
    }

    /// A connected pair (`socketpair(2)`), both registered.
    ///
    /// # Errors
    /// As `socketpair(2)`.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    fn from_std_nonblocking(s: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            ev: Evented::new(s.as_raw_fd())?,
            inner: s,
        })
    }

    /// Takes over a std stream (made non-blocking and registered).
    ///
    /// # Errors
    /// If it cannot be made non-blocking or registered.
    pub fn from_std(s: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        s.set_nonblocking(true)?;
        UnixStream::from_std_nonblocking(s)
    }

    /// Gives the socket back as a std stream in blocking mode.
    pub fn into_std(self) -> std::os::unix::net::UnixStream {
        let UnixStream { ev, inner } = self;
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

    /// Shuts down one side or both.
    ///
    /// # Errors
    /// As `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// Wakes waiting greenlets with `NotConnected`, shuts the connection down; later calls fail.
    pub fn close(&self) {
        self.ev.close();
        let _ = self.inner.shutdown(Shutdown::Both);
    }

    /// How long a read may wait (`None`: forever); enforced by the hub.
    ///
    /// # Errors
    /// `InvalidInput` for zero.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.ev.set_read_timeout(t)
    }

    /// How long a write may wait (`None`: forever).
    ///
    /// # Errors
    /// `InvalidInput` for zero.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.ev.set_write_timeout(t)
    }
}

impl Read for &UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.ev.read(|| (&self.inner).read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.ev.read(|| (&self.inner).read_vectored(bufs))
    }
}

impl Write for &UnixStream {
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

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for UnixStream {
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

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsFd for UnixStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl IntoRawFd for UnixStream {
    /// The fd, still non-blocking, no longer registered.
    fn into_raw_fd(self) -> RawFd {
        let UnixStream { ev, inner } = self;
        drop(ev);
        inner.into_raw_fd()
    }
}

impl TryFrom<std::os::unix::net::UnixStream> for UnixStream {
    type Error = io::Error;
    /// As [`UnixStream::from_std`].
    fn try_from(s: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        UnixStream::from_std(s)
    }
}

impl From<UnixStream> for std::os::unix::net::UnixStream {
    /// As [`UnixStream::into_std`].
    fn from(s: UnixStream) -> Self {
        s.into_std()
    }
}
