//! The queue: its shared state (waiting getters and putters, items handed over but not yet taken)
//! and the handle greenlets put and get through.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::errors::{
    GetTimeoutError, PutError, PutTimeoutError, ShutDownError, TaskDoneError, TryGetError,
    TryPutError,
};
use super::store::Store;
use crate::hub::{LoopExit, Waiter};
use crate::wait::wait_with_deadline;

/// How long an operation may wait.
#[derive(Clone, Copy)]
enum Block {
    No,
    Until(Option<Instant>),
}

impl Block {
    /// The deadline to wait until (`None`: forever), or why not to wait at all: `Full` when
    /// waiting is not allowed (the caller's "would block"), `Timeout` when the deadline has passed.
    #[inline]
    fn deadline(self) -> Result<Option<Instant>, Fail> {
        match self {
            Block::No => Err(Fail::Full),
            Block::Until(Some(d)) if d <= Instant::now() => Err(Fail::Timeout),
            Block::Until(d) => Ok(d),
        }
    }
}

/// Why an operation did not complete.
enum Fail {
    Full,
    Timeout,
    ShutDown,
    LoopExit,
}

struct Core<T, S> {
    items: S,
    /// `usize::MAX` when unbounded; 0 for a channel.
    maxsize: usize,
    /// Getters waiting for an item, oldest first. # Invariant: non-empty only while no item is
    /// available (`items` empty and no putter waiting).
    getters: VecDeque<Rc<Waiter>>,
    /// Items handed to woken getters that have not run yet.
    delivered: Vec<(Rc<Waiter>, T)>,
    /// Putters waiting with their item, oldest first. # Invariant: non-empty only while full.
    putters: VecDeque<(Rc<Waiter>, T)>,
    /// Greenlets in `peek`, woken whenever an item is stored.
    peekers: Vec<Rc<Waiter>>,
    /// Items put and not yet marked done.
    unfinished: usize,
    /// Greenlets in `join`.
    joiners: Vec<Rc<Waiter>>,
    shutdown: bool,
}

impl<T, S: Store<T>> Core<T, S> {
    /// Whether `items` holds `maxsize` items (a getter may still be waiting: see `Queue::is_full`).
    fn at_capacity(&self) -> bool {
        self.items.len() >= self.maxsize
    }

    /// Gives `item` to the oldest getter, or stores it.
    fn deliver(&mut self, item: T) {
        if let Some(w) = self.getters.pop_front() {
            w.wake();
            self.delivered.push((w, item));
        } else {
            self.items.push(item);
            for w in self.peekers.drain(..) {
                w.wake();
            }
        }
    }

    /// Gives back an item handed to a getter that left without it: to the oldest getter, or to the
    /// front of the queue (beyond `maxsize` if need be: it was already counted in).
    fn give_back(&mut self, item: T) {
        if let Some(w) = self.getters.pop_front() {
            w.wake();
            self.delivered.push((w, item));
        } else {
            self.items.push_back_taken(item);
            for w in self.peekers.drain(..) {
                w.wake();
            }
        }
    }

    /// Takes the next available item (stored, or from a waiting putter) and refills from putters.
    fn take(&mut self) -> Option<T> {
        if let Some(item) = self.items.pop() {
            while !self.at_capacity() {
                let Some((w, it)) = self.putters.pop_front() else {
                    break;
                };
                self.items.push(it);
                self.unfinished += 1;
                w.wake();
            }
            return Some(item);
        }
        let (w, item) = self.putters.pop_front()?;
        self.unfinished += 1;
        w.wake();
        Some(item)
    }

    fn take_delivered(&mut self, w: &Rc<Waiter>) -> Option<T> {
        let i = self.delivered.iter().position(|(x, _)| Rc::ptr_eq(x, w))?;
        Some(self.delivered.swap_remove(i).1)
    }

