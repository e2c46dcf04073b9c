//! The core every socket type (and the subprocess pipes) is built on: [`Socket<S>`], a non-blocking std (or mio) socket `S`
//! registered with the hub, with the fast-path-then-park logic for reads, writes, accepts and
//! connects, the per-side busy flags and the hub-kept timeouts.
//!
//! # Ground rules
//! - `Socket<S>` owns `S`; its fd is registered once, in [`Socket::new`], and deregistered before
//!   `S` closes it (field order: `src` before `inner`), or when [`Socket::into_inner`] hands `S` back.
//! - Every operation is a closure over `&S` that performs one syscall; [`Socket::op`] runs it and,
//!   only on `WouldBlock`, claims the side (one waiting greenlet per side), clears the remembered
//!   readiness edge and parks. Nothing can dispatch readiness between the syscall and the clear: the
//!   hub does not run until this greenlet parks.
//! - Stream reads and writes ([`Socket::read_buf`], [`Socket::write_buf`], ...) take a short
//!   transfer (`0 < n < len`) to mean that the kernel's receive queue was empty (send buffer full)
//!   when the syscall returned, as tokio does on epoll: the next call on that side parks first and
//!   makes the syscall once the poller reports an edge, instead of a syscall that would say
//!   `WouldBlock` (one syscall less per request for a request/response loop). Sound because the
//!   registration is edge-triggered: every arrival (or freed space) after that moment raises an
//!   edge, and the remembered-edge flag is cleared at the short transfer, with no dispatch in
//!   between. A side the poller reported closed (EOF, hang-up, error) stays ready: no edge may
//!   follow (data and FIN that arrived together raise one), so the hint is ignored there. Known
//!   exceptions, where the kernel returns short while data is still queued: TCP urgent data (a
//!   read stops at the urgent mark) and Unix stream messages with different credentials under
//!   `SO_PASSCRED`; such a read then waits for the next edge (or its timeout).
//! - Futures (`futures_io::AsyncRead`/`AsyncWrite` on the stream types, `poll_*` on the datagram
//!   types; see `gevent::bridge`) take [`Socket::poll_op`]: the same syscall first, and on
//!   `WouldBlock` the task's waker is registered with the fd's slot ([`IoSource::poll_park`])
//!   instead of a parked greenlet. Stream reads and writes ([`Socket::poll_stream`]) share the
//!   short-transfer hint with the blocking path. No busy flag and no hub-kept timeout there (a
//!   future gets its timeouts from whoever polls it); nothing of it runs on the blocking path.
//! - The public types add what is specific to them; the trait boilerplate they share (fd access,
//!   std conversions, `Read`/`Write`, timeouts) comes from the macros at the bottom of this file.

use std::cell::Cell;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::ConcurrentObjectUseError;
use crate::io::{Interest, IoSource};

/// A std socket type that can be switched between blocking and non-blocking mode.
pub(crate) trait Nonblocking {
    /// As the std method of the same name.
    fn set_nonblocking(&self, on: bool) -> io::Result<()>;
}

macro_rules! nonblocking {
    ($($t:ty),*) => {$(
        impl Nonblocking for $t {
            fn set_nonblocking(&self, on: bool) -> io::Result<()> {
                <$t>::set_nonblocking(self, on)
            }
        }
    )*};
}
nonblocking!(
    std::net::TcpListener,
    std::net::TcpStream,
    std::net::UdpSocket,
    std::os::unix::net::UnixListener,
    std::os::unix::net::UnixStream,
    std::os::unix::net::UnixDatagram,
    mio::unix::pipe::Sender,
    mio::unix::pipe::Receiver
);

