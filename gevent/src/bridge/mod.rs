//! The async bridge: any Rust future, run from a greenlet as plain blocking code
//! ([`block_on`]), and greenlets awaited from async code ([`Greenlet`] is a
//! `Future`; [`spawn_future`] runs a future in a greenlet of its own).
//!
//! A future polled by [`block_on`] runs on the calling greenlet's stack. When it returns
//! `Pending`, the greenlet parks on the hub and every other greenlet runs; the future's
//! [`Waker`] puts the greenlet back in the hub's ready queue and the future is polled again.
//! Because the greenlet has a stack of its own, a future polled here may itself call blocking
//! gevent code (`gevent::sleep`, a socket read, another `block_on`): the poll frame simply waits
//! on the stack.
//!
//! # Which crates work, and how
//!
//! | What | Works | Why |
//! |------|-------|-----|
//! | Runtime-agnostic futures (`futures`, `futures-util`, `async-channel`, `event-listener`, hand-written futures) | directly, with [`block_on`] | they only need a `Waker` |
//! | `futures_io::{AsyncRead, AsyncWrite}` users (`futures::io`, `async-tungstenite` on a generic stream, ...) | directly, on [`net`](crate::net)'s stream types | the stream types implement the traits; readiness comes from the hub's poller, no extra thread |
//! | `tokio::io::{AsyncRead, AsyncWrite}` users (tokio-util codecs, `tokio_postgres::connect_raw`, ...) | with cargo feature `tokio`, on [`net`](crate::net)'s stream types | the stream types implement tokio's io traits too; the I/O itself needs no runtime context |
//! | hyper 1 (client and server connections) | with cargo feature `hyper` | `bridge::hyper` implements `hyper::rt::{Read, Write, Executor, Timer}` for gevent's streams, greenlets and hub timers: no tokio at all |
//! | tokio-based crates (tokio's `TcpStream`, `tokio::time`, `tokio::spawn`, tokio-postgres, reqwest, tonic) | with cargo feature `tokio` | they need tokio's runtime context and its I/O and time drivers; see the feature's section below |
//! | the sync `postgres` crate (and others that run a private tokio runtime per call) | on a [`ThreadPool`](crate::threadpool::ThreadPool) thread | their `block_on` would block the hub, and inside a tokio context it panics ("Cannot start a runtime from within a runtime"); tokio-postgres through [`block_on`] is the cheaper route |
//!
//! The stream types implement no `AsyncBufRead`: they keep no buffer of their own (neither do
//! std's); wrap them in `futures::io::BufReader` where a buffered reader is wanted. The datagram
//! types have `poll_*` methods ([`UdpSocket::poll_recv_from`](crate::net::UdpSocket::poll_recv_from), ...),
//! as `futures_io` has no datagram trait. A future's read and a greenlet's blocking read on the
//! same socket side are both woken by its readiness; a future's waker is kept per side (the last
//! poll's), as the traits ask.
//!
//! # The waker
//! The [`Waker`] handed to the future is `Send + Sync`. Its state is an `Arc` with the owning
//! thread's identity and a handle to that thread's hub:
//! - a wake on the hub's own thread (another greenlet, a hub callback, the hub's poller for a
//!   gevent socket, the future itself) costs no syscall and no lock: a thread-local table finds
//!   the parked greenlet's [`Waiter`] and puts it in the ready queue;
//! - a wake from any other thread goes through the hub's remote channel
//!   ([`HubHandle::run_callback`]: a mutex-protected queue and an eventfd write), at most one in
//!   flight per `block_on` (later wakes are folded into it).
//!
//! A finished `block_on` whose waker nobody kept gives its state back to the thread for the next
//! one, so a `block_on` allocates nothing of its own but the park's [`Waiter`].
//!
//! While parked with its waker held somewhere else (the future cloned it), a `block_on` counts as
//! work in flight for the hub (as [`HubHandle::begin_pending`] does, without its atomics), so a
//! main greenlet waiting on it does not get [`LoopExit`](crate::LoopExit); if nobody holds the
//! waker, nothing can ever wake the future, and waiting in the main greenlet panics with
//! `LoopExit`'s message as every other wait does. (A future that keeps its waker where nothing
//! will ever call it therefore waits forever instead, as under any executor.)
//!
//! Measured (`bench/run --quick`, one round, 2 cores, noisy): the wake round trip between two
//! greenlets in `block_on` (`hub/block_on_local`) 70 ns per hand-off, against 87 ns for a
//! `queue::Channel` hand-off and 65 ns for two tokio tasks of a `LocalSet`; a wake from another
//! OS thread (`hub/block_on_remote`) 6.3 us per round trip against tokio's 5.7 us; hyper's HTTP/1
//! server on gevent sockets, CPU per request 0.96x-1.04x hyper on tokio current_thread
//! (`io/http_c50_cpu`, column `ours-hyper`).
//!
//! # Cancel safety
//! A kill or [`Timeout`](crate::Timeout) landing while [`block_on`] is parked (or inside the
//! future's own blocking calls) unwinds out of it: the future is dropped there, its destructors
//! run, and a later wake of its waker does nothing. So the future's own cancel safety applies, as
//! when a `tokio::select!` branch loses: dropping a tokio-postgres query, for example, abandons the
//! reply (the connection stays usable; a dropped `Transaction` rolls back).
//!
//! # With the `tokio` feature
//! Futures from tokio-based crates need a runtime *context* (to register sockets and timers with
//! tokio's drivers, and for `tokio::spawn`). With the feature, [`block_on`] enters the handle of one
//! shared background tokio runtime around each poll. That runtime is a `current_thread` runtime
//! driven by one OS thread (`gevent-tokio`), started on first use and kept for the life of the
//! process: its I/O and timer drivers run there, tasks given to `tokio::spawn` run there, and the
//! wakes they cause reach the parked greenlets through their hubs' remote channels. Costs: one
//! extra thread; each wake of a tokio-driven future is a cross-thread hand-off (a lock and an
//! eventfd write on the tokio side, an eventfd read on the hub's), not the free local wake;
//! `tokio::spawn`ed tasks run on that one thread, not on the hub. Create tokio objects (sockets,
//! `tokio::time::sleep`) inside the future passed to [`block_on`] (an `async` block), where the
//! context is entered, or inside `bridge::tokio_context`. The context is entered once per thread
//! while any poll on it runs (tokio's guards must be left in the order they were entered, and
//! greenlets leave polls in any order); so while one greenlet is switched away in the middle of a
//! poll (a blocking gevent call inside a future), plain code in the thread's other greenlets runs
//! inside the context too.
//!
//! # Databases
//! - **tokio-postgres** (feature `tokio`): connect inside [`block_on`] and hand the connection
//!   future to a greenlet ([`spawn_future`]) or to `tokio::spawn`; then each greenlet's query is a
//!   plain blocking call. One connection runs one query at a time on the server, so concurrent
//!   greenlets each want their own connection (or a pool of them).
//!   ```no_run
//!   // With feature `tokio`.
//!   let client = gevent::block_on(async {
//!       let (client, connection) =
//!           tokio_postgres::connect("host=127.0.0.1 user=postgres", tokio_postgres::NoTls).await?;
//!       gevent::spawn_future(connection); // the connection's I/O, in a greenlet of its own
//!       Ok::<_, tokio_postgres::Error>(client)
//!   })
//!   .unwrap();
//!   let row = gevent::block_on(client.query_one("SELECT 1 + 1", &[])).unwrap();
//!   assert_eq!(row.get::<_, i32>(0), 2);
//!   ```
//!   A kill or Timeout landing in a query drops its future: the reply is skipped when it comes and
//!   the connection serves the next query; a `Transaction` dropped unfinished rolls back.
//! - **the sync `postgres` crate** runs its own tokio runtime per client and blocks in it: never
//!   call it on a hub's thread (it would block every greenlet of the hub, and where a tokio
//!   context is entered, for example inside [`block_on`] with feature `tokio`, it panics with
//!   "Cannot start a runtime from within a runtime"). Call it on a thread pool, where the calling
//!   greenlet waits and the hub keeps serving:
//!   ```no_run
//!   let pool = gevent::threadpool::ThreadPool::new(10);
//!   let n: i32 = pool.apply(|| {
//!       let mut c = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls)
//!           .unwrap();
//!       c.query_one("SELECT 1 + 1", &[]).unwrap().get(0)
//!   });
//!   assert_eq!(n, 2);
//!   ```
//!   (`postgres::Client` is `Send`: keep one per greenlet and move it into each `apply`.)
//!   Tested in `tests/bridge_postgres.rs`, as is the rest of this section.
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! // Two greenlets, each awaiting a future; they wait concurrently.
//! let (tx, rx) = futures_channel_like();
//! let a = gevent::spawn(move || gevent::block_on(rx));
//! let b = gevent::spawn(move || {
//!     gevent::sleep(Duration::from_millis(5));
//!     tx(42);
//! });
//! gevent::joinall([&a]);
//! b.join();
//! assert_eq!(a.value(), Some(42));
//!
//! // A tiny one-shot channel: a future and the closure that completes it.
//! fn futures_channel_like() -> (impl FnOnce(u32), impl std::future::Future<Output = u32>) {
//!     use std::sync::{Arc, Mutex};
//!     use std::task::{Poll, Waker};
//!     let slot: Arc<Mutex<(Option<u32>, Option<Waker>)>> = Arc::default();
//!     let s2 = slot.clone();
//!     let send = move |v| {
//!         let mut g = s2.lock().unwrap();
//!         g.0 = Some(v);
//!         if let Some(w) = g.1.take() {
//!             w.wake();
//!         }
//!     };
//!     let recv = std::future::poll_fn(move |cx| {
//!         let mut g = slot.lock().unwrap();
//!         match g.0.take() {
//!             Some(v) => Poll::Ready(v),
//!             None => {
//!                 g.1 = Some(cx.waker().clone());
//!                 Poll::Pending
//!             }
//!         }
//!     });
//!     (send, recv)
//! }
//! ```

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::greenlet::Greenlet;
use crate::hub::{get_hub, HubHandle, Waiter};