    fn unlist_getter(&mut self, w: &Rc<Waiter>) {
        if let Some(i) = self.getters.iter().position(|x| Rc::ptr_eq(x, w)) {
            self.getters.remove(i);
        }
    }

    fn unlist_putter(&mut self, w: &Rc<Waiter>) -> Option<T> {
        let i = self.putters.iter().position(|(x, _)| Rc::ptr_eq(x, w))?;
        self.putters.remove(i).map(|(_, t)| t)
    }

    fn finish_tasks(&mut self, n: usize) {
        self.unfinished = self.unfinished.saturating_sub(n);
        if self.unfinished == 0 {
            for w in self.joiners.drain(..) {
                w.wake();
            }
        }
    }
}

/// A queue of `T` between greenlets (gevent's `Queue`), first in first out unless the store `S`
/// orders it otherwise: [`LifoQueue`] and [`PriorityQueue`] are this type with their store.
///
/// [`Queue::new`] and [`Queue::with_maxsize`] build the default FIFO queue (as `HashMap::new` builds
/// a map with the default hasher); a queue with another store is built from its type:
/// `LifoQueue::default()`, `PriorityQueue::with_store(Some(8))`.
///
/// Non-blocking calls are named `try_*` and timed ones `*_timeout`; gevent's names (`put_nowait`,
/// `qsize`, `empty`, ...) are search aliases of these.
///
/// # Examples
/// ```
/// use gevent::queue::Queue;
/// let q = Queue::new();
/// let q2 = q.clone();
/// let consumer = gevent::spawn(move || (0..3).map(|_| q2.get().unwrap()).sum::<i32>());
/// for i in 1..=3 {
///     q.put(i).unwrap();
/// }
/// assert_eq!(consumer.get(), Ok(6));
/// ```
pub struct Queue<T, S: Store<T> = VecDeque<T>> {
    core: Rc<RefCell<Core<T, S>>>,
}

/// gevent's `SimpleQueue`: the same type as [`Queue`] (the task counter costs nothing when unused).
pub type SimpleQueue<T> = Queue<T>;

/// A queue whose newest item comes out first (gevent's `LifoQueue`): [`Queue`] with a `Vec`.
///
/// Built with `LifoQueue::default()` or `LifoQueue::with_store(maxsize)`.
pub type LifoQueue<T> = Queue<T, Vec<T>>;

/// A queue whose lowest item comes out first (gevent's `PriorityQueue`; use `(priority, item)`
/// tuples to order by priority): [`Queue`] with a binary heap.
///
/// Built with `PriorityQueue::default()` or `PriorityQueue::with_store(maxsize)`.
pub type PriorityQueue<T> = Queue<T, BinaryHeap<Reverse<T>>>;

impl<T, S: Store<T>> Clone for Queue<T, S> {
    fn clone(&self) -> Self {
        Queue {
            core: self.core.clone(),
        }
    }
}

/// An unbounded queue.
impl<T, S: Store<T>> Default for Queue<T, S> {
    fn default() -> Self {
        Queue::with_store(None)
    }
}

impl<T> Queue<T> {
    /// An unbounded FIFO queue.
    pub fn new() -> Self {
        Queue::with_store(None)
    }

    /// A FIFO queue holding at most `maxsize` items (`put` waits while full); unbounded with
    /// `None`. `Some(0)` holds nothing: every `put` waits for a getter, as a
    /// [`Channel`](super::Channel).
    pub fn with_maxsize(maxsize: Option<usize>) -> Self {
        Queue::with_store(maxsize)
    }
}

impl<T, S: Store<T>> fmt::Debug for Queue<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.core.borrow();
        let mut d = f.debug_struct("Queue");
        d.field("len", &c.items.len());
        if c.maxsize != usize::MAX {
            d.field("maxsize", &c.maxsize);
        }
        d.field("getters", &c.getters.len())
            .field("putters", &c.putters.len())
            .field("shutdown", &c.shutdown)
            .finish()
    }
}

