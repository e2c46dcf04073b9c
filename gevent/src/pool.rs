//! Sets of greenlets: [`Group`] tracks greenlets until they finish; [`Pool`] also limits how many
//! run at once (gevent's `gevent.pool`).
//!
//! # Ground rules
//! - A group holds greenlets of any result type; each member leaves the group when it finishes (from
//!   its link, on the hub's turn after its death) or when [`Group::discard`]ed, whichever is first.
//! - A pool's free slots are a [`Semaphore`]: a slot is taken before a greenlet is added and given
//!   back exactly once, when it leaves the pool. Greenlets waiting for a slot are served FIFO.
//! - `imap`/`imap_unordered` run a feeder greenlet that spawns one greenlet per input (waiting while
//!   the pool is full) and collect results through a [`Queue`]; dropping the iterator kills the
//!   feeder.
//! - Names, as in [`queue`](crate::queue): `try_add`/`try_spawn` never wait, `add_timeout`,
//!   `join_timeout` and `wait_available_timeout` wait at most a timeout; gevent's `full()` is a
//!   search alias of [`Pool::is_full`].

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use crate::greenlet::{GetError, Greenlet, Waitable};
use crate::lock::Semaphore;
use crate::queue::Queue;

/// A member of a group, whatever its result type.
trait Member: Waitable {
    fn kill_nowait(&self);
    fn raw(&self) -> Option<greenlet::Greenlet>;
}

impl<T: 'static> Member for Greenlet<T> {
    fn kill_nowait(&self) {
        Greenlet::kill_nowait(self);
    }
    fn raw(&self) -> Option<greenlet::Greenlet> {
        Greenlet::raw(self)
    }
}

struct GroupCore {
    members: HashMap<u64, Rc<dyn Member>>,
    /// The pool's slots, if this group is a pool's.
    slots: Option<Semaphore>,
}

/// Takes `g`'s outcome out (for values that are not `Clone`).
fn outcome<T: 'static>(g: &Greenlet<T>) -> Result<T, GetError> {
    g.take_result()
}

/// A set of greenlets, each removed when it finishes (gevent's `Group`).
///
/// # Examples
/// ```
/// let group = gevent::pool::Group::new();
/// let a = group.spawn(|| 1);
/// let b = group.spawn(|| "two");
/// assert_eq!(group.len(), 2);
/// group.join();
/// assert_eq!((a.value(), b.value()), (Some(1), Some("two")));
/// ```
#[derive(Clone)]
pub struct Group {
    core: Rc<RefCell<GroupCore>>,
}

impl Default for Group {
    fn default() -> Self {
        Group::new()
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Group(len: {})", self.len())
    }
}

impl Group {
    /// An empty group.
    pub fn new() -> Group {
        Group {
            core: Rc::new(RefCell::new(GroupCore {
                members: HashMap::new(),
                slots: None,
            })),
        }
    }

    /// How many greenlets it holds.
    pub fn len(&self) -> usize {
        self.core.borrow().members.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `g` is in it.
    pub fn contains<T: 'static>(&self, g: &Greenlet<T>) -> bool {
        self.core.borrow().members.contains_key(&g.minimal_ident())
    }

