//! The errors of queue operations; those of `put`s carry the item back.

use std::fmt;

macro_rules! opaque_debug {
    ($t:ident, $($v:ident),*) => {
        impl<T> fmt::Debug for $t<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($t::$v(_) => f.write_str(concat!(stringify!($v), "(..)")),)*
                }
            }
        }
    };
}

/// [`Queue::put`](super::Queue::put) failed: the queue was shut down. Carries the item back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct ShutDownError<T>(pub T);

impl<T> ShutDownError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for ShutDownError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShutDownError(..)")
    }
}

impl<T> fmt::Display for ShutDownError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is shut down")
    }
}

impl<T> std::error::Error for ShutDownError<T> {}

/// [`Queue::get`](super::Queue::get) failed: the queue was shut down (and, unless shut down immediately, is empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutDown;

impl fmt::Display for ShutDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is shut down")
    }
}

impl std::error::Error for ShutDown {}

/// [`Queue::put_nowait`](super::Queue::put_nowait) failed. Carries the item back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TryPutError<T> {
    /// The queue is full (for a [`Channel`](super::Channel): no getter is waiting).
    Full(T),
    /// The queue was shut down.
    ShutDown(T),
}

opaque_debug!(TryPutError, Full, ShutDown);

impl<T> TryPutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            TryPutError::Full(t) | TryPutError::ShutDown(t) => t,
        }
    }
    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TryPutError::Full(_))
    }
    /// Whether the queue was shut down.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, TryPutError::ShutDown(_))
    }
}

impl<T> fmt::Display for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("the queue is full"),
            TryPutError::ShutDown(_) => f.write_str("the queue is shut down"),
        }
    }
}

impl<T> std::error::Error for TryPutError<T> {}

/// [`Queue::put_timeout`](super::Queue::put_timeout) failed. Carries the item back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum PutTimeoutError<T> {
    /// The queue stayed full until the timeout.
    Timeout(T),
    /// The queue was shut down.
    ShutDown(T),
}

opaque_debug!(PutTimeoutError, Timeout, ShutDown);

impl<T> PutTimeoutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutTimeoutError::Timeout(t) | PutTimeoutError::ShutDown(t) => t,
        }
    }
    /// Whether it timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, PutTimeoutError::Timeout(_))
    }
    /// Whether the queue was shut down.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, PutTimeoutError::ShutDown(_))
    }
}

impl<T> fmt::Display for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutTimeoutError::Timeout(_) => f.write_str("timed out waiting for room in the queue"),
            PutTimeoutError::ShutDown(_) => f.write_str("the queue is shut down"),
        }
    }
}

impl<T> std::error::Error for PutTimeoutError<T> {}

/// [`Queue::get_nowait`](super::Queue::get_nowait) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryGetError {
    /// Nothing to take.
    Empty,
    /// The queue was shut down.
    ShutDown,
}

impl fmt::Display for TryGetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryGetError::Empty => f.write_str("the queue is empty"),
            TryGetError::ShutDown => f.write_str("the queue is shut down"),
        }
    }
}

impl std::error::Error for TryGetError {}

/// [`Queue::get_timeout`](super::Queue::get_timeout) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetTimeoutError {
    /// Nothing arrived before the timeout (gevent raises `Empty`).
    Timeout,
    /// The queue was shut down.
    ShutDown,
}

impl fmt::Display for GetTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetTimeoutError::Timeout => f.write_str("timed out waiting for an item"),
            GetTimeoutError::ShutDown => f.write_str("the queue is shut down"),
        }
    }
}

impl std::error::Error for GetTimeoutError {}

/// [`Queue::task_done`](super::Queue::task_done) called more times than items were put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called too many times")
    }
}

impl std::error::Error for TaskDoneError {}
