//! [`Mutex`], [`RwLock`] and [`Condvar`]: locks that guard data, for greenlets on any hub and OS
//! threads.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, LockResult, Mutex as StdMutex, PoisonError, TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use super::park::{lock, unlist, wake, wake_all, Node, OnUnwind, Parker, NOTIFIED, WAITING};

/// Whether a guard dropped now should poison its lock: a panic began while it was held, and it is
/// not a kill or Timeout unwinding (see [`Mutex`]'s "Poisoning").
fn poisons(was_panicking: bool) -> bool {
    !was_panicking && std::thread::panicking() && !crate::hub::unwinding_cancel()
}

/// `v` as a [`LockResult`]: an `Err` carrying it if the lock is `poisoned`.
fn poisoned_if<V>(poisoned: bool, v: V) -> LockResult<V> {
    if poisoned {
        Err(PoisonError::new(v))
    } else {
        Ok(v)
    }
}

/// Parks `p`, already in a lock's queue, until the lock is handed to it or `deadline` passes;
/// returns whether it got the lock. `leave` takes a node out of the queue (false: it was not there,
/// the lock was handed to it); `pass_on` releases a lock handed over as a kill or Timeout landed.
fn park_queued(
    p: &Parker,
    deadline: Option<Instant>,
    leave: impl Fn(&Arc<Node>) -> bool,
    pass_on: impl Fn(),
) -> bool {
    let guard = OnUnwind(Some(|| {
        if !leave(&p.node) {
            pass_on();
        }
    }));
    let s = p.park(deadline);
    guard.disarm();
    s != WAITING || !leave(&p.node)
}

const LOCKED: u8 = 1;
/// Set while the queue is not empty (changed only under the queue's lock; implies `LOCKED`).
const QUEUED: u8 = 2;

/// A mutual-exclusion lock for greenlets that guards data of type `T` (std's `Mutex` API).
///
/// Holding the guard across a switch (`gevent::sleep`, I/O, a wait) is what it is for: another
/// greenlet that locks it meanwhile parks on its hub, which keeps running everyone else — where a
/// `std::sync::Mutex` held across a switch blocks the whole hub thread in `futex` (the `monitor`
/// reports it). It also works across threads and hubs (`Send + Sync` when `T: Send`; share it with
/// `Arc`), and from plain OS threads (which block).
///
/// - **Fair**: waiters are served FIFO and the lock is handed to the first one at unlock (no
///   barging). Uncontended, lock and unlock are one atomic operation each.
/// - **Poisoning** as std: a guard dropped by a panic poisons it, and later `lock`s return
///   [`PoisonError`] (with the guard inside). A kill or [`Timeout`](crate::Timeout) unwinding
///   through a guard does **not** poison it: those are cancellations, delivered only where the
///   holder switches, and a holder that switches while holding the guard must keep the data
///   consistent at those points anyway (other greenlets run there).
///   (`std::thread::panicking()` is per OS thread: a guard taken while another greenlet of the
///   thread was suspended mid-unwind does not poison.)
/// - Locking it again from the greenlet that holds it deadlocks that greenlet (as std's may).
///
/// # Cancel safety
/// A kill or Timeout landing in [`Mutex::lock`] unwinds out of it and leaves the queue; if the lock
/// was handed to it meanwhile, it passes to the next waiter.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// let m = Arc::new(gevent::sync::Mutex::new(0));
/// let m2 = m.clone();
/// let holder = gevent::spawn(move || {
///     let mut g = m2.lock().unwrap();
///     gevent::sleep(Duration::from_millis(10)); // the hub keeps running others
///     *g += 1;
/// });
/// let m3 = m.clone();
/// let other = gevent::spawn(move || *m3.lock().unwrap() += 1);
/// gevent::joinall([&holder, &other]);
/// assert_eq!(*m.lock().unwrap(), 2);
/// ```
pub struct Mutex<T: ?Sized> {
    state: AtomicU8,
    poison: AtomicBool,
    queue: StdMutex<VecDeque<Arc<Node>>>,
    data: UnsafeCell<T>,
}

