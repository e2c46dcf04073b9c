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

use crate::greenlet::{Failure, GetError, LinkId, Waitable};
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

/// One link: its id and its callback.
type Link<A> = (LinkId, Rc<dyn Fn(&A)>);

/// Callbacks run (in the hub) each time the thing becomes ready, until unlinked (gevent's
/// `rawlink`).
struct Links<A: ?Sized> {
    list: RefCell<Vec<Link<A>>>,
    next: Cell<u64>,
}

impl<A: ?Sized> Default for Links<A> {
    fn default() -> Self {
        Links {
            list: RefCell::new(Vec::new()),
            next: Cell::new(0),
        }
    }
}

impl<A: ?Sized> Links<A> {
    fn add(&self, f: Rc<dyn Fn(&A)>) -> LinkId {
        let id = LinkId(self.next.get());
        self.next.set(id.0 + 1);
        self.list.borrow_mut().push((id, f));
        id
    }

    fn remove(&self, id: LinkId) -> bool {
        let removed = {
            let mut l = self.list.borrow_mut();
            l.iter().position(|(i, _)| *i == id).map(|at| l.remove(at))
        };
        removed.is_some()
    }

    fn is_empty(&self) -> bool {
        self.list.borrow().is_empty()
    }

    fn len(&self) -> usize {
        self.list.borrow().len()
    }

    /// Calls every link still linked, in link order; a link may unlink itself or others, or add
    /// new ones (called at the next notification). A panicking link is reported and skipped.
    fn notify(&self, arg: &A) {
        let snapshot: Vec<Link<A>> = self.list.borrow().clone();
        for (id, f) in snapshot {
            if !self.list.borrow().iter().any(|(i, _)| *i == id) {
                continue; // unlinked by an earlier link
            }
            if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(arg))) {
                eprintln!(
                    "gevent: a link panicked (ignored): {}",
                    crate::greenlet::describe_panic(&*p)
                );
                crate::hub::drop_payload(p);
            }
        }
    }
}

