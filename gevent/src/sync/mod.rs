//! Primitives that cross threads and hubs: [`AsyncResult`], [`Event`], [`Semaphore`], [`Channel`],
//! and locks that guard data, [`Mutex`], [`RwLock`], [`Condvar`].
//!
//! The types of [`crate::event`], [`crate::queue`] and [`crate::lock`] belong to one hub (`!Send`).
//! These are `Send + Sync` (when what they carry is `Send`): they can be set, sent, released or
//! unlocked from any thread — a greenlet on any hub or a plain OS thread — and wake whoever waits,
//! again a greenlet on any hub or a plain OS thread.
//!
//! # How a waiter waits
//! - In a thread that has a hub (any greenlet, the main one included), the waiting greenlet parks
//!   on its hub, which keeps running the others. A wake from the same thread takes the local fast
//!   path (the hub's ready queue: no syscall); a wake from another thread reaches the hub through its
//!   [`HubHandle`](crate::HubHandle) (one callback per hub and wake, an eventfd write).
//! - In a thread without a hub, the waiter blocks its thread (`std::thread::park`); no hub is
//!   created for it.
//! - While a greenlet waits on one of these, its hub counts it as outstanding cross-thread work: the
//!   hub never declares [`LoopExit`](crate::LoopExit) for it (any thread might still wake it), so a
//!   wait nobody will ever end blocks forever, as with `std::sync`.
//! - Waiters are served FIFO; permits, locks and values are handed to the first waiter directly
//!   (no barging).
//! - Join greenlets before their thread ends: one left parked here when its thread exits may never
//!   leave the queue, and a lock, permit or value handed to it then is lost.
//!
//! # Cancel safety
//! A kill or [`Timeout`](crate::Timeout) landing in a wait here unwinds out of it and removes the
//! waiter from the primitive's queue. If a permit, a lock, a notification or a channel value had
//! already been handed to it (the hand-off raced the kill), it is passed on to the next waiter (or
//! put back), so nothing is lost.
//!
//! # Examples
//! An OS thread fills a result a greenlet waits for:
//! ```
//! let r = gevent::sync::AsyncResult::new();
//! let r2 = r.clone();
//! let t = std::thread::spawn(move || r2.set(6 * 7));
//! let g = gevent::spawn(move || r.get());
//! assert_eq!(g.get(), Ok(Ok(42)));
//! t.join().unwrap();
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use crate::greenlet::{Failure, GetError, Waitable};

mod channel;
mod locks;
mod park;

pub use channel::{
    Channel, Iter, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySendError,
};
pub use locks::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use park::{lock, unlist, wake_all, Node, OnUnwind, Parker, NOTIFIED, WAITING};

/// A value slot any number of waiters can wait for.
pub(crate) struct Slot<R> {
    state: StdMutex<SlotState<R>>,
    ready: AtomicBool,
}

struct SlotState<R> {
    value: Option<R>,
    waiters: VecDeque<Arc<Node>>,
}

impl<R> Slot<R> {
    pub(crate) fn new() -> Slot<R> {
        Slot {
            state: StdMutex::new(SlotState {
                value: None,
                waiters: VecDeque::new(),
            }),
            ready: AtomicBool::new(false),
        }
    }

    /// Stores `r` (replacing what was there) and wakes every waiter.
    pub(crate) fn put(&self, r: R) {
        let mut st = lock(&self.state);
        let old = st.value.replace(r);
        self.ready.store(true, Ordering::Release);
        let ws: Vec<_> = st.waiters.drain(..).collect();
        for n in &ws {
            n.set_state(NOTIFIED);
        }
        drop(st);
        drop(old);
        if !ws.is_empty() {
            wake_all(ws);
        }
    }