#[cfg(feature = "hyper")]
pub mod hyper;
#[cfg(feature = "tokio")]
mod tokio_rt;
#[cfg(feature = "tokio")]
pub use self::tokio_rt::{tokio_context, tokio_handle};

thread_local! {
    /// Its address identifies the thread (unique among live threads) without `thread::current()`'s
    /// reference count traffic.
    static THREAD: u8 = const { 0 };
    /// The `block_on` calls running on this thread, by key.
    static PARKED: RefCell<Table> = const { RefCell::new(Table { slots: Vec::new(), free: Vec::new(), spare: Vec::new() }) };
}

pub(crate) fn thread_token() -> Option<usize> {
    THREAD.try_with(|t| t as *const u8 as usize).ok()
}

/// One running `block_on`, in its thread's table.
struct Slot {
    /// The address of its [`WakeState`] (alive while the slot is: `block_on` holds it), so a wake
    /// of some other (finished) `block_on` that had the same key is told apart.
    owner: usize,
    /// Woken while not parked (during a poll): poll again after a yield instead of parking.
    notified: bool,
    /// The waiter of the current park, taken by the first wake.
    waiter: Option<Rc<Waiter>>,
}

struct Table {
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    /// States of finished `block_on`s that nobody else references, with their slots still
    /// reserved: the next `block_on` takes one instead of allocating (see [`StateGuard`]).
    spare: Vec<Arc<WakeState>>,
}