struct EventInner {
    flag: Cell<bool>,
    waiters: WaitList,
    /// Calls of [`Event::set`] whose woken waiters have not all run yet: a `wait` that starts
    /// meanwhile queues behind them (gevent#1520).
    notifying: Cell<u32>,
    links: Links<Event>,
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
                links: Links::default(),
            }),
        }
    }

    /// Sets the flag and wakes every waiting greenlet (they run on the hub's next turn, in the order
    /// they began to wait). Later waits return at once until [`Event::clear`]; one that starts
    /// before the woken greenlets have all run (the setter's own, or one of theirs) first lets
    /// them run, so the order of waits is kept (gevent#1520).
    pub fn set(&self) {
        let was_set = self.inner.flag.replace(true);
        if !was_set && !self.inner.links.is_empty() {
            self.schedule_links();
        }
        if self.inner.waiters.len() == 0 {
            return;
        }
        self.inner.waiters.wake_all();
        // The wakes are in the ready queue; this callback runs right after the last of them.
        let inner = self.inner.clone();
        inner.notifying.set(inner.notifying.get() + 1);
        crate::hub::get_hub().run_callback(move || inner.notifying.set(inner.notifying.get() - 1));
    }

    fn schedule_links(&self) {
        let ev = self.clone();
        crate::hub::get_hub().run_callback(move || {
            if ev.is_set() {
                ev.inner.links.notify(&ev);
            }
        });
    }

    /// Calls `f` in the hub each time the event becomes set (at once, on the hub's next turn, if
    /// it is set now), until [`Event::unlink`] (gevent's `rawlink`). `f` runs in the hub, so it
    /// must not block (spawn a greenlet for that: [`Event::link`]); a panic in it is reported
    /// and ignored. A link that runs after the event was cleared again is skipped.
    ///
    /// # Examples
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// let ev = gevent::event::Event::new();
    /// let fired = Rc::new(Cell::new(0));
    /// let f = fired.clone();
    /// let id = ev.rawlink(move |_| f.set(f.get() + 1));
    /// ev.set();
    /// gevent::sleep(std::time::Duration::ZERO);
    /// assert_eq!(fired.get(), 1);
    /// assert!(ev.unlink(id));
    /// ```
    pub fn rawlink(&self, f: impl Fn(&Event) + 'static) -> LinkId {
        let id = self.inner.links.add(Rc::new(f));
        if self.is_set() && self.inner.links.len() == 1 {
            self.schedule_links();
        }
        id
    }

    /// As [`Event::rawlink`], but `f` runs in a new greenlet each time, so it may block
    /// (gevent's `link`).
    pub fn link(&self, f: impl Fn(&Event) + 'static) -> LinkId {
        let f = Rc::new(f);
        self.rawlink(move |ev| {
            let (f, ev) = (f.clone(), ev.clone());
            crate::spawn(move || f(&ev));
        })
    }

    /// Removes a link; returns whether it was still there (gevent's `unlink`).
    pub fn unlink(&self, id: LinkId) -> bool {
        self.inner.links.remove(id)
    }

    /// How many links there are (gevent's `linkcount()` counts these and the waiters).
    pub fn link_count(&self) -> usize {
        self.inner.links.len()
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
    links: Links<AsyncResult<T>>,
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
                links: Links::default(),
            }),
        }
    }

    /// Stores `v` and wakes every waiting reader (in the order they began to wait; a wait that
    /// starts before they have all run queues behind them, as [`Event::set`]); its links run on
    /// the hub's next turn.
    pub fn set(&self, v: T)
    where
        T: 'static,
    {
        let old = self.inner.value.borrow_mut().replace(Ok(v));
        drop(old); // outside the borrow
        self.notify();
        self.schedule_links();
    }

    /// Stores a failure (readers get [`GetError::Panicked`] with `message`) and wakes every waiting
    /// reader (gevent's `set_exception`); its links run on the hub's next turn.
    pub fn set_exception(&self, message: impl Into<String>)
    where
        T: 'static,
    {
        let old = self
            .inner
            .value
            .borrow_mut()
            .replace(Err(Failure::new(message.into())));
        drop(old);
        self.notify();
        self.schedule_links();
    }

    /// Wakes every waiting reader; a wait that starts before they have all run queues behind them
    /// (as [`Event::set`]).
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

    fn schedule_links(&self)
    where
        T: 'static,
    {
        if self.inner.links.is_empty() {
            return;
        }
        let r = self.clone();
        crate::hub::get_hub().run_callback(move || r.inner.links.notify(&r));
    }

    /// Calls `f` in the hub each time a value or failure is set (at once, on the hub's next
    /// turn, if one is set now), until [`AsyncResult::unlink`] (gevent's `rawlink`). `f` must not
    /// block ([`AsyncResult::link`] runs it in a greenlet); a panic in it is reported and ignored.
    ///
    /// # Examples
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// let r = gevent::event::AsyncResult::new();
    /// let seen = Rc::new(Cell::new(0));
    /// let s = seen.clone();
    /// r.rawlink(move |r: &gevent::event::AsyncResult<i32>| s.set(r.peek().unwrap()));
    /// r.set(5);
    /// gevent::sleep(std::time::Duration::ZERO);
    /// assert_eq!(seen.get(), 5);
    /// ```
    pub fn rawlink(&self, f: impl Fn(&AsyncResult<T>) + 'static) -> LinkId
    where
        T: 'static,
    {
        let id = self.inner.links.add(Rc::new(f));
        if self.ready() && self.inner.links.len() == 1 {
            self.schedule_links();
        }
        id
    }

    /// As [`AsyncResult::rawlink`], but `f` runs in a new greenlet each time, so it may block
    /// (gevent's `link`).
    pub fn link(&self, f: impl Fn(&AsyncResult<T>) + 'static) -> LinkId
    where
        T: 'static,
    {
        let f = Rc::new(f);
        self.rawlink(move |r| {
            let (f, r) = (f.clone(), r.clone());
            crate::spawn(move || f(&r));
        })
    }

    /// Removes a link; returns whether it was still there (gevent's `unlink`).
    pub fn unlink(&self, id: LinkId) -> bool {
        self.inner.links.remove(id)
    }

    /// How many links there are.
    pub fn link_count(&self) -> usize {
        self.inner.links.len()
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
    fn failure(&self) -> Option<Failure> {
        self.exception()
    }
    fn subscribe(&self, w: &Rc<Waiter>) {
        self.inner.waiters.push(w);
    }
    fn unsubscribe(&self, w: &Rc<Waiter>) {
        self.inner.waiters.remove(w);
    }
}
