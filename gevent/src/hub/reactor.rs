//! The reactor: the hub's table of registered fds, with the greenlets and futures parked on each
//! side, and the readiness the poller reported for it. [`crate::io`] is its public face
//! (`IoSource`, `wait_read`, `wait_any`), and the ground rules are written there; this module is the
//! only one that touches the table and its count of parked greenlets: `open`, `park`/`unpark`
//! around a wait, `close`, and `release` of a slot.
//!
//! Layers above install what they need as hooks instead of being called by name: `monkey` sets
//! [`EVICT`].

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::{wait_with_deadline, Hub, TimerGuard, Waiter};

/// Called by [`Reactor::open`] when epoll says `EEXIST` for the fd (once set: `monkey` sets it,
/// to drop a registration its hooks keep for an fd they waited on, so that a gevent type's takes
/// its place); true when the caller may register again. Read only on that error.
pub(crate) static EVICT: OnceLock<fn(RawFd) -> bool> = OnceLock::new();

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
    /// The hub's poller generation it is registered with (`Hub::poller_gen`).
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

/// The hub's table of registered fds, and the greenlets and futures parked on them.
#[derive(Default)]
pub(crate) struct Reactor {
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<usize>>,
    /// Number of parked greenlets over all slots.
    waiters: Cell<usize>,
}

impl Reactor {
    /// Whether some greenlet is parked on an fd (the hub does not declare `LoopExit` then).
    #[inline]
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

