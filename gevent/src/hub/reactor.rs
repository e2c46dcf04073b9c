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
//! - [`wait_any`] parks one greenlet on several sources at once: the same [`Waiter`] sits in several
//!   lists; the first wake wins (later wakes are no-ops) and the guard removes it from all of them.
//! - After a `fork`, the child's hub has a poller of its own (see [`crate::os`]): each slot
//!   remembers the poller generation it is registered with and is registered again, lazily, at
//!   its next wait in the child; a registration of the parent's is never deregistered by the
//!   child. A wait that was parked at the fork fails in the child (its copy of the greenlet does
//!   not race the parent for the data).
//! - Futures (the `futures_io` impls of `gevent::net`, see `bridge`) register a [`Waker`] per side
//!   instead of a waiter ([`IoSource::poll_park`]), after their syscall said `WouldBlock`: one slot
//!   per side, the last registration wins (as the traits ask); a readiness edge, `close` or drop
//!   takes it and wakes it. Wakers are not counted as parked greenlets: the `block_on` that polls
//!   the future keeps the hub from declaring `LoopExit` while its waker is held.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::hub::{get_hub, Hub, Waiter};

#[derive(Default)]
struct Slot {
    readers: VecDeque<Rc<Waiter>>,
    writers: VecDeque<Rc<Waiter>>,
    ready_read: bool,
    ready_write: bool,
    /// The poller reported the read side closed (`EPOLLRDHUP`, `EPOLLHUP`, `EPOLLERR`) at some point:
    /// sticky (not consumed by waits), since no further edge may follow.
    read_hup: bool,
    /// The same for the write side.
    write_hup: bool,
    closed: bool,
    in_use: bool,
    /// The fd (to register it again in a forked child).
    fd: RawFd,
    /// The hub's poller generation it is registered with ([`Hub::poller_gen`]).
    gen: u64,
    /// A future waiting to read (see the ground rules): woken by the next read edge.
    read_waker: Option<Waker>,
    /// A future waiting to write.
    write_waker: Option<Waker>,
}

impl Slot {
    /// Takes the registered wakers of the sides `read` / `write` (to wake them with the table
    /// unborrowed).
    #[inline]
    fn take_wakers(&mut self, read: bool, write: bool) -> (Option<Waker>, Option<Waker>) {
        (
            if read { self.read_waker.take() } else { None },
            if write { self.write_waker.take() } else { None },
        )
    }
}

/// Wakes what [`Slot::take_wakers`] took.
#[inline]
fn wake_all(wakers: (Option<Waker>, Option<Waker>)) {
    if let Some(w) = wakers.0 {
        w.wake();
    }
    if let Some(w) = wakers.1 {
        w.wake();
    }
}

/// The hub's table of registered fds.
#[derive(Default)]
pub(crate) struct Registry {
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<usize>>,
    /// Number of parked greenlets over all slots.
    waiters: Cell<usize>,
}

impl Registry {
    pub(crate) fn has_waiters(&self) -> bool {
        self.waiters.get() > 0
    }

    /// The hub was rebuilt in a forked child: wakes every parked greenlet (its wait then fails, as
    /// it began before the fork) and every registered future waker. Registrations are made again
    /// at each slot's next wait or poll.
    pub(crate) fn after_fork(&self, hub: &Hub) {
        let (woken, wakers): (Vec<Rc<Waiter>>, Vec<_>) = {
            let mut slots = self.slots.borrow_mut();
            let wakers = slots
                .iter_mut()
                .map(|s| s.take_wakers(true, true))
                .collect();
            let woken = slots
                .iter_mut()
                .flat_map(|s| s.readers.drain(..).chain(s.writers.drain(..)))
                .collect();
            (woken, wakers)
        };
        self.waiters.set(0);
        for w in woken {
            w.wake_into(hub);
        }
        // A future is polled again and makes its syscall anew (a spurious wake, which futures
        // allow); if that says `WouldBlock` it registers with the child's poller.
        for w in wakers {
            wake_all(w);
        }
    }

