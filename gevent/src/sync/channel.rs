//! [`Channel`]: a multi-producer multi-consumer channel across threads and hubs.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::park::{lock, unlist, wake, Node, OnUnwind, Parker, CLOSED, NOTIFIED, WAITING};

struct Chan<T> {
    buf: VecDeque<T>,
    /// `None`: unbounded.
    cap: Option<usize>,
    /// Senders waiting with their value in their node's slot.
    senders: VecDeque<Arc<Node<T>>>,
    /// Receivers waiting for a value to be put in their node's slot.
    receivers: VecDeque<Arc<Node<T>>>,
    closed: bool,
}

impl<T> Chan<T> {
    fn has_room(&self) -> bool {
        self.cap.is_none_or(|c| self.buf.len() < c)
    }

    /// Hands `v` to the first waiting receiver (returned, to be woken after the lock is released),
    /// or puts it back at the front of the buffer (a value a cancelled receiver had been handed).
    fn give_back(&mut self, v: T) -> Option<Arc<Node<T>>> {
        match self.receivers.pop_front() {
            Some(r) => {
                *r.slot() = Some(v);
                r.set_state(NOTIFIED);
                Some(r)
            }
            None => {
                self.buf.push_front(v);
                None
            }
        }
    }
}

/// A multi-producer multi-consumer channel whose ends can be used from any thread and hub:
/// bounded, unbounded, or a rendezvous (capacity 0: a send waits for a receiver, as
/// [`queue::Channel`](crate::queue::Channel)).
///
/// A cheap-to-clone handle (`Arc` inside); `Send + Sync` when `T: Send`. Senders and receivers wait
/// FIFO; a value goes to the receiver that has waited longest, directly. Every value sent is
/// received exactly once (or is still in the channel). [`Channel::close`] ends it: sends fail,
/// receivers drain what is buffered, then get [`RecvError`].
///
/// # Examples
/// ```
/// let ch = gevent::sync::Channel::bounded(4);
/// let tx = ch.clone();
/// let producer = std::thread::spawn(move || {
///     for i in 0..10 {
///         tx.send(i).unwrap();
///     }
///     tx.close();
/// });
/// let consumer = gevent::spawn(move || ch.iter().sum::<i32>());
/// assert_eq!(consumer.get(), Ok(45));
/// producer.join().unwrap();
/// ```
pub struct Channel<T> {
    chan: Arc<Mutex<Chan<T>>>,
}

impl<T> Clone for Channel<T> {
    fn clone(&self) -> Self {
        Channel {
            chan: self.chan.clone(),
        }
    }
}

impl<T> fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = lock(&self.chan);
        write!(
            f,
            "sync::Channel(len: {}, capacity: {:?}, senders waiting: {}, receivers waiting: {}, closed: {})",
            c.buf.len(),
            c.cap,
            c.senders.len(),
            c.receivers.len(),
            c.closed
        )
    }
}

impl<T> Default for Channel<T> {
    fn default() -> Self {
        Channel::new()
    }
}

/// Waiting with a deadline, or not at all.
#[derive(Clone, Copy)]
enum Mode {
    Try,
    Until(Option<Instant>),
}

enum Fail<T> {
    Full(T),
    Timeout(T),
    Closed(T),
}

impl<T> Channel<T> {
    /// A rendezvous channel (capacity 0): each send waits until a receiver takes the value.
    pub fn new() -> Channel<T> {
        Channel::with_capacity(Some(0))
    }

    /// A channel that buffers up to `cap` values (0: a rendezvous); sends wait while it is full.
    pub fn bounded(cap: usize) -> Channel<T> {
        Channel::with_capacity(Some(cap))
    }

    /// A channel whose sends never wait.
    pub fn unbounded() -> Channel<T> {
        Channel::with_capacity(None)
    }

    fn with_capacity(cap: Option<usize>) -> Channel<T> {
        Channel {
            chan: Arc::new(Mutex::new(Chan {
                buf: VecDeque::new(),
                cap,
                senders: VecDeque::new(),
                receivers: VecDeque::new(),
                closed: false,
            })),
        }
    }

    /// The capacity (`None`: unbounded).
    pub fn capacity(&self) -> Option<usize> {
        lock(&self.chan).cap
    }

