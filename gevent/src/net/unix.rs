//! [`UnixListener`] and [`UnixStream`].

use std::fmt;
use std::io;
use std::os::unix::net::SocketAddr;
use std::path::Path;

use super::socket::{
    impl_fd, impl_std_conversions, impl_stream_common, impl_stream_io, impl_timeouts, Socket,
};

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
    sock: Socket<std::os::unix::net::UnixListener>,
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnixListener({:?})", self.sock)
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
        Ok(UnixListener {
            sock: Socket::from_std(l)?,
        })
    }

    /// Gives the socket back as a std listener in blocking mode.
    pub fn into_std(self) -> std::os::unix::net::UnixListener {
        self.sock.into_std()
    }

    /// Waits for a connection.
    ///
    /// # Errors
    /// As `accept(2)`; `NotConnected` after `close`; `ResourceBusy` if another greenlet waits here.
    ///
    /// # Cancel safety
    /// A kill or Timeout unwinds out of it; no connection is lost.
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, a) = self.sock.read(|l| l.accept())?;
        Ok((UnixStream::from_std(s)?, a))
    }

    /// The bound address.
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().local_addr()
    }

    /// Wakes a greenlet waiting in `accept` with `NotConnected`; later calls fail the same way.
    pub fn close(&self) {
        self.sock.close();
    }

    /// Whether [`UnixListener::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.sock.is_closed()
    }
}

impl_fd!(UnixListener);
impl_std_conversions!(UnixListener, std::os::unix::net::UnixListener);

/// A Unix-domain stream connection (`std::os::unix::net::UnixStream`'s shape), `Read` + `Write`.
///
/// # Errors
/// As [`TcpStream`](super::TcpStream): `NotConnected` after `close`, `TimedOut`, `ResourceBusy`.
///
/// # Cancel safety
/// As [`TcpStream`](super::TcpStream).
pub struct UnixStream {
    sock: Socket<std::os::unix::net::UnixStream>,
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnixStream({:?})", self.sock)
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
        let s = UnixStream {
            sock: Socket::new(std::os::unix::net::UnixStream::from(m))?,
        };
        s.sock.finish_connect(
            None,
            std::os::unix::net::UnixStream::take_error,
            std::os::unix::net::UnixStream::peer_addr,
        )?;
        Ok(s)
    }

    /// A connected pair (`socketpair(2)`), both registered.
    ///
    /// # Errors
    /// As `socketpair(2)`.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Takes over a std stream (made non-blocking and registered).
    ///
    /// # Errors
    /// If it cannot be made non-blocking or registered.
    pub fn from_std(s: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            sock: Socket::from_std(s)?,
        })
    }

    /// Gives the socket back as a std stream in blocking mode.
    pub fn into_std(self) -> std::os::unix::net::UnixStream {
        self.sock.into_std()
    }
}

impl_stream_io!(UnixStream);
impl_stream_common!(UnixStream, SocketAddr);
impl_timeouts!(UnixStream);
impl_fd!(UnixStream);
impl_std_conversions!(UnixStream, std::os::unix::net::UnixStream);