    /// The poller reported `token` readable and/or writable (`read_hup` / `write_hup`: that side
    /// closed, included in `readable` / `writable`): remember the edge(s) and hand every greenlet
    /// parked on a ready side to `hub`'s ready queue. Called by the hub only; allocates nothing
    /// (the waiters move from the slot's lists into the ready queue).
    pub(crate) fn dispatch(
        &self,
        hub: &Hub,
        token: mio::Token,
        readable: bool,
        writable: bool,
        read_hup: bool,
        write_hup: bool,
    ) {
        let wakers = {
            let mut slots = self.slots.borrow_mut();
            let Some(slot) = slots.get_mut(token.0) else {
                return;
            };
            if !slot.in_use {
                return;
            }
            slot.read_hup |= read_hup;
            slot.write_hup |= write_hup;
            slot.ready_read |= readable;
            slot.ready_write |= writable;
            slot.take_wakers(readable, writable)
        };
        wake_all(wakers);
        // One waiter at a time, the table not borrowed while it is woken.
        loop {
            let w = {
                let mut slots = self.slots.borrow_mut();
                let slot = &mut slots[token.0];
                let reader = readable.then(|| slot.readers.pop_front()).flatten();
                reader.or_else(|| writable.then(|| slot.writers.pop_front()).flatten())
            };
            let Some(w) = w else {
                break;
            };
            self.waiters.set(self.waiters.get() - 1);
            w.wake_into(hub);
        }
    }
}

