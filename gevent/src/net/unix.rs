//! [`UnixListener`], [`UnixStream`] and [`UnixDatagram`].

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::SocketAddr;
use std::path::Path;

use super::socket::{
    impl_datagram_common, impl_fd, impl_listener_common, impl_mode_and_clone, impl_std_conversions,
    impl_stream_common, impl_stream_io, impl_timeouts, Socket,
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
    /// Binds to `path` and listens with a backlog of [`DEFAULT_BACKLOG`](super::DEFAULT_BACKLOG)
    /// (1024; the kernel caps it at `net.core.somaxconn`).
    ///
    /// # Errors
    /// As std's `bind` (`AddrInUse` if the path exists); registration.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::bind_with_backlog(path, super::DEFAULT_BACKLOG)
    }

    /// As [`UnixListener::bind`], listening with `backlog` (how many connections wait for
    /// `accept` before `connect` blocks; capped at `net.core.somaxconn`, a value above `i32::MAX`
    /// counts as `i32::MAX`).
    ///
    /// # Errors
    /// As [`UnixListener::bind`], and as `listen(2)`.
    pub fn bind_with_backlog<P: AsRef<Path>>(path: P, backlog: u32) -> io::Result<UnixListener> {
        let l = std::os::unix::net::UnixListener::bind(path)?;
        super::listen(l.as_raw_fd(), backlog)?;
        UnixListener::from_std(l)
    }

    /// Sets the length of the accept queue (`listen(2)` again), for connections from now on;
    /// capped as in [`UnixListener::bind_with_backlog`].
    ///
    /// # Errors
    /// `NotConnected` after [`UnixListener::close`]; as `listen(2)`.
    pub fn listen(&self, backlog: u32) -> io::Result<()> {
        super::listen(self.sock.open()?.as_raw_fd(), backlog)
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
}

impl_listener_common!(UnixListener, UnixStream, SocketAddr);
impl_fd!(UnixListener);
impl_mode_and_clone!(UnixListener, std::os::unix::net::UnixListener::from);
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
impl_mode_and_clone!(UnixStream, std::os::unix::net::UnixStream::from);
impl_std_conversions!(UnixStream, std::os::unix::net::UnixStream);

/// A Unix-domain datagram socket (`std::os::unix::net::UnixDatagram`'s shape); receiving parks the
/// calling greenlet, as does sending while the peer's queue is full.
///
/// # Errors
/// Every I/O method can also fail with `NotConnected` after [`UnixDatagram::close`], `TimedOut`
/// when a timeout passes, and `ResourceBusy` when another greenlet already waits on the same side.
///
/// # Cancel safety
/// A kill or Timeout landing in a send or receive unwinds out of it; a datagram is sent whole or
/// not at all, and none is consumed by a receive that unwinds.
///
/// # Examples
/// ```
/// use gevent::net::UnixDatagram;
/// let (a, b) = UnixDatagram::pair().unwrap();
/// a.send(b"ping").unwrap();
/// let mut buf = [0; 16];
/// let n = b.recv(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"ping");
/// ```
pub struct UnixDatagram {
    sock: Socket<std::os::unix::net::UnixDatagram>,
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnixDatagram({:?})", self.sock)
    }
}

impl UnixDatagram {
    /// Binds to `path`.
    ///
    /// # Errors
    /// As std's `bind` (`AddrInUse` if the path exists); registration.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::bind(path)?)
    }

    /// A socket bound to no address (it can send, and receive replies once connected).
    ///
    /// # Errors
    /// As `socket(2)`; registration.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::unbound()?)
    }

    /// A connected pair (`socketpair(2)`), both registered.
    ///
    /// # Errors
    /// As `socketpair(2)`.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
    }

    /// Takes over a std socket (made non-blocking and registered).
    ///
    /// # Errors
    /// If it cannot be made non-blocking or registered.
    pub fn from_std(s: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            sock: Socket::from_std(s)?,
        })
    }

    /// Gives the socket back as a std socket in blocking mode.
    pub fn into_std(self) -> std::os::unix::net::UnixDatagram {
        self.sock.into_std()
    }

    /// Sets the default peer (`connect(2)`; nothing is sent).
    ///
    /// # Errors
    /// As `connect(2)` (`ConnectionRefused`/`NotFound` if nobody is bound at `path`).
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.sock.open()?.connect(path)
    }

    /// Sends a datagram to `path`, waiting while the receiver's queue is full.
    ///
    /// # Errors
    /// As `sendto(2)`.
    ///
    /// # Cancel safety
    /// See the type.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.sock.write(|s| s.send_to(buf, path))
    }

    /// Sends a datagram to the connected peer, waiting while its queue is full.
    ///
    /// # Errors
    /// As `send(2)`.
    ///
    /// # Cancel safety
    /// See the type.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(|s| s.send(buf))
    }

    /// Waits for a datagram; returns its length and the sender's address.
    ///
    /// # Errors
    /// As `recvfrom(2)`.
    ///
    /// # Cancel safety
    /// See the type.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock.read(|s| s.recv_from(buf))
    }

    /// Waits for a datagram from the connected peer (or any sender if unconnected).
    ///
    /// # Errors
    /// As `recv(2)`.
    ///
    /// # Cancel safety
    /// See the type.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(|s| s.recv(buf))
    }
}

impl_datagram_common!(UnixDatagram, SocketAddr);
impl_timeouts!(UnixDatagram);
impl_fd!(UnixDatagram);
impl_mode_and_clone!(UnixDatagram, std::os::unix::net::UnixDatagram::from);
impl_std_conversions!(UnixDatagram, std::os::unix::net::UnixDatagram);