/// What a [`Waker`] made by [`block_on`] points to. `Send + Sync`.
struct WakeState {
    /// # Invariant
    /// The key of this `block_on`'s [`Slot`] in the `PARKED` table of thread `thread`, while the
    /// `block_on` runs; afterwards the slot is gone or another's (told apart by `owner`).
    key: usize,
    /// [`thread_token`] of the thread that runs the `block_on`.
    thread: usize,
    /// That thread's hub, for wakes from other threads.
    hub: HubHandle,
    /// A wake from another thread is queued on the hub and has not run yet: later ones fold into it.
    remote_queued: AtomicBool,
}

impl Wake for WakeState {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if thread_token() == Some(self.thread) {
            wake_local(self);
        } else if !self.remote_queued.swap(true, Ordering::AcqRel) {
            let me = self.clone();
            self.hub.run_callback(move || {
                // Cleared before the wake, so a wake racing this one queues another (spurious at
                // worst) instead of being lost. AcqRel: the future sees what every folded wake's
                // thread did before waking.
                me.remote_queued.swap(false, Ordering::AcqRel);
                wake_local(&me);
            });
        }
    }
}

/// A wake on the owning thread: resume the parked greenlet, or note the wake for the running poll.
fn wake_local(st: &Arc<WakeState>) {
    let owner = Arc::as_ptr(st) as usize;
    let waiter = PARKED
        .try_with(|t| {
            let mut t = t.try_borrow_mut().ok()?;
            match t.slots.get_mut(st.key) {
                Some(Some(slot)) if slot.owner == owner => match slot.waiter.take() {
                    Some(w) => Some(w),
                    None => {
                        slot.notified = true;
                        None
                    }
                },
                _ => None, // that block_on has finished
            }
        })
        .ok()
        .flatten();
    if let Some(w) = waiter {
        w.wake();
    }
}