    /// Takes the value out (the slot is unset again).
    pub(crate) fn take(&self) -> Option<R> {
        let mut st = lock(&self.state);
        self.ready.store(false, Ordering::Release);
        st.value.take()
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub(crate) fn with<X>(&self, f: impl FnOnce(Option<&R>) -> X) -> X {
        f(lock(&self.state).value.as_ref())
    }

    /// [`Slot::with`], or `None` if its lock is taken (in a forked child it may be held for ever by a
    /// thread that is not there).
    pub(crate) fn try_with<X>(&self, f: impl FnOnce(Option<&R>) -> X) -> Option<X> {
        let st = match self.state.try_lock() {
            Ok(st) => st,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(f(st.value.as_ref()))
    }

    /// [`Slot::take`], or `None` if its lock is taken (see [`Slot::try_with`]).
    pub(crate) fn try_take(&self) -> Option<Option<R>> {
        let mut st = match self.state.try_lock() {
            Ok(st) => st,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        self.ready.store(false, Ordering::Release);
        Some(st.value.take())
    }

    fn waiter_count(&self) -> usize {
        lock(&self.state).waiters.len()
    }

    /// [`Waitable::subscribe`](crate::greenlet::Waitable::subscribe) for this slot.
    pub(crate) fn subscribe(&self, w: &std::rc::Rc<crate::Waiter>) {
        let node = park::subscribe(self as *const Self as usize, w);
        let mut st = lock(&self.state);
        if st.value.is_some() {
            drop(st);
            node.set_state(NOTIFIED);
            park::wake(&node);
        } else {
            st.waiters.push_back(node);
        }
    }

    /// [`Waitable::unsubscribe`](crate::greenlet::Waitable::unsubscribe) for this slot.
    pub(crate) fn unsubscribe(&self, w: &std::rc::Rc<crate::Waiter>) {
        if let Some(node) = park::unsubscribe(self as *const Self as usize, w) {
            unlist(&mut lock(&self.state).waiters, &node);
        }
    }

    /// Ends the subscription of `w` on this thread's side only, leaving its node in the slot's
    /// list: for a forked child, where the slot's lock may be held by a thread that is not there.
    pub(crate) fn forget_subscription(&self, w: &std::rc::Rc<crate::Waiter>) {
        let _ = park::unsubscribe(self as *const Self as usize, w);
    }

    /// Waits until a value is stored or `deadline`; returns whether one was stored (also if it
    /// was taken or cleared again before this waiter ran).
    ///
    /// # Cancel safety
    /// A kill or Timeout unwinds out of it; the waiter leaves the list.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        if self.is_ready() {
            return true;
        }
        let mut st = lock(&self.state);
        if st.value.is_some() {
            return true;
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return false;
        }
        let p = Parker::new();
        st.waiters.push_back(p.node.clone());
        drop(st);
        let guard = OnUnwind(Some(|| {
            unlist(&mut lock(&self.state).waiters, &p.node);
        }));
        let s = p.park(deadline);
        guard.disarm();
        if s == WAITING {
            let mut st = lock(&self.state);
            if unlist(&mut st.waiters, &p.node) {
                return st.value.is_some();
            }
        }
        true
    }
}

/// A value (or a failure) that will arrive later, for any number of readers on any thread and hub
/// (gevent's `AsyncResult`, which gevent lets other threads set since 20.12).
///
/// A cheap-to-clone handle (`Arc` inside); `Send + Sync` when `T: Send`. Setting it again replaces
/// the value and wakes the readers waiting then.
///
/// # Examples
/// ```
/// let r = gevent::sync::AsyncResult::new();
/// let r2 = r.clone();
/// std::thread::spawn(move || r2.set("done"));
/// assert_eq!(r.get(), Ok("done"));
/// assert!(r.ready() && r.successful());
/// ```
pub struct AsyncResult<T> {
    slot: Arc<Slot<Result<T, Failure>>>,
}

impl<T> Clone for AsyncResult<T> {
    fn clone(&self) -> Self {
        AsyncResult {
            slot: self.slot.clone(),
        }
    }
}

impl<T> Default for AsyncResult<T> {
    fn default() -> Self {
        AsyncResult::new()
    }
}

impl<T> fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.slot.with(|v| match v {
            None => "unset",
            Some(Ok(_)) => "value",
            Some(Err(_)) => "exception",
        });
        write!(
            f,
            "sync::AsyncResult({state}, waiters: {})",
            self.slot.waiter_count()
        )
    }
}

impl<T> AsyncResult<T> {
    /// A new, unset result.
    pub fn new() -> AsyncResult<T> {
        AsyncResult {
            slot: Arc::new(Slot::new()),
        }
    }

    /// Stores `v` and wakes every waiting reader, on any thread or hub.
    pub fn set(&self, v: T) {
        self.slot.put(Ok(v));
    }

    /// Stores a failure (readers get [`GetError::Panicked`] with `message`) and wakes every waiting
    /// reader (gevent's `set_exception`).
    pub fn set_exception(&self, message: impl Into<String>) {
        self.slot.put(Err(Failure::new(message.into())));
    }

    /// Whether a value or a failure has been set.
    pub fn ready(&self) -> bool {
        self.slot.is_ready()
    }

    /// Whether a value (not a failure) has been set.
    pub fn successful(&self) -> bool {
        self.slot.with(|v| matches!(v, Some(Ok(_))))
    }

