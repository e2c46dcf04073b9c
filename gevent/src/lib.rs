//! gevent for Rust: greenlets scheduled by a hub that switches whenever a task would wait.
//!
//! # The seed's example 1
//!
//! Two greenlets sleep cooperatively; the whole run takes about 1.5 s, not 3 s:
//!
//! ```
//! use std::time::Duration;
//!
//! fn eat(n: &str) {
//!     for i in 0..3 {
//!         println!("{n} is eat...{i}");
//!         gevent::sleep(Duration::from_millis(5));
//!     }
//! }
//! fn play(n: &str) {
//!     for i in 0..3 {
//!         println!("{n} is play...{i}");
//!         gevent::sleep(Duration::from_millis(5));
//!     }
//! }
//! let g1 = gevent::spawn(|| eat("noah"));
//! let g2 = gevent::spawn(|| play("bobo"));
//! gevent::joinall([&g1, &g2]);
//! println!("主...");
//! ```
//!
//! # What lives where (as in gevent)
//! - [`spawn`], [`Greenlet`], [`joinall`] ([`JoinAll`]), [`wait_all`], [`sleep`], [`Timeout`]: this
//!   page; [`greenlets`] (a greenlet's own handle: [`greenlets::current`]); [`context`] (values
//!   inherited by spawned greenlets).
//! - [`hub`]: the loop; [`event`], [`queue`], [`lock`], [`pool`], [`local`]: synchronisation.
//! - [`sync`]: primitives that cross threads and hubs (`AsyncResult`, `Event`, `Semaphore`,
//!   `Channel`) and locks that guard data across switches (`Mutex<T>`, `RwLock<T>`, `Condvar`).
//! - [`net`] (TCP, UDP, Unix sockets shaped like `std::net`), [`server`] (`StreamServer`,
//!   `DatagramServer`), [`io`] (`wait_read`/`wait_write` for any fd), [`select`]: cooperative I/O.
//! - [`http`]: an HTTP/1.1 server with blocking handlers, WebSocket (gevent's `pywsgi`).
//! - [`hubs`]: a hub on each of N threads (thread-per-core), work handed to them from any thread.
//! - [`threadpool`] (blocking work on OS threads), [`subprocess`], [`signal`], [`fork`] ([`os`]),
//!   [`logging`] (a log writer that never blocks the hub).
//! - [`block_on`], [`spawn_future`], [`bridge`]: async Rust from greenlets, greenlets from async Rust.
//! - [`monitor`] (a greenlet that blocks its hub), [`util`] (`print_run_info`: the hub and its greenlets).
//! - `ssl` (cargo feature `ssl`, on by default): TLS streams on rustls, TLS for `StreamServer`.
//! - `monkey` (cargo feature `monkey`): `patch_all()` makes std's and C libraries' blocking calls
//!   cooperative.
//!
//! # Layers
//! Each module names only modules of its own layer or of the layers below it (through `crate::`
//! paths or the re-exports of this page); a layer above that needs to be called from below
//! installs a hook instead (`monkey` sets the reactor's `EVICT` and the hub's `AFTER_POLL` and
//! `AROUND_SLEEP`). Within a layer there is no import cycle either, except inside the `hub/`
//! folder; the project's `modcycles.py --allow hub gevent/src` checks both.
//! Bottom up:
//! 1. The `greenlet` crate: switching and stacks.
//! 2. [`hub`] (`hub/`): the loop and [`HubHandle`]; [`Waiter`] with the deadline wait,
//!    [`Waitable`] and [`Failure`] (`hub/waiter.rs`); the reactor, which owns the table of
//!    registered fds and the greenlets parked on them (`hub/reactor.rs`); kills and timeouts
//!    thrown into greenlets and deferred (`hub/unwind.rs`); the greenlet registry and wait sites
//!    that run-info reads (`hub/registry.rs`); the blocking watchdog the loop feeds
//!    (`hub/watchdog.rs`). It names nothing above it.
//! 3. Primitives: [`greenlets`] (`Greenlet`, and the registry's entries), the module-level waits
//!    ([`joinall`], [`wait`], [`iwait`], [`sleep`]), [`Timeout`], [`context`], [`event`],
//!    [`queue`], [`lock`], [`pool`], [`local`], [`sync`].
//! 4. I/O and threads: [`io`] (the reactor's public face), [`net`], [`select`], [`server`],
//!    [`subprocess`], [`signal`], [`threadpool`], [`os`] ([`fork`]), [`hubs`], [`logging`] (a
//!    writer over the thread pool, which `http`'s access log uses).
//! 5. `monkey` (installs its hooks into the layers below; nothing below names it), [`bridge`],
//!    [`http`], `ssl`.
//! 6. Diagnostics on top: [`util`] (formats what `hub/registry.rs` and the greenlets report) and
//!    [`monitor`].
//!
//! # The blocking detector
//! A greenlet that keeps its hub from turning (a long computation, a blocking call gevent does not
//! hook, a std `Mutex` held across a switch) freezes every other greenlet of that thread. In debug
//! builds a watchdog thread reports it on stderr, with the greenlet's name and backtrace, once it
//! has kept the hub for 1 s, without any call. In release builds it is off unless the environment
//! variable `GEVENT_MONITOR_THREAD_ENABLE=1` is set (threshold 0.1 s); `=0` turns it off in any
//! build, and `GEVENT_MAX_BLOCKING_TIME=<seconds>` sets the threshold (gevent's names). It costs
//! the hub a plain store per greenlet it resumes. For reports handed to code, see [`monitor`].
//!
//! # Ground rules
//! - One hub per OS thread, created on first use; greenlets and everything here are `!Send`, and
//!   stay on the thread that made them. Other threads reach a hub through a [`HubHandle`], and
//!   share [`sync`]'s primitives and [`threadpool`]'s handles, which are `Send + Sync`.
//! - Every blocking call parks the calling greenlet on the hub; each says in its docs what a kill
//!   or [`Timeout`] landing there does ("Cancel safety").
//! - `std::thread::panicking()` and std's `Mutex` poisoning are per OS thread: while one greenlet is
//!   suspended in the middle of unwinding (a destructor that waits), others on the thread see
//!   `panicking()` as true.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, missing_docs)]

