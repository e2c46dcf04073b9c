//! [`Event`] and [`AsyncResult`]: wake every waiting greenlet when something happens (gevent's
//! `gevent.event`).
//!
//! # Ground rules
//! - Both types are cheap-to-clone handles (`Rc` inside) owned by one thread's hub; clones share the
//!   same event, so a closure given to [`spawn`](crate::spawn) can hold one.
//! - Waiters are kept FIFO and are all woken, in the order they began to wait, by the call that makes
//!   the event ready; a woken waiter returns even if the event was cleared before it ran (as in gevent).
//! - A waiter that is killed or times out removes itself from the list on the way out (its guard's
//!   destructor), so nothing it waited on keeps a trace of it. There is nothing to hand on: an event
//!   wakes everyone.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::greenlet::{Failure, GetError, Waitable};
use crate::hub::{LoopExit, Waiter};
use crate::wait::wait_with_deadline;

/// The FIFO list of greenlets waiting for one thing.
#[derive(Default)]
struct WaitList {
    waiters: RefCell<VecDeque<Rc<Waiter>>>,
}

impl WaitList {
    fn push(&self, w: &Rc<Waiter>) {
        self.waiters.borrow_mut().push_back(w.clone());
    }

    fn remove(&self, w: &Rc<Waiter>) -> bool {
        let mut ws = self.waiters.borrow_mut();
        match ws.iter().position(|x| Rc::ptr_eq(x, w)) {
            Some(i) => {
                ws.remove(i);
                true
            }
            None => false,
        }
    }

    fn wake_all(&self) {
        let ws = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in ws {
            w.wake();
        }
    }

    fn len(&self) -> usize {
        self.waiters.borrow().len()
    }

    /// Waits on `w` (already pushed) until woken or `deadline`; returns whether it was woken by
    /// [`WaitList::wake_all`] (it is no longer in the list) rather than by the deadline.
    fn wait(&self, w: &Rc<Waiter>, deadline: Option<Instant>) -> Result<bool, LoopExit> {
        struct Unlist<'a>(&'a WaitList, &'a Rc<Waiter>);
        impl Drop for Unlist<'_> {
            fn drop(&mut self) {
                self.0.remove(self.1);
            }
        }
        let guard = Unlist(self, w);
        let r = wait_with_deadline(w, deadline);
        // Still listed: the deadline woke it (or LoopExit); the guard unlists it.
        let listed = self.remove(w);
        drop(guard);
        r.map(|()| !listed)
    }
}

struct EventInner {
    flag: Cell<bool>,
    waiters: WaitList,
    /// Calls of [`Event::set`] whose woken waiters have not all run yet: a `wait` that starts
    /// meanwhile queues behind them (gevent#1520).
    notifying: Cell<u32>,
}

/// A flag greenlets can wait for (gevent's `Event`).
///
/// # Examples
/// ```
/// let ev = gevent::event::Event::new();
/// let ev2 = ev.clone();
/// let waiter = gevent::spawn(move || ev2.wait());
/// gevent::spawn(move || ev.set());
/// assert_eq!(waiter.get(), Ok(true));
/// ```
#[derive(Clone)]
pub struct Event {
    inner: Rc<EventInner>,
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
            "Event(set: {}, waiters: {})",
            self.is_set(),
            self.inner.waiters.len()
        )
    }
}

impl Event {
    /// A new, unset event.
    pub fn new() -> Event {
        Event {
            inner: Rc::new(EventInner {
                flag: Cell::new(false),
                waiters: WaitList::default(),
                notifying: Cell::new(0),
            }),
        }
    }

    /// Sets the flag and wakes every waiting greenlet (they run on the hub's next turn, in the order
    /// they began to wait). Later waits return at once until [`Event::clear`]; one that starts
    /// before the woken greenlets have all run (the setter's own, or one of theirs) first lets
    /// them run, so the order of waits is kept (gevent#1520).
    pub fn set(&self) {
        self.inner.flag.set(true);
        if self.inner.waiters.len() == 0 {
            return;
        }
        self.inner.waiters.wake_all();
        // The wakes are in the ready queue; this callback runs right after the last of them.
        let inner = self.inner.clone();
        inner.notifying.set(inner.notifying.get() + 1);
        crate::hub::get_hub().run_callback(move || inner.notifying.set(inner.notifying.get() - 1));
    }

    /// Resets the flag. Greenlets already woken by [`Event::set`] still return `true`.
    pub fn clear(&self) {
        self.inner.flag.set(false);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.inner.flag.get()
    }