    /// Values buffered now (not counting those of waiting senders).
    pub fn len(&self) -> usize {
        lock(&self.chan).buf.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Senders waiting now (channel full, or a rendezvous without a receiver).
    pub fn waiting_senders(&self) -> usize {
        lock(&self.chan).senders.len()
    }

    /// Receivers waiting now (nothing buffered).
    pub fn waiting_receivers(&self) -> usize {
        lock(&self.chan).receivers.len()
    }

    /// Closes it: later sends fail, waiting senders get their values back
    /// ([`SendError`]), waiting and later receivers get what is buffered, then [`RecvError`].
    pub fn close(&self) {
        let mut c = lock(&self.chan);
        c.closed = true;
        let mut woken: Vec<Arc<Node<T>>> = c.receivers.drain(..).collect();
        woken.extend(c.senders.drain(..));
        for n in &woken {
            n.set_state(CLOSED);
        }
        drop(c);
        if !woken.is_empty() {
            super::park::wake_all(woken);
        }
    }

    /// Whether [`Channel::close`] was called.
    pub fn is_closed(&self) -> bool {
        lock(&self.chan).closed
    }

    /// Sends `v`, waiting while the channel is full (for a rendezvous: until a receiver takes it).
    ///
    /// # Errors
    /// [`SendError`] with the value if the channel is (or gets) closed.
    ///
    /// # Cancel safety
    /// A kill or [`Timeout`](crate::Timeout) landing here unwinds out of it: the sender leaves the
    /// queue and the value is dropped, unless a receiver already took it (then it was sent).
    pub fn send(&self, v: T) -> Result<(), SendError<T>> {
        match self.send_mode(v, Mode::Until(None)) {
            Ok(()) => Ok(()),
            Err(Fail::Closed(v) | Fail::Full(v) | Fail::Timeout(v)) => Err(SendError(v)),
        }
    }

    /// Sends `v` if it can without waiting.
    ///
    /// # Errors
    /// [`TrySendError::Full`] (for a rendezvous: no receiver waits) or [`TrySendError::Closed`].
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        match self.send_mode(v, Mode::Try) {
            Ok(()) => Ok(()),
            Err(Fail::Closed(v)) => Err(TrySendError::Closed(v)),
            Err(Fail::Full(v) | Fail::Timeout(v)) => Err(TrySendError::Full(v)),
        }
    }

    /// [`Channel::send`], waiting at most `timeout`.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] or [`SendTimeoutError::Closed`], with the value.
    ///
    /// # Cancel safety
    /// As [`Channel::send`].
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        match self.send_mode(v, Mode::Until(Some(Instant::now() + timeout))) {
            Ok(()) => Ok(()),
            Err(Fail::Closed(v)) => Err(SendTimeoutError::Closed(v)),
            Err(Fail::Full(v) | Fail::Timeout(v)) => Err(SendTimeoutError::Timeout(v)),
        }
    }

    fn send_mode(&self, v: T, mode: Mode) -> Result<(), Fail<T>> {
        let mut c = lock(&self.chan);
        if c.closed {
            return Err(Fail::Closed(v));
        }
        if let Some(r) = c.receivers.pop_front() {
            *r.slot() = Some(v);
            r.set_state(NOTIFIED);
            drop(c);
            wake(&r);
            return Ok(());
        }
        if c.has_room() {
            c.buf.push_back(v);
            return Ok(());
        }
        let deadline = match mode {
            Mode::Try => return Err(Fail::Full(v)),
            Mode::Until(d) => d,
        };
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(Fail::Timeout(v));
        }
        let p = Parker::<T>::new();
        *p.node.slot() = Some(v);
        c.senders.push_back(p.node.clone());
        drop(c);
        let guard = OnUnwind(Some(|| {
            // Cancelled: either still queued (the value is dropped with the node) or already
            // taken (sent) or returned by close (dropped).
            unlist(&mut lock(&self.chan).senders, &p.node);
        }));
        let mut s = p.park(deadline);
        guard.disarm();
        if s == WAITING {
            let mut c = lock(&self.chan);
            if unlist(&mut c.senders, &p.node) {
                let v = p
                    .node
                    .slot()
                    .take()
                    .expect("a waiting sender holds its value");
                return Err(Fail::Timeout(v));
            }
            s = p.node.state();
        }
        if s == NOTIFIED {
            return Ok(());
        }
        let v = p.node.slot().take().expect("close returns the value");
        Err(Fail::Closed(v))
    }

    /// Receives a value, waiting until one is sent.
    ///
    /// # Errors
    /// [`RecvError`] once the channel is closed and drained.
    ///
    /// # Cancel safety
    /// A kill or [`Timeout`](crate::Timeout) landing here unwinds out of it: the receiver leaves
    /// the queue; a value handed to it meanwhile goes to the next receiver (or back to the front of
    /// the buffer), so no value is lost.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_mode(Mode::Until(None)).map_err(|_| RecvError)
    }

    /// Receives a value if one is there (or a sender waits).
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], or [`TryRecvError::Closed`] once closed and drained.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.recv_mode(Mode::Try).map_err(|c| {
            if c {
                TryRecvError::Closed
            } else {
                TryRecvError::Empty
            }
        })
    }

    /// [`Channel::recv`], waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], or [`RecvTimeoutError::Closed`] once closed and drained.
    ///
    /// # Cancel safety
    /// As [`Channel::recv`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_mode(Mode::Until(Some(Instant::now() + timeout)))
            .map_err(|c| {
                if c {
                    RecvTimeoutError::Closed
                } else {
                    RecvTimeoutError::Timeout
                }
            })
    }

    /// Iterates over received values until the channel is closed and drained.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { chan: self }
    }

    /// Err(true): closed; Err(false): empty / timed out.
    fn recv_mode(&self, mode: Mode) -> Result<T, bool> {
        let mut c = lock(&self.chan);
        if let Some(v) = c.buf.pop_front() {
            // Room now: the first waiting sender's value moves into the buffer.
            let mut woken = None;
            if !c.senders.is_empty() && c.has_room() {
                let s = c.senders.pop_front().expect("non-empty");
                let sv = s.slot().take().expect("a waiting sender holds its value");
                c.buf.push_back(sv);
                s.set_state(NOTIFIED);
                woken = Some(s);
            }
            drop(c);
            if let Some(s) = woken {
                wake(&s);
            }
            return Ok(v);
        }
        if let Some(s) = c.senders.pop_front() {
            let v = s.slot().take().expect("a waiting sender holds its value");
            s.set_state(NOTIFIED);
            drop(c);
            wake(&s);
            return Ok(v);
        }
        if c.closed {
            return Err(true);
        }
        let deadline = match mode {
            Mode::Try => return Err(false),
            Mode::Until(d) => d,
        };
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(false);
        }
        let p = Parker::<T>::new();
        c.receivers.push_back(p.node.clone());
        drop(c);
        let guard = OnUnwind(Some(|| {
            let mut c = lock(&self.chan);
            if unlist(&mut c.receivers, &p.node) {
                return;
            }
            // A value handed to us as we were cancelled: pass it on.
            let v = p.node.slot().take();
            if let Some(r) = v.and_then(|v| c.give_back(v)) {
                drop(c);
                wake(&r);
            }
        }));
        let mut s = p.park(deadline);
        guard.disarm();
        if s == WAITING {
            let mut c = lock(&self.chan);
            if unlist(&mut c.receivers, &p.node) {
                return Err(false);
            }
            s = p.node.state();
        }
        if s == NOTIFIED {
            return Ok(p.node.slot().take().expect("a value was handed over"));
        }
        Err(true)
    }
}

