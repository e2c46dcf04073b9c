//! [`UdpSocket`].

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, RawFd};
use std::time::Duration;

use super::{each_addr, Evented, ToSocketAddrs};

/// A UDP socket (`std::net::UdpSocket`'s shape); receiving parks the calling greenlet.
///
/// # Errors
/// Every I/O method can also fail with `NotConnected` after [`UdpSocket::close`], `TimedOut` when a
/// timeout passes, and `ResourceBusy` when another greenlet already waits on the same side.
///
/// # Cancel safety
/// A kill or Timeout landing in a receive unwinds out of it; no datagram is consumed.
///
/// # Examples
/// ```
/// use gevent::net::UdpSocket;
/// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
/// b.send_to(b"ping", a.local_addr().unwrap()).unwrap();
/// let mut buf = [0; 16];
/// let (n, from) = a.recv_from(&mut buf).unwrap();
/// assert_eq!((&buf[..n], from), (&b"ping"[..], b.local_addr().unwrap()));
/// ```
pub struct UdpSocket {
    // Declared first: deregistered before `inner` closes the fd.
    ev: Evented,
    inner: std::net::UdpSocket,
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UdpSocket({:?}, {:?})", self.ev, self.local_addr().ok())
    }
}

impl UdpSocket {
    /// Binds to `addr`.
    ///
    /// # Errors
    /// As `std::net::UdpSocket::bind`; registration.
    ///
    /// # Cancel safety
    /// Only a host-name lookup can wait; see [`resolve`](super::resolve).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(&addr, |a| {
            UdpSocket::from_std(std::net::UdpSocket::bind(a)?)
        })
    }

    /// Takes over a std socket (made non-blocking and registered).
    ///
    /// # Errors
    /// If it cannot be made non-blocking or registered.
    pub fn from_std(s: std::net::UdpSocket) -> io::Result<UdpSocket> {
        s.set_nonblocking(true)?;
        Ok(UdpSocket {
            ev: Evented::new(s.as_raw_fd())?,
            inner: s,
        })
    }

    /// Gives the socket back as a std socket in blocking mode.
    pub fn into_std(self) -> std::net::UdpSocket {
        let UdpSocket { ev, inner } = self;
        drop(ev);
        let _ = inner.set_nonblocking(false);
        inner
    }

    /// Sets the default peer (`connect(2)`; no packets are sent).
    ///
    /// # Errors
    /// As `std::net::UdpSocket::connect`.
    ///
    /// # Cancel safety
    /// Only a host-name lookup can wait.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(&addr, |a| self.inner.connect(a))
    }

    /// Sends a datagram to `addr`, waiting for buffer space if needed.
    ///
    /// # Errors
    /// As `sendto(2)`.
    ///
    /// # Cancel safety
    /// A kill unwinds before or after the datagram went, never halfway.
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        each_addr(&addr, |a| self.ev.write(|| self.inner.send_to(buf, a)))
    }

    /// Waits for a datagram; returns its length and sender.
    ///
    /// # Errors
    /// As `recvfrom(2)`.
    ///
    /// # Cancel safety
    /// See the type.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.ev.read(|| self.inner.recv_from(buf))
    }

    /// Like `recv_from` without consuming the datagram.
    ///
    /// # Errors
    /// As `recvfrom(2)`.
    ///
    /// # Cancel safety
    /// See the type.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.ev.read(|| self.inner.peek_from(buf))
    }

    /// Sends to the connected peer.
    ///
    /// # Errors
    /// As `send(2)`.
    ///
    /// # Cancel safety
    /// As [`UdpSocket::send_to`].
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.ev.write(|| self.inner.send(buf))
    }

    /// Waits for a datagram from the connected peer.
    ///
    /// # Errors
    /// As `recv(2)`.
    ///
    /// # Cancel safety
    /// See the type.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.ev.read(|| self.inner.recv(buf))
    }

    /// The local address.
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The connected peer's address.
    ///
    /// # Errors
    /// `NotConnected` if not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.inner.set_broadcast(on)
    }

    /// How long a receive may wait (`None`: forever); enforced by the hub.
    ///
    /// # Errors
    /// `InvalidInput` for zero.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.ev.set_read_timeout(t)
    }

    /// How long a send may wait (`None`: forever).
    ///
    /// # Errors
    /// `InvalidInput` for zero.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.ev.set_write_timeout(t)
    }

    /// Wakes waiting greenlets with `NotConnected`; later calls fail the same way. The fd is closed
    /// on drop.
    pub fn close(&self) {
        self.ev.close();
    }

    /// Whether [`UdpSocket::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.ev.is_closed()
    }

    /// The pending socket error, if any.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl IntoRawFd for UdpSocket {
    /// The fd, still non-blocking, no longer registered.
    fn into_raw_fd(self) -> RawFd {
        let UdpSocket { ev, inner } = self;
        drop(ev);
        inner.into_raw_fd()
    }
}

impl TryFrom<std::net::UdpSocket> for UdpSocket {
    type Error = io::Error;
    /// As [`UdpSocket::from_std`].
    fn try_from(s: std::net::UdpSocket) -> io::Result<UdpSocket> {
        UdpSocket::from_std(s)
    }
}

impl From<UdpSocket> for std::net::UdpSocket {
    /// As [`UdpSocket::into_std`].
    fn from(s: UdpSocket) -> std::net::UdpSocket {
        s.into_std()
    }
}
