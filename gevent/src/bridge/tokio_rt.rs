//! The `tokio` feature: one shared background tokio runtime whose context [`block_on`](super::block_on)
//! enters around each poll (see the costs in the [bridge's docs](super)).
//!
//! # Ground rules
//! - The runtime is a `current_thread` one with its I/O and time drivers, made on first use and
//!   driven for the rest of the process by one thread, `gevent-tokio`, parked in its `block_on`.
//!   Futures polled on a hub's thread register with those drivers; the drivers wake them from that
//!   thread, so the wakes reach the hubs through their remote channels.
//! - Entering is counted per thread, not nested per poll: the first poll on a thread enters the
//!   handle and the last one to finish leaves it. Greenlets switch in the middle of polls (a future
//!   may make a blocking gevent call), so their polls end in any order, and tokio's own guards
//!   must be dropped in the order they were made; one shared guard per thread keeps that order.

use std::cell::RefCell;
use std::sync::OnceLock;

static RUNTIME: OnceLock<tokio::runtime::Handle> = OnceLock::new();

thread_local! {
    /// How many polls (and [`tokio_context`] calls) on this thread are inside the context, and the
    /// one guard they share.
    static ENTERED: RefCell<(usize, Option<tokio::runtime::EnterGuard<'static>>)> =
        const { RefCell::new((0, None)) };
}

fn runtime() -> &'static tokio::runtime::Handle {
    RUNTIME.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("gevent-tokio")
            .build()
            .unwrap_or_else(|e| panic!("gevent: cannot build the shared tokio runtime: {e}"));
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("gevent-tokio".into())
            .spawn(move || rt.block_on(std::future::pending::<()>()))
            .unwrap_or_else(|e| panic!("gevent: cannot start the tokio runtime's thread: {e}"));
        handle
    })
}

/// The handle of the shared background tokio runtime (started on first use): for
/// `tokio::runtime::Handle::spawn` and friends from outside a [`block_on`](super::block_on).
pub fn tokio_handle() -> tokio::runtime::Handle {
    runtime().clone()
}

/// Runs `f` inside the shared tokio runtime's context (as [`block_on`](super::block_on) polls do),
/// for creating tokio objects outside a future: `tokio_context(|| tokio::time::sleep(d))`.
pub fn tokio_context<R>(f: impl FnOnce() -> R) -> R {
    let _ctx = enter();
    f()
}

/// Inside the context while it lives (see the ground rules).
pub(crate) struct Entered(());

/// Enters the shared runtime's context on this thread (once for all overlapping callers).
pub(crate) fn enter() -> Entered {
    ENTERED.with(|e| {
        let mut e = e.borrow_mut();
        if e.0 == 0 {
            e.1 = Some(runtime().enter());
        }
        e.0 += 1;
    });
    Entered(())
}

impl Drop for Entered {
    fn drop(&mut self) {
        let guard = ENTERED.try_with(|e| {
            let mut e = e.borrow_mut();
            e.0 -= 1;
            if e.0 == 0 {
                e.1.take()
            } else {
                None
            }
        });
        drop(guard); // outside the borrow
    }
}