/// Which side of an fd to wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Readable (or closed, or in error).
    Read,
    /// Writable (or closed, or in error).
    Write,
}

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
    pub fn new(fd: RawFd) -> io::Result<IoSource> {
        let hub = get_hub();
        let gen = hub.poller_gen();
        let reg = &hub.io;
        let key = {
            let mut slots = reg.slots.borrow_mut();
            let key = match reg.free.borrow_mut().pop() {
                Some(k) => k,
                None => {
                    slots.push(Slot::default());
                    slots.len() - 1
                }
            };
            slots[key] = Slot {
                in_use: true,
                fd,
                gen,
                ..Slot::default()
            };
            key
        };
        let register = || {
            hub.registry().registry().register(
                &mut mio::unix::SourceFd(&fd),
                mio::Token(key),
                mio::Interest::READABLE | mio::Interest::WRITABLE,
            )
        };
        let r = register();
        // A registration the monkey hooks keep for an fd they waited on gives way to a gevent type's.
        #[cfg(feature = "monkey")]
        let r = match r {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && crate::monkey::evict(fd) => {
                register()
            }
            r => r,
        };
        if let Err(e) = r {
            reg.slots.borrow_mut()[key].in_use = false;
            reg.free.borrow_mut().push(key);
            return Err(e);
        }
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
    pub fn close(&self) {
        let hub = get_hub();
        let (woken, gen, wakers): (Vec<Rc<Waiter>>, u64, _) = {
            let mut slots = hub.io.slots.borrow_mut();
            let slot = &mut slots[self.key];
            if slot.closed {
                return;
            }
            slot.closed = true;
            self.closed.set(true);
            slot.ready_read = false;
            slot.ready_write = false;
            let wakers = slot.take_wakers(true, true);
            let woken = slot
                .readers
                .drain(..)
                .chain(slot.writers.drain(..))
                .collect();
            (woken, slot.gen, wakers)
        };
        wake_all(wakers);
        if hub.registered_here(gen) {
            let _ = hub
                .registry()
                .registry()
                .deregister(&mut mio::unix::SourceFd(&self.fd));
        }
        hub.io.waiters.set(hub.io.waiters.get() - woken.len());
        for w in &woken {
            w.wake();
        }
    }

    /// Releases the slot without deregistering: the fd was closed behind the owner's back (its
    /// registration went with it) and the number may name another file now. Wakes waiters as
    /// [`IoSource::close`] does.
    #[cfg(feature = "monkey")]
    pub(crate) fn abandon(self) {
        if let Some(hub) = crate::hub::try_hub() {
            let (woken, wakers): (Vec<Rc<Waiter>>, _) = {
                let mut slots = hub.io.slots.borrow_mut();
                let slot = &mut slots[self.key];
                slot.closed = true;
                let wakers = slot.take_wakers(true, true);
                (
                    slot.readers
                        .drain(..)
                        .chain(slot.writers.drain(..))
                        .collect(),
                    wakers,
                )
            };
            wake_all(wakers);
            hub.io.waiters.set(hub.io.waiters.get() - woken.len());
            for w in &woken {
                w.wake();
            }
            let key = self.key;
            let h = hub.clone();
            hub.run_callback(move || release(&h, key));
        }
        std::mem::forget(self);
    }

    /// Whether the poller has reported `interest`'s side closed (or in error): from then on that
    /// side stays ready, and a short transfer does not mean that the next one would block.
    /// `hub` is this thread's.
    pub(crate) fn hung_up_in(&self, hub: &Hub, interest: Interest) -> bool {
        let slots = hub.io.slots.borrow();
        let slot = &slots[self.key];
        match interest {
            Interest::Read => slot.read_hup,
            Interest::Write => slot.write_hup,
        }
    }

    /// Forgets a remembered readiness edge (call after the syscall said `WouldBlock`).
    pub fn clear_ready(&self, interest: Interest) {
        self.clear_ready_in(&get_hub(), interest);
    }

    /// [`IoSource::clear_ready`] with this thread's hub at hand.
    #[inline]
    pub(crate) fn clear_ready_in(&self, hub: &Hub, interest: Interest) {
        let mut slots = hub.io.slots.borrow_mut();
        let slot = &mut slots[self.key];
        match interest {
            Interest::Read => slot.ready_read = false,
            Interest::Write => slot.ready_write = false,
        }
    }

    /// For a future whose syscall on this fd just said `WouldBlock`: forgets the remembered
    /// readiness edge of that side (as [`IoSource::clear_ready`]) and registers `cx`'s waker to be
    /// woken by the next one (replacing the side's earlier registration), or by `close` / drop.
    /// Returns `Pending`, or `Ready(Err)` when the source is closed.
    ///
    /// Sound for the same reason as the greenlets' path: the hub cannot dispatch readiness between
    /// the caller's syscall and this call (it runs only when this thread's greenlet parks).
    pub fn poll_park(&self, cx: &mut Context<'_>, interest: Interest) -> Poll<io::Result<()>> {
        let hub = get_hub();
        let gen = hub.poller_gen();
        let stale = {
            let slot = &hub.io.slots.borrow()[self.key];
            slot.gen != gen && !slot.closed
        };
        if stale {
            // Registered with a forked parent's poller: register with this process's first.
            if let Err(e) = rearm(&hub, self.key, gen) {
                return Poll::Ready(Err(e));
            }
        }
        let mut slots = hub.io.slots.borrow_mut();
        let slot = &mut slots[self.key];
        if slot.closed {
            return Poll::Ready(Err(closed_error()));
        }
        let (ready, waker) = match interest {
            Interest::Read => (&mut slot.ready_read, &mut slot.read_waker),
            Interest::Write => (&mut slot.ready_write, &mut slot.write_waker),
        };
        *ready = false;
        match waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// For a future about to make a syscall that the last short transfer says would block (see
    /// `gevent::net`'s short-transfer hint): `Ready(Ok)` if an edge arrived since (consumed, as by
    /// [`IoSource::wait`]) or the side was reported closed; otherwise registers `cx`'s waker as
    /// [`IoSource::poll_park`] does and returns `Pending`, with no syscall.
    pub(crate) fn poll_edge(
        &self,
        cx: &mut Context<'_>,
        interest: Interest,
    ) -> Poll<io::Result<()>> {
        let hub = get_hub();
        let gen = hub.poller_gen();
        let stale = {
            let slot = &hub.io.slots.borrow()[self.key];
            slot.gen != gen && !slot.closed
        };
        if stale {
            // Registered with a forked parent's poller: register with this process's first.
            if let Err(e) = rearm(&hub, self.key, gen) {
                return Poll::Ready(Err(e));
            }
        }
        let mut slots = hub.io.slots.borrow_mut();
        let slot = &mut slots[self.key];
        if slot.closed {
            return Poll::Ready(Err(closed_error()));
        }
        let (ready, hup, waker) = match interest {
            Interest::Read => (&mut slot.ready_read, slot.read_hup, &mut slot.read_waker),
            Interest::Write => (&mut slot.ready_write, slot.write_hup, &mut slot.write_waker),
        };
        if hup || std::mem::take(ready) {
            return Poll::Ready(Ok(()));
        }
        match waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
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
    pub fn wait(&self, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
        self.wait_in(&get_hub(), interest, deadline)
    }

    /// [`IoSource::wait`] with this thread's hub at hand.
    pub(crate) fn wait_in(
        &self,
        hub: &Hub,
        interest: Interest,
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        let gen = hub.poller_gen();
        let waiter = {
            let mut slots = hub.io.slots.borrow_mut();
            let slot = &mut slots[self.key];
            if slot.closed {
                return Err(closed_error());
            }
            if slot.gen != gen {
                drop(slots);
                rearm(hub, self.key, gen)?;
                slots = hub.io.slots.borrow_mut();
            }
            let slot = &mut slots[self.key];
            let (ready, list) = match interest {
                Interest::Read => (&mut slot.ready_read, &mut slot.readers),
                Interest::Write => (&mut slot.ready_write, &mut slot.writers),
            };
            if *ready {
                *ready = false;
                return Ok(());
            }
            let w = Waiter::new();
            list.push_back(w.clone());
            w
        };
        hub.io.waiters.set(hub.io.waiters.get() + 1);
        let timer = deadline.map(|d| {
            let w = waiter.clone();
            hub.add_timer(d, move || {
                w.wake();
            })
        });
        // Disarmed however the wait ends (a kill or Timeout unwinding out of it included).
        let timer = crate::hub::TimerGuard::new(hub, timer);
        // Remove this waiter from the slot whatever way the wait ends (woken, timeout, kill, LoopExit).
        struct Unpark<'a> {
            hub: &'a Hub,
            src: &'a IoSource,
            waiter: &'a Rc<Waiter>,
            interest: Interest,
        }
        impl Drop for Unpark<'_> {
            fn drop(&mut self) {
                let hub = self.hub;
                let mut slots = hub.io.slots.borrow_mut();
                let slot = &mut slots[self.src.key];
                let list = match self.interest {
                    Interest::Read => &mut slot.readers,
                    Interest::Write => &mut slot.writers,
                };
                if let Some(i) = list.iter().position(|w| Rc::ptr_eq(w, self.waiter)) {
                    list.remove(i);
                    hub.io.waiters.set(hub.io.waiters.get() - 1);
                }
            }
        }
        let unpark = Unpark {
            hub,
            src: self,
            waiter: &waiter,
            interest,
        };
        let r = waiter.wait_in(hub);
        drop(unpark);
        drop(timer);
        r.map_err(|e| io::Error::other(e.to_string()))?;
        if hub.poller_gen() != gen {
            return Err(forked_error());
        }
        let mut slots = hub.io.slots.borrow_mut();
        let slot = &mut slots[self.key];
        if slot.closed {
            return Err(closed_error());
        }
        let ready = match interest {
            Interest::Read => &mut slot.ready_read,
            Interest::Write => &mut slot.ready_write,
        };
        if *ready {
            *ready = false;
            Ok(())
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
        } else {
            // Woken without readiness (a spurious edge or a timer racing it): let the caller retry.
            Ok(())
        }
    }
}