impl<T, S: Store<T>> Queue<T, S> {
    /// A queue with the store `S`, named by the type (`LifoQueue::with_store(Some(8))`), holding
    /// at most `maxsize` items (`None`: unbounded; `Some(0)`: every `put` waits for a getter).
    pub fn with_store(maxsize: Option<usize>) -> Self {
        Queue {
            core: Rc::new(RefCell::new(Core {
                items: S::default(),
                maxsize: maxsize.unwrap_or(usize::MAX),
                getters: VecDeque::new(),
                delivered: Vec::new(),
                putters: VecDeque::new(),
                peekers: Vec::new(),
                unfinished: 0,
                joiners: Vec::new(),
                shutdown: false,
            })),
        }
    }

    /// The bound given at creation (`None`: unbounded).
    pub fn maxsize(&self) -> Option<usize> {
        let m = self.core.borrow().maxsize;
        (m != usize::MAX).then_some(m)
    }

    /// How many items it holds, not counting items waiting in blocked putters (gevent's `qsize()`).
    #[doc(alias = "qsize")]
    pub fn len(&self) -> usize {
        self.core.borrow().items.len()
    }

    /// Whether it holds no item (gevent's `empty()`).
    #[doc(alias = "empty")]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a `put` would have to wait (for a channel: no getter is waiting; gevent's `full()`).
    #[doc(alias = "full")]
    pub fn is_full(&self) -> bool {
        let c = self.core.borrow();
        c.at_capacity() && c.getters.is_empty()
    }

    /// How many greenlets wait in `get` (gevent's `len(q.getters)`).
    pub fn getter_count(&self) -> usize {
        self.core.borrow().getters.len()
    }

    /// How many greenlets wait in `put` (gevent's `len(q.putters)`).
    pub fn putter_count(&self) -> usize {
        self.core.borrow().putters.len()
    }

