//! Locks for greenlets: [`Semaphore`], [`BoundedSemaphore`], [`RLock`], [`DummySemaphore`]
//! (gevent's `gevent.lock`).
//!
//! # Ground rules
//! - All types are cheap-to-clone handles owned by one thread's hub.
//! - Waiters are served FIFO: [`Semaphore::release`] with someone waiting hands the permit directly
//!   to the oldest waiter (the counter does not go up), so a greenlet that arrives later cannot take
//!   it first. Hence the invariant: while anyone waits, the counter is 0.
//! - A waiter that is killed or times out leaves no trace. If it was already handed a permit but had
//!   not run yet, its guard hands the permit on (to the next waiter, or back to the counter), so no
//!   permit is ever lost.
//! - Not thread-safe: a semaphore belongs to the thread that uses it (`!Send`).
//! - Names, as in [`queue`](crate::queue): `try_acquire` never waits, `acquire_timeout` waits at
//!   most a timeout; gevent's `locked()` and `counter` are search aliases of `is_locked()` and
//!   `available()`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::greenlet::Waitable;
use crate::hub::{LoopExit, Waiter};
use crate::wait::wait_with_deadline;

struct SemCore {
    /// Free permits. # Invariant: 0 while `waiters` is not empty.
    counter: usize,
    /// Greenlets waiting for a permit, oldest first.
    waiters: VecDeque<Rc<Waiter>>,
    /// Waiters handed a permit that have not run yet.
    granted: Vec<Rc<Waiter>>,
    /// Greenlets waiting for `counter > 0` without acquiring (`gevent::wait([sem])`).
    watchers: Vec<Rc<Waiter>>,
}

impl SemCore {
    /// Gives one permit back: to the oldest waiter, or to the counter.
    fn release_one(&mut self) {
        if let Some(w) = self.waiters.pop_front() {
            w.wake();
            self.granted.push(w);
        } else {
            self.counter += 1;
            for w in self.watchers.drain(..) {
                w.wake();
            }
        }
    }

    fn take_grant(&mut self, w: &Rc<Waiter>) -> bool {
        match self.granted.iter().position(|x| Rc::ptr_eq(x, w)) {
            Some(i) => {
                self.granted.swap_remove(i);
                true
            }
            None => false,
        }
    }
}

/// A counting semaphore (gevent's `Semaphore`): [`acquire`](Semaphore::acquire) takes a permit,
/// waiting while there is none; [`release`](Semaphore::release) gives one back.
///
/// # Examples
/// ```
/// let sem = gevent::lock::Semaphore::new(1);
/// {
///     let _g = sem.acquire_guard();
///     assert!(!sem.try_acquire());
/// }
/// assert!(sem.try_acquire());
/// ```
#[derive(Clone)]
pub struct Semaphore {
    core: Rc<RefCell<SemCore>>,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.core.borrow();
        write!(
            f,
            "Semaphore(counter: {}, waiters: {})",
            c.counter,
            c.waiters.len()
        )
    }
}

impl Semaphore {
    /// A semaphore with `value` permits.
    pub fn new(value: usize) -> Semaphore {
        Semaphore {
            core: Rc::new(RefCell::new(SemCore {
                counter: value,
                waiters: VecDeque::new(),
                granted: Vec::new(),
                watchers: Vec::new(),
            })),
        }
    }

    /// Free permits (gevent's `counter`).
    #[doc(alias = "counter")]
    pub fn available(&self) -> usize {
        self.core.borrow().counter
    }

    /// Whether no permit is free (gevent's `locked()`).
    #[doc(alias = "locked")]
    pub fn is_locked(&self) -> bool {
        self.available() == 0
    }

    /// How many greenlets wait to acquire.
    pub fn waiter_count(&self) -> usize {
        self.core.borrow().waiters.len()
    }

    /// Takes a permit if one is free, without waiting.
    pub fn try_acquire(&self) -> bool {
        let mut c = self.core.borrow_mut();
        if c.counter > 0 {
            c.counter -= 1;
            true
        } else {
            false
        }
    }

    /// Takes a permit, waiting (FIFO) while there is none.
    ///
    /// # Panics
    /// With [`LoopExit`]'s message when nothing can ever release one.
    ///
    /// # Cancel safety
    /// A kill or [`Timeout`](crate::Timeout) landing here unwinds out of it without a permit and
    /// leaves no trace; a permit handed to it just before is passed on to the next waiter.
    pub fn acquire(&self) {
        if let Err(e) = self.acquire_deadline(None) {
            panic!("{e}");
        }
    }

