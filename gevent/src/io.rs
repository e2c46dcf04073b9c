//! Readiness of file descriptors: each fd is registered with the hub's poller once (edge-triggered),
//! and greenlets park on its read or write side until the poller reports it.
//!
//! # Ground rules
//! - Try the syscall first; park only on `WouldBlock` ([`wait_read`] / [`wait_write`], or [`IoSource::wait`]).
//!   One exception, in the stream types of `gevent::net` and the subprocess pipes: after a short read
//!   (write) the next one parks first, as tokio does, since the queue was drained (the buffer filled)
//!   and edge-triggered epoll reports whatever comes next; a side reported closed is exempt.
//! - One registration per fd for its whole life ([`IoSource`]); dropping it deregisters and wakes every
//!   greenlet still parked on it, which then sees an error (closing a socket another greenlet waits on).
//! - Edge-triggered: a readiness event that arrives while nobody waits is remembered (`ready_*` flags)
//!   and consumed by the next wait, so no edge is lost.
//! - [`IoSource::close`] does what dropping does (deregister, wake every waiter with an error) while
//!   the value is still borrowed; the slot then stays `closed` until the value is dropped, so a
//!   closed source never reports readiness again and its key is never reused under a live borrow.
//! - [`wait_any`] parks one greenlet on several sources at once: the same [`Waiter`](crate::Waiter) sits in several
//!   lists; the first wake wins (later wakes are no-ops) and the guard removes it from all of them.
//! - After a `fork`, the child's hub has a poller of its own (see [`crate::os`]): each slot
//!   remembers the poller generation it is registered with and is registered again, lazily, at
//!   its next wait in the child; a registration of the parent's is never deregistered by the
//!   child. A wait that was parked at the fork fails in the child (its copy of the greenlet does
//!   not race the parent for the data).
//! - Futures (the `futures_io` impls of `gevent::net`, see `bridge`) register a [`Waker`](std::task::Waker) per side
//!   instead of a waiter ([`IoSource::poll_park`]), after their syscall said `WouldBlock`: one slot
//!   per side, the last registration wins (as the traits ask); a readiness edge, `close` or drop
//!   takes it and wakes it. Wakers are not counted as parked greenlets: the `block_on` that polls
//!   the future keeps the hub from declaring `LoopExit` while its waker is held.
//!
//! The table itself is the hub's reactor (`hub/reactor.rs`); this module is its public face.

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub(crate) use crate::hub::reactor::is_forked;
pub use crate::hub::reactor::Interest;
use crate::hub::{get_hub, try_hub, Hub};

/// An fd registered with this thread's hub for as long as this value lives.
///
/// Not `Send`: it belongs to the hub of the thread that registered it (its key indexes that hub's
/// table; on another thread it would name another fd's slot). So are the sockets and pipes built
/// on it:
/// ```compile_fail
/// fn is_send<T: Send>() {}
/// is_send::<gevent::io::IoSource>();
/// ```
/// ```compile_fail
/// fn is_send<T: Send>() {}
/// is_send::<gevent::net::TcpStream>();
/// ```
/// ```compile_fail
/// fn is_send<T: Send>() {}
/// is_send::<gevent::subprocess::ChildStdout>();
/// ```
pub struct IoSource {
    /// # Invariant
    /// An index into the table of the hub of the thread that made this value (which is why the
    /// value stays on that thread: `_not_send`).
    key: usize,
    fd: RawFd,
    /// Whether [`IoSource::close`] was called: the slot's `closed`, which nothing but this value
    /// sets while it lives, kept here too so the socket fast path reads it without the hub.
    closed: Cell<bool>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl std::fmt::Debug for IoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IoSource(fd {})", self.fd)
    }
}

impl IoSource {
    /// Registers `fd` (which must stay open while this lives) for read and write readiness.
    ///
    /// # Errors
    /// What `epoll_ctl` returns (for example `EPERM` for a regular file, which is always ready).
    #[inline]
    pub fn new(fd: RawFd) -> io::Result<IoSource> {
        let hub = get_hub();
        let key = hub.reactor.open(&hub, fd)?;
        Ok(IoSource {
            key,
            fd,
            closed: Cell::new(false),
            _not_send: std::marker::PhantomData,
        })
    }

    /// The fd.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Whether [`IoSource::close`] was called.
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Deregisters the fd and wakes every greenlet parked on it, which then gets a `NotConnected`
    /// error; every later [`IoSource::wait`] fails the same way. The fd itself stays open (its owner
    /// closes it). Closing twice does nothing.
    #[inline]
    pub fn close(&self) {
        let hub = get_hub();
        self.closed.set(true);
        hub.reactor.close(&hub, self.key, self.fd);
    }

    /// Releases the slot without deregistering: the fd was closed behind the owner's back (its
    /// registration went with it) and the number may name another file now. Wakes waiters as
    /// [`IoSource::close`] does.
    #[cfg(feature = "monkey")]
    pub(crate) fn abandon(self) {
        if let Some(hub) = try_hub() {
            hub.reactor.abandon(&hub, self.key);
        }
        std::mem::forget(self);
    }