    /// Same as [`Event::is_set`] (gevent's `ready()`).
    pub fn ready(&self) -> bool {
        self.is_set()
    }

    /// How many greenlets are waiting (gevent's `linkcount()`).
    pub fn waiter_count(&self) -> usize {
        self.inner.waiters.len()
    }

    /// Waits until the flag is set; returns `true` (gevent's `wait()`).
    ///
    /// # Panics
    /// With [`LoopExit`]'s message ("this operation would block forever") when nothing can ever set
    /// it — for example the main greenlet waiting on an event no one sets.
    ///
    /// # Cancel safety
    /// A kill or [`Timeout`](crate::Timeout) landing here unwinds out of it; the waiter is removed
    /// from the event's list on the way out.
    pub fn wait(&self) -> bool {
        match self.wait_deadline(None) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        }
    }

    /// Waits at most `timeout`; returns whether the flag was set (gevent's `wait(timeout)`).
    ///
    /// # Panics
    /// As [`Event::wait`] (only possible if the hub's loop empties while the timer is armed, which
    /// it cannot).
    ///
    /// # Cancel safety
    /// As [`Event::wait`].
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        match self.wait_deadline(Some(Instant::now() + timeout)) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        }
    }

    /// Waits until the flag is set or `deadline`.
    ///
    /// # Errors
    /// [`LoopExit`] when nothing can ever set it.
    ///
    /// # Cancel safety
    /// As [`Event::wait`].
    pub fn wait_deadline(&self, deadline: Option<Instant>) -> Result<bool, LoopExit> {
        if self.is_set() {
            if self.inner.notifying.get() > 0 && !crate::hub::get_hub().greenlet().is_current() {
                // Set, but the waiters it woke have not all run: queue behind them.
                crate::hub::yield_now();
            }
            return Ok(true);
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Ok(false);
        }
        let w = Waiter::new();
        self.inner.waiters.push(&w);
        let woken = self.inner.waiters.wait(&w, deadline)?;
        Ok(woken || self.is_set())
    }
}

impl Waitable for Event {
    fn is_ready(&self) -> bool {
        self.is_set()
    }
    fn subscribe(&self, w: &Rc<Waiter>) {
        self.inner.waiters.push(w);
    }
    fn unsubscribe(&self, w: &Rc<Waiter>) {
        self.inner.waiters.remove(w);
    }
}

struct ResultInner<T> {
    value: RefCell<Option<Result<T, Failure>>>,
    waiters: WaitList,
    /// As [`EventInner`]'s: sets whose woken readers have not all run yet (shared with the
    /// callback that ends it, which cannot hold `T`).
    notifying: Rc<Cell<u32>>,
}

/// A value (or a failure) that will arrive later, for any number of readers (gevent's
/// `AsyncResult`).
///
/// Setting it again replaces the value and wakes the readers waiting then.
///
/// # Examples
/// ```
/// let r = gevent::event::AsyncResult::new();
/// let r2 = r.clone();
/// gevent::spawn(move || r2.set(42));
/// assert_eq!(r.get(), Ok(42));
/// ```
pub struct AsyncResult<T> {
    inner: Rc<ResultInner<T>>,
}

impl<T> Clone for AsyncResult<T> {
    fn clone(&self) -> Self {
        AsyncResult {
            inner: self.inner.clone(),
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
        let state = match &*self.inner.value.borrow() {
            None => "unset",
            Some(Ok(_)) => "value",
            Some(Err(_)) => "exception",
        };
        write!(
            f,
            "AsyncResult({state}, waiters: {})",
            self.inner.waiters.len()
        )
    }
}

impl<T> AsyncResult<T> {
    /// A new, unset result.
    pub fn new() -> AsyncResult<T> {
        AsyncResult {
            inner: Rc::new(ResultInner {
                value: RefCell::new(None),
                waiters: WaitList::default(),
                notifying: Rc::new(Cell::new(0)),
            }),
        }
    }

    /// Stores `v` and wakes every waiting reader (in the order they began to wait; a wait that
    /// starts before they have all run queues behind them, as [`Event::set`]).
    pub fn set(&self, v: T) {
        *self.inner.value.borrow_mut() = Some(Ok(v));
        self.notify();
    }

    /// Stores a failure (readers get [`GetError::Panicked`] with `message`) and wakes every waiting
    /// reader (gevent's `set_exception`).
    pub fn set_exception(&self, message: impl Into<String>) {
        *self.inner.value.borrow_mut() = Some(Err(Failure::new(message.into())));
        self.notify();
    }