    /// Takes a permit, waiting at most `timeout`; returns whether it got one.
    ///
    /// # Cancel safety
    /// As [`Semaphore::acquire`].
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.acquire_deadline(Some(Instant::now() + timeout))
            .unwrap_or(false)
    }

    /// Takes a permit, waiting until `deadline` at most (forever with `None`); returns whether it
    /// got one.
    ///
    /// # Errors
    /// [`LoopExit`] when nothing can ever release one.
    ///
    /// # Cancel safety
    /// As [`Semaphore::acquire`].
    pub fn acquire_deadline(&self, deadline: Option<Instant>) -> Result<bool, LoopExit> {
        if self.try_acquire() {
            return Ok(true);
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Ok(false);
        }
        let w = Waiter::new();
        self.core.borrow_mut().waiters.push_back(w.clone());
        // On every way out that did not take the permit (timeout, kill, LoopExit), leave no trace
        // and hand on a permit that arrived meanwhile.
        struct Leave<'a>(&'a Semaphore, &'a Rc<Waiter>);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                let mut c = self.0.core.borrow_mut();
                if let Some(i) = c.waiters.iter().position(|x| Rc::ptr_eq(x, self.1)) {
                    c.waiters.remove(i);
                }
                if c.take_grant(self.1) {
                    c.release_one();
                }
            }
        }
        let leave = Leave(self, &w);
        let r = wait_with_deadline(&w, deadline);
        let granted = self.core.borrow_mut().take_grant(&w);
        drop(leave);
        match r {
            Ok(()) => Ok(granted),
            Err(e) if granted => {
                // Unreachable in practice (a grant queues our wake), but never lose the permit.
                self.release();
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Gives a permit back, to the oldest waiter if there is one.
    pub fn release(&self) {
        self.core.borrow_mut().release_one();
    }

    /// Takes a permit (waiting as [`Semaphore::acquire`]) and returns a guard that releases it when
    /// dropped.
    ///
    /// # Panics
    /// As [`Semaphore::acquire`].
    ///
    /// # Cancel safety
    /// As [`Semaphore::acquire`].
    pub fn acquire_guard(&self) -> SemaphoreGuard<'_> {
        self.acquire();
        SemaphoreGuard { sem: self }
    }

    /// Waits until a permit is free without taking it (gevent's `wait()`); returns the free count.
    ///
    /// # Panics
    /// With [`LoopExit`]'s message when nothing can ever release one.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it and leaves no trace.
    pub fn wait(&self) -> usize {
        crate::wait([self], None, None);
        self.available()
    }

    /// As [`Semaphore::wait`], at most `timeout`.
    ///
    /// # Cancel safety
    /// As [`Semaphore::wait`].
    pub fn wait_timeout(&self, timeout: Duration) -> usize {
        crate::wait([self], Some(timeout), None);
        self.available()
    }
}

impl Waitable for Semaphore {
    fn is_ready(&self) -> bool {
        self.available() > 0
    }
    fn subscribe(&self, w: &Rc<Waiter>) {
        self.core.borrow_mut().watchers.push(w.clone());
    }
    fn unsubscribe(&self, w: &Rc<Waiter>) {
        self.core
            .borrow_mut()
            .watchers
            .retain(|x| !Rc::ptr_eq(x, w));
    }
}

/// Releases a [`Semaphore`] permit when dropped.
#[must_use = "the permit is released when the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    sem: &'a Semaphore,
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphoreGuard")
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        self.sem.release();
    }
}

/// Released more times than acquired: [`BoundedSemaphore::release`] would go above the initial value
/// (gevent raises `ValueError("Semaphore released too many times")`). Also exported as
/// `OverRelease`, its earlier name.
#[doc(alias = "OverRelease")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverReleaseError;

// The earlier name, kept working (type, value and pattern).
pub use self::OverReleaseError as OverRelease;

impl fmt::Display for OverReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore released too many times")
    }
}

impl std::error::Error for OverReleaseError {}

/// A [`Semaphore`] that refuses to be released above its initial value (gevent's
/// `BoundedSemaphore`).
///
/// # Examples
/// ```
/// let sem = gevent::lock::BoundedSemaphore::new(1);
/// assert!(sem.release().is_err()); // nothing acquired
/// sem.acquire();
/// assert!(sem.release().is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct BoundedSemaphore {
    sem: Semaphore,
    bound: usize,
    /// Permits handed out and not given back (acquired, or handed to a waiter).
    taken: Rc<Cell<usize>>,
}

