//! Errors and the exit payload.

use std::fmt;

/// The payload that asks a greenlet to finish: thrown by [`Greenlet::throw`](crate::Greenlet::throw)
/// and when the last handle to a suspended greenlet is dropped.
///
/// As in Python's greenlet, a greenlet that dies of `GreenletExit` does not raise anything in its
/// parent: the parent's `switch` returns a [`Value`](crate::Value) holding the `GreenletExit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GreenletExit;

impl fmt::Display for GreenletExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GreenletExit")
    }
}

impl std::error::Error for GreenletExit {}

/// Why a greenlet operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `set_parent` would make the parent chain a cycle.
    CyclicParent,
    /// The main greenlet has no parent and cannot be given one.
    MainHasNoParent,
    /// `set_run` on a greenlet that already started (or already has a `run`).
    RunAlreadySet,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::CyclicParent => "cyclic parent chain",
            Error::MainHasNoParent => "the main greenlet cannot have a parent",
            Error::RunAlreadySet => {
                "run cannot be set after the greenlet has started or been given a run"
            }
        })
    }
}

impl std::error::Error for Error {}