/// Registers the fd of slot `key` with the poller of generation `gen` (this thread's hub's current
/// one: the slot was registered in an earlier process's, before a fork).
#[cold]
#[inline(never)]
fn rearm(hub: &Hub, key: usize, gen: u64) -> io::Result<()> {
    let fd = hub.io.slots.borrow()[key].fd;
    // An error (`EBADF`: the fd was closed behind its owner's back; `EEXIST`: another slot of
    // the child registered the same fd) goes to the waiter, as `IoSource::new`'s would.
    hub.registry().registry().register(
        &mut mio::unix::SourceFd(&fd),
        mio::Token(key),
        mio::Interest::READABLE | mio::Interest::WRITABLE,
    )?;
    hub.io.slots.borrow_mut()[key].gen = gen;
    Ok(())
}

/// The error of a wait that was parked when the process forked, seen in the child.
#[derive(Debug)]
struct ForkedWait;

impl std::fmt::Display for ForkedWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "gevent: this wait began before fork() and belongs to the parent process; \
             in the child, wait again to watch the fd from here",
        )
    }
}

impl std::error::Error for ForkedWait {}

fn forked_error() -> io::Error {
    io::Error::other(ForkedWait)
}

/// Whether `e` is the error of a wait that was parked when the process forked (in the child).
pub(crate) fn is_forked(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<ForkedWait>())
}