/// The iterator of [`Channel::iter`]: blocking receives until the channel is closed and drained.
pub struct Iter<'a, T> {
    chan: &'a Channel<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.chan.recv().ok()
    }
}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sync::Iter")
    }
}

/// [`Channel::send`] on a closed channel; holds the value back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

/// Why [`Channel::try_send`] did not send; holds the value back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// Full (a rendezvous: no receiver waits).
    Full(T),
    /// Closed.
    Closed(T),
}

/// Why [`Channel::send_timeout`] did not send; holds the value back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// Still full at the timeout.
    Timeout(T),
    /// Closed.
    Closed(T),
}

/// [`Channel::recv`] on a closed, drained channel.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct RecvError;

/// Why [`Channel::try_recv`] got nothing.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// Nothing buffered and no sender waiting.
    Empty,
    /// Closed and drained.
    Closed,
}

/// Why [`Channel::recv_timeout`] got nothing.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvTimeoutError {
    /// Nothing arrived in time.
    Timeout,
    /// Closed and drained.
    Closed,
}

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }
}

impl<T> SendTimeoutError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(v) | SendTimeoutError::Closed(v) => v,
        }
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}
impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}
impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed channel")
    }
}
impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("the channel is full"),
            TrySendError::Closed(_) => f.write_str("sending on a closed channel"),
        }
    }
}
impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("timed out sending on a full channel"),
            SendTimeoutError::Closed(_) => f.write_str("sending on a closed channel"),
        }
    }
}
impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on a closed, empty channel")
    }
}
impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("the channel is empty"),
            TryRecvError::Closed => f.write_str("receiving on a closed, empty channel"),
        }
    }
}
impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out receiving on an empty channel"),
            RecvTimeoutError::Closed => f.write_str("receiving on a closed, empty channel"),
        }
    }
}
impl<T> std::error::Error for SendError<T> {}
impl<T> std::error::Error for TrySendError<T> {}
impl<T> std::error::Error for SendTimeoutError<T> {}
impl std::error::Error for RecvError {}
impl std::error::Error for TryRecvError {}
impl std::error::Error for RecvTimeoutError {}