// SAFETY: the data is only reached through a guard, which exists for one holder at a time (the
// lock protocol), so sharing the mutex between threads only ever moves `T` between them.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}
// SAFETY: as above; the mutex owns its `T`.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}

/// Access to a [`Mutex`]'s data; unlocks when dropped.
#[must_use = "the lock is released when the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized> {
    lock: &'a Mutex<T>,
    panicking: bool,
    _data: PhantomData<&'a mut T>,
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> Mutex<T> {
    /// A new, unlocked mutex holding `value`.
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            state: AtomicU8::new(0),
            poison: AtomicBool::new(false),
            queue: StdMutex::new(VecDeque::new()),
            data: UnsafeCell::new(value),
        }
    }

    /// The data, consuming the mutex.
    ///
    /// # Errors
    /// [`PoisonError`] (with the data) if it is poisoned.
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poison.load(Ordering::Relaxed);
        poisoned_if(poisoned, self.data.into_inner())
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks it, waiting (a greenlet parks on its hub, a thread without a hub blocks) while another
    /// holds it.
    ///
    /// # Errors
    /// [`PoisonError`] with the guard if a holder panicked.
    ///
    /// # Cancel safety
    /// See [`Mutex`].
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow(None);
        }
        self.guard()
    }

    /// Locks it if it is free now (and nobody waits).
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] if held; [`TryLockError::Poisoned`] (with the guard) if a holder
    /// panicked.
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(TryLockError::WouldBlock);
        }
        Ok(self.guard()?)
    }

    /// [`Mutex::lock`], waiting at most `timeout`.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] at the timeout; [`TryLockError::Poisoned`] as
    /// [`Mutex::try_lock`].
    ///
    /// # Cancel safety
    /// See [`Mutex`].
    pub fn lock_timeout(&self, timeout: Duration) -> TryLockResult<MutexGuard<'_, T>> {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
            && !self.lock_slow(Some(Instant::now() + timeout))
        {
            return Err(TryLockError::WouldBlock);
        }
        Ok(self.guard()?)
    }

    /// Whether a holder panicked.
    pub fn is_poisoned(&self) -> bool {
        self.poison.load(Ordering::Relaxed)
    }

    /// Clears the poison.
    pub fn clear_poison(&self) {
        self.poison.store(false, Ordering::Relaxed);
    }

    /// The data, through `&mut` (no locking needed).
    ///
    /// # Errors
    /// [`PoisonError`] (with the reference) if it is poisoned.
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.is_poisoned();
        poisoned_if(poisoned, self.data.get_mut())
    }

    fn guard(&self) -> LockResult<MutexGuard<'_, T>> {
        let g = MutexGuard {
            lock: self,
            panicking: std::thread::panicking(),
            _data: PhantomData,
        };
        poisoned_if(self.is_poisoned(), g)
    }

    /// Queues the caller; returns whether it got the lock (false: `deadline` passed).
    #[cold]
    fn lock_slow(&self, deadline: Option<Instant>) -> bool {
        let mut q = lock(&self.queue);
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & LOCKED == 0 {
                match self.state.compare_exchange_weak(
                    s,
                    s | LOCKED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    Err(x) => s = x,
                }
                continue;
            }
            if s & QUEUED != 0 {
                break;
            }
            // The holder's unlock now takes the slow path (under the queue's lock).
            match self.state.compare_exchange_weak(
                s,
                s | QUEUED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(x) => s = x,
            }
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            if q.is_empty() {
                self.state.fetch_and(!QUEUED, Ordering::Relaxed);
            }
            return false;
        }
        let p = Parker::new();
        q.push_back(p.node.clone());
        drop(q);
        // Handed to us as we were cancelled: pass it on.
        park_queued(&p, deadline, |n| self.leave_queue(n), || self.unlock())
    }

    /// Removes `node` from the queue; false if it was not there (the lock was handed to it).
    fn leave_queue(&self, node: &Arc<Node>) -> bool {
        let mut q = lock(&self.queue);
        if !unlist(&mut q, node) {
            return false;
        }
        if q.is_empty() {
            self.state.fetch_and(!QUEUED, Ordering::Relaxed);
        }
        true
    }

    /// Unlocks: hands the lock to the first waiter if any.
    fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        self.unlock_slow();
    }

    #[cold]
    fn unlock_slow(&self) {
        let mut q = lock(&self.queue);
        match q.pop_front() {
            Some(n) => {
                if q.is_empty() {
                    // Still locked: it now belongs to `n`.
                    self.state.store(LOCKED, Ordering::Release);
                }
                n.set_state(NOTIFIED);
                drop(q);
                wake(&n);
            }
            None => self.state.store(0, Ordering::Release),
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("sync::Mutex");
        match self.try_lock() {
            Ok(g) => d.field("data", &&*g),
            Err(TryLockError::Poisoned(e)) => d.field("data", &&*e.into_inner()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.is_poisoned()).finish()
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard is the lock's only holder.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard is the lock's only holder.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        if poisons(self.panicking) {
            self.lock.poison.store(true, Ordering::Relaxed);
        }
        self.lock.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// A condition variable for [`Mutex`] (std's `Condvar` API), for greenlets on any hub and OS
/// threads. Waiters are woken FIFO.
///
/// # Cancel safety
/// A kill or [`Timeout`](crate::Timeout) landing in a wait unwinds out of it without the guard
/// (the mutex stays unlocked); a notification that reached it meanwhile goes to the next waiter.
/// One landing while it re-locks the mutex: as [`Mutex::lock`].
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// let pair = Arc::new((gevent::sync::Mutex::new(false), gevent::sync::Condvar::new()));
/// let p2 = pair.clone();
/// std::thread::spawn(move || {
///     *p2.0.lock().unwrap() = true;
///     p2.1.notify_one();
/// });
/// let (m, cv) = &*pair;
/// let g = cv.wait_while(m.lock().unwrap(), |ready| !*ready).unwrap();
/// assert!(*g);
/// ```
#[derive(Default)]
pub struct Condvar {
    waiters: StdMutex<VecDeque<Arc<Node>>>,
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sync::Condvar(waiters: {})", lock(&self.waiters).len())
    }
}

impl Condvar {
    /// A new condition variable.
    pub fn new() -> Condvar {
        Condvar::default()
    }

    /// Unlocks the guard's mutex, waits for a notification, and locks it again.
    ///
    /// # Errors
    /// [`PoisonError`] with the guard if the mutex is poisoned when re-locked.
    ///
    /// # Cancel safety
    /// See [`Condvar`].
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        self.wait_deadline(guard, None).0
    }

    /// [`Condvar::wait`] until `condition` is false (checked first, then after each wake).
    ///
    /// # Errors
    /// As [`Condvar::wait`].
    ///
    /// # Cancel safety
    /// See [`Condvar`].
    pub fn wait_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> LockResult<MutexGuard<'a, T>> {
        while condition(&mut *guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// [`Condvar::wait`], waiting at most `timeout`; the `bool` is whether it timed out.
    ///
    /// # Errors
    /// As [`Condvar::wait`].
    ///
    /// # Cancel safety
    /// See [`Condvar`].
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, bool)> {
        let (r, timed_out) = self.wait_deadline(guard, Some(Instant::now() + timeout));
        match r {
            Ok(g) => Ok((g, timed_out)),
            Err(e) => Err(PoisonError::new((e.into_inner(), timed_out))),
        }
    }

    fn wait_deadline<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (LockResult<MutexGuard<'a, T>>, bool) {
        let m = guard.lock;
        let mut timed_out = false;
        {
            let p = Parker::new();
            // Listed before the mutex is released: a notify right after the unlock finds it.
            lock(&self.waiters).push_back(p.node.clone());
            drop(guard);
            let g = OnUnwind(Some(|| {
                let mut w = lock(&self.waiters);
                if !unlist(&mut w, &p.node) && p.node.state() == NOTIFIED {
                    drop(w);
                    self.notify_one(); // notified as we were cancelled: pass it on
                }
            }));
            let s = p.park(deadline);
            g.disarm();
            if s == WAITING && unlist(&mut lock(&self.waiters), &p.node) {
                timed_out = true;
            }
        }
        (m.lock(), timed_out)
    }

    /// Wakes the waiter that has waited longest, if any.
    pub fn notify_one(&self) {
        let mut w = lock(&self.waiters);
        if let Some(n) = w.pop_front() {
            n.set_state(NOTIFIED);
            drop(w);
            wake(&n);
        }
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        let mut w = lock(&self.waiters);
        let all: Vec<_> = w.drain(..).collect();
        drop(w);
        for n in &all {
            n.set_state(NOTIFIED);
        }
        if !all.is_empty() {
            wake_all(all);
        }
    }
}

struct RwState {
    readers: usize,
    writer: bool,
    /// Waiters, FIFO, with whether each wants to write.
    queue: VecDeque<(Arc<Node>, bool)>,
}

impl RwState {
    /// Grants the lock to the waiters at the front that can have it now.
    fn dispatch(&mut self) -> Vec<Arc<Node>> {
        let mut out = Vec::new();
        while let Some((n, write)) = self.queue.front() {
            if self.writer || (*write && self.readers > 0) {
                break;
            }
            if *write {
                self.writer = true;
            } else {
                self.readers += 1;
            }
            n.set_state(NOTIFIED);
            let write = *write;
            out.push(self.queue.pop_front().expect("non-empty").0);
            if write {
                break;
            }
        }
        out
    }

    fn unlist(&mut self, node: &Arc<Node>) -> bool {
        match self.queue.iter().position(|(n, _)| Arc::ptr_eq(n, node)) {
            Some(i) => {
                self.queue.remove(i);
                true
            }
            None => false,
        }
    }
}

/// A reader-writer lock for greenlets that guards data of type `T` (std's `RwLock` API): many
/// readers or one writer, across switches, hubs and threads (`Send + Sync` when `T: Send + Sync`).
///
/// Fair: waiters are served FIFO, so a waiting writer holds back readers that come after it (no
/// writer starvation); consecutive readers at the front are admitted together. Poisoning as
/// [`Mutex`] (only a writer's panic poisons, as in std; kills and Timeouts do not).
///
/// # Cancel safety
/// A kill or [`Timeout`](crate::Timeout) landing in `read`/`write` unwinds out of it and leaves the
/// queue (letting those behind it in if they now can); a lock handed to it meanwhile is released.
///
/// # Examples
/// ```
/// let l = gevent::sync::RwLock::new(5);
/// {
///     let a = l.read().unwrap();
///     let b = l.read().unwrap();
///     assert_eq!(*a + *b, 10);
/// }
/// *l.write().unwrap() += 1;
/// assert_eq!(*l.read().unwrap(), 6);
/// ```
pub struct RwLock<T: ?Sized> {
    state: StdMutex<RwState>,
    poison: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: readers share `&T` across threads (needs `T: Sync`), a writer gets `&mut T` on whatever
// thread holds the guard (needs `T: Send`); the lock protocol keeps them apart.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}
// SAFETY: the lock owns its `T`.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}

/// Shared access to an [`RwLock`]'s data.
#[must_use = "the lock is released when the guard is dropped"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _data: PhantomData<&'a T>,
}

/// Exclusive access to an [`RwLock`]'s data.
#[must_use = "the lock is released when the guard is dropped"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    panicking: bool,
    _data: PhantomData<&'a mut T>,
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T> RwLock<T> {
    /// A new, unlocked lock holding `value`.
    pub fn new(value: T) -> RwLock<T> {
        RwLock {
            state: StdMutex::new(RwState {
                readers: 0,
                writer: false,
                queue: VecDeque::new(),
            }),
            poison: AtomicBool::new(false),
            data: UnsafeCell::new(value),
        }
    }

    /// The data, consuming the lock.
    ///
    /// # Errors
    /// [`PoisonError`] (with the data) if it is poisoned.
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poison.load(Ordering::Relaxed);
        poisoned_if(poisoned, self.data.into_inner())
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Shared access, waiting while a writer holds it or waits ahead.
    ///
    /// # Errors
    /// [`PoisonError`] with the guard if a writer panicked.
    ///
    /// # Cancel safety
    /// See [`RwLock`].
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        self.acquire(false, Some(None));
        self.read_guard()
    }

    /// Exclusive access, waiting while anyone holds it or waits ahead.
    ///
    /// # Errors
    /// [`PoisonError`] with the guard if a writer panicked.
    ///
    /// # Cancel safety
    /// See [`RwLock`].
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        self.acquire(true, Some(None));
        self.write_guard()
    }

    /// Shared access if available now.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] or [`TryLockError::Poisoned`].
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        if !self.acquire(false, None) {
            return Err(TryLockError::WouldBlock);
        }
        Ok(self.read_guard()?)
    }

    /// Exclusive access if available now.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] or [`TryLockError::Poisoned`].
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        if !self.acquire(true, None) {
            return Err(TryLockError::WouldBlock);
        }
        Ok(self.write_guard()?)
    }

    /// [`RwLock::read`], waiting at most `timeout`.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] at the timeout, or [`TryLockError::Poisoned`].
    ///
    /// # Cancel safety
    /// See [`RwLock`].
    pub fn read_timeout(&self, timeout: Duration) -> TryLockResult<RwLockReadGuard<'_, T>> {
        if !self.acquire(false, Some(Some(Instant::now() + timeout))) {
            return Err(TryLockError::WouldBlock);
        }
        Ok(self.read_guard()?)
    }

    /// [`RwLock::write`], waiting at most `timeout`.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] at the timeout, or [`TryLockError::Poisoned`].
    ///
    /// # Cancel safety
    /// See [`RwLock`].
    pub fn write_timeout(&self, timeout: Duration) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        if !self.acquire(true, Some(Some(Instant::now() + timeout))) {
            return Err(TryLockError::WouldBlock);
        }
        Ok(self.write_guard()?)
    }

    /// Whether a writer panicked.
    pub fn is_poisoned(&self) -> bool {
        self.poison.load(Ordering::Relaxed)
    }

    /// Clears the poison.
    pub fn clear_poison(&self) {
        self.poison.store(false, Ordering::Relaxed);
    }

    fn read_guard(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        let g = RwLockReadGuard {
            lock: self,
            _data: PhantomData,
        };
        poisoned_if(self.is_poisoned(), g)
    }

    fn write_guard(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        let g = RwLockWriteGuard {
            lock: self,
            panicking: std::thread::panicking(),
            _data: PhantomData,
        };
        poisoned_if(self.is_poisoned(), g)
    }

    /// `wait`: `None` try only; `Some(deadline)`. Returns whether it got the lock.
    fn acquire(&self, write: bool, wait: Option<Option<Instant>>) -> bool {
        let mut st = lock(&self.state);
        let free = !st.writer && st.queue.is_empty() && (!write || st.readers == 0);
        if free {
            if write {
                st.writer = true;
            } else {
                st.readers += 1;
            }
            return true;
        }
        let Some(deadline) = wait else { return false };
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return false;
        }
        let p = Parker::new();
        st.queue.push_back((p.node.clone(), write));
        drop(st);
        park_queued(
            &p,
            deadline,
            |n| self.leave_queue(n),
            || self.release(write),
        )
    }

    /// Removes `node` from the queue (admitting those behind it if they now can); false if it was
    /// not there (the lock was handed to it).
    fn leave_queue(&self, node: &Arc<Node>) -> bool {
        let mut st = lock(&self.state);
        if !st.unlist(node) {
            return false;
        }
        let woken = st.dispatch();
        drop(st);
        if !woken.is_empty() {
            wake_all(woken);
        }
        true
    }

    fn release(&self, write: bool) {
        let mut st = lock(&self.state);
        if write {
            st.writer = false;
        } else {
            st.readers -= 1;
        }
        let woken = st.dispatch();
        drop(st);
        if !woken.is_empty() {
            wake_all(woken);
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("sync::RwLock");
        match self.try_read() {
            Ok(g) => d.field("data", &&*g),
            Err(TryLockError::Poisoned(e)) => d.field("data", &&*e.into_inner()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.is_poisoned()).finish()
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read guard exists only while no writer holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.release(false);
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write guard is the lock's only holder.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write guard is the lock's only holder.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        if poisons(self.panicking) {
            self.lock.poison.store(true, Ordering::Relaxed);
        }
        self.lock.release(true);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