/// A non-blocking socket registered with this thread's hub.
pub(crate) struct Socket<S> {
    /// # Invariant
    /// Registers `inner`'s fd; declared before `inner` so it is deregistered before the fd closes.
    src: IoSource,
    /// A greenlet is parked on the read side (claimed only while parked, see [`Socket::op`]).
    reading: Cell<bool>,
    /// A greenlet is parked on the write side.
    writing: Cell<bool>,
    /// The last stream read was short: park before the next one (see the module docs).
    read_drained: Cell<bool>,
    /// The last stream write was short: park before the next one.
    write_drained: Cell<bool>,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
    /// A wait that lasts this long closes the socket (see [`Socket::set_idle_timeout`]).
    idle_timeout: Cell<Option<Duration>>,
    /// Set by the user's `set_nonblocking(true)`: an operation that would wait fails with
    /// `WouldBlock` instead of parking (the fd itself is always non-blocking).
    nonblocking: Cell<bool>,
    inner: S,
}

impl<S> fmt::Debug for Socket<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fd {}", self.src.fd())
    }
}

fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the socket was closed")
}

fn check_timeout(t: Option<Duration>) -> io::Result<()> {
    if t == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(())
}

impl<S: AsRawFd> Socket<S> {
    /// Registers `inner`, which must already be non-blocking.
    pub(crate) fn new(inner: S) -> io::Result<Socket<S>> {
        Ok(Socket {
            src: IoSource::new(inner.as_raw_fd())?,
            reading: Cell::new(false),
            writing: Cell::new(false),
            read_drained: Cell::new(false),
            write_drained: Cell::new(false),
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
            idle_timeout: Cell::new(None),
            nonblocking: Cell::new(false),
            inner,
        })
    }
}

impl<S: AsRawFd + Nonblocking> Socket<S> {
    /// Makes `inner` non-blocking and registers it.
    pub(crate) fn from_std(inner: S) -> io::Result<Socket<S>> {
        inner.set_nonblocking(true)?;
        Socket::new(inner)
    }

    /// Deregisters and hands the socket back in blocking mode.
    pub(crate) fn into_std(self) -> S {
        let s = self.into_inner();
        let _ = s.set_nonblocking(false);
        s
    }
}

impl<S> Socket<S> {
    /// The socket itself, for the calls that never wait.
    pub(crate) fn get(&self) -> &S {
        &self.inner
    }

    /// The socket for a call that never waits, unless [`Socket::close`] was called: then the
    /// `NotConnected` error every operation gives after `close`.
    #[inline]
    pub(crate) fn open(&self) -> io::Result<&S> {
        if self.src.is_closed() {
            return Err(closed_error());
        }
        Ok(&self.inner)
    }

    /// Deregisters and hands the socket back, still non-blocking.
    pub(crate) fn into_inner(self) -> S {
        let Socket { src, inner, .. } = self;
        drop(src);
        inner
    }