pub mod bridge;
pub mod context;
pub mod event;
mod greenlet;
/// gevent's `Greenlet` and what goes with it (gevent's `gevent.greenlet`): [`Greenlet`], the
/// greenlet's own handle [`greenlets::current`], [`greenlets::describe_panic`].
///
/// Named `greenlets`, not `greenlet`, so that `use gevent::*` leaves the `greenlet` crate's paths
/// alone (`greenlet::Builder`, `greenlet::Greenlet`).
pub mod greenlets {
    pub use crate::greenlet::*;
}
pub mod http;
pub mod hub;
pub mod hubs;
pub mod io;
pub mod local;
pub mod lock;
pub mod logging;
pub mod monitor;
#[cfg(feature = "monkey")]
pub mod monkey;
pub mod net;
pub mod os;
pub mod pool;
pub mod queue;
pub mod select;
pub mod server;
pub mod signal;
#[cfg(feature = "ssl")]
pub mod ssl;
pub mod subprocess;
pub mod sync;
pub mod threadpool;
mod timeout;
pub mod util;
mod wait;

pub use crate::bridge::{block_on, spawn_future};
pub use crate::greenlet::{
    spawn, spawn_later, spawn_raw, CloneResult, Failure, GetError, Greenlet, GreenletRef, LinkId,
    Waitable,
};
pub use crate::hub::{get_hub, HubHandle, LoopExit, Waiter};
pub use crate::os::{fork, reinit};
pub use crate::timeout::{
    with_timeout, with_timeout_or, with_timeout_silent, Timeout, TimeoutError,
};
pub use crate::wait::{
    idle, iwait, joinall, joinall_timeout, killall, killall_nowait, killall_timeout, sleep, wait,
    wait_all, JoinAll,
};

/// The running greenlet, the low-level one (the thread's main greenlet outside any other).
///
/// Inside a gevent greenlet its `name()` is the gevent name (`Greenlet-N`, or what
/// [`Greenlet::set_name`] set). For the gevent object itself (name, kill, links), see
/// [`greenlets::current`].
pub fn getcurrent() -> ::greenlet::Greenlet {
    ::greenlet::getcurrent()
}