    /// The failure, if [`AsyncResult::set_exception`] was called (gevent's `exception`).
    pub fn exception(&self) -> Option<Failure> {
        self.slot.with(|v| match v {
            Some(Err(f)) => Some(f.clone()),
            _ => None,
        })
    }

    /// How many are waiting.
    pub fn waiter_count(&self) -> usize {
        self.slot.waiter_count()
    }

    /// Waits until it is ready (gevent's `wait()`); returns `true`. A greenlet parks on its hub, a
    /// thread without a hub blocks.
    ///
    /// # Cancel safety
    /// A kill or [`Timeout`](crate::Timeout) landing here unwinds out of it; the reader leaves the
    /// list on the way out.
    pub fn wait(&self) -> bool {
        self.slot.wait(None)
    }

    /// Waits at most `timeout`; returns whether it is ready.
    ///
    /// # Cancel safety
    /// As [`AsyncResult::wait`].
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.slot.wait(Some(Instant::now() + timeout))
    }

    /// Takes the value (or failure) out, leaving it unset; `None` if unset. For values that are
    /// not `Clone`.
    pub fn take(&self) -> Option<Result<T, Failure>> {
        self.slot.take()
    }
}

impl<T: Clone> AsyncResult<T> {
    /// Waits for the value (gevent's `get()`).
    ///
    /// # Errors
    /// [`GetError::Panicked`] with the message given to [`AsyncResult::set_exception`];
    /// [`GetError::NotReady`] if it was [taken](AsyncResult::take) before this reader ran.
    ///
    /// # Cancel safety
    /// As [`AsyncResult::wait`].
    pub fn get(&self) -> Result<T, GetError> {
        self.slot.wait(None);
        self.peek()
    }

    /// Waits at most `timeout` for the value.
    ///
    /// # Errors
    /// As [`AsyncResult::get`], and [`GetError::NotReady`] at the timeout.
    ///
    /// # Cancel safety
    /// As [`AsyncResult::wait`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.slot.wait(Some(Instant::now() + timeout));
        self.peek()
    }

    /// The value without waiting (gevent's `get_nowait()`).
    ///
    /// # Errors
    /// [`GetError::NotReady`] if unset, [`GetError::Panicked`] after `set_exception`.
    pub fn peek(&self) -> Result<T, GetError> {
        self.slot.with(|v| match v {
            None => Err(GetError::NotReady),
            Some(Ok(v)) => Ok(v.clone()),
            Some(Err(f)) => Err(GetError::Panicked(f.clone())),
        })
    }
}

/// With `gevent::wait`, `iwait` and `joinall`, alongside greenlets and hub-local events.
impl<T> Waitable for AsyncResult<T> {
    fn is_ready(&self) -> bool {
        self.ready()
    }
    fn subscribe(&self, w: &std::rc::Rc<crate::Waiter>) {
        self.slot.subscribe(w);
    }
    fn unsubscribe(&self, w: &std::rc::Rc<crate::Waiter>) {
        self.slot.unsubscribe(w);
    }
}

/// A flag that greenlets on any hub and OS threads can wait for, set from anywhere (gevent's
/// `Event`, which gevent lets other threads set since 20.12).
///
/// A cheap-to-clone handle (`Arc` inside), `Send + Sync`. Every waiter is woken by [`Event::set`];
/// a woken waiter returns `true` even if the event was cleared before it ran (as in gevent).
///
/// # Examples
/// ```
/// let ev = gevent::sync::Event::new();
/// let ev2 = ev.clone();
/// let g = gevent::spawn(move || ev2.wait());
/// std::thread::spawn(move || ev.set());
/// assert_eq!(g.get(), Ok(true));
/// ```
#[derive(Clone)]
pub struct Event {
    slot: Arc<Slot<()>>,
}

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sync::Event(set: {}, waiters: {})",
            self.is_set(),
            self.slot.waiter_count()
        )
    }
}

impl Event {
    /// A new, unset event.
    pub fn new() -> Event {
        Event {
            slot: Arc::new(Slot::new()),
        }
    }

    /// Sets the flag and wakes every waiter, on any thread or hub (FIFO within each hub).
    pub fn set(&self) {
        self.slot.put(());
    }

    /// Resets the flag.
    pub fn clear(&self) {
        self.slot.take();
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.slot.is_ready()
    }

    /// How many are waiting.
    pub fn waiter_count(&self) -> usize {
        self.slot.waiter_count()
    }

    /// Waits until the flag is set; returns `true`.
    ///
    /// # Cancel safety
    /// A kill or [`Timeout`](crate::Timeout) landing here unwinds out of it; the waiter leaves the
    /// list on the way out.
    pub fn wait(&self) -> bool {
        self.slot.wait(None)
    }