/// How many finished `block_on` states a thread keeps for reuse.
const SPARE_STATES: usize = 64;

/// A `block_on`'s [`WakeState`] and slot, from the thread's spares or new; given back (or freed)
/// however the `block_on` ends (returns, panics, is killed).
struct StateGuard(Option<Arc<WakeState>>);

impl StateGuard {
    fn acquire(thread: usize, hub: &crate::hub::Hub) -> StateGuard {
        let spare = PARKED.with(|t| t.borrow_mut().spare.pop());
        let state = spare.unwrap_or_else(|| {
            let key = PARKED.with(|t| {
                let mut t = t.borrow_mut();
                match t.free.pop() {
                    Some(k) => k,
                    None => {
                        t.slots.push(None);
                        t.slots.len() - 1
                    }
                }
            });
            let state = Arc::new(WakeState {
                key,
                thread,
                hub: hub.handle(),
                remote_queued: AtomicBool::new(false),
            });
            PARKED.with(|t| {
                t.borrow_mut().slots[key] = Some(Slot {
                    owner: Arc::as_ptr(&state) as usize,
                    notified: false,
                    waiter: None,
                });
            });
            state
        });
        StateGuard(Some(state))
    }

    fn state(&self) -> &Arc<WakeState> {
        self.0.as_ref().expect("present until dropped")
    }
}

impl Drop for StateGuard {
    fn drop(&mut self) {
        let Some(state) = self.0.take() else { return };
        let _ = PARKED.try_with(|t| {
            let mut t = t.borrow_mut();
            // Nobody else holds its waker (no clone, no queued remote wake): no stale wake can
            // reach its slot, so the next block_on may take both over.
            if Arc::strong_count(&state) == 1 && t.spare.len() < SPARE_STATES {
                if let Some(Some(slot)) = t.slots.get_mut(state.key) {
                    slot.notified = false;
                    slot.waiter = None;
                }
                t.spare.push(state);
            } else {
                t.slots[state.key] = None;
                t.free.push(state.key);
            }
        });
    }
}

/// Ends a [`Hub::count_parked_future`](crate::hub::Hub) however the park ends.
struct ParkedGuard<'a>(&'a crate::hub::Hub);