impl BoundedSemaphore {
    /// A semaphore with `value` permits that never holds more than `value`.
    pub fn new(value: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            sem: Semaphore::new(value),
            bound: value,
            taken: Rc::new(Cell::new(0)),
        }
    }

    /// The initial (and maximum) number of permits.
    pub fn bound(&self) -> usize {
        self.bound
    }

    /// Free permits (gevent's `counter`).
    #[doc(alias = "counter")]
    pub fn available(&self) -> usize {
        self.sem.available()
    }

    /// Whether no permit is free (gevent's `locked()`).
    #[doc(alias = "locked")]
    pub fn is_locked(&self) -> bool {
        self.sem.is_locked()
    }

    /// Takes a permit if one is free, without waiting.
    pub fn try_acquire(&self) -> bool {
        let ok = self.sem.try_acquire();
        if ok {
            self.taken.set(self.taken.get() + 1);
        }
        ok
    }

    /// Takes a permit, waiting (FIFO) while there is none.
    ///
    /// # Panics
    /// With [`LoopExit`]'s message when nothing can ever release one.
    ///
    /// # Cancel safety
    /// As [`Semaphore::acquire`].
    pub fn acquire(&self) {
        self.sem.acquire();
        self.taken.set(self.taken.get() + 1);
    }

    /// Takes a permit, waiting at most `timeout`; returns whether it got one.
    ///
    /// # Cancel safety
    /// As [`Semaphore::acquire`].
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        let ok = self.sem.acquire_timeout(timeout);
        if ok {
            self.taken.set(self.taken.get() + 1);
        }
        ok
    }

    /// Gives a permit back.
    ///
    /// # Errors
    /// [`OverReleaseError`] if every permit is already free; nothing changes then.
    pub fn release(&self) -> Result<(), OverReleaseError> {
        let t = self.taken.get();
        if t == 0 {
            return Err(OverReleaseError);
        }
        self.taken.set(t - 1);
        self.sem.release();
        Ok(())
    }

    /// Takes a permit and returns a guard that gives it back when dropped.
    ///
    /// # Panics
    /// As [`BoundedSemaphore::acquire`].
    ///
    /// # Cancel safety
    /// As [`Semaphore::acquire`].
    pub fn acquire_guard(&self) -> BoundedSemaphoreGuard<'_> {
        self.acquire();
        BoundedSemaphoreGuard { sem: self }
    }
}

impl Waitable for BoundedSemaphore {
    fn is_ready(&self) -> bool {
        self.sem.is_ready()
    }
    fn subscribe(&self, w: &Rc<Waiter>) {
        self.sem.subscribe(w);
    }
    fn unsubscribe(&self, w: &Rc<Waiter>) {
        self.sem.unsubscribe(w);
    }
}

/// Releases a [`BoundedSemaphore`] permit when dropped.
#[must_use = "the permit is released when the guard is dropped"]
pub struct BoundedSemaphoreGuard<'a> {
    sem: &'a BoundedSemaphore,
}

impl fmt::Debug for BoundedSemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoundedSemaphoreGuard")
    }
}

impl Drop for BoundedSemaphoreGuard<'_> {
    fn drop(&mut self) {
        // The guard holds a permit, so this cannot over-release.
        let _ = self.sem.release();
    }
}

/// [`RLock::release`] by a greenlet that does not hold the lock. Also exported as `NotOwner`, its
/// earlier name.
#[doc(alias = "NotOwner")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotOwnerError;

// The earlier name, kept working (type, value and pattern).
pub use self::NotOwnerError as NotOwner;

impl fmt::Display for NotOwnerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot release an RLock the current greenlet does not hold")
    }
}

impl std::error::Error for NotOwnerError {}

struct RLockState {
    /// The raw greenlet id of the owner, with its recursion count.
    owner: Cell<Option<(u64, usize)>>,
    sem: Semaphore,
}

/// A lock the holding greenlet may take again (gevent's `RLock`); other greenlets wait FIFO.
///
/// # Examples
/// ```
/// let l = gevent::lock::RLock::new();
/// let _a = l.acquire_guard();
/// let _b = l.acquire_guard(); // same greenlet: no deadlock
/// assert!(l.is_owned());
/// ```
#[derive(Clone)]
pub struct RLock {
    st: Rc<RLockState>,
}

impl Default for RLock {
    fn default() -> Self {
        RLock::new()
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RLock(owner: {:?})", self.st.owner.get())
    }
}

fn current_id() -> u64 {
    greenlet::getcurrent().id()
}

impl RLock {
    /// An unlocked lock.
    pub fn new() -> RLock {
        RLock {
            st: Rc::new(RLockState {
                owner: Cell::new(None),
                sem: Semaphore::new(1),
            }),
        }
    }