    pub(crate) fn close(&self) {
        self.src.close();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.src.is_closed()
    }

    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.read_timeout.set(t);
        Ok(())
    }

    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.write_timeout.set(t);
        Ok(())
    }

    /// With `Some(d)`, an operation that waits for `d` (the peer sends nothing, or takes nothing)
    /// closes the socket as [`Socket::close`] does, shuts it down both ways (the peer sees EOF) and
    /// fails with `TimedOut`. Counted from the moment it parks, beside the read/write timeout.
    pub(crate) fn set_idle_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.idle_timeout.set(t);
        Ok(())
    }

    pub(crate) fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout.get()
    }

    /// With `true`, an operation that would wait fails with `WouldBlock` instead (see the
    /// `set_nonblocking` of the public types).
    pub(crate) fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.open()?;
        self.nonblocking.set(on);
        Ok(())
    }

    pub(crate) fn is_nonblocking(&self) -> bool {
        self.nonblocking.get()
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout.get()
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout.get()
    }

    /// Runs a read-side syscall (read, recv, accept, ...), parking on readability while it says
    /// `WouldBlock`, until the read timeout.
    pub(crate) fn read<R>(&self, mut f: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        let deadline = self.read_timeout.get().map(|t| Instant::now() + t);
        self.op(Interest::Read, deadline, || f(&self.inner))
    }

    /// Runs a write-side syscall, parking on writability while it says `WouldBlock`.
    pub(crate) fn write<R>(&self, mut f: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        let deadline = self.write_timeout.get().map(|t| Instant::now() + t);
        self.op(Interest::Write, deadline, || f(&self.inner))
    }

    /// The fast path and the park loop. `deadline` overrides the socket's timeout.
    pub(crate) fn op<R>(
        &self,
        interest: Interest,
        deadline: Option<Instant>,
        f: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        // Its wait may consume the edge that a stream call parking on the hint would wait for.
        self.drained(interest).set(false);
        self.op_from(interest, deadline, false, f)
    }

    /// The side's short-transfer hint.
    fn drained(&self, interest: Interest) -> &Cell<bool> {
        match interest {
            Interest::Read => &self.read_drained,
            Interest::Write => &self.write_drained,
        }
    }

    /// A stream read (`Interest::Read`) or write of `len` bytes by `f`, with the side's timeout: as
    /// [`Socket::op`], but after a short transfer the next call on that side parks before its
    /// syscall (see the module docs).
    #[inline]
    fn stream_op(
        &self,
        interest: Interest,
        len: usize,
        mut f: impl FnMut(&S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let drained = self.drained(interest);
        let timeout = match interest {
            Interest::Read => &self.read_timeout,
            Interest::Write => &self.write_timeout,
        };
        let deadline = timeout.get().map(|t| Instant::now() + t);
        let n = self.op_from(
            interest,
            deadline,
            drained.replace(false),
            || f(&self.inner),
        )?;
        if 0 < n && n < len {
            // The queue was drained (the buffer filled) by this syscall; an edge dispatched before
            // it is stale, and any later arrival raises a new one (the hub has not run since).
            self.src.clear_ready(interest);
            drained.set(true);
        }
        Ok(n)
    }

    /// [`Socket::op`]; with `park_first`, waits for readiness before the first syscall.
    #[inline]
    fn op_from<R>(
        &self,
        interest: Interest,
        deadline: Option<Instant>,
        mut park_first: bool,
        mut f: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let (busy, side) = match interest {
            Interest::Read => (&self.reading, "reading"),
            Interest::Write => (&self.writing, "writing"),
        };
        struct Release<'a>(&'a Cell<bool>, bool);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                if self.1 {
                    self.0.set(false);
                }
            }
        }
        let mut claimed = Release(busy, false);
        // When the idle timeout (if any) ends this operation's wait; set when it first parks.
        let mut idle_at: Option<Instant> = None;
        loop {
            if self.src.is_closed() {
                return Err(closed_error());
            }
            // Parking first, there is nothing to clear: the short transfer that asked for it did.
            // Not while another greenlet waits on this side (the syscall decides, as without the
            // hint, whether this call completes or conflicts), nor once the side was reported
            // closed (EOF, an error: it stays ready, no edge follows).
            let tried = !(std::mem::replace(&mut park_first, false)
                && !busy.get()
                && !self.nonblocking.get()
                && !self.src.hung_up_in(&crate::hub::get_hub(), interest));
            if tried {
                match f() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if self.nonblocking.get() {
                            return Err(e);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => return r,
                }
            }
            if !claimed.1 {
                if busy.get() {
                    return Err(io::Error::new(
                        io::ErrorKind::ResourceBusy,
                        ConcurrentObjectUseError { side },
                    ));
                }
                busy.set(true);
                claimed.1 = true;
            }
            let hub = crate::hub::get_hub();
            if tried {
                // No readiness can be dispatched between the syscall and here (the hub is not running).
                self.src.clear_ready_in(&hub, interest);
            }
            let Some(idle) = self.idle_timeout.get() else {
                self.src.wait_in(&hub, interest, deadline)?;
                continue;
            };
            let at = *idle_at.get_or_insert_with(|| Instant::now() + idle);
            let by_idle = deadline.is_none_or(|d| at <= d);
            match self
                .src
                .wait_in(&hub, interest, if by_idle { Some(at) } else { deadline })
            {
                Err(e) if by_idle && e.kind() == io::ErrorKind::TimedOut => {
                    self.close_idle();
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "idle timeout: the connection waited too long and was closed",
                    ));
                }
                r => r?,
            }
        }
    }

    /// What the idle timeout does: [`Socket::close`], and `shutdown(2)` both ways so that the peer
    /// sees EOF now (the fd itself closes when the value is dropped).
    #[cold]
    fn close_idle(&self) {
        self.src.close();
        // SAFETY: shutdown(2) takes no memory; the fd is open while `self` lives (it owns `inner`).
        unsafe {
            libc::shutdown(self.src.fd(), libc::SHUT_RDWR);
        }
    }

    /// The async path (see the module docs): runs `f` (one syscall), and on `WouldBlock`
    /// registers `cx`'s waker for `interest` and returns `Pending`.
    pub(crate) fn poll_op<R>(
        &self,
        cx: &mut Context<'_>,
        interest: Interest,
        mut f: impl FnMut(&S) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            if self.src.is_closed() {
                return Poll::Ready(Err(closed_error()));
            }
            match f(&self.inner) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return Poll::Ready(r),
            }
            return match self.src.poll_park(cx, interest) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Pending,
            };
        }
    }

    /// [`Socket::poll_op`] for a stream read (`Interest::Read`) or write of `len` bytes, with the
    /// short-transfer hint of the blocking path (shared with it, same meaning): after a short
    /// transfer, the next poll on that side registers its waker without a syscall unless an edge
    /// arrived since (see the module docs; tokio does the same).
    #[inline]
    pub(crate) fn poll_stream(
        &self,
        cx: &mut Context<'_>,
        interest: Interest,
        len: usize,
        f: impl FnMut(&S) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let drained = self.drained(interest);
        if drained.get() {
            match self.src.poll_edge(cx, interest) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => drained.set(false),
            }
        }
        let r = self.poll_op(cx, interest, f);
        if let Poll::Ready(Ok(n)) = r {
            if 0 < n && n < len {
                self.src.clear_ready(interest);
                drained.set(true);
            }
        }
        r
    }

    /// Finishes a non-blocking `connect(2)`: waits for writability until `deadline`, then reports
    /// the socket error (`take_error`) or success (`peer_addr` works).
    pub(crate) fn finish_connect<A>(
        &self,
        deadline: Option<Instant>,
        take_error: impl Fn(&S) -> io::Result<Option<io::Error>>,
        peer_addr: impl Fn(&S) -> io::Result<A>,
    ) -> io::Result<()> {
        self.write_drained.set(false);
        loop {
            if let Some(e) = take_error(&self.inner)? {
                return Err(e);
            }
            match peer_addr(&self.inner) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                Err(e) => return Err(e),
            }
            self.src.clear_ready(Interest::Write);
            self.src.wait(Interest::Write, deadline)?;
        }
    }
}