    /// Adds `g` (started or not); it leaves when it finishes. Adding twice does nothing.
    pub fn add<T: 'static>(&self, g: &Greenlet<T>) {
        let id = g.minimal_ident();
        {
            let mut c = self.core.borrow_mut();
            if c.members.contains_key(&id) {
                return;
            }
            c.members.insert(id, Rc::new(g.clone()));
        }
        let weak: Weak<RefCell<GroupCore>> = Rc::downgrade(&self.core);
        g.link(move |g| {
            if let Some(core) = weak.upgrade() {
                Group { core }.discard(g);
            }
        });
    }

    /// Removes `g` without waiting for it or killing it; a pool gets its slot back.
    pub fn discard<T: 'static>(&self, g: &Greenlet<T>) {
        let mut c = self.core.borrow_mut();
        if c.members.remove(&g.minimal_ident()).is_some() {
            if let Some(s) = &c.slots {
                s.release();
            }
        }
    }

    /// Spawns `f` in a new greenlet of this group.
    pub fn spawn<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
        let g = Greenlet::new(f);
        self.add(&g);
        g.start();
        g
    }

    fn snapshot(&self) -> Vec<Rc<dyn Member>> {
        self.core.borrow().members.values().cloned().collect()
    }

    /// Whether the current greenlet is one of the members.
    fn current_is_member(&self) -> bool {
        let cur = greenlet::getcurrent();
        self.core
            .borrow()
            .members
            .values()
            .any(|m| m.raw().is_some_and(|r| r == cur))
    }

    /// Waits until every member (including ones added meanwhile) has finished; the group is then
    /// empty.
    ///
    /// # Panics
    /// With [`LoopExit`](crate::LoopExit)'s message when some can never finish.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it and leaves no trace.
    pub fn join(&self) {
        self.join_deadline(None);
    }

    /// As [`Group::join`], at most `timeout`; returns whether all had finished.
    ///
    /// # Cancel safety
    /// As [`Group::join`].
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_deadline(Some(Instant::now() + timeout))
    }

    fn join_deadline(&self, deadline: Option<Instant>) -> bool {
        loop {
            let pending: Vec<Rc<dyn Member>> = self
                .snapshot()
                .into_iter()
                .filter(|m| !m.is_ready())
                .collect();
            if pending.is_empty() {
                self.discard_finished(); // empty on return, as gevent's join waits for it to be
                return true;
            }
            let timeout = match deadline {
                None => None,
                Some(d) => {
                    let now = Instant::now();
                    if d <= now {
                        return false;
                    }
                    Some(d - now)
                }
            };
            crate::wait(pending.iter().map(|m| &**m), timeout, None);
        }
    }

    /// Removes the members that have finished now rather than on the hub's next turn (from their
    /// links); a pool gets their slots back.
    fn discard_finished(&self) {
        let mut c = self.core.borrow_mut();
        let before = c.members.len();
        c.members.retain(|_, m| !m.is_ready());
        if let Some(s) = &c.slots {
            for _ in c.members.len()..before {
                s.release();
            }
        }
    }

    /// Kills `g` if it is a member, waits until it is dead and removes it (gevent's
    /// `Group.killone`); returns whether it was a member. A greenlet not in the group is left
    /// alone.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it; the kill still happens, and `g` leaves
    /// the group when it dies.
    pub fn killone<T: 'static>(&self, g: &Greenlet<T>) -> bool {
        if !self.contains(g) {
            return false;
        }
        g.kill();
        self.discard(g);
        true
    }

    /// Kills every member and waits until they are dead (gevent's `Group.kill`); returns with the
    /// group empty, members that had not started included (gevent loops `while self.greenlets`).
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it; the kills already asked for still happen.
    pub fn kill(&self) {
        loop {
            let members = self.snapshot();
            let alive: Vec<_> = members.into_iter().filter(|m| !m.is_ready()).collect();
            if alive.is_empty() {
                self.discard_finished();
                return;
            }
            for m in &alive {
                m.kill_nowait();
            }
            crate::wait(alive.iter().map(|m| &**m), None, None);
        }
    }
}

/// A [`Group`] that runs at most `size` greenlets at once: `spawn` waits while it is full (gevent's
/// `Pool`).
///
/// # Examples
/// ```
/// let pool = gevent::pool::Pool::new(2);
/// let squares = pool.map(|x: u64| x * x, 1..=4).unwrap();
/// assert_eq!(squares, [1, 4, 9, 16]);
/// ```
#[derive(Clone)]
pub struct Pool {
    group: Group,
    size: Option<usize>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pool(size: {:?}, len: {})", self.size, self.len())
    }
}

impl Pool {
    /// A pool of at most `size` running greenlets (0: nothing can ever be spawned).
    pub fn new(size: usize) -> Pool {
        let group = Group::new();
        group.core.borrow_mut().slots = Some(Semaphore::new(size));
        Pool {
            group,
            size: Some(size),
        }
    }

    /// A pool with no limit (gevent's `Pool(None)`): a [`Group`] with the pool's methods.
    pub fn unlimited() -> Pool {
        Pool {
            group: Group::new(),
            size: None,
        }
    }

    fn slots(&self) -> Option<Semaphore> {
        self.group.core.borrow().slots.clone()
    }