    /// Whether the current greenlet holds it.
    pub fn is_owned(&self) -> bool {
        matches!(self.st.owner.get(), Some((id, _)) if id == current_id())
    }

    /// Whether any greenlet holds it (gevent's `locked()`).
    #[doc(alias = "locked")]
    pub fn is_locked(&self) -> bool {
        self.st.owner.get().is_some()
    }

    fn reenter(&self) -> bool {
        match self.st.owner.get() {
            Some((id, n)) if id == current_id() => {
                self.st.owner.set(Some((id, n + 1)));
                true
            }
            _ => false,
        }
    }

    /// Takes it without waiting; returns whether it did (always, if the current greenlet holds it).
    pub fn try_acquire(&self) -> bool {
        if self.reenter() {
            return true;
        }
        if self.st.sem.try_acquire() {
            self.st.owner.set(Some((current_id(), 1)));
            true
        } else {
            false
        }
    }

    /// Takes it, waiting (FIFO) while another greenlet holds it.
    ///
    /// # Panics
    /// With [`LoopExit`]'s message when the holder can never release it.
    ///
    /// # Cancel safety
    /// As [`Semaphore::acquire`]: a killed or timed-out waiter does not get the lock and leaves no
    /// trace.
    pub fn acquire(&self) {
        if self.reenter() {
            return;
        }
        self.st.sem.acquire();
        self.st.owner.set(Some((current_id(), 1)));
    }

    /// Takes it, waiting at most `timeout`; returns whether it did.
    ///
    /// # Cancel safety
    /// As [`RLock::acquire`].
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        if self.reenter() {
            return true;
        }
        if self.st.sem.acquire_timeout(timeout) {
            self.st.owner.set(Some((current_id(), 1)));
            true
        } else {
            false
        }
    }

    /// Undoes one acquire; the last one unlocks it for the next waiter.
    ///
    /// # Errors
    /// [`NotOwnerError`] if the current greenlet does not hold it.
    pub fn release(&self) -> Result<(), NotOwnerError> {
        match self.st.owner.get() {
            Some((id, n)) if id == current_id() => {
                if n > 1 {
                    self.st.owner.set(Some((id, n - 1)));
                } else {
                    self.st.owner.set(None);
                    self.st.sem.release();
                }
                Ok(())
            }
            _ => Err(NotOwnerError),
        }
    }

    /// Takes it and returns a guard that releases it when dropped.
    ///
    /// # Panics
    /// As [`RLock::acquire`].
    ///
    /// # Cancel safety
    /// As [`RLock::acquire`].
    pub fn acquire_guard(&self) -> RLockGuard<'_> {
        self.acquire();
        RLockGuard { lock: self }
    }
}

/// Releases an [`RLock`] once when dropped.
#[must_use = "the lock is released when the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RLockGuard")
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        // The guard's greenlet holds the lock (guards cannot leave their greenlet: they borrow a
        // `!Send` lock on its stack).
        let _ = self.lock.release();
    }
}

/// A semaphore that never blocks (gevent's `DummySemaphore`): for code that takes a lock
/// optionally, such as an unlimited [`Pool`](crate::pool::Pool).
#[derive(Clone, Copy, Debug, Default)]
pub struct DummySemaphore;

impl DummySemaphore {
    /// A dummy semaphore.
    pub fn new() -> DummySemaphore {
        DummySemaphore
    }

    /// Always `false` (gevent's `locked()`).
    #[doc(alias = "locked")]
    pub fn is_locked(&self) -> bool {
        false
    }

    /// Returns at once.
    ///
    /// # Cancel safety
    /// Never waits, so nothing can land here.
    pub fn acquire(&self) {}

    /// Returns `true` at once.
    ///
    /// # Cancel safety
    /// Never waits.
    pub fn acquire_timeout(&self, _timeout: Duration) -> bool {
        true
    }

    /// Always `true`.
    pub fn try_acquire(&self) -> bool {
        true
    }

    /// Does nothing.
    pub fn release(&self) {}

    /// A guard that does nothing.
    pub fn acquire_guard(&self) -> DummyGuard {
        DummyGuard
    }
}

/// The guard of a [`DummySemaphore`]; does nothing.
#[derive(Debug)]
pub struct DummyGuard;

impl Waitable for DummySemaphore {
    fn is_ready(&self) -> bool {
        true
    }
    fn subscribe(&self, _w: &Rc<Waiter>) {}
    fn unsubscribe(&self, _w: &Rc<Waiter>) {}
}