impl<S> Socket<S>
where
    for<'a> &'a S: Read,
{
    pub(crate) fn read_buf(&self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        self.stream_op(Interest::Read, len, |mut s| s.read(buf))
    }

    pub(crate) fn read_bufs(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let len = vectored_len(bufs.iter().map(|b| b.len()), bufs.len());
        self.stream_op(Interest::Read, len, |mut s| s.read_vectored(bufs))
    }
}

impl<S> Socket<S>
where
    for<'a> &'a S: Write,
{
    pub(crate) fn write_buf(&self, buf: &[u8]) -> io::Result<usize> {
        self.stream_op(Interest::Write, buf.len(), |mut s| s.write(buf))
    }

    pub(crate) fn write_bufs(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let len = vectored_len(bufs.iter().map(|b| b.len()), bufs.len());
        self.stream_op(Interest::Write, len, |mut s| s.write_vectored(bufs))
    }
}

impl<S: AsRawFd> Socket<S> {
    /// `read(2)` into uninitialised memory (hyper's read buffers), on the async path.
    #[cfg_attr(not(feature = "hyper"), allow(dead_code))]
    pub(crate) fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        let len = buf.len();
        self.poll_stream(cx, Interest::Read, len, |s| {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call, and
            // read(2) only writes into it (never reads it), so uninitialised bytes are fine;
            // the fd is `s`'s, open while `s` is borrowed.
            let n = unsafe { libc::read(s.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })
    }
}

/// The length a vectored transfer asks for, to tell a short one: 0 (never short, so no hint) for
/// more buffers than one `readv`/`writev` takes (std passes only the first `UIO_MAXIOV`).
pub(crate) fn vectored_len(lens: impl Iterator<Item = usize>, count: usize) -> usize {
    if count > libc::UIO_MAXIOV as usize {
        return 0;
    }
    lens.fold(0usize, usize::saturating_add)
}

/// `AsRawFd`, `AsFd` and `IntoRawFd` for a type whose `sock` field is a [`Socket`].
macro_rules! impl_fd {
    ($t:ty) => {
        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(self.sock.get())
            }
        }

        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(self.sock.get())
            }
        }

        impl std::os::fd::IntoRawFd for $t {
            /// The fd, still non-blocking, no longer registered with the hub.
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                std::os::fd::IntoRawFd::into_raw_fd(self.sock.into_inner())
            }
        }
    };
}