    /// Waits at most `timeout`; returns whether the flag was set.
    ///
    /// # Cancel safety
    /// As [`Event::wait`].
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.slot.wait(Some(Instant::now() + timeout))
    }
}

/// With `gevent::wait`, `iwait` and `joinall`, alongside greenlets and hub-local events.
impl Waitable for Event {
    fn is_ready(&self) -> bool {
        self.is_set()
    }
    fn subscribe(&self, w: &std::rc::Rc<crate::Waiter>) {
        self.slot.subscribe(w);
    }
    fn unsubscribe(&self, w: &std::rc::Rc<crate::Waiter>) {
        self.slot.unsubscribe(w);
    }
}

struct SemState {
    permits: usize,
    waiters: VecDeque<Arc<Node>>,
}

/// A counting semaphore shared by greenlets on any hub and OS threads (FIFO, permits handed to the
/// first waiter).
///
/// A cheap-to-clone handle (`Arc` inside), `Send + Sync`. Not bounded: [`Semaphore::release`] may
/// raise the count above its initial value.
///
/// # Examples
/// ```
/// let sem = gevent::sync::Semaphore::new(1);
/// sem.acquire();
/// let s2 = sem.clone();
/// let t = std::thread::spawn(move || { s2.acquire(); s2.release(); });
/// sem.release();
/// t.join().unwrap();
/// assert_eq!(sem.available(), 1);
/// ```
#[derive(Clone)]
pub struct Semaphore {
    state: Arc<StdMutex<SemState>>,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.state);
        write!(
            f,
            "sync::Semaphore(available: {}, waiters: {})",
            st.permits,
            st.waiters.len()
        )
    }
}

/// Releases one permit of a [`Semaphore`] when dropped (from [`Semaphore::acquire_guard`]).
#[must_use = "the permit is released when the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    sem: &'a Semaphore,
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        self.sem.release();
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphoreGuard")
    }
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            state: Arc::new(StdMutex::new(SemState {
                permits,
                waiters: VecDeque::new(),
            })),
        }
    }

    /// Permits available now (gevent's `counter`).
    pub fn available(&self) -> usize {
        lock(&self.state).permits
    }

    /// How many are waiting.
    pub fn waiter_count(&self) -> usize {
        lock(&self.state).waiters.len()
    }

    /// Takes a permit if one is free at once.
    pub fn try_acquire(&self) -> bool {
        let mut st = lock(&self.state);
        if st.permits > 0 {
            st.permits -= 1;
            true
        } else {
            false
        }
    }

    /// Waits for a permit and takes it.
    ///
    /// # Cancel safety
    /// A kill or [`Timeout`](crate::Timeout) landing here unwinds out of it; the waiter leaves the
    /// queue, and a permit that was handed to it meanwhile goes to the next waiter.
    pub fn acquire(&self) {
        self.acquire_deadline(None);
    }

    /// Waits at most `timeout` for a permit; returns whether it took one.
    ///
    /// # Cancel safety
    /// As [`Semaphore::acquire`].
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.acquire_deadline(Some(Instant::now() + timeout))
    }

    /// [`Semaphore::acquire`], released when the returned guard is dropped.
    ///
    /// # Cancel safety
    /// As [`Semaphore::acquire`].
    pub fn acquire_guard(&self) -> SemaphoreGuard<'_> {
        self.acquire();
        SemaphoreGuard { sem: self }
    }

    fn acquire_deadline(&self, deadline: Option<Instant>) -> bool {
        let mut st = lock(&self.state);
        // Permits are handed to waiters directly, so a free permit means nobody waits.
        if st.permits > 0 {
            st.permits -= 1;
            return true;
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return false;
        }
        let p = Parker::new();
        st.waiters.push_back(p.node.clone());
        drop(st);
        let guard = OnUnwind(Some(|| {
            let mut st = lock(&self.state);
            if !unlist(&mut st.waiters, &p.node) {
                drop(st);
                self.release(); // handed to us as we were cancelled: pass it on
            }
        }));
        let s = p.park(deadline);
        guard.disarm();
        if s == WAITING {
            let mut st = lock(&self.state);
            return !unlist(&mut st.waiters, &p.node);
        }
        true
    }

    /// Returns a permit: hands it to the first waiter, if any (it may be on another thread or hub).
    pub fn release(&self) {
        let mut st = lock(&self.state);
        match st.waiters.pop_front() {
            Some(n) => {
                n.set_state(NOTIFIED);
                drop(st);
                park::wake(&n);
            }
            None => st.permits += 1,
        }
    }
}