    fn notify(&self) {
        if self.inner.waiters.len() == 0 {
            return;
        }
        self.inner.waiters.wake_all();
        // The wakes are in the ready queue; this callback runs right after the last of them.
        let n = self.inner.notifying.clone();
        n.set(n.get() + 1);
        crate::hub::get_hub().run_callback(move || n.set(n.get() - 1));
    }

    /// Whether a value or a failure has been set.
    pub fn ready(&self) -> bool {
        self.inner.value.borrow().is_some()
    }

    /// Whether a value (not a failure) has been set.
    pub fn successful(&self) -> bool {
        matches!(&*self.inner.value.borrow(), Some(Ok(_)))
    }

    /// The failure, if [`AsyncResult::set_exception`] was called (gevent's `exception`).
    pub fn exception(&self) -> Option<Failure> {
        match &*self.inner.value.borrow() {
            Some(Err(f)) => Some(f.clone()),
            _ => None,
        }
    }

    /// Waits until it is ready (gevent's `wait()`); returns whether it is.
    ///
    /// # Panics
    /// With [`LoopExit`]'s message when nothing can ever set it.
    ///
    /// # Cancel safety
    /// A kill or [`Timeout`](crate::Timeout) landing here unwinds out of it; the reader is removed
    /// from the list on the way out.
    pub fn wait(&self) -> bool {
        match self.wait_deadline(None) {
            Ok(()) => self.ready(),
            Err(e) => panic!("{e}"),
        }
    }

    /// Waits at most `timeout`; returns whether it is ready.
    ///
    /// # Cancel safety
    /// As [`AsyncResult::wait`].
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        match self.wait_deadline(Some(Instant::now() + timeout)) {
            Ok(()) => self.ready(),
            Err(e) => panic!("{e}"),
        }
    }

    fn wait_deadline(&self, deadline: Option<Instant>) -> Result<(), LoopExit> {
        if self.ready() {
            if self.inner.notifying.get() > 0 && !crate::hub::get_hub().greenlet().is_current() {
                // Set, but the readers it woke have not all run: queue behind them (gevent#1520).
                crate::hub::yield_now();
            }
            return Ok(());
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Ok(());
        }
        let w = Waiter::new();
        self.inner.waiters.push(&w);
        self.inner.waiters.wait(&w, deadline).map(|_| ())
    }
}

impl<T: Clone> AsyncResult<T> {
    /// Waits for the value (gevent's `get()`).
    ///
    /// # Errors
    /// [`GetError::Panicked`] with the message given to [`AsyncResult::set_exception`];
    /// [`GetError::LoopExit`] when nothing can ever set it.
    ///
    /// # Cancel safety
    /// As [`AsyncResult::wait`].
    pub fn get(&self) -> Result<T, GetError> {
        if self.wait_deadline(None).is_err() {
            return Err(GetError::LoopExit);
        }
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
        if self.wait_deadline(Some(Instant::now() + timeout)).is_err() {
            return Err(GetError::LoopExit);
        }
        self.peek()
    }

    /// The value without waiting (gevent's `get_nowait()`).
    ///
    /// # Errors
    /// [`GetError::NotReady`] if unset, [`GetError::Panicked`] after `set_exception`.
    pub fn peek(&self) -> Result<T, GetError> {
        match &*self.inner.value.borrow() {
            None => Err(GetError::NotReady),
            Some(Ok(v)) => Ok(v.clone()),
            Some(Err(f)) => Err(GetError::Panicked(f.clone())),
        }
    }

    /// The value if one was set (gevent's `value`), without waiting.
    pub fn value(&self) -> Option<T> {
        self.peek().ok()
    }
}

impl<T: 'static> AsyncResult<T> {
    /// Copies a finished greenlet's outcome in: its value, or its failure (a kill counts as a
    /// failure here: "the greenlet was killed"). Handy as a link: `g.link(move |g| r.set_from(g))`.
    pub fn set_from(&self, g: &crate::Greenlet<T>)
    where
        T: Clone,
    {
        match g.peek() {
            Ok(v) => self.set(v),
            Err(GetError::Panicked(f)) => self.set_exception(f.message()),
            Err(e) => self.set_exception(e.to_string()),
        }
    }
}

impl<T> Waitable for AsyncResult<T> {
    fn is_ready(&self) -> bool {
        self.ready()
    }
    fn subscribe(&self, w: &Rc<Waiter>) {
        self.inner.waiters.push(w);
    }
    fn unsubscribe(&self, w: &Rc<Waiter>) {
        self.inner.waiters.remove(w);
    }
}