    fn put_inner(&self, item: T, block: Block) -> Result<(), (Fail, T)> {
        let mut c = self.core.borrow_mut();
        if c.shutdown {
            return Err((Fail::ShutDown, item));
        }
        if !c.getters.is_empty() || !c.at_capacity() {
            c.unfinished += 1;
            c.deliver(item);
            return Ok(());
        }
        let deadline = match block.deadline() {
            Ok(d) => d,
            Err(f) => return Err((f, item)),
        };
        let w = Waiter::new();
        c.putters.push_back((w.clone(), item));
        drop(c);
        // On an unwind (kill, Timeout), unlist: the item goes down with the putter.
        struct Leave<'a, T, S: Store<T>>(&'a Queue<T, S>, &'a Rc<Waiter>);
        impl<T, S: Store<T>> Drop for Leave<'_, T, S> {
            fn drop(&mut self) {
                self.0.core.borrow_mut().unlist_putter(self.1);
            }
        }
        let leave = Leave(self, &w);
        let r = wait_with_deadline(&w, deadline);
        let left = self.core.borrow_mut().unlist_putter(&w);
        // Unlisted already: the guard is for unwinds only.
        std::mem::forget(leave);
        match (left, r) {
            // A getter took it (and counted it): woken putters have nothing left to do.
            (None, _) => Ok(()),
            (Some(item), Err(LoopExit)) => Err((Fail::LoopExit, item)),
            (Some(item), Ok(())) if self.core.borrow().shutdown => Err((Fail::ShutDown, item)),
            (Some(item), Ok(())) => Err((Fail::Timeout, item)),
        }
    }

    /// Puts `item`, waiting while the queue is full.
    ///
    /// # Errors
    /// [`PutError`] (with the item) once [`Queue::shutdown`] was called.
    ///
    /// # Panics
    /// With [`LoopExit`]'s message when nothing can ever make room.
    ///
    /// # Cancel safety
    /// A kill or [`Timeout`](crate::Timeout) landing here unwinds out of it; the putter is unlisted
    /// and its item dropped with it (it was not put). Once woken, the item is in.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        match self.put_inner(item, Block::Until(None)) {
            Ok(()) => Ok(()),
            Err((Fail::LoopExit, _)) => panic!("{LoopExit}"),
            Err((_, item)) => Err(PutError(item)),
        }
    }

    /// Puts `item`, waiting at most `timeout` while the queue is full.
    ///
    /// # Errors
    /// [`PutTimeoutError::Timeout`] or [`PutTimeoutError::ShutDown`], with the item.
    ///
    /// # Cancel safety
    /// As [`Queue::put`].
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        match self.put_inner(item, Block::Until(Some(Instant::now() + timeout))) {
            Ok(()) => Ok(()),
            Err((Fail::ShutDown, item)) => Err(PutTimeoutError::ShutDown(item)),
            Err((_, item)) => Err(PutTimeoutError::Timeout(item)),
        }
    }

    /// Puts `item` if that needs no waiting (gevent's `put_nowait`). Works from hub callbacks.
    ///
    /// # Errors
    /// [`TryPutError::Full`] or [`TryPutError::ShutDown`], with the item.
    #[doc(alias = "put_nowait")]
    pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        match self.put_inner(item, Block::No) {
            Ok(()) => Ok(()),
            Err((Fail::ShutDown, item)) => Err(TryPutError::ShutDown(item)),
            Err((_, item)) => Err(TryPutError::Full(item)),
        }
    }

    fn get_inner(&self, block: Block) -> Result<T, Fail> {
        loop {
            let mut c = self.core.borrow_mut();
            if let Some(item) = c.take() {
                return Ok(item);
            }
            if c.shutdown {
                return Err(Fail::ShutDown);
            }
            let deadline = block.deadline()?;
            let w = Waiter::new();
            c.getters.push_back(w.clone());
            drop(c);
            // On every way out: unlist, and give back an item handed to us meanwhile.
            struct Leave<'a, T, S: Store<T>>(&'a Queue<T, S>, &'a Rc<Waiter>);
            impl<T, S: Store<T>> Drop for Leave<'_, T, S> {
                fn drop(&mut self) {
                    let mut c = self.0.core.borrow_mut();
                    c.unlist_getter(self.1);
                    if let Some(item) = c.take_delivered(self.1) {
                        c.give_back(item);
                    }
                }
            }
            let leave = Leave(self, &w);
            let r = wait_with_deadline(&w, deadline);
            let mine = {
                let mut c = self.core.borrow_mut();
                let mine = c.take_delivered(&w);
                if mine.is_none() {
                    // Handed an item means taken off the list first (`deliver`, `give_back`).
                    c.unlist_getter(&w);
                }
                mine
            };
            // What the guard does on an unwind, done: unlisted, and the item handed over is ours.
            std::mem::forget(leave);
            if let Some(item) = mine {
                return Ok(item);
            }
            r.map_err(|_| Fail::LoopExit)?;
            // Woken without an item: the deadline, or a shutdown; look again.
        }
    }

    /// Takes the next item, waiting while there is none.
    ///
    /// # Errors
    /// [`ShutDownError`] once the queue is shut down and empty.
    ///
    /// # Panics
    /// With [`LoopExit`]'s message when nothing can ever put an item (e.g. the main greenlet
    /// getting from an empty queue no one else holds).
    ///
    /// # Cancel safety
    /// A kill or [`Timeout`](crate::Timeout) landing here unwinds out of it and leaves no trace; an
    /// item handed to this getter just before is passed on to the next getter or put back at the
    /// front of the queue, never lost.
    pub fn get(&self) -> Result<T, ShutDownError> {
        match self.get_inner(Block::Until(None)) {
            Ok(t) => Ok(t),
            Err(Fail::LoopExit) => panic!("{LoopExit}"),
            Err(_) => Err(ShutDownError),
        }
    }

    /// Takes the next item, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`GetTimeoutError::Timeout`] or [`GetTimeoutError::ShutDown`].
    ///
    /// # Cancel safety
    /// As [`Queue::get`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        match self.get_inner(Block::Until(Some(Instant::now() + timeout))) {
            Ok(t) => Ok(t),
            Err(Fail::ShutDown) => Err(GetTimeoutError::ShutDown),
            Err(_) => Err(GetTimeoutError::Timeout),
        }
    }

    /// Takes the next item if there is one, from a waiting putter too (gevent's `get_nowait`).
    /// Works from hub callbacks.
    ///
    /// # Errors
    /// [`TryGetError::Empty`] or [`TryGetError::ShutDown`].
    #[doc(alias = "get_nowait")]
    pub fn try_get(&self) -> Result<T, TryGetError> {
        match self.get_inner(Block::No) {
            Ok(t) => Ok(t),
            Err(Fail::ShutDown) => Err(TryGetError::ShutDown),
            Err(_) => Err(TryGetError::Empty),
        }
    }

    fn peek_inner(&self, block: Block) -> Result<T, Fail>
    where
        T: Clone,
    {
        loop {
            let mut c = self.core.borrow_mut();
            if let Some(item) = c.items.peek() {
                return Ok(item.clone());
            }
            if let Some((_, item)) = c.putters.front() {
                return Ok(item.clone());
            }
            if c.shutdown {
                return Err(Fail::ShutDown);
            }
            let deadline = block.deadline()?;
            let w = Waiter::new();
            c.peekers.push(w.clone());
            drop(c);
            struct Leave<'a, T, S: Store<T>>(&'a Queue<T, S>, &'a Rc<Waiter>);
            impl<T, S: Store<T>> Drop for Leave<'_, T, S> {
                fn drop(&mut self) {
                    self.0
                        .core
                        .borrow_mut()
                        .peekers
                        .retain(|x| !Rc::ptr_eq(x, self.1));
                }
            }
            let _leave = Leave(self, &w);
            wait_with_deadline(&w, deadline).map_err(|_| Fail::LoopExit)?;
        }
    }

    /// A copy of the next item, waiting while there is none; the item stays in.
    ///
    /// # Errors
    /// [`ShutDownError`] once the queue is shut down and empty.
    ///
    /// # Panics
    /// With [`LoopExit`]'s message when nothing can ever put an item.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it and leaves no trace.
    pub fn peek(&self) -> Result<T, ShutDownError>
    where
        T: Clone,
    {
        match self.peek_inner(Block::Until(None)) {
            Ok(t) => Ok(t),
            Err(Fail::LoopExit) => panic!("{LoopExit}"),
            Err(_) => Err(ShutDownError),
        }
    }

    /// As [`Queue::peek`], waiting at most `timeout`.
    ///
    /// # Errors
    /// [`GetTimeoutError::Timeout`] or [`GetTimeoutError::ShutDown`].
    ///
    /// # Cancel safety
    /// As [`Queue::peek`].
    pub fn peek_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError>
    where
        T: Clone,
    {
        match self.peek_inner(Block::Until(Some(Instant::now() + timeout))) {
            Ok(t) => Ok(t),
            Err(Fail::ShutDown) => Err(GetTimeoutError::ShutDown),
            Err(_) => Err(GetTimeoutError::Timeout),
        }
    }

    /// A copy of the next item without waiting (gevent's `peek_nowait`).
    ///
    /// # Errors
    /// [`TryGetError::Empty`] or [`TryGetError::ShutDown`].
    #[doc(alias = "peek_nowait")]
    pub fn try_peek(&self) -> Result<T, TryGetError>
    where
        T: Clone,
    {
        match self.peek_inner(Block::No) {
            Ok(t) => Ok(t),
            Err(Fail::ShutDown) => Err(TryGetError::ShutDown),
            Err(_) => Err(TryGetError::Empty),
        }
    }

    /// Items put and not yet marked done with [`Queue::task_done`] (gevent's `unfinished_tasks`).
    pub fn unfinished_tasks(&self) -> usize {
        self.core.borrow().unfinished
    }

    /// Marks one item taken with `get` as processed; the last one wakes [`Queue::join`].
    ///
    /// # Errors
    /// [`TaskDoneError`] if more items were marked done than were put.
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut c = self.core.borrow_mut();
        if c.unfinished == 0 {
            return Err(TaskDoneError);
        }
        c.finish_tasks(1);
        Ok(())
    }

    /// Waits until every item put has been marked done.
    ///
    /// # Panics
    /// With [`LoopExit`]'s message when that can never happen.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it and leaves no trace.
    pub fn join(&self) {
        if let Err(e) = self.join_deadline(None) {
            panic!("{e}");
        }
    }

    /// As [`Queue::join`], at most `timeout`; returns whether every item was marked done.
    ///
    /// # Cancel safety
    /// As [`Queue::join`].
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        let _ = self.join_deadline(Some(Instant::now() + timeout));
        self.unfinished_tasks() == 0
    }

    fn join_deadline(&self, deadline: Option<Instant>) -> Result<(), LoopExit> {
        while self.unfinished_tasks() > 0 {
            if deadline.is_some_and(|d| d <= Instant::now()) {
                return Ok(());
            }
            let w = Waiter::new();
            self.core.borrow_mut().joiners.push(w.clone());
            struct Leave<'a, T, S: Store<T>>(&'a Queue<T, S>, &'a Rc<Waiter>);
            impl<T, S: Store<T>> Drop for Leave<'_, T, S> {
                fn drop(&mut self) {
                    self.0
                        .core
                        .borrow_mut()
                        .joiners
                        .retain(|x| !Rc::ptr_eq(x, self.1));
                }
            }
            let _leave = Leave(self, &w);
            wait_with_deadline(&w, deadline)?;
        }
        Ok(())
    }

    /// Shuts the queue down (Python 3.13's `shutdown()`): later puts fail with the item back;
    /// gets go on until the queue is empty, then fail. Waiting putters and (if empty) getters are
    /// woken with the error.
    pub fn shutdown(&self) {
        let mut c = self.core.borrow_mut();
        c.shutdown = true;
        for w in c.getters.drain(..) {
            w.wake();
        }
        for (w, _) in &c.putters {
            w.wake();
        }
        for w in c.peekers.drain(..) {
            w.wake();
        }
    }

    /// Shuts the queue down and empties it at once (`shutdown(immediate=True)`): gets fail from now
    /// on, the removed items count as done (waking `join`) and are returned, so nothing is lost.
    pub fn shutdown_immediate(&self) -> Vec<T> {
        self.shutdown();
        let mut c = self.core.borrow_mut();
        let mut out = Vec::with_capacity(c.items.len());
        while let Some(t) = c.items.pop() {
            out.push(t);
        }
        let n = out.len();
        c.finish_tasks(n);
        out
    }

    /// Whether [`Queue::shutdown`] was called.
    pub fn is_shutdown(&self) -> bool {
        self.core.borrow().shutdown
    }

    /// An iterator that takes items until the queue is shut down and empty (gevent's iteration).
    ///
    /// # Panics
    /// As [`Queue::get`], from `next`.
    pub fn iter(&self) -> Iter<'_, T, S> {
        Iter { q: self }
    }
}

/// Takes items from a queue until it is shut down and empty: see [`Queue::iter`].
pub struct Iter<'a, T, S: Store<T> = VecDeque<T>> {
    q: &'a Queue<T, S>,
}

impl<T, S: Store<T>> fmt::Debug for Iter<'_, T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Iter").field(&self.q).finish()
    }
}

impl<T, S: Store<T>> Iterator for Iter<'_, T, S> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.q.get().ok()
    }
}