/// `TryFrom<$std>` and `From<$t> for $std` through the type's `from_std` / `into_std`.
macro_rules! impl_std_conversions {
    ($t:ident, $std:ty) => {
        impl TryFrom<$std> for $t {
            type Error = std::io::Error;
            #[doc = concat!("As [`", stringify!($t), "::from_std`]. (`TryFrom`, not `From`: ")]
            /// registering with the poller can fail.)
            fn try_from(s: $std) -> std::io::Result<$t> {
                $t::from_std(s)
            }
        }

        impl From<$t> for $std {
            #[doc = concat!("As [`", stringify!($t), "::into_std`].")]
            fn from(s: $t) -> $std {
                s.into_std()
            }
        }
    };
}

/// `Read` and `Write` for `$t` and `&$t` (so one greenlet can read while another writes).
macro_rules! impl_stream_io {
    ($t:ty) => {
        $crate::net::socket::impl_stream_io!(@std $t);
        $crate::net::socket::impl_stream_io!(@std &$t);

        $crate::net::socket::impl_async_io!($t);
        $crate::net::socket::impl_async_io!(&$t);

        #[cfg(feature = "hyper")]
        impl ::hyper::rt::Read for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                mut buf: ::hyper::rt::ReadBufCursor<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                // SAFETY: `poll_read_uninit` only hands the bytes to read(2), which writes into
                // them and never de-initialises any.
                let unfilled = unsafe { buf.as_mut() };
                let n = std::task::ready!(self.sock.poll_read_uninit(cx, unfilled))?;
                // SAFETY: read(2) initialised the first `n` bytes of the cursor.
                unsafe { buf.advance(n) };
                std::task::Poll::Ready(Ok(()))
            }
        }

        #[cfg(feature = "hyper")]
        impl ::hyper::rt::Write for $t {
            $crate::net::socket::impl_async_io!(@write_via_futures_io);
        }
    };
    (@std $u:ty) => {
        impl std::io::Read for $u {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.sock.read_buf(buf)
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                self.sock.read_bufs(bufs)
            }
        }

        impl std::io::Write for $u {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.sock.write_buf(buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.sock.write_bufs(bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

/// `futures_io::AsyncRead` / `AsyncWrite` (and with feature `tokio`, tokio's traits) for a stream
/// type `$t` (or `&$t`) whose `sock` field is a [`Socket`]: the async path, [`Socket::poll_op`].
/// Closing shuts the write side down (the peer sees EOF).
macro_rules! impl_async_io {
    ($t:ty) => {
        impl futures_io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let len = buf.len();
                self.sock
                    .poll_stream(cx, $crate::io::Interest::Read, len, |mut s| {
                        std::io::Read::read(&mut s, buf)
                    })
            }

            fn poll_read_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let len =
                    $crate::net::socket::vectored_len(bufs.iter().map(|b| b.len()), bufs.len());
                self.sock
                    .poll_stream(cx, $crate::io::Interest::Read, len, |mut s| {
                        std::io::Read::read_vectored(&mut s, bufs)
                    })
            }
        }

        impl futures_io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let len = buf.len();
                self.sock
                    .poll_stream(cx, $crate::io::Interest::Write, len, |mut s| {
                        std::io::Write::write(&mut s, buf)
                    })
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let len =
                    $crate::net::socket::vectored_len(bufs.iter().map(|b| b.len()), bufs.len());
                self.sock
                    .poll_stream(cx, $crate::io::Interest::Write, len, |mut s| {
                        std::io::Write::write_vectored(&mut s, bufs)
                    })
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(match self.sock.get().shutdown(std::net::Shutdown::Write) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotConnected => Err(e),
                    _ => Ok(()),
                })
            }
        }

        #[cfg(feature = "tokio")]
        impl tokio::io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                // SAFETY: `poll_read_uninit` only hands the bytes to read(2), which writes `n`
                // of them and never de-initialises any; exactly those `n` are then marked filled.
                let unfilled = unsafe { buf.unfilled_mut() };
                let n = std::task::ready!(self.sock.poll_read_uninit(cx, unfilled))?;
                // SAFETY: read(2) initialised the first `n` unfilled bytes.
                unsafe { buf.assume_init(n) };
                buf.advance(n);
                std::task::Poll::Ready(Ok(()))
            }
        }

        #[cfg(feature = "tokio")]
        impl tokio::io::AsyncWrite for $t {
            $crate::net::socket::impl_async_io!(@write_via_futures_io);
        }
    };
    // The methods of hyper's `Write` and tokio's `AsyncWrite`, which are futures_io's under the
    // names those traits use (`poll_shutdown` is `poll_close`).
    (@write_via_futures_io) => {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            futures_io::AsyncWrite::poll_write(self, cx, buf)
        }

        fn poll_write_vectored(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            futures_io::AsyncWrite::poll_write_vectored(self, cx, bufs)
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            futures_io::AsyncWrite::poll_flush(self, cx)
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            futures_io::AsyncWrite::poll_close(self, cx)
        }
    };
}