impl Drop for ParkedGuard<'_> {
    fn drop(&mut self) {
        self.0.count_parked_future(false);
    }
}

/// Runs `fut` to completion inside the calling greenlet (or the main one) and returns its output.
///
/// While the future is pending the greenlet parks on the hub and the other greenlets run; its
/// [`Waker`] (`Send + Sync`, see the [module docs](self)) resumes it. The future may itself make
/// blocking gevent calls, including a nested `block_on`.
///
/// # Examples
/// ```
/// use std::time::{Duration, Instant};
/// let t = Instant::now();
/// let gs: Vec<_> = (0..3)
///     .map(|i| {
///         gevent::spawn(move || {
///             gevent::block_on(async move {
///                 // Blocking gevent code inside a future: fine, the greenlet has a stack.
///                 gevent::sleep(Duration::from_millis(300));
///                 i * 2
///             })
///         })
///     })
///     .collect();
/// gevent::joinall(&gs);
/// assert_eq!(gs.iter().map(|g| g.value().unwrap()).sum::<i32>(), 6);
/// assert!(t.elapsed() < Duration::from_millis(600)); // one after the other: 900 ms
/// ```
///
/// # Panics
/// What the future panics with; with [`LoopExit`](crate::LoopExit)'s message when the main
/// greenlet waits on a future that nothing can wake (no one holds its waker); when called from the
/// hub itself (a hub callback) and the future is not ready at once.
///
/// # Cancel safety
/// A kill or Timeout landing while parked (or in a blocking call the future makes) unwinds out of
/// `block_on`; the future is dropped on the way (its destructors run) and its waker is disarmed.
/// What was half-done is then as the future's own cancel safety says.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let hub = get_hub();
    let thread = thread_token().expect("gevent::block_on during thread-local destruction");
    let guard = StateGuard::acquire(thread, &hub);
    let state = guard.state();
    let key = state.key;
    // Declared after the guard, so dropped before it (with the waker and any clone the future
    // keeps): the guard can then tell whether anybody else still holds the state.
    let mut fut = pin!(fut);
    let waker = Waker::from(state.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        let polled = {
            #[cfg(feature = "tokio")]
            let _ctx = tokio_rt::enter();
            fut.as_mut().poll(&mut cx)
        };
        if let Poll::Ready(v) = polled {
            return v;
        }
        let waiter = PARKED.with(|t| {
            let mut t = t.borrow_mut();
            let Some(slot) = t.slots[key].as_mut() else {
                unreachable!("a running block_on's slot is never freed")
            };
            if std::mem::take(&mut slot.notified) {
                return None;
            }
            let w = Waiter::new();
            slot.waiter = Some(w.clone());
            Some(w)
        });
        let Some(waiter) = waiter else {
            // Woken during the poll (a future that yields, or a wake that raced it): let the other
            // greenlets run once, then poll again.
            crate::hub::yield_now();
            continue;
        };
        // Held elsewhere than here (`guard`, `waker`): someone may wake it, possibly from another thread.
        let _parked = (Arc::strong_count(state) > 2).then(|| {
            hub.count_parked_future(true);
            ParkedGuard(&hub)
        });
        if let Err(e) = waiter.wait_in(&hub) {
            panic!("{e}");
        }
    }
}

/// Spawns `fut` as a greenlet of its own (gevent's `spawn` for async work): the greenlet runs
/// [`block_on`]`(fut)`, and its value is the future's output. Join it like any greenlet, or await
/// it ([`Greenlet`] is a `Future`).
///
/// # Examples
/// ```
/// let g = gevent::spawn_future(async { 6 * 7 });
/// g.join();
/// assert_eq!(g.value(), Some(42));
/// ```
pub fn spawn_future<F>(fut: F) -> Greenlet<F::Output>
where
    F: Future + 'static,
{
    crate::spawn(move || block_on(fut))
}