    /// The limit (`None`: unlimited).
    pub fn size(&self) -> Option<usize> {
        self.size
    }

    /// How many greenlets it holds.
    pub fn len(&self) -> usize {
        self.group.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.group.is_empty()
    }

    /// Whether `g` is in it.
    pub fn contains<T: 'static>(&self, g: &Greenlet<T>) -> bool {
        self.group.contains(g)
    }

    /// How many more greenlets could be spawned without waiting (`usize::MAX` if unlimited).
    pub fn free_count(&self) -> usize {
        match self.slots() {
            Some(s) => s.available(),
            None => usize::MAX,
        }
    }

    /// Whether `spawn` would wait (gevent's `full()`).
    #[doc(alias = "full")]
    pub fn is_full(&self) -> bool {
        self.free_count() == 0
    }

    /// Waits until a slot is free without taking it (gevent's `wait_available()`); returns
    /// [`Pool::free_count`].
    ///
    /// # Panics
    /// With [`LoopExit`](crate::LoopExit)'s message if no slot can ever free up.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it and leaves no trace.
    pub fn wait_available(&self) -> usize {
        if let Some(s) = self.slots() {
            s.wait();
        }
        self.free_count()
    }

    /// As [`Pool::wait_available`], at most `timeout` (gevent's `wait_available(timeout)`);
    /// returns [`Pool::free_count`], 0 if no slot freed up in time.
    ///
    /// # Cancel safety
    /// As [`Pool::wait_available`].
    pub fn wait_available_timeout(&self, timeout: Duration) -> usize {
        if let Some(s) = self.slots() {
            s.wait_timeout(timeout);
        }
        self.free_count()
    }

    /// Adds `g`, waiting while the pool is full (gevent's `Pool.add`).
    ///
    /// # Panics
    /// With [`LoopExit`](crate::LoopExit)'s message if no slot can ever free up.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it; `g` is not added and no slot is taken.
    pub fn add<T: 'static>(&self, g: &Greenlet<T>) {
        if self.group.contains(g) {
            return;
        }
        if let Some(s) = self.slots() {
            s.acquire();
        }
        self.group.add(g);
    }

    /// Adds `g` if a slot is free now (gevent's `add(g, blocking=False)`).
    ///
    /// # Errors
    /// [`PoolFullError`] when the pool is full; `g` is not added (and not started or killed).
    pub fn try_add<T: 'static>(&self, g: &Greenlet<T>) -> Result<(), PoolFullError> {
        if self.group.contains(g) {
            return Ok(());
        }
        if let Some(s) = self.slots() {
            if !s.try_acquire() {
                return Err(PoolFullError);
            }
        }
        self.group.add(g);
        Ok(())
    }

    /// Spawns `f` in the pool if a slot is free now, else returns [`PoolFullError`] without running
    /// it.
    ///
    /// # Errors
    /// [`PoolFullError`] when the pool is full.
    pub fn try_spawn<T: 'static>(
        &self,
        f: impl FnOnce() -> T + 'static,
    ) -> Result<Greenlet<T>, PoolFullError> {
        let g = Greenlet::new(f);
        self.try_add(&g)?;
        g.start();
        Ok(g)
    }

    /// Adds `g` (waiting while the pool is full) and starts it (gevent's `Pool.start`).
    ///
    /// # Panics
    /// As [`Pool::add`].
    ///
    /// # Cancel safety
    /// As [`Pool::add`]: `g` is then neither added nor started.
    pub fn start<T: 'static>(&self, g: &Greenlet<T>) {
        self.add(g);
        g.start();
    }

    /// Kills `g` if it is in the pool, waits until it is dead and frees its slot (gevent's
    /// `killone`); returns whether it was in the pool.
    ///
    /// # Cancel safety
    /// As [`Group::killone`].
    pub fn killone<T: 'static>(&self, g: &Greenlet<T>) -> bool {
        self.group.killone(g)
    }

    /// Adds `g` if a slot frees up within `timeout`; returns whether it did (gevent raises
    /// `PoolFull`).
    ///
    /// # Cancel safety
    /// As [`Pool::add`].
    pub fn add_timeout<T: 'static>(&self, g: &Greenlet<T>, timeout: Duration) -> bool {
        if self.group.contains(g) {
            return true;
        }
        if let Some(s) = self.slots() {
            if !s.acquire_timeout(timeout) {
                return false;
            }
        }
        self.group.add(g);
        true
    }

    /// Removes `g` without killing it; its slot is freed.
    pub fn discard<T: 'static>(&self, g: &Greenlet<T>) {
        self.group.discard(g);
    }

    /// Spawns `f` in the pool, waiting while it is full.
    ///
    /// # Panics
    /// With [`LoopExit`](crate::LoopExit)'s message if no slot can ever free up.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing while it waits for a slot unwinds out of it; nothing is spawned.
    pub fn spawn<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
        let g = Greenlet::new(f);
        self.add(&g);
        g.start();
        g
    }

    /// Runs `f` in the pool and waits for its result (gevent's `apply`). Called from a member of
    /// this pool, runs `f` right there (a full pool would otherwise wait for itself).
    ///
    /// # Errors
    /// [`GetError::Panicked`] if `f` panicked, [`GetError::Killed`] if it was killed.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it; a greenlet already spawned goes on.
    pub fn apply<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> Result<T, GetError> {
        if self.group.current_is_member() {
            return Ok(f());
        }
        let g = self.spawn(f);
        g.join();
        outcome(&g)
    }

    /// Spawns `f` in the pool (waiting while it is full) and returns its greenlet; `callback` is
    /// called with the value when `f` returns (gevent's `apply_async(func, callback=)`; not when
    /// it panics or is killed). The callback runs in the hub: it must not block. Called from a
    /// member of this pool, `f` runs in a greenlet outside the pool's limit (a full pool would
    /// otherwise wait for itself), as gevent does.
    ///
    /// # Examples
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// let pool = gevent::pool::Pool::new(2);
    /// let got = Rc::new(Cell::new(0));
    /// let g2 = got.clone();
    /// let g = pool.apply_async(|| 6 * 7, move |v: &i32| g2.set(*v));
    /// pool.join();
    /// gevent::sleep(std::time::Duration::ZERO); // links run on the hub's turn after the death
    /// assert_eq!((g.value(), got.get()), (Some(42), 42));
    /// ```
    ///
    /// # Panics
    /// As [`Pool::spawn`].
    ///
    /// # Cancel safety
    /// As [`Pool::spawn`].
    pub fn apply_async<T: 'static>(
        &self,
        f: impl FnOnce() -> T + 'static,
        callback: impl FnOnce(&T) + 'static,
    ) -> Greenlet<T> {
        let g = Greenlet::new(f);
        g.link_value(move |g| {
            g.with_value(callback);
        });
        if self.group.current_is_member() {
            g.start();
        } else {
            self.start(&g);
        }
        g
    }

    /// Runs [`Pool::map`] in a new greenlet (outside the pool) and returns it at once; `callback`
    /// gets the results when every item succeeded (gevent's `map_async(func, iterable,
    /// callback=)`). The callback runs in the hub: it must not block.
    ///
    /// # Examples
    /// ```
    /// let pool = gevent::pool::Pool::new(2);
    /// let g = pool.map_async(|x: u32| x + 1, vec![1, 2, 3], |v: &Vec<u32>| assert_eq!(v, &[2, 3, 4]));
    /// assert_eq!(g.get().unwrap(), Ok(vec![2, 3, 4]));
    /// ```
    pub fn map_async<I, T, F>(
        &self,
        f: F,
        items: I,
        callback: impl FnOnce(&Vec<T>) + 'static,
    ) -> Greenlet<Result<Vec<T>, GetError>>
    where
        I: IntoIterator + 'static,
        I::Item: 'static,
        T: 'static,
        F: Fn(I::Item) -> T + 'static,
    {
        let pool = self.clone();
        let g = Greenlet::new(move || pool.map(f, items));
        g.link_value(move |g| {
            g.with_value(|r| {
                if let Ok(v) = r {
                    callback(v);
                }
            });
        });
        g.start();
        g
    }

    /// Applies `f` to every item, at most `size` at once, and returns the results in input order
    /// (gevent's `map`).
    ///
    /// # Errors
    /// The first failure in input order (the others still ran).
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it; the feeder is killed, running items go on.
    pub fn map<I, T, F>(&self, f: F, items: I) -> Result<Vec<T>, GetError>
    where
        I: IntoIterator + 'static,
        I::Item: 'static,
        T: 'static,
        F: Fn(I::Item) -> T + 'static,
    {
        self.imap(f, items).collect()
    }

    /// Applies `f` to every item, at most `size` at once; yields the results in input order as they
    /// become available (gevent's `imap`). A failed item yields `Err` and iteration goes on.
    pub fn imap<I, T, F>(&self, f: F, items: I) -> IMap<T>
    where
        I: IntoIterator + 'static,
        I::Item: 'static,
        T: 'static,
        F: Fn(I::Item) -> T + 'static,
    {
        IMap::start(self.clone(), f, items, true)
    }

    /// As [`Pool::imap`], yielding results in completion order (gevent's `imap_unordered`).
    pub fn imap_unordered<I, T, F>(&self, f: F, items: I) -> IMap<T>
    where
        I: IntoIterator + 'static,
        I::Item: 'static,
        T: 'static,
        F: Fn(I::Item) -> T + 'static,
    {
        IMap::start(self.clone(), f, items, false)
    }

    /// As [`Pool::imap`], holding at most `max_buffered` results that the iterator has not
    /// yielded yet, running or finished (gevent's `imap(..., maxsize=)`): no new item starts while
    /// that many are pending, so a slow consumer bounds the memory. `max_buffered` is raised to 1.
    ///
    /// # Examples
    /// ```
    /// let pool = gevent::pool::Pool::unlimited();
    /// let mut it = pool.imap_bounded(|x: u32| x * 2, 0..1000, 4);
    /// assert_eq!(it.next(), Some(Ok(0)));
    /// assert!(pool.len() <= 4); // not 1000 greenlets at once
    /// assert_eq!(it.map(Result::unwrap).sum::<u32>(), 999 * 1000);
    /// ```
    pub fn imap_bounded<I, T, F>(&self, f: F, items: I, max_buffered: usize) -> IMap<T>
    where
        I: IntoIterator + 'static,
        I::Item: 'static,
        T: 'static,
        F: Fn(I::Item) -> T + 'static,
    {
        IMap::start_bounded(self.clone(), f, items, true, Some(max_buffered))
    }

    /// As [`Pool::imap_bounded`], yielding results in completion order.
    pub fn imap_unordered_bounded<I, T, F>(&self, f: F, items: I, max_buffered: usize) -> IMap<T>
    where
        I: IntoIterator + 'static,
        I::Item: 'static,
        T: 'static,
        F: Fn(I::Item) -> T + 'static,
    {
        IMap::start_bounded(self.clone(), f, items, false, Some(max_buffered))
    }

    /// Waits until every greenlet in the pool has finished.
    ///
    /// # Panics
    /// As [`Group::join`].
    ///
    /// # Cancel safety
    /// As [`Group::join`].
    pub fn join(&self) {
        self.group.join();
    }

    /// As [`Pool::join`], at most `timeout`; returns whether all had finished.
    ///
    /// # Cancel safety
    /// As [`Group::join`].
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.group.join_timeout(timeout)
    }

    /// Kills every greenlet in the pool and waits until they are dead.
    ///
    /// # Cancel safety
    /// As [`Group::kill`].
    pub fn kill(&self) {
        self.group.kill();
    }

    /// The pool as a [`Group`] (the same set).
    pub fn group(&self) -> &Group {
        &self.group
    }
}