/// The methods every listener `$t` (accepting `$stream`s, bound to an `$addr`) has beside its
/// own `accept`.
macro_rules! impl_listener_common {
    ($t:ty, $stream:ty, $addr:ty) => {
        impl $t {
            #[doc = concat!("An endless iterator over [`", stringify!($t), "::accept`]'s connections (as std's")]
            /// `incoming`): each `next()` waits like `accept`, and yields its error instead of
            /// ending (after `close`, every item is `NotConnected`).
            ///
            /// # Cancel safety
            #[doc = concat!("As [`", stringify!($t), "::accept`].")]
            pub fn incoming(&self) -> impl Iterator<Item = std::io::Result<$stream>> + '_ {
                std::iter::repeat_with(move || self.accept().map(|(s, _)| s))
            }

            /// The address it listens on.
            ///
            /// # Errors
            /// As `getsockname(2)`.
            pub fn local_addr(&self) -> std::io::Result<$addr> {
                self.sock.open()?.local_addr()
            }

            /// Stops listening for greenlets: a greenlet waiting in `accept` gets `NotConnected`,
            /// as does every later `accept`. The fd is closed when the value is dropped.
            pub fn close(&self) {
                self.sock.close();
            }

            #[doc = concat!("Whether [`", stringify!($t), "::close`] was called.")]
            pub fn is_closed(&self) -> bool {
                self.sock.is_closed()
            }
        }
    };
}