fn closed_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the socket was closed while a greenlet was waiting on it",
    )
}

impl Drop for IoSource {
    fn drop(&mut self) {
        let Some(hub) = crate::hub::try_hub() else {
            return;
        };
        let (was_closed, gen) = {
            let slots = hub.io.slots.borrow();
            (slots[self.key].closed, slots[self.key].gen)
        };
        if !was_closed && hub.registered_here(gen) {
            let _ = hub
                .registry()
                .registry()
                .deregister(&mut mio::unix::SourceFd(&self.fd));
        }
        let (woken, wakers): (Vec<Rc<Waiter>>, _) = {
            let mut slots = hub.io.slots.borrow_mut();
            let slot = &mut slots[self.key];
            slot.closed = true;
            let wakers = slot.take_wakers(true, true);
            (
                slot.readers
                    .drain(..)
                    .chain(slot.writers.drain(..))
                    .collect(),
                wakers,
            )
        };
        wake_all(wakers);
        hub.io.waiters.set(hub.io.waiters.get() - woken.len());
        if woken.is_empty() && !was_closed {
            self.release_slot(&hub);
        } else {
            for w in &woken {
                w.wake();
            }
            // The slot stays `closed` until the woken greenlets (here or by `close`) have seen it.
            let key = self.key;
            let h = hub.clone();
            hub.run_callback(move || release(&h, key));
        }
    }
}

impl IoSource {
    fn release_slot(&self, hub: &crate::hub::Hub) {
        release(hub, self.key);
    }
}

fn release(hub: &crate::hub::Hub, key: usize) {
    hub.io.slots.borrow_mut()[key] = Slot::default();
    hub.io.free.borrow_mut().push(key);
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
    let take_ready = || -> Vec<usize> {
        let mut slots = hub.io.slots.borrow_mut();
        let mut out = Vec::new();
        for (i, (src, interest)) in sources.iter().enumerate() {
            let slot = &mut slots[src.key];
            let ready = match interest {
                Interest::Read => &mut slot.ready_read,
                Interest::Write => &mut slot.ready_write,
            };
            if slot.closed || *ready {
                *ready = false;
                out.push(i);
            }
        }
        out
    };
    loop {
        let ready = take_ready();
        if !ready.is_empty() || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(ready);
        }
        let gen = hub.poller_gen();
        for (src, _) in sources {
            if hub.io.slots.borrow()[src.key].gen != gen {
                rearm(&hub, src.key, gen)?;
            }
        }
        let waiter = Waiter::new();
        {
            let mut slots = hub.io.slots.borrow_mut();
            for (src, interest) in sources {
                let slot = &mut slots[src.key];
                match interest {
                    Interest::Read => slot.readers.push_back(waiter.clone()),
                    Interest::Write => slot.writers.push_back(waiter.clone()),
                }
            }
        }
        hub.io.waiters.set(hub.io.waiters.get() + sources.len());
        struct UnparkAll<'a> {
            sources: &'a [(&'a IoSource, Interest)],
            waiter: &'a Rc<Waiter>,
        }
        impl Drop for UnparkAll<'_> {
            fn drop(&mut self) {
                let hub = get_hub();
                let mut slots = hub.io.slots.borrow_mut();
                for (src, interest) in self.sources {
                    let slot = &mut slots[src.key];
                    let list = match interest {
                        Interest::Read => &mut slot.readers,
                        Interest::Write => &mut slot.writers,
                    };
                    if let Some(i) = list.iter().position(|w| Rc::ptr_eq(w, self.waiter)) {
                        list.remove(i);
                        hub.io.waiters.set(hub.io.waiters.get() - 1);
                    }
                }
            }
        }
        let unpark = UnparkAll {
            sources,
            waiter: &waiter,
        };
        let r = crate::wait::wait_with_deadline(&waiter, deadline);
        drop(unpark);
        r.map_err(|e| io::Error::other(e.to_string()))?;
        if hub.poller_gen() != gen {
            return Err(forked_error());
        }
    }
}