/// [`Pool::try_add`] / [`Pool::try_spawn`] found the pool full (gevent's `PoolFull`, which this
/// module also exports under that name).
#[doc(alias = "PoolFull")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolFullError;

// gevent's name (type, value and pattern).
pub use self::PoolFullError as PoolFull;

impl fmt::Display for PoolFullError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the pool is full")
    }
}

impl std::error::Error for PoolFullError {}

enum Msg<T> {
    Item(usize, Result<T, GetError>),
    /// The feeder finished: how many items it spawned, and why it stopped early if it did.
    Fed(usize, Option<GetError>),
}

/// The iterator of [`Pool::imap`] and [`Pool::imap_unordered`]: yields `Ok(value)` or `Err` per item,
/// then, if the input itself panicked, one last `Err` with that failure.
///
/// Dropping it kills the feeder (no new items start); items already running go on.
pub struct IMap<T: 'static> {
    results: Queue<Msg<T>>,
    feeder: Greenlet<()>,
    /// The slots of [`Pool::imap_bounded`]: one per item spawned and not yet yielded.
    buffer: Option<Semaphore>,
    ordered: bool,
    /// Results that arrived ahead of their turn (ordered mode).
    ahead: BTreeMap<usize, Result<T, GetError>>,
    next_index: usize,
    received: usize,
    total: Option<usize>,
    feed_error: Option<GetError>,
}