/// `local_addr` and `peer_addr` of a connected or connectable socket `$t` with addresses `$addr`.
macro_rules! impl_addrs {
    ($t:ty, $addr:ty) => {
        impl $t {
            /// The local (bound) address.
            ///
            /// # Errors
            /// As `getsockname(2)`.
            pub fn local_addr(&self) -> std::io::Result<$addr> {
                self.sock.open()?.local_addr()
            }

            /// The connected peer's address.
            ///
            /// # Errors
            /// `NotConnected` if not connected; as `getpeername(2)`.
            pub fn peer_addr(&self) -> std::io::Result<$addr> {
                self.sock.open()?.peer_addr()
            }
        }
    };
}

/// The methods every datagram socket `$t` (with addresses `$addr`) has beside its own sends and
/// receives.
macro_rules! impl_datagram_common {
    ($t:ty, $addr:ty) => {
        $crate::net::socket::impl_addrs!($t, $addr);

        impl $t {
            /// Wakes waiting greenlets with `NotConnected`; later calls fail the same way. The fd
            /// is closed on drop.
            pub fn close(&self) {
                self.sock.close();
            }

            #[doc = concat!("Whether [`", stringify!($t), "::close`] was called.")]
            pub fn is_closed(&self) -> bool {
                self.sock.is_closed()
            }

            /// The pending socket error (`SO_ERROR`), if any.
            ///
            /// # Errors
            /// As `getsockopt(2)`.
            pub fn take_error(&self) -> std::io::Result<Option<std::io::Error>> {
                self.sock.open()?.take_error()
            }
        }
    };
}

/// The hub-kept read/write timeouts, as methods of `$t`.
macro_rules! impl_timeouts {
    ($t:ty) => {
        impl $t {
            /// How long a read (receive) may wait before failing with `TimedOut` (`None`: forever).
            /// Enforced by the hub, not `SO_RCVTIMEO`.
            ///
            /// # Errors
            /// `InvalidInput` for `Some(Duration::ZERO)` (as std).
            pub fn set_read_timeout(&self, t: Option<std::time::Duration>) -> std::io::Result<()> {
                self.sock.set_read_timeout(t)
            }

            /// How long a write (send) may wait before failing with `TimedOut` (`None`: forever).
            ///
            /// # Errors
            /// `InvalidInput` for `Some(Duration::ZERO)` (as std).
            pub fn set_write_timeout(&self, t: Option<std::time::Duration>) -> std::io::Result<()> {
                self.sock.set_write_timeout(t)
            }

            /// The read timeout.
            ///
            /// # Errors
            /// Never; `io::Result` for std's shape.
            pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.sock.read_timeout())
            }

            /// The write timeout.
            ///
            /// # Errors
            /// Never; `io::Result` for std's shape.
            pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.sock.write_timeout())
            }
        }
    };
}

