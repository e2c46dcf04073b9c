//! The rendezvous channel: a queue that holds nothing.

use std::fmt;
use std::time::Duration;

use super::core::{Iter, Queue};
use super::errors::{
    GetTimeoutError, PutError, PutTimeoutError, ShutDownError, TryGetError, TryPutError,
};

/// A rendezvous between greenlets (gevent's `Channel`): it holds nothing, so `put` waits until a
/// getter takes the item.
///
/// Unlike gevent, a `put` that finds a getter already waiting hands the item over and returns at
/// once (the getter runs on the hub's next turn), as a Go unbuffered channel does: a ping-pong
/// round costs two switches per hand-off.
///
/// # Examples
/// ```
/// let ch = gevent::queue::Channel::new();
/// let ch2 = ch.clone();
/// let g = gevent::spawn(move || ch2.get().unwrap() + 1);
/// ch.put(41).unwrap(); // waits until `g` takes it
/// assert_eq!(g.get(), Ok(42));
/// ```
pub struct Channel<T> {
    q: Queue<T>,
}

impl<T> Clone for Channel<T> {
    fn clone(&self) -> Self {
        Channel { q: self.q.clone() }
    }
}

impl<T> Default for Channel<T> {
    fn default() -> Self {
        Channel::new()
    }
}

impl<T> fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Channel").field(&self.q).finish()
    }
}

impl<T> Channel<T> {
    /// A new channel.
    pub fn new() -> Channel<T> {
        Channel {
            q: Queue::with_maxsize(Some(0)),
        }
    }

    /// Hands `item` to a getter, waiting for one.
    ///
    /// # Errors
    /// [`PutError`] (with the item) once [`Channel::shutdown`] was called.
    ///
    /// # Panics
    /// With [`LoopExit`](crate::LoopExit)'s message when no getter can ever come.
    ///
    /// # Cancel safety
    /// As [`Queue::put`]: a killed putter's item was not delivered and goes down with it.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.q.put(item)
    }

    /// As [`Channel::put`], waiting at most `timeout`.
    ///
    /// # Errors
    /// [`PutTimeoutError`] with the item.
    ///
    /// # Cancel safety
    /// As [`Channel::put`].
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        self.q.put_timeout(item, timeout)
    }

    /// Hands `item` to a getter that is already waiting (gevent's `put_nowait`).
    ///
    /// # Errors
    /// [`TryPutError::Full`] (with the item) if none waits.
    #[doc(alias = "put_nowait")]
    pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        self.q.try_put(item)
    }

    /// Takes an item from a putter, waiting for one.
    ///
    /// # Errors
    /// [`ShutDownError`] after [`Channel::shutdown`].
    ///
    /// # Panics
    /// With [`LoopExit`](crate::LoopExit)'s message when no putter can ever come.
    ///
    /// # Cancel safety
    /// As [`Queue::get`]: an item handed to a getter that is then killed is passed on, not lost.
    pub fn get(&self) -> Result<T, ShutDownError> {
        self.q.get()
    }

    /// As [`Channel::get`], waiting at most `timeout`.
    ///
    /// # Errors
    /// [`GetTimeoutError`].
    ///
    /// # Cancel safety
    /// As [`Channel::get`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.q.get_timeout(timeout)
    }

    /// Takes an item from a putter that is already waiting (gevent's `get_nowait`). Works from hub
    /// callbacks.
    ///
    /// # Errors
    /// [`TryGetError::Empty`] if none waits.
    #[doc(alias = "get_nowait")]
    pub fn try_get(&self) -> Result<T, TryGetError> {
        self.q.try_get()
    }

    /// Always true, except for an item given back by a killed getter (see the module docs;
    /// gevent's `empty()`).
    #[doc(alias = "empty")]
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Whether a `put` would wait: no getter is waiting (gevent's `full()`).
    #[doc(alias = "full")]
    pub fn is_full(&self) -> bool {
        self.q.is_full()
    }

    /// How many greenlets wait in `get`.
    pub fn getter_count(&self) -> usize {
        self.q.getter_count()
    }

    /// How many greenlets wait in `put`.
    pub fn putter_count(&self) -> usize {
        self.q.putter_count()
    }

    /// Shuts it down: waiting and later puts fail with their item, gets fail once no item is left.
    pub fn shutdown(&self) {
        self.q.shutdown();
    }

    /// Takes items until the channel is shut down.
    ///
    /// # Panics
    /// As [`Channel::get`], from `next`.
    pub fn iter(&self) -> Iter<'_, T> {
        self.q.iter()
    }
}
