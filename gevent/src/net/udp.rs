//! [`UdpSocket`].

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::socket::{
    impl_datagram_common, impl_fd, impl_mode_and_clone, impl_std_conversions, impl_timeouts, Socket,
};
use super::{each_addr, ToSocketAddrs};

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
    sock: Socket<std::net::UdpSocket>,
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UdpSocket({:?}, {:?})",
            self.sock,
            self.local_addr().ok()
        )
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
        Ok(UdpSocket {
            sock: Socket::from_std(s)?,
        })
    }

    /// Gives the socket back as a std socket in blocking mode.
    pub fn into_std(self) -> std::net::UdpSocket {
        self.sock.into_std()
    }

    /// Sets the default peer (`connect(2)`; no packets are sent).
    ///
    /// # Errors
    /// As `std::net::UdpSocket::connect`.
    ///
    /// # Cancel safety
    /// Only a host-name lookup can wait.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(&addr, |a| self.sock.open()?.connect(a))
    }

    /// Sends a datagram to `addr`, waiting for buffer space if needed.
    ///
    /// # Errors
    /// As `sendto(2)`.
    ///
    /// # Cancel safety
    /// A kill unwinds before or after the datagram went, never halfway.
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        each_addr(&addr, |a| self.sock.write(|s| s.send_to(buf, a)))
    }

    /// Waits for a datagram; returns its length and sender.
    ///
    /// # Errors
    /// As `recvfrom(2)`.
    ///
    /// # Cancel safety
    /// See the type.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock.read(|s| s.recv_from(buf))
    }

    /// Like `recv_from` without consuming the datagram.
    ///
    /// # Errors
    /// As `recvfrom(2)`.
    ///
    /// # Cancel safety
    /// See the type.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock.read(|s| s.peek_from(buf))
    }

    /// Sends to the connected peer.
    ///
    /// # Errors
    /// As `send(2)`.
    ///
    /// # Cancel safety
    /// As [`UdpSocket::send_to`].
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(|s| s.send(buf))
    }

    /// Waits for a datagram from the connected peer.
    ///
    /// # Errors
    /// As `recv(2)`.
    ///
    /// # Cancel safety
    /// See the type.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(|s| s.recv(buf))
    }

    /// The async form of [`UdpSocket::recv_from`], for futures (see [`bridge`](crate::bridge)):
    /// the syscall first; on `WouldBlock`, `cx`'s waker is registered with the hub's readiness
    /// (the last registration for the read side wins) and `Pending` is returned.
    ///
    /// # Errors
    /// As [`UdpSocket::recv_from`] (the socket's read timeout does not apply).
    pub fn poll_recv_from(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<(usize, SocketAddr)>> {
        self.sock
            .poll_op(cx, crate::io::Interest::Read, |s| s.recv_from(buf))
    }

    /// The async form of [`UdpSocket::recv`], as [`UdpSocket::poll_recv_from`].
    ///
    /// # Errors
    /// As [`UdpSocket::recv`].
    pub fn poll_recv(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<usize>> {
        self.sock
            .poll_op(cx, crate::io::Interest::Read, |s| s.recv(buf))
    }

    /// The async form of sending a datagram to `addr` (a resolved address: no lookup here), as
    /// [`UdpSocket::poll_recv_from`] on the write side.
    ///
    /// # Errors
    /// As [`UdpSocket::send_to`].
    pub fn poll_send_to(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
        addr: SocketAddr,
    ) -> std::task::Poll<io::Result<usize>> {
        self.sock
            .poll_op(cx, crate::io::Interest::Write, |s| s.send_to(buf, addr))
    }

    /// The async form of [`UdpSocket::send`], as [`UdpSocket::poll_send_to`].
    ///
    /// # Errors
    /// As [`UdpSocket::send`].
    pub fn poll_send(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        self.sock
            .poll_op(cx, crate::io::Interest::Write, |s| s.send(buf))
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.sock.open()?.set_broadcast(on)
    }

    /// Reads `SO_BROADCAST`.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.sock.open()?.broadcast()
    }

    /// Sets `IP_TTL` (unicast datagrams).
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

    /// Joins the IPv4 multicast group `group` on the interface with address `interface`
    /// (`Ipv4Addr::UNSPECIFIED`: the kernel picks one) (`IP_ADD_MEMBERSHIP`).
    ///
    /// # Errors
    /// As `setsockopt(2)` (`ENODEV` for an interface that does not exist, `EINVAL` for an address
    /// that is not multicast).
    pub fn join_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.sock.open()?.join_multicast_v4(group, interface)
    }

    /// Leaves an IPv4 multicast group joined with [`UdpSocket::join_multicast_v4`].
    ///
    /// # Errors
    /// As `setsockopt(2)` (`EADDRNOTAVAIL` if not a member).
    pub fn leave_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.sock.open()?.leave_multicast_v4(group, interface)
    }

    /// Joins the IPv6 multicast group `group` on the interface with index `interface` (0: the
    /// kernel picks one) (`IPV6_ADD_MEMBERSHIP`).
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn join_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.sock.open()?.join_multicast_v6(group, interface)
    }

    /// Leaves an IPv6 multicast group joined with [`UdpSocket::join_multicast_v6`].
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn leave_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.sock.open()?.leave_multicast_v6(group, interface)
    }

    /// Sets `IP_MULTICAST_LOOP`: whether this host's own members receive the IPv4 multicast
    /// datagrams it sends (on by default).
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.sock.open()?.set_multicast_loop_v4(on)
    }

    /// Reads `IP_MULTICAST_LOOP`.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.sock.open()?.multicast_loop_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP` (see [`UdpSocket::set_multicast_loop_v4`]).
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.sock.open()?.set_multicast_loop_v6(on)
    }

    /// Reads `IPV6_MULTICAST_LOOP`.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.sock.open()?.multicast_loop_v6()
    }

    /// Sets `IP_MULTICAST_TTL`: how many hops the IPv4 multicast datagrams it sends may take (1,
    /// the default: the local network only).
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.sock.open()?.set_multicast_ttl_v4(ttl)
    }

    /// Reads `IP_MULTICAST_TTL`.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.sock.open()?.multicast_ttl_v4()
    }
}

impl_datagram_common!(UdpSocket, SocketAddr);
impl_timeouts!(UdpSocket);
impl_fd!(UdpSocket);
impl_mode_and_clone!(UdpSocket, std::net::UdpSocket::from);
impl_std_conversions!(UdpSocket, std::net::UdpSocket);