/// What every connected stream has: its addresses, `shutdown`, and `close` / `is_closed`.
macro_rules! impl_stream_common {
    ($t:ty, $addr:ty) => {
        $crate::net::socket::impl_addrs!($t, $addr);

        impl $t {
            /// Shuts down the read side, write side or both (`shutdown(2)`); the peer sees EOF
            /// after `Write`.
            ///
            /// # Errors
            /// As `shutdown(2)`.
            pub fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
                self.sock.open()?.shutdown(how)
            }

            /// Closes the socket for greenlets: the ones waiting on it wake with `NotConnected`,
            /// later calls fail the same way, and the connection is shut down both ways (the peer
            /// sees EOF). The fd is released when the value is dropped.
            pub fn close(&self) {
                self.sock.close();
                let _ = self.sock.get().shutdown(std::net::Shutdown::Both);
            }

            #[doc = concat!("Whether [`", stringify!($t), "::close`] was called.")]
            pub fn is_closed(&self) -> bool {
                self.sock.is_closed()
            }

            /// Closes an idle connection: with `Some(d)`, a read that gets no data, or a write
            /// that can send nothing, for `d` (the peer is silent, or does not read) closes the
            /// connection as [`close`](Self::close) does (the peer sees EOF, later calls fail
            /// with `NotConnected`) and fails with `TimedOut`. Each call that waits counts from the
            /// moment it starts waiting; time spent outside socket calls does not count. Kept by
            /// the hub beside the read and write timeouts (whichever passes first ends the wait);
            /// `None` (the default): never.
            /// [`StreamServer::idle_timeout`](crate::server::StreamServer::idle_timeout) sets it on
            /// every connection.
            ///
            /// # Errors
            /// `InvalidInput` for `Some(Duration::ZERO)`.
            pub fn set_idle_timeout(&self, t: Option<std::time::Duration>) -> std::io::Result<()> {
                self.sock.set_idle_timeout(t)
            }

            /// The idle timeout ([`set_idle_timeout`](Self::set_idle_timeout)).
            pub fn idle_timeout(&self) -> Option<std::time::Duration> {
                self.sock.idle_timeout()
            }
        }
    };
}

/// `set_nonblocking` / `is_nonblocking` and `try_clone` for `$t`, whose `sock` is a
/// `Socket<$inner>`; `$wrap` turns the `dup`'d fd (an `OwnedFd`) into `$inner`.
macro_rules! impl_mode_and_clone {
    ($t:ty, $wrap:expr) => {
        impl $t {
            /// Switches between gevent's blocking mode (the default: an operation that cannot
            /// complete parks the calling greenlet, the other greenlets run) and non-blocking mode
            /// (`true`): an operation that cannot complete at once fails with
            /// `io::ErrorKind::WouldBlock` instead of parking, as a non-blocking std socket does
            /// (gevent's `setblocking(False)`). Wait for readiness yourself then, with
            /// [`wait_read`](crate::net::wait_read) / [`wait_write`](crate::net::wait_write) or
            /// [`select`](crate::select). The fd underneath is non-blocking either way; the mode
            /// belongs to this handle (a [`try_clone`](Self::try_clone) starts with the same mode
            /// and then keeps its own).
            ///
            /// # Errors
            /// `NotConnected` after `close`.
            pub fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
                self.sock.set_nonblocking(nonblocking)
            }

            /// Whether [`set_nonblocking`](Self::set_nonblocking)`(true)` is in force.
            pub fn is_nonblocking(&self) -> bool {
                self.sock.is_nonblocking()
            }

            /// A second handle on the same socket (a `dup`'d fd, registered with this thread's hub
            /// on its own), like std's `try_clone`. The handles share the socket (its data, its
            /// options, its kernel state); each has its own hub-kept timeouts (the clone starts
            /// with none), its own one-greenlet-per-side rule and its own
            /// [`close`](Self::close), which wakes only its own waiters (but on a connected
            /// stream `close` also shuts the shared connection down both ways; dropping a handle
            /// releases only its fd). The clone starts in this handle's blocking mode.
            ///
            /// # Errors
            /// `NotConnected` after `close`; as `dup(2)` (`EMFILE`); registration.
            pub fn try_clone(&self) -> std::io::Result<$t> {
                let fd = std::os::fd::AsFd::as_fd(self.sock.open()?).try_clone_to_owned()?;
                let wrap: fn(std::os::fd::OwnedFd) -> _ = $wrap;
                let clone = Self {
                    sock: crate::net::socket::Socket::new(wrap(fd))?,
                };
                clone.sock.set_nonblocking(self.sock.is_nonblocking())?;
                Ok(clone)
            }
        }
    };
}

pub(crate) use {
    impl_addrs, impl_async_io, impl_datagram_common, impl_fd, impl_listener_common,
    impl_mode_and_clone, impl_std_conversions, impl_stream_common, impl_stream_io, impl_timeouts,
};