    /// Whether the poller has reported `interest`'s side closed (or in error): from then on that
    /// side stays ready, and a short transfer does not mean that the next one would block.
    /// `hub` is this thread's.
    #[inline]
    pub(crate) fn hung_up_in(&self, hub: &Hub, interest: Interest) -> bool {
        hub.reactor.hung_up(self.key, interest)
    }

    /// Forgets a remembered readiness edge (call after the syscall said `WouldBlock`).
    pub fn clear_ready(&self, interest: Interest) {
        self.clear_ready_in(&get_hub(), interest);
    }

    /// [`IoSource::clear_ready`] with this thread's hub at hand.
    #[inline]
    pub(crate) fn clear_ready_in(&self, hub: &Hub, interest: Interest) {
        hub.reactor.clear_ready(self.key, interest);
    }

    /// For a future whose syscall on this fd just said `WouldBlock`: forgets the remembered
    /// readiness edge of that side (as [`IoSource::clear_ready`]) and registers `cx`'s waker to be
    /// woken by the next one (replacing the side's earlier registration), or by `close` / drop.
    /// Returns `Pending`, or `Ready(Err)` when the source is closed.
    ///
    /// Sound for the same reason as the greenlets' path: the hub cannot dispatch readiness between
    /// the caller's syscall and this call (it runs only when this thread's greenlet parks).
    #[inline]
    pub fn poll_park(&self, cx: &mut Context<'_>, interest: Interest) -> Poll<io::Result<()>> {
        let hub = get_hub();
        hub.reactor.poll_park(&hub, self.key, cx, interest)
    }

    /// For a future about to make a syscall that the last short transfer says would block (see
    /// `gevent::net`'s short-transfer hint): `Ready(Ok)` if an edge arrived since (consumed, as by
    /// [`IoSource::wait`]) or the side was reported closed; otherwise registers `cx`'s waker as
    /// [`IoSource::poll_park`] does and returns `Pending`, with no syscall.
    #[inline]
    pub(crate) fn poll_edge(
        &self,
        cx: &mut Context<'_>,
        interest: Interest,
    ) -> Poll<io::Result<()>> {
        let hub = get_hub();
        hub.reactor.poll_edge(&hub, self.key, cx, interest)
    }

    /// Parks the current greenlet until the fd is ready for `interest` (or closed, or until `deadline`).
    ///
    /// Returns at once if readiness arrived since the last [`IoSource::clear_ready`].
    ///
    /// # Errors
    /// `TimedOut` at the deadline; `NotConnected`-like `Other` error when the source is closed while
    /// waiting; the [`LoopExit`](crate::LoopExit) message as `Other` when nothing can wake it.
    ///
    /// # Cancel safety
    /// A kill or Timeout unwinds out of it and leaves no waiter behind.
    #[inline]
    pub fn wait(&self, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
        self.wait_in(&get_hub(), interest, deadline)
    }

    /// [`IoSource::wait`] with this thread's hub at hand.
    #[inline]
    pub(crate) fn wait_in(
        &self,
        hub: &Hub,
        interest: Interest,
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        hub.reactor.wait(hub, self.key, interest, deadline)
    }
}

impl Drop for IoSource {
    #[inline]
    fn drop(&mut self) {
        if let Some(hub) = try_hub() {
            hub.reactor.unregister(&hub, self.key, self.fd);
        }
    }
}

/// Parks the current greenlet until `fd` is readable, or `timeout` passes (gevent's `wait_read`).
///
/// Registers `fd` for the duration of the call; for an fd waited on repeatedly, keep an [`IoSource`].
///
/// # Errors
/// As [`IoSource::wait`], and registration errors.
pub fn wait_read(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_once(fd, Interest::Read, timeout)
}

/// Parks the current greenlet until `fd` is writable, or `timeout` passes (gevent's `wait_write`).
///
/// # Errors
/// As [`wait_read`].
pub fn wait_write(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_once(fd, Interest::Write, timeout)
}

fn wait_once(fd: RawFd, interest: Interest, timeout: Option<Duration>) -> io::Result<()> {
    let src = IoSource::new(fd)?;
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        src.wait(interest, deadline)?;
        // A freshly registered fd reports its current state at once; confirm with poll(2).
        let mut pfd = libc::pollfd {
            fd,
            events: match interest {
                Interest::Read => libc::POLLIN,
                Interest::Write => libc::POLLOUT,
            },
            revents: 0,
        };
        // SAFETY: `pfd` is a valid pollfd for the duration of the call; nfds = 1; timeout 0.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        if n != 0 {
            return Ok(());
        }
    }
}

/// Parks the current greenlet until one of `sources` is ready for its interest, or `deadline`.
/// Returns the indices of the sources found ready (possibly empty at the deadline). Readiness of a
/// source that is reported is consumed (as by [`IoSource::wait`]).
///
/// # Errors
/// The [`LoopExit`](crate::LoopExit) message as `Other` when nothing can wake it. A closed source
/// counts as ready (its next operation reports the error).
///
/// # Cancel safety
/// A kill or Timeout unwinds out of it and leaves no waiter behind.
pub fn wait_any(
    sources: &[(&IoSource, Interest)],
    deadline: Option<Instant>,
) -> io::Result<Vec<usize>> {
    let hub = get_hub();
    hub.reactor.wait_any(
        &hub,
        sources,
        |(src, interest)| (src.key, *interest),
        deadline,
    )
}