impl<T> fmt::Debug for IMap<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IMap(ordered: {}, received: {}, total: {:?})",
            self.ordered, self.received, self.total
        )
    }
}

impl<T: 'static> IMap<T> {
    fn start<I, F>(pool: Pool, f: F, items: I, ordered: bool) -> IMap<T>
    where
        I: IntoIterator + 'static,
        I::Item: 'static,
        F: Fn(I::Item) -> T + 'static,
    {
        IMap::start_bounded(pool, f, items, ordered, None)
    }

    fn start_bounded<I, F>(
        pool: Pool,
        f: F,
        items: I,
        ordered: bool,
        max_buffered: Option<usize>,
    ) -> IMap<T>
    where
        I: IntoIterator + 'static,
        I::Item: 'static,
        F: Fn(I::Item) -> T + 'static,
    {
        let results: Queue<Msg<T>> = Queue::new();
        let spawned = Rc::new(Cell::new(0usize));
        let f = Rc::new(f);
        let q = results.clone();
        let n = spawned.clone();
        let buffer = max_buffered.map(|m| Semaphore::new(m.max(1)));
        let b = buffer.clone();
        let feeder = Greenlet::new(move || {
            for item in items {
                if let Some(b) = &b {
                    b.acquire(); // given back when the iterator yields a result
                }
                let f = f.clone();
                let g = pool.spawn(move || f(item));
                let q2 = q.clone();
                let i = n.get();
                g.link(move |g| {
                    let _ = q2.try_put(Msg::Item(i, outcome(g)));
                });
                n.set(i + 1);
            }
        });
        let q = results.clone();
        feeder.link(move |g| {
            let err = match (g.successful(), g.exception()) {
                (true, _) => None,
                (false, Some(f)) => Some(GetError::Panicked(f)),
                (false, None) => Some(GetError::Killed),
            };
            let _ = q.try_put(Msg::Fed(spawned.get(), err));
        });
        feeder.start();
        IMap {
            results,
            feeder,
            buffer,
            ordered,
            ahead: BTreeMap::new(),
            next_index: 0,
            received: 0,
            total: None,
            feed_error: None,
        }
    }
}

