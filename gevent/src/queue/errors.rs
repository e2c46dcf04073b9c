//! The errors of queue operations, named as crossbeam-channel names its own: one per way to wait
//! ([`PutError`] / [`ShutDownError`] when waiting as long as it takes, `Try*Error` when not waiting,
//! `*TimeoutError` when waiting at most a timeout). Those of puts carry the item back. Each converts
//! into the errors of the shorter waits it implies (`From`), so `?` works across them.
//!
//! gevent's exceptions map onto them: `ShutDown` is [`ShutDownError`] (and the `ShutDown` variants);
//! `Empty` is [`TryGetError::Empty`] (and, for a timed get, [`GetTimeoutError::Timeout`]); `Full` is
//! [`TryPutError::Full`] (and [`PutTimeoutError::Timeout`]). The module re-exports those three
//! names.

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

const SHUT_DOWN: &str = "the queue is shut down";

/// [`Queue::put`](super::Queue::put) failed: the queue was shut down. Carries the item back (as
/// crossbeam's `SendError`).
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct PutError<T>(pub T);

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PutError(..)")
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SHUT_DOWN)
    }
}

impl<T> std::error::Error for PutError<T> {}

/// [`Queue::get`](super::Queue::get) failed: the queue was shut down (and, unless shut down
/// immediately, is empty). gevent's `ShutDown`, which this module also exports under that name.
#[doc(alias = "ShutDown")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutDownError;

impl fmt::Display for ShutDownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SHUT_DOWN)
    }
}

impl std::error::Error for ShutDownError {}

/// [`Queue::try_put`](super::Queue::try_put) failed. Carries the item back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TryPutError<T> {
    /// The queue is full (for a [`Channel`](super::Channel): no getter is waiting). gevent's
    /// `Full`, which this module also exports under that name.
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
            TryPutError::ShutDown(_) => f.write_str(SHUT_DOWN),
        }
    }
}

impl<T> std::error::Error for TryPutError<T> {}

/// A put that waits as long as it takes fails only on shutdown.
impl<T> From<PutError<T>> for TryPutError<T> {
    fn from(e: PutError<T>) -> Self {
        TryPutError::ShutDown(e.0)
    }
}

/// [`Queue::put_timeout`](super::Queue::put_timeout) failed. Carries the item back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum PutTimeoutError<T> {
    /// The queue stayed full until the timeout (gevent raises `Full`).
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
            PutTimeoutError::ShutDown(_) => f.write_str(SHUT_DOWN),
        }
    }
}

impl<T> std::error::Error for PutTimeoutError<T> {}

/// A put that waits as long as it takes fails only on shutdown.
impl<T> From<PutError<T>> for PutTimeoutError<T> {
    fn from(e: PutError<T>) -> Self {
        PutTimeoutError::ShutDown(e.0)
    }
}

/// A put that does not wait is one with a zero timeout: `Full` becomes `Timeout`.
impl<T> From<TryPutError<T>> for PutTimeoutError<T> {
    fn from(e: TryPutError<T>) -> Self {
        match e {
            TryPutError::Full(t) => PutTimeoutError::Timeout(t),
            TryPutError::ShutDown(t) => PutTimeoutError::ShutDown(t),
        }
    }
}

/// [`Queue::try_get`](super::Queue::try_get) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryGetError {
    /// Nothing to take. gevent's `Empty`, which this module also exports under that name.
    Empty,
    /// The queue was shut down.
    ShutDown,
}

impl TryGetError {
    /// Whether there was nothing to take.
    pub fn is_empty(&self) -> bool {
        matches!(self, TryGetError::Empty)
    }
    /// Whether the queue was shut down.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, TryGetError::ShutDown)
    }
}

impl fmt::Display for TryGetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryGetError::Empty => f.write_str("the queue is empty"),
            TryGetError::ShutDown => f.write_str(SHUT_DOWN),
        }
    }
}

impl std::error::Error for TryGetError {}

/// A get that waits as long as it takes fails only on shutdown.
impl From<ShutDownError> for TryGetError {
    fn from(_: ShutDownError) -> Self {
        TryGetError::ShutDown
    }
}

/// [`Queue::get_timeout`](super::Queue::get_timeout) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetTimeoutError {
    /// Nothing arrived before the timeout (gevent raises `Empty`).
    Timeout,
    /// The queue was shut down.
    ShutDown,
}

impl GetTimeoutError {
    /// Whether it timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, GetTimeoutError::Timeout)
    }
    /// Whether the queue was shut down.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, GetTimeoutError::ShutDown)
    }
}

impl fmt::Display for GetTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetTimeoutError::Timeout => f.write_str("timed out waiting for an item"),
            GetTimeoutError::ShutDown => f.write_str(SHUT_DOWN),
        }
    }
}

impl std::error::Error for GetTimeoutError {}

/// A get that waits as long as it takes fails only on shutdown.
impl From<ShutDownError> for GetTimeoutError {
    fn from(_: ShutDownError) -> Self {
        GetTimeoutError::ShutDown
    }
}

/// A get that does not wait is one with a zero timeout: `Empty` becomes `Timeout`.
impl From<TryGetError> for GetTimeoutError {
    fn from(e: TryGetError) -> Self {
        match e {
            TryGetError::Empty => GetTimeoutError::Timeout,
            TryGetError::ShutDown => GetTimeoutError::ShutDown,
        }
    }
}

/// [`Queue::task_done`](super::Queue::task_done) called more times than items were put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called too many times")
    }
}

impl std::error::Error for TaskDoneError {}