    /// Registers `fd` (which must stay open until [`Reactor::unregister`]) for read and write
    /// readiness with `hub`'s poller (`hub`: this thread's, which owns `self`); returns its key.
    ///
    /// # Errors
    /// What `epoll_ctl` returns (for example `EPERM` for a regular file, which is always ready).
    pub(crate) fn open(&self, hub: &Hub, fd: RawFd) -> io::Result<usize> {
        let gen = hub.poller_gen();
        let key = {
            let mut slots = self.slots.borrow_mut();
            let key = match self.free.borrow_mut().pop() {
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
        let r = match register() {
            // A registration a layer above keeps for this fd may give way (see `EVICT`).
            Err(e)
                if e.raw_os_error() == Some(libc::EEXIST) && EVICT.get().is_some_and(|f| f(fd)) =>
            {
                register()
            }
            r => r,
        };
        if let Err(e) = r {
            self.release(key);
            return Err(e);
        }
        Ok(key)
    }

    /// Parks `w` on the `interest` side of `slot` (of key `key`'s table, borrowed by the caller).
    #[inline]
    fn park(&self, slot: &mut Slot, interest: Interest, w: &Rc<Waiter>) {
        match interest {
            Interest::Read => slot.readers.push_back(w.clone()),
            Interest::Write => slot.writers.push_back(w.clone()),
        }
        self.waiters.set(self.waiters.get() + 1);
    }

    /// Removes `w` from the `interest` side of slot `key`, if it is still parked there (the wait
    /// ended some other way than this side's readiness).
    #[inline]
    fn unpark(&self, key: usize, interest: Interest, w: &Rc<Waiter>) {
        let mut slots = self.slots.borrow_mut();
        let slot = &mut slots[key];
        let list = match interest {
            Interest::Read => &mut slot.readers,
            Interest::Write => &mut slot.writers,
        };
        if let Some(i) = list.iter().position(|x| Rc::ptr_eq(x, w)) {
            list.remove(i);
            self.waiters.set(self.waiters.get() - 1);
        }
    }

    /// Takes every greenlet parked on `slot` (both sides), to be woken with the table unborrowed.
    fn unpark_all(&self, slot: &mut Slot) -> Vec<Rc<Waiter>> {
        let woken: Vec<Rc<Waiter>> = slot
            .readers
            .drain(..)
            .chain(slot.writers.drain(..))
            .collect();
        self.waiters.set(self.waiters.get() - woken.len());
        woken
    }

    /// Marks slot `key` closed and wakes its async wakers; returns the greenlets parked on it, to
    /// be woken by the caller (with the table unborrowed).
    fn shut(&self, key: usize) -> Vec<Rc<Waiter>> {
        let (woken, wakers) = {
            let mut slots = self.slots.borrow_mut();
            let slot = &mut slots[key];
            slot.closed = true;
            let wakers = slot.take_wakers(true, true);
            (self.unpark_all(slot), wakers)
        };
        wake_all(wakers);
        woken
    }

    /// Frees slot `key` for reuse.
    pub(crate) fn release(&self, key: usize) {
        self.slots.borrow_mut()[key] = Slot::default();
        self.free.borrow_mut().push(key);
    }

    /// Deregisters `fd` (slot `key`) and wakes every greenlet parked on it, whose wait then fails;
    /// the slot stays `closed`, so every later wait fails the same way. Does nothing if it was
    /// closed already.
    pub(crate) fn close(&self, hub: &Hub, key: usize, fd: RawFd) {
        let (woken, gen, wakers) = {
            let mut slots = self.slots.borrow_mut();
            let slot = &mut slots[key];
            if slot.closed {
                return;
            }
            slot.closed = true;
            slot.ready_read = false;
            slot.ready_write = false;
            let wakers = slot.take_wakers(true, true);
            (self.unpark_all(slot), slot.gen, wakers)
        };
        wake_all(wakers);
        if hub.registered_here(gen) {
            let _ = hub
                .registry()
                .registry()
                .deregister(&mut mio::unix::SourceFd(&fd));
        }
        for w in &woken {
            w.wake();
        }
    }

    /// Closes slot `key` without deregistering (its fd was closed behind the owner's back, and the
    /// number may name another file now), wakes its waiters as [`Reactor::close`] does, and
    /// releases the slot once they have seen it.
    #[cfg(feature = "monkey")]
    pub(crate) fn abandon(&self, hub: &Rc<Hub>, key: usize) {
        let woken = self.shut(key);
        for w in &woken {
            w.wake();
        }
        let h = hub.clone();
        hub.run_callback(move || h.reactor.release(key));
    }

    /// The owner of slot `key` (fd `fd`) is gone: deregisters the fd unless closed, wakes what is
    /// parked on it, and releases the slot (at once when nobody was parked; otherwise once the
    /// woken greenlets have seen it closed).
    pub(crate) fn unregister(&self, hub: &Rc<Hub>, key: usize, fd: RawFd) {
        let (was_closed, gen) = {
            let slots = self.slots.borrow();
            (slots[key].closed, slots[key].gen)
        };
        if !was_closed && hub.registered_here(gen) {
            let _ = hub
                .registry()
                .registry()
                .deregister(&mut mio::unix::SourceFd(&fd));
        }
        let woken = self.shut(key);
        if woken.is_empty() && !was_closed {
            self.release(key);
        } else {
            for w in &woken {
                w.wake();
            }
            // The slot stays `closed` until the woken greenlets (here or by `close`) have seen it.
            let h = hub.clone();
            hub.run_callback(move || h.reactor.release(key));
        }
    }

    /// Whether the poller has reported `interest`'s side of slot `key` closed (or in error).
    #[inline]
    pub(crate) fn hung_up(&self, key: usize, interest: Interest) -> bool {
        let slots = self.slots.borrow();
        let slot = &slots[key];
        match interest {
            Interest::Read => slot.read_hup,
            Interest::Write => slot.write_hup,
        }
    }

    /// Forgets a remembered readiness edge of slot `key`.
    #[inline]
    pub(crate) fn clear_ready(&self, key: usize, interest: Interest) {
        let mut slots = self.slots.borrow_mut();
        let slot = &mut slots[key];
        match interest {
            Interest::Read => slot.ready_read = false,
            Interest::Write => slot.ready_write = false,
        }
    }

    /// Registers slot `key` with this process's poller first if it was registered with a forked
    /// parent's; then the slot, borrowed.
    fn fresh(&self, hub: &Hub, key: usize) -> io::Result<std::cell::RefMut<'_, Vec<Slot>>> {
        let gen = hub.poller_gen();
        let stale = {
            let slot = &self.slots.borrow()[key];
            slot.gen != gen && !slot.closed
        };
        if stale {
            self.rearm(hub, key, gen)?;
        }
        Ok(self.slots.borrow_mut())
    }

    /// `IoSource::poll_park` of slot `key`: forgets the side's edge and registers `cx`'s waker.
    pub(crate) fn poll_park(
        &self,
        hub: &Hub,
        key: usize,
        cx: &mut Context<'_>,
        interest: Interest,
    ) -> Poll<io::Result<()>> {
        self.poll_slot(hub, key, cx, interest, false)
    }

    /// `IoSource::poll_edge` of slot `key`: `Ready(Ok)` on a remembered edge or a hang-up,
    /// otherwise registers `cx`'s waker.
    pub(crate) fn poll_edge(
        &self,
        hub: &Hub,
        key: usize,
        cx: &mut Context<'_>,
        interest: Interest,
    ) -> Poll<io::Result<()>> {
        self.poll_slot(hub, key, cx, interest, true)
    }

    /// [`Reactor::poll_edge`] (`edge`: a remembered edge or a hang-up is `Ready(Ok)`, the edge
    /// taken) or [`Reactor::poll_park`] (not `edge`: the edge is forgotten, the waker registered
    /// regardless). `edge` is a constant at both call sites, so each inlines to its own code.
    #[inline(always)]
    fn poll_slot(
        &self,
        hub: &Hub,
        key: usize,
        cx: &mut Context<'_>,
        interest: Interest,
        edge: bool,
    ) -> Poll<io::Result<()>> {
        let mut slots = match self.fresh(hub, key) {
            Ok(s) => s,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let slot = &mut slots[key];
        if slot.closed {
            return Poll::Ready(Err(closed_error()));
        }
        let (ready, hup, waker) = match interest {
            Interest::Read => (&mut slot.ready_read, slot.read_hup, &mut slot.read_waker),
            Interest::Write => (&mut slot.ready_write, slot.write_hup, &mut slot.write_waker),
        };
        if !edge {
            *ready = false;
        } else if hup || std::mem::take(ready) {
            return Poll::Ready(Ok(()));
        }
        match waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// `IoSource::wait` of slot `key`: parks the current greenlet until the side is ready (or
    /// closed, or `deadline`). `hub` is this thread's.
    ///
    /// # Cancel safety
    /// A kill or Timeout unwinds out of it; the waiter is unparked and the timer disarmed.
    pub(crate) fn wait(
        &self,
        hub: &Hub,
        key: usize,
        interest: Interest,
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        let gen = hub.poller_gen();
        let waiter = {
            let mut slots = self.slots.borrow_mut();
            let slot = &mut slots[key];
            if slot.closed {
                return Err(closed_error());
            }
            if slot.gen != gen {
                drop(slots);
                self.rearm(hub, key, gen)?;
                slots = self.slots.borrow_mut();
            }
            let slot = &mut slots[key];
            let ready = match interest {
                Interest::Read => &mut slot.ready_read,
                Interest::Write => &mut slot.ready_write,
            };
            if *ready {
                *ready = false;
                return Ok(());
            }
            let w = Waiter::new();
            self.park(slot, interest, &w);
            w
        };
        let timer = deadline.map(|d| {
            let w = waiter.clone();
            hub.add_timer(d, move || {
                w.wake();
            })
        });
        // Disarmed however the wait ends (a kill or Timeout unwinding out of it included).
        let timer = TimerGuard::new(hub, timer);
        // Unparks this waiter whatever way the wait ends (woken, timeout, kill, LoopExit).
        struct Unpark<'a> {
            reactor: &'a Reactor,
            key: usize,
            waiter: &'a Rc<Waiter>,
            interest: Interest,
        }
        impl Drop for Unpark<'_> {
            fn drop(&mut self) {
                self.reactor.unpark(self.key, self.interest, self.waiter);
            }
        }
        let unpark = Unpark {
            reactor: self,
            key,
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
        let mut slots = self.slots.borrow_mut();
        let slot = &mut slots[key];
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

    /// `io::wait_any` over `sources`, whose slot keys and interests `entry` gives: parks the
    /// current greenlet on all of them until one is ready, or `deadline`; returns the indices of
    /// the ready ones (their edges consumed; a closed one counts as ready).
    ///
    /// # Cancel safety
    /// A kill or Timeout unwinds out of it and leaves no waiter behind.
    pub(crate) fn wait_any<S>(
        &self,
        hub: &Hub,
        sources: &[S],
        entry: impl Fn(&S) -> (usize, Interest),
        deadline: Option<Instant>,
    ) -> io::Result<Vec<usize>> {
        let take_ready = || -> Vec<usize> {
            let mut slots = self.slots.borrow_mut();
            let mut out = Vec::new();
            for (i, s) in sources.iter().enumerate() {
                let (key, interest) = entry(s);
                let slot = &mut slots[key];
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
            for s in sources {
                let key = entry(s).0;
                if self.slots.borrow()[key].gen != gen {
                    self.rearm(hub, key, gen)?;
                }
            }
            let waiter = Waiter::new();
            {
                let mut slots = self.slots.borrow_mut();
                for s in sources {
                    let (key, interest) = entry(s);
                    self.park(&mut slots[key], interest, &waiter);
                }
            }
            struct UnparkAll<'a, S, F: Fn(&S) -> (usize, Interest)> {
                reactor: &'a Reactor,
                sources: &'a [S],
                entry: &'a F,
                waiter: &'a Rc<Waiter>,
            }
            impl<S, F: Fn(&S) -> (usize, Interest)> Drop for UnparkAll<'_, S, F> {
                fn drop(&mut self) {
                    for s in self.sources {
                        let (key, interest) = (self.entry)(s);
                        self.reactor.unpark(key, interest, self.waiter);
                    }
                }
            }
            let unpark = UnparkAll {
                reactor: self,
                sources,
                entry: &entry,
                waiter: &waiter,
            };
            let r = wait_with_deadline(&waiter, deadline);
            drop(unpark);
            r.map_err(|e| io::Error::other(e.to_string()))?;
            if hub.poller_gen() != gen {
                return Err(forked_error());
            }
        }
    }

    /// Registers the fd of slot `key` with the poller of generation `gen` (this thread's hub's
    /// current one: the slot was registered in an earlier process's, before a fork).
    #[cold]
    #[inline(never)]
    fn rearm(&self, hub: &Hub, key: usize, gen: u64) -> io::Result<()> {
        let fd = self.slots.borrow()[key].fd;
        // An error (`EBADF`: the fd was closed behind its owner's back; `EEXIST`: another slot of
        // the child registered the same fd) goes to the waiter, as `open`'s would.
        hub.registry().registry().register(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(key),
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )?;
        self.slots.borrow_mut()[key].gen = gen;
        Ok(())
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