impl<T: 'static> Iterator for IMap<T> {
    type Item = Result<T, GetError>;

    /// # Panics
    /// With [`LoopExit`](crate::LoopExit)'s message if a result can never arrive.
    fn next(&mut self) -> Option<Self::Item> {
        let r = self.next_result();
        if let (Some(b), Some(_)) = (&self.buffer, &r) {
            b.release();
        }
        r
    }
}

impl<T: 'static> IMap<T> {
    fn next_result(&mut self) -> Option<Result<T, GetError>> {
        loop {
            if self.ordered {
                if let Some(r) = self.ahead.remove(&self.next_index) {
                    self.next_index += 1;
                    return Some(r);
                }
            }
            if self.total.is_some_and(|t| self.received >= t) {
                return self.feed_error.take().map(Err);
            }
            match self.results.get() {
                Ok(Msg::Item(i, r)) => {
                    self.received += 1;
                    if !self.ordered {
                        return Some(r);
                    }
                    self.ahead.insert(i, r);
                }
                Ok(Msg::Fed(n, err)) => {
                    self.total = Some(n);
                    self.feed_error = err;
                }
                Err(_) => return None,
            }
        }
    }
}

impl<T: 'static> Drop for IMap<T> {
    fn drop(&mut self) {
        if !self.feeder.ready() {
            self.feeder.kill_nowait();
        }
    }
}
