//! The hub: one per OS thread, a greenlet whose `run` is the event loop.
//!
//! A greenlet that must wait registers what will wake it (a [`Waiter`] in an event's list, a timer, an
//! fd's readiness) and switches to the hub; the hub switches back when that happens.
//!
//! The bottom layer of gevent (see the crate docs' layer map): it names nothing above it. This
//! file is the loop, [`Hub`], [`HubHandle`] and fork; beside it, `waiter.rs` ([`Waiter`], the
//! deadline wait, [`Waitable`]), `reactor.rs` (the fd table, `gevent::io`'s engine),
//! `unwind.rs` (kills and timeouts thrown in and deferred), `registry.rs` (what run-info reads)
//! and `watchdog.rs` (the blocking detector the loop feeds).
//!
//! # The loop
//! Each turn: run the ready queue (only the entries present when the turn began, FIFO, so
//! `sleep(ZERO)` yields to every other ready greenlet exactly once), expire due timers, then wait on the
//! OS poller with the next timer as timeout (zero if something became ready meanwhile). When nothing can
//! ever make progress — no ready entries, no timers, no fd with a waiter, no outstanding cross-thread
//! work — the hub hands the main greenlet [`LoopExit`].
//!
//! Timers are not starved by a long ready queue (100k greenlets just spawned): while timers are
//! pending, a turn stops running the queue once it has run for 5 ms (`SWITCH_INTERVAL`) (the clock is read
//! every 64 entries; gevent checks every 50 callbacks against its switch interval), and the
//! greenlets that due timers wake go to the front of the queue, in deadline order, ahead of what was
//! left. Measured on 100k greenlets sleeping distinct durations over 0.5 s (bench `timers_100k`): mean
//! lateness 5.8 -> 1.0 ms, p99 68 -> 6-8 ms (tokio in the same run: 1.2 and 8.1 ms).
//!
//! # Hand-off between greenlets
//! A greenlet that starts to wait while the hub runs its ready queue switches straight to the
//! greenlet whose wake is at the front of the queue, instead of to the hub, when the hub would do
//! nothing else before resuming it: no timer armed, no cross-thread callback queued, the poller not
//! due (each hand-off counts as a turn toward the next zero-timeout poll), no tracer installed
//! (`greenlet::settrace` sees every switch the hub would make). The order of the queue is
//! unchanged, only turns end less often; the hub resumes when the front entry is anything else.
//! It saves one of the two switches of a hand-off (Go's scheduler does the same with `runnext`):
//! a Channel ping-pong took 593 instructions and 49-52 ns per hand-off through the hub, 528 and
//! 42-43 ns directly (callgrind, and the same process timed, in one session).
//!
//! # Before sleeping
//! A hub about to sleep in its poller while greenlets wait on fds first gives up its core once
//! (`sched_yield`) and polls again without waiting: under load the next readiness is usually
//! microseconds away (the peer, often on the same core, answering what the turn just wrote), and
//! finding it there costs two cheap system calls instead of a sleep and a wake-up through the
//! scheduler. It backs off when that does not pay (most polls find nothing, or the yield loses the
//! core to a CPU-bound thread for long). See `Hub::yield_for_io` for the numbers.
//!
//! # Other threads
//! A callback from another thread ([`HubHandle::run_callback`]) goes into the hub's remote
//! queue; the caller writes the hub's eventfd only when the hub sleeps in its poller (or is about
//! to: it says so, then looks at the queue once more), so a busy hub costs its callers no system
//! call. Before it sleeps while another thread owes it an answer (`begin_pending`: a greenlet
//! waiting on a [`crate::sync`] primitive, a thread-pool task), a hub on a machine with more than
//! one core first watches the queue for up to 20 us (`REMOTE_SPIN`), and an OS thread waiting on a
//! `sync` primitive spins a few microseconds before it parks; an answer that comes meanwhile
//! costs neither side a sleep and wake-up. A one-shot hand-off OS thread -> greenlet -> thread
//! went from 18.1 us to 0.61 us (tokio's oneshot, same run: 18.1 us), a bounded channel's message
//! from 565 to 80 ns. The hub's spin is adaptive: after `k` spins in a row that saw nothing, the
//! next `2^k - 1` sleeps (up to 255) skip it, so an answer that takes longer, or cores busy with
//! other work, cost it little.
//!
//! # Ground rules
//! - Only the hub's own thread touches a [`Hub`]; other threads reach it through a [`HubHandle`]
//!   (a mutex-protected queue plus a `mio::Waker`).
//! - A waiting greenlet is woken at most once per [`Waiter`]: waking a waiter that was already woken
//!   or cancelled is a no-op, so a wake that races a kill or a timeout never resumes the wrong wait.
//! - Kills and timeouts are delivered by throwing into the greenlet from the hub; the unwinding wait
//!   marks its waiter cancelled (its guard's destructor), so nothing it waited on keeps a trace of it;
//!   a timed wait's timer is cancelled the same way ([`Hub::timer_count`] shows what is armed).
//! - A panic in a hub callback is reported and the loop goes on.
//!
//! # fork
//! The hub's kernel objects (its epoll instance and eventfd) are *shared* with a `fork`ed child,
//! and its helper threads do not exist there. A `pthread_atfork` child handler (registered when the
//! first hub is made) only bumps a counter (async-signal-safe: a `pre_exec` child that execs at
//! once pays nothing); the child's hub notices the new count at its next use — the next turn of
//! its loop, a registration, a [`HubHandle`] taken, an fd wait — and rebuilds them
//! (`reinit_after_fork`): a new poller and waker, a new cross-thread queue, fds re-registered
//! lazily at their next wait, greenlets parked on I/O at the fork woken with an error. Timers and
//! everything else in process memory carry over. See [`crate::os`] for the whole contract.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use greenlet::Value;

pub(crate) mod reactor;
pub(crate) mod registry;
mod unwind;
mod waiter;
pub(crate) mod watchdog;

#[cfg(feature = "monkey")]
pub(crate) use unwind::defer_unwind;
pub(crate) use unwind::{
    done_unwinding, forget_deferred, take_deferred, throw_into, unwinding_cancel,
};
pub(crate) use waiter::{wait_with_deadline, yield_now};
pub use waiter::{Failure, Waitable, Waiter};

/// Raised (as a panic, or returned as an error by `_timeout` variants) when the main greenlet waits
/// for something that nothing can ever complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopExit;

impl fmt::Display for LoopExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "LoopExit: this operation would block forever \
             (the hub has no ready greenlets, timers or I/O left that could wake it)",
        )
    }
}

impl std::error::Error for LoopExit {}

/// A callback the hub runs.
pub(crate) type Callback = Box<dyn FnOnce()>;

/// Work that a layer above queues for the hub as an `Rc` of its own state, instead of a boxed
/// closure: queueing it allocates nothing. (The notification of a `gevent::Greenlet`'s
/// joiners cost a `Box` before; with 1000 greenlets in flight glibc's allocator then works through
/// its slow bins: one of the 8 allocations of a spawn + timed sleep + join.)
pub(crate) trait Task {
    /// Does the work (queued by [`Hub::run_task`]).
    fn run(self: Rc<Self>);
}

/// What a timer does when it fires.
enum TimerAction {
    /// Wakes a waiter: every timed wait's timer, held without a boxed closure (one allocation
    /// fewer per timed wait).
    Wake(Rc<Waiter>),
    /// Runs a callback.
    Call(Callback),
}

/// An entry of the ready queue.
enum Ready {
    /// Resume the greenlet of a waiter (if it is still waiting on it).
    Wake(Rc<Waiter>),
    /// Run a callback in the hub.
    Call(Callback),
    /// Run a [`Task`] in the hub.
    Task(Rc<dyn Task>),
    /// Resume a greenlet that yields (`sleep(ZERO)`), if it still does: see [`Hub::schedule_yield`].
    Yield(greenlet::Greenlet),
}

/// Identifies a timer, for [`Hub::cancel_timer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId(Instant, u64);

const TOKEN_WAKER: mio::Token = mio::Token(usize::MAX);

/// The state the hub keeps for one thread.
pub struct Hub {
    greenlet: greenlet::Greenlet,
    ready: RefCell<VecDeque<Ready>>,
    timers: RefCell<BTreeMap<TimerId, TimerAction>>,
    timer_seq: Cell<u64>,
    poll: RefCell<mio::Poll>,
    events: RefCell<mio::Events>,
    pub(crate) reactor: reactor::Reactor,
    /// Replaced (never mutated in place) when the hub is rebuilt after a fork.
    remote: RefCell<Arc<Remote>>,
    /// Turns since the poller was last asked (to poll now and then even while busy); a
    /// greenlet's direct hand-off ([`Hub::switch_waiting`]) counts as one.
    turns_without_poll: Cell<u32>,
    /// Set while the hub runs its ready queue (suspended in an entry it resumed): only then may a
    /// waiting greenlet hand off directly (see the module docs).
    in_ready: Cell<bool>,
    /// Waiters of `idle()`, woken when a turn ends with nothing ready.
    idle: RefCell<VecDeque<Rc<Waiter>>>,
    /// The [`fork_generation`] that `poll` and `remote` belong to (see the module docs: fork).
    forks: Cell<u64>,
    /// What the blocking watchdog reads (see `watchdog`): a store per ready entry run.
    watch: watchdog::HubWatch,
    /// Greenlets parked in `block_on` on a future whose waker is held elsewhere (maybe by another
    /// thread): while non-zero the hub does not declare [`LoopExit`] (see `bridge`).
    parked_futures: Cell<usize>,
    /// The id of the greenlet a [`Ready::Yield`] entry is resuming, from the hub's switch into it
    /// until it takes it ([`Hub::take_yield_turn`]); [`NO_YIELD`] otherwise.
    yield_turn: Cell<u64>,
    /// Spins for a cross-thread answer that ended without it, in a row (see `spin_for_remote`).
    spin_misses: Cell<u32>,
    /// Sleeps that skip the spin before they sleep (see `spin_for_remote`).
    spin_skip: Cell<u32>,
    /// The current window of yields before a sleep (see `yield_for_io`).
    yield_window: Cell<YieldWindow>,
    /// Windows in a row in which the yield did not pay (see `yield_for_io`).
    yield_backoff: Cell<u32>,
    /// Sleeps that skip the yield (see `yield_for_io`).
    yield_skip: Cell<u32>,
}

/// [`Hub::yield_turn`] when no yield is being resumed (greenlet ids count up from 0).
const NO_YIELD: u64 = u64::MAX;

/// What other threads share with a hub.
struct Remote {
    queue: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
    waker: mio::Waker,
    /// Set when `queue` may be non-empty, so the hub's turn skips the lock when it is not.
    has_work: std::sync::atomic::AtomicBool,
    /// Operations in flight on other threads that will come back through `queue`; while non-zero
    /// the hub does not declare [`LoopExit`].
    pending: AtomicUsize,
    /// Set while the hub waits in the OS poller (or is about to): only then does a callback need the
    /// `waker`'s system call. The hub sets it and then reads `has_work`; a caller sets `has_work`
    /// and then reads it (both sequentially consistent), so one of them sees the other.
    sleeping: std::sync::atomic::AtomicBool,
}

/// Run by the hub after each poll of the OS poller, once set: `monkey` sets it to end hooked calls
/// that a signal interrupts (`monkey::intr`). One atomic load per poll while unset.
pub(crate) static AFTER_POLL: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Run by the hub right before its poller may sleep (`true`; returns whether something became
/// ready, and then the poll does not sleep) and right after it (`false`), once set: `monkey` sets
/// it so that another thread's `unpark` reaches greenlets waiting on this thread's std parker while
/// the hub sleeps (`monkey::futex`). One atomic load per sleeping poll while unset.
pub(crate) static AROUND_SLEEP: std::sync::OnceLock<fn(bool) -> bool> = std::sync::OnceLock::new();

/// How long a turn runs the ready queue before it lets due timers in (gevent's default
/// `sys.getswitchinterval()`).
const SWITCH_INTERVAL: Duration = Duration::from_millis(5);

/// How many ready entries run between two reads of the clock while a turn has a time budget.
const CHECK_EVERY: usize = 64;

/// A `Send + Sync` handle to a hub, for other threads.
#[derive(Clone)]
pub struct HubHandle {
    remote: Arc<Remote>,
}

impl HubHandle {
    /// Runs `f` in the hub's thread, as a hub callback (it must not block; spawn from it to wait).
    pub fn run_callback(&self, f: impl FnOnce() + Send + 'static) {
        self.remote
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(f));
        // Already flagged: the caller that flagged it wakes the hub (or has), and the hub takes the
        // whole queue, this entry included, when it clears the flag: no second eventfd write.
        if self.remote.has_work.swap(true, Ordering::SeqCst) {
            return;
        }
        // A hub that is not (about to be) asleep in its poller finds the entry on its next turn,
        // before it sleeps (see `Remote::sleeping`): no eventfd write.
        if !self.remote.sleeping.load(Ordering::SeqCst) {
            return;
        }
        // A failing eventfd write leaves the hub to find the entry on its next turn; nothing to do here.
        let _ = self.remote.waker.wake();
    }

    /// Declares work in flight on another thread that will call back through [`HubHandle::run_callback`];
    /// the hub does not exit its loop while any is declared. Undo with [`HubHandle::end_pending`].
    pub fn begin_pending(&self) {
        self.remote.pending.fetch_add(1, Ordering::SeqCst);
    }

    /// Ends one [`HubHandle::begin_pending`].
    pub fn end_pending(&self) {
        self.remote.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

thread_local! {
    static HUB: RefCell<Option<Rc<Hub>>> = const { RefCell::new(None) };
}

/// This thread's hub, created on first use.
///
/// # Panics
/// If the OS poller cannot be created (out of file descriptors).
#[inline]
pub fn get_hub() -> Rc<Hub> {
    if let Some(h) = HUB.with(|h| h.borrow().clone()) {
        return h;
    }
    new_hub()
}

#[cold]
fn new_hub() -> Rc<Hub> {
    let hub = Hub::new().unwrap_or_else(|e| panic!("gevent: cannot create the hub: {e}"));
    HUB.with(|h| *h.borrow_mut() = Some(hub.clone()));
    hub
}

/// This thread's hub if it exists.
///
/// Never panics, also not while thread-locals are destroyed (the `monkey` hooks call it from
/// `close` and friends, which run then too): that case is `None`.
pub(crate) fn try_hub() -> Option<Rc<Hub>> {
    HUB.try_with(|h| h.try_borrow().ok().and_then(|h| h.clone()))
        .ok()
        .flatten()
}

/// Whether this thread has a hub and the caller is not it (a greenlet that may park), without
/// cloning the hub: one thread-local read (the `monkey` hooks' check). Never panics, as [`try_hub`].
#[cfg(feature = "monkey")]
#[inline]
pub(crate) fn may_park() -> bool {
    HUB.try_with(|h| {
        h.try_borrow()
            .is_ok_and(|h| h.as_ref().is_some_and(|hub| !hub.greenlet.is_current()))
    })
    .unwrap_or(false)
}

impl Hub {
    fn new() -> std::io::Result<Rc<Hub>> {
        let forks = fork_generation();
        let (poll, remote) = new_poller()?;
        let main = greenlet::getcurrent();
        let g = greenlet::Builder::new()
            .name("Hub")
            .parent(&main)
            .stack(greenlet::StackConfig::guarded(1024 * 1024))
            .build(|_| {
                run_loop();
                Value::none()
            })
            .map_err(std::io::Error::other)?;
        Ok(Rc::new(Hub {
            greenlet: g,
            ready: RefCell::new(VecDeque::new()),
            timers: RefCell::new(BTreeMap::new()),
            timer_seq: Cell::new(0),
            poll: RefCell::new(poll),
            events: RefCell::new(mio::Events::with_capacity(1024)),
            reactor: reactor::Reactor::default(),
            remote: RefCell::new(remote),
            turns_without_poll: Cell::new(0),
            in_ready: Cell::new(false),
            idle: RefCell::new(VecDeque::new()),
            forks: Cell::new(forks),
            watch: watchdog::HubWatch::new(),
            parked_futures: Cell::new(0),
            yield_turn: Cell::new(NO_YIELD),
            spin_misses: Cell::new(0),
            spin_skip: Cell::new(0),
            yield_window: Cell::new(YieldWindow::default()),
            yield_backoff: Cell::new(0),
            yield_skip: Cell::new(0),
        }))
    }

    /// The hub's own greenlet.
    pub fn greenlet(&self) -> &greenlet::Greenlet {
        &self.greenlet
    }

    /// A handle other threads can use to hand this hub work.
    pub fn handle(&self) -> HubHandle {
        self.check_fork();
        HubHandle {
            remote: self.remote.borrow().clone(),
        }
    }

    /// The OS poller's registry (to register fds).
    pub(crate) fn registry(&self) -> std::cell::Ref<'_, mio::Poll> {
        self.check_fork();
        self.poll.borrow()
    }

    /// Entries in the ready queue and armed timers (for `util::format_run_info`).
    pub(crate) fn run_counts(&self) -> (usize, usize) {
        (self.ready.borrow().len(), self.timers.borrow().len())
    }

    /// Queues `f` to run in the hub on its next turn (FIFO). gevent's `loop.run_callback`.
    pub fn run_callback(&self, f: impl FnOnce() + 'static) {
        self.ready.borrow_mut().push_back(Ready::Call(Box::new(f)));
    }

    /// Queues `task.run()` to run in the hub on its next turn, in FIFO order with callbacks.
    pub(crate) fn run_task(&self, task: Rc<dyn Task>) {
        self.ready.borrow_mut().push_back(Ready::Task(task));
    }

    /// Queues the resumption of `w`'s greenlet.
    fn schedule_wake(&self, w: Rc<Waiter>) {
        self.ready.borrow_mut().push_back(Ready::Wake(w));
    }

    /// Queues the resumption of `g`, the current greenlet, which is about to yield: the wait of
    /// `sleep(ZERO)` without a [`Waiter`]. The entry carries no state of its own, so the yielding
    /// greenlet keeps the two invariants a waiter would: it takes the turn only through
    /// [`Hub::take_yield_turn`] (a stray switch into it is not the turn), and an unwind out of the
    /// yield removes the entry ([`Hub::unqueue_yield`]) before anything else can run.
    #[inline]
    fn schedule_yield(&self, g: greenlet::Greenlet) {
        self.ready.borrow_mut().push_back(Ready::Yield(g));
    }

    /// Whether the switch that just resumed the greenlet `id` was its yield's turn; consumes it.
    #[inline]
    fn take_yield_turn(&self, id: u64) -> bool {
        if self.yield_turn.get() == id {
            self.yield_turn.set(NO_YIELD);
            return true;
        }
        false
    }

    /// Removes the queued yield of greenlet `id` (it unwinds out of its yield: a kill or timeout).
    #[cold]
    fn unqueue_yield(&self, id: u64) {
        self.ready
            .borrow_mut()
            .retain(|e| !matches!(e, Ready::Yield(g) if g.id() == id));
    }

    /// Runs `f` in the hub at `deadline` (not before). Returns an id to cancel it.
    pub fn add_timer(&self, deadline: Instant, f: impl FnOnce() + 'static) -> TimerId {
        self.arm_timer(deadline, TimerAction::Call(Box::new(f)))
    }

    /// [`Hub::add_timer`] that wakes `w` (what a timed wait arms).
    pub(crate) fn add_wake_timer(&self, deadline: Instant, w: Rc<Waiter>) -> TimerId {
        self.arm_timer(deadline, TimerAction::Wake(w))
    }

    fn arm_timer(&self, deadline: Instant, action: TimerAction) -> TimerId {
        let seq = self.timer_seq.get();
        self.timer_seq.set(seq + 1);
        let id = TimerId(deadline, seq);
        self.timers.borrow_mut().insert(id, action);
        id
    }

    /// Whether a timer is still armed.
    pub fn timer_pending(&self, id: TimerId) -> bool {
        self.timers.borrow().contains_key(&id)
    }

    /// Counts a `block_on` parked with its waker held elsewhere (+1) or done with that park (-1).
    pub(crate) fn count_parked_future(&self, parked: bool) {
        let n = self.parked_futures.get();
        self.parked_futures.set(if parked { n + 1 } else { n - 1 });
    }

    /// Wakes `w` when the ready queue is next empty (gevent's `idle`).
    pub(crate) fn add_idle(&self, w: Rc<Waiter>) {
        self.idle.borrow_mut().push_back(w);
    }

    /// Cancels a timer; returns whether it had not fired yet.
    pub fn cancel_timer(&self, id: TimerId) -> bool {
        self.timers.borrow_mut().remove(&id).is_some()
    }

    /// How many timers are armed (every timed wait, started [`Timeout`](crate::Timeout) and
    /// `spawn_later` holds one until it fires or is cancelled). Introspection, for tests and
    /// diagnostics: an armed timer keeps the loop from declaring [`LoopExit`].
    pub fn timer_count(&self) -> usize {
        self.timers.borrow().len()
    }

    /// Switches from the current greenlet to the hub; returns the value the hub (or whoever switches
    /// back) passes.
    ///
    /// # Panics
    /// When called from the hub itself (the hub cannot wait for itself).
    #[inline(always)]
    pub fn switch(&self) -> Value {
        assert!(
            !self.greenlet.is_current(),
            "gevent: a blocking call was made in the hub itself (from a hub callback); \
             spawn a greenlet for blocking work"
        );
        self.greenlet.switch(())
    }

    /// Switches away from the current greenlet, which waits on a [`Waiter`]: straight to the
    /// greenlet whose wake is next in the ready queue when the hub would do nothing else before
    /// resuming it (see the module docs), to the hub otherwise.
    ///
    /// # Panics
    /// As [`Hub::switch`].
    #[inline(always)]
    pub(crate) fn switch_waiting(&self) -> Value {
        if self.in_ready.get() {
            if let Some(w) = self.take_hand_off() {
                // `w` (so its greenlet) is held in this frame while we are suspended, as the hub's
                // frame holds the entry it resumes.
                let v = w.greenlet().switch(());
                Waiter::recycle(w, &self.greenlet);
                return v;
            }
        }
        self.switch()
    }

    /// How many turns (and direct hand-offs) a busy hub lets pass between two zero-timeout polls:
    /// 16 when fds have waiters, 64 when not (such a poll is a syscall; readiness must not starve
    /// either).
    #[inline]
    fn turns_between_polls(&self) -> u32 {
        if self.reactor.has_waiters() {
            16
        } else {
            64
        }
    }

    /// The wake at the front of the ready queue, taken out of it, if the current greenlet may
    /// switch to its greenlet directly (the conditions of the module docs' hand-off).
    #[inline]
    fn take_hand_off(&self) -> Option<Rc<Waiter>> {
        let t = self.turns_without_poll.get();
        if t >= self.turns_between_polls()
            || !self.timers.borrow().is_empty()
            || self.greenlet.is_current()
            || greenlet::is_tracing()
            || self.remote.borrow().has_work.load(Ordering::Relaxed)
        {
            return None;
        }
        let mut ready = self.ready.borrow_mut();
        match ready.front() {
            Some(Ready::Wake(w)) if w.is_woken() && !w.greenlet().is_dead() => {}
            _ => return None,
        }
        let Some(Ready::Wake(w)) = ready.pop_front() else {
            unreachable!("the front entry was just looked at")
        };
        drop(ready);
        self.turns_without_poll.set(t + 1);
        self.watch.tick();
        Some(w)
    }

    /// One turn of the loop. Returns false when nothing can ever happen again.
    fn turn(&self) -> bool {
        // 1. The ready queue, as it stands now (with a time budget while timers wait).
        let n = self.ready.borrow().len();
        // Timers may appear while the queue runs (greenlets starting and going to sleep).
        let start = (n > CHECK_EVERY).then(Instant::now);
        self.in_ready.set(true);
        for i in 0..n {
            if let Some(start) = start {
                if i > 0
                    && i % CHECK_EVERY == 0
                    && !self.timers.borrow().is_empty()
                    && start.elapsed() >= SWITCH_INTERVAL
                {
                    break; // the rest stays at the front of the queue for the next turn
                }
            }
            let entry = self.ready.borrow_mut().pop_front();
            self.watch.tick();
            match entry {
                Some(Ready::Wake(w)) => {
                    w.resume();
                    Waiter::recycle(w, &self.greenlet);
                }
                Some(Ready::Call(f)) => run_guarded(f),
                Some(Ready::Task(t)) => run_guarded(|| t.run()),
                Some(Ready::Yield(g)) => {
                    if !g.is_dead() {
                        self.yield_turn.set(g.id());
                        g.switch(());
                        // Not taken if it left without waiting for it (it died unstarted-ly, or
                        // switched elsewhere): never let it mark a later yield.
                        self.yield_turn.set(NO_YIELD);
                    }
                }
                None => break,
            }
        }
        self.in_ready.set(false);
        // 2. Cross-thread callbacks (from here on the turn uses the poller and the remote queue).
        self.check_fork();
        self.drain_remote();
        // 3. Timers that are due (the clock is read only when there are timers).
        if !self.timers.borrow().is_empty() {
            self.fire_timers(Instant::now());
        }
        // 4. Idle waiters, when nothing else is ready.
        if self.ready.borrow().is_empty() && !self.idle.borrow().is_empty() {
            let idle = std::mem::take(&mut *self.idle.borrow_mut());
            for w in idle {
                w.wake();
            }
        }
        // 5. The poller (a hub callback above may have forked).
        self.check_fork();
        let busy = !self.ready.borrow().is_empty();
        let timeout = if busy {
            let t = self.turns_without_poll.get();
            if t < self.turns_between_polls() {
                self.turns_without_poll.set(t + 1);
                return true;
            }
            Some(Duration::ZERO)
        } else if let Some((id, _)) = self.timers.borrow().first_key_value() {
            Some(id.0.saturating_duration_since(Instant::now()))
        } else if self.reactor.has_waiters()
            || self.parked_futures.get() > 0
            || self.remote.borrow().pending.load(Ordering::SeqCst) > 0
        {
            None
        } else if self.remote_nonempty() {
            Some(Duration::ZERO)
        } else {
            self.watch.empty();
            return false;
        };
        self.turns_without_poll.set(0);
        let mut timeout = if timeout == Some(Duration::ZERO) {
            timeout
        } else {
            trim_stacks_before_sleep(timeout)
        };
        let around = AROUND_SLEEP
            .get()
            .filter(|_| timeout != Some(Duration::ZERO));
        if around.is_some_and(|f| f(true)) {
            timeout = Some(Duration::ZERO);
        }
        self.watch.polling();
        if timeout != Some(Duration::ZERO) && self.spin_for_remote() {
            timeout = Some(Duration::ZERO);
        }
        // I/O that came while the core was yielded was dispatched: no sleep.
        let polled = timeout != Some(Duration::ZERO) && self.yield_for_io();
        if !polled {
            let sleeps = timeout != Some(Duration::ZERO);
            if sleeps {
                let remote = self.remote.borrow();
                remote.sleeping.store(true, Ordering::SeqCst);
                if remote.has_work.load(Ordering::SeqCst) {
                    timeout = Some(Duration::ZERO); // a callback came meanwhile: no sleep
                }
            }
            self.poll_io(timeout);
            if sleeps {
                self.remote
                    .borrow()
                    .sleeping
                    .store(false, Ordering::Relaxed);
            }
        }
        self.watch.running();
        if let Some(f) = around {
            f(false);
        }
        if let Some(f) = AFTER_POLL.get() {
            f();
        }
        true
    }

    /// Before the hub sleeps while another thread owes it an answer (`pending`, e.g. a greenlet
    /// waiting on a [`crate::sync`] primitive an OS thread will set): wait up to [`REMOTE_SPIN`]
    /// for it without sleeping, so that an answer that comes within microseconds costs neither the
    /// answerer's eventfd write nor the hub's wake-up from the poller. Only with more than one
    /// core (on one, the answerer cannot run meanwhile). Returns whether the answer came.
    ///
    /// Adaptive, so that it costs little where it does not pay (the answer takes longer, or the
    /// cores are busy with other work and the answerer cannot run): after `k` spins in a row that
    /// ended without the answer, the next `2^k - 1` sleeps (up to 255) skip it.
    fn spin_for_remote(&self) -> bool {
        let remote = self.remote.borrow();
        if remote.pending.load(Ordering::Relaxed) == 0 || !several_cores() {
            return false;
        }
        if skipped(&self.spin_skip) {
            return false;
        }
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                if remote.has_work.load(Ordering::Relaxed) {
                    self.spin_misses.set(0);
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= REMOTE_SPIN {
                let misses = (self.spin_misses.get() + 1).min(8);
                self.spin_misses.set(misses);
                self.spin_skip.set((1u32 << misses) - 1);
                return false;
            }
        }
    }

    /// Before the hub sleeps in its poller while fds have waiters: gives its core up once
    /// (`sched_yield`) and asks the poller again without waiting. Under load the next readiness
    /// is usually a few microseconds away (the peer, often on this very core, answering what
    /// the turn just wrote); finding it here costs two cheap system calls instead of a sleep
    /// and a wake-up through the scheduler. Returns whether it found (and dispatched) events.
    ///
    /// Measured on the HTTP server, 2 hubs and `wrk -c50` sharing 2 cores: the poll after the
    /// yield finds events 88-97% of the time; voluntary context switches per request 0.15-0.27
    /// -> 0.01-0.03, requests per second 94k -> 123k (medians of 4 alternating rounds; hyper on
    /// tokio multi_thread, same rounds: 103k). With a CPU-bound loop running beside them: 72k and
    /// 71k (tokio 60k). Pinned alone on its core, and with one connection, it changes nothing
    /// measurable (it backs off).
    ///
    /// Adaptive, for when it does not pay, judged over windows of [`YIELD_WINDOW`] yields: a
    /// window in which more than half the polls found nothing (an idle or lightly loaded hub), or
    /// more than [`YIELD_LONG_MAX`] yields lost the core for longer than [`YIELD_LONG`] (a
    /// CPU-bound thread shares the core: waiting in the poller, the hub would have been woken
    /// sooner), makes the next `2^k` sleeps go straight to the poller, `k` counting such windows
    /// in a row (up to 2^10). A single miss must not do that: once the hub sleeps, the peer's
    /// rhythm changes and the next yields miss too (measured: backing off after every miss
    /// gave back the whole gain).
    fn yield_for_io(&self) -> bool {
        if !self.reactor.has_waiters() || skipped(&self.yield_skip) {
            return false;
        }
        let start = Instant::now();
        // SAFETY: `sched_yield` takes no arguments and touches no memory of ours.
        unsafe { libc::sched_yield() };
        let found = {
            let mut events = self.events.borrow_mut();
            let r = self
                .poll
                .borrow_mut()
                .poll(&mut events, Some(Duration::ZERO));
            r.is_ok() && !events.is_empty()
        };
        let mut w = self.yield_window.get();
        w.yields += 1;
        w.misses += u32::from(!found);
        w.longs += u32::from(start.elapsed() >= YIELD_LONG);
        if w.yields == YIELD_WINDOW {
            if w.misses > YIELD_WINDOW / 2 || w.longs > YIELD_LONG_MAX {
                let k = (self.yield_backoff.get() + 1).min(10);
                self.yield_backoff.set(k);
                self.yield_skip.set(1 << k);
            } else {
                self.yield_backoff.set(0);
            }
            w = YieldWindow::default();
        }
        self.yield_window.set(w);
        if found {
            self.dispatch_events();
        }
        found
    }

    fn remote_nonempty(&self) -> bool {
        !self
            .remote
            .borrow()
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    fn drain_remote(&self) {
        // A load first: the swap is a locked instruction, paid on every turn otherwise.
        let remote = self.remote.borrow();
        if !remote.has_work.load(Ordering::Relaxed)
            || !remote.has_work.swap(false, Ordering::Acquire)
        {
            return;
        }
        drop(remote);
        let batch = std::mem::take(
            &mut *self
                .remote
                .borrow()
                .queue
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for f in batch {
            run_guarded(f);
        }
    }

    fn fire_timers(&self, now: Instant) {
        // What the timers make ready goes ahead of what was already waiting (see the module docs).
        let before = self.ready.borrow().len();
        self.expire_timers(now);
        let mut ready = self.ready.borrow_mut();
        let added = ready.len().saturating_sub(before);
        if added > 0 && before > 0 {
            ready.rotate_right(added);
        }
    }

    fn expire_timers(&self, now: Instant) {
        loop {
            let due = {
                let mut timers = self.timers.borrow_mut();
                match timers.first_key_value() {
                    Some((id, _)) if id.0 <= now => timers.pop_first().map(|(_, f)| f),
                    _ => None,
                }
            };
            match due {
                Some(TimerAction::Call(f)) => run_guarded(f),
                Some(TimerAction::Wake(w)) => {
                    w.wake_into(self);
                }
                None => break,
            }
        }
    }

    fn poll_io(&self, timeout: Option<Duration>) {
        let mut events = self.events.borrow_mut();
        let r = self.poll.borrow_mut().poll(&mut events, timeout);
        if let Err(e) = r {
            if e.kind() != std::io::ErrorKind::Interrupted {
                eprintln!("gevent: the hub's poller failed: {e}");
            }
            return;
        }
        drop(events);
        self.dispatch_events();
    }

    /// Hands the events of the last poll to the reactor.
    fn dispatch_events(&self) {
        let events = self.events.borrow();
        // Dispatching only moves waiters into the ready queue (nothing polls meanwhile), so the
        // events are read in place.
        for ev in events.iter() {
            if ev.token() == TOKEN_WAKER {
                continue;
            }
            let rh = ev.is_read_closed() || ev.is_error();
            let wh = ev.is_write_closed() || ev.is_error();
            let (r, w) = (ev.is_readable() || rh, ev.is_writable() || wh);
            self.reactor.dispatch(self, ev.token(), r, w, rh, wh);
        }
    }
}

/// Counts down an adaptive back-off (`Hub::spin_for_remote`, `Hub::yield_for_io`): whether this
/// attempt is one of those to skip.
#[inline]
fn skipped(skip: &Cell<u32>) -> bool {
    let n = skip.get();
    if n > 0 {
        skip.set(n - 1);
    }
    n > 0
}

/// The hub is about to sleep for `timeout` (`None`: until I/O or another thread wakes it): give
/// back the pages of dense stack arenas that have been idle long enough (see `greenlet::stack`),
/// and wake up when the next one is due, so the stacks of a burst that ended do not stay resident
/// while the thread sleeps. Costs one thread-local read when no arena waits for that; never keeps
/// the loop alive (only called when the hub sleeps anyway).
#[inline]
fn trim_stacks_before_sleep(timeout: Option<Duration>) -> Option<Duration> {
    let Some(mut due) = greenlet::stack::trim_due() else {
        return timeout;
    };
    let mut now = Instant::now();
    if due <= now {
        match greenlet::stack::trim_idle() {
            Some(next) => due = next,
            None => return timeout,
        }
        now = Instant::now();
    }
    let until_due = due.saturating_duration_since(now);
    Some(timeout.map_or(until_due, |t| t.min(until_due)))
}

fn run_guarded(f: impl FnOnce()) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
        eprintln!(
            "gevent: a hub callback panicked (ignored, the loop goes on): {}",
            greenlet::panic_message(&*p)
        );
        drop_payload(p);
    }
}

/// Drops a caught panic payload whose own `Drop` may panic: such a panic is caught too (escaping
/// the hub's loop or a greenlet's entry, it would end the hub or leave the greenlet unfinished),
/// and its payload dropped the same way, a few times over; past that it is leaked.
pub(crate) fn drop_payload(mut p: Box<dyn std::any::Any + Send>) {
    for _ in 0..8 {
        match catch_unwind(AssertUnwindSafe(move || drop(p))) {
            Ok(()) => return,
            Err(next) => {
                eprintln!(
                    "gevent: dropping a panic payload panicked (ignored): {}",
                    greenlet::panic_message(&*next)
                );
                p = next;
            }
        }
    }
    std::mem::forget(p);
}

/// The hub greenlet's `run`.
fn run_loop() {
    let hub = get_hub();
    loop {
        // Something is scheduled (the watchdog watches the hub from here on).
        hub.watch.running();
        while hub.turn() {}
        // Nothing can wake anyone: tell the main greenlet (gevent throws LoopExit into hub.parent).
        let main = hub.greenlet.parent().expect("the hub has a parent");
        main.switch(Wakeup::LoopExit);
    }
}

/// Cancels the timer of a timed wait when dropped, so that it is disarmed on every way out of the
/// wait (woken, timed out, killed, a Timeout, LoopExit): a killed `sleep(1 h)` must not leave its
/// timer (and the waiter it holds) armed for the hour, nor delay [`LoopExit`] until then.
pub(crate) struct TimerGuard<'a> {
    hub: &'a Hub,
    id: Option<TimerId>,
}

impl<'a> TimerGuard<'a> {
    /// Guards `id` (nothing with `None`) of `hub` (this thread's).
    #[inline(always)]
    pub(crate) fn new(hub: &'a Hub, id: Option<TimerId>) -> TimerGuard<'a> {
        TimerGuard { hub, id }
    }
}

impl Drop for TimerGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.hub.cancel_timer(id);
        }
    }
}

/// What the hub passes to a greenlet it switches back to when it is not a plain wake (which is
/// `()`, allocation-free).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wakeup {
    /// Nothing will ever happen: the loop is empty.
    LoopExit,
}

// ---- fork (see the module docs) ----

/// Forks seen by this process's line: bumped in every `fork`ed child by the `pthread_atfork`
/// handler, so a child's value differs from its parent's (and a grandchild's from both).
static FORKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The pid of the process that last counted in [`FORKS`] (set with the handler, and by it).
static FORKS_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The number of forks between the first hub of this process's line and this process: compare two
/// readings to learn whether the code runs in a child of the process that took the first.
/// Registers the `pthread_atfork` handler that counts them on first use.
pub(crate) fn fork_generation() -> u64 {
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    AT_FORK.call_once(|| {
        extern "C" fn child() {
            FORKS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: getpid(2) is async-signal-safe and has no preconditions.
            FORKS_PID.store(unsafe { libc::getpid() }, Ordering::Relaxed);
        }
        // SAFETY: getpid(2) has no preconditions.
        FORKS_PID.store(unsafe { libc::getpid() }, Ordering::Relaxed);
        // SAFETY: registers a child handler that only does lock-free atomic stores and getpid(2)
        // (async-signal-safe, as code run in the child of a multi-threaded fork must be).
        let r = unsafe { libc::pthread_atfork(None, None, Some(child)) };
        if r != 0 {
            eprintln!("gevent: pthread_atfork failed ({r}): a fork()ed child would share the hub's poller");
        }
    });
    FORKS.load(Ordering::Relaxed)
}

/// Counts a fork that ran no atfork handler (a raw `fork`/`clone` system call, glibc's `_Fork`):
/// the pid differs from the one the counter was last bumped in. A system call; for `reinit`.
pub(crate) fn count_unseen_fork() {
    fork_generation();
    // SAFETY: getpid(2) has no preconditions.
    let me = unsafe { libc::getpid() };
    if FORKS_PID.swap(me, Ordering::Relaxed) != me {
        FORKS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether this thread's hub exists and was made (or rebuilt) in this process: false in a forked
/// child until its hub's rebuild. No allocation, lock or system call (a `close` hook in a
/// `pre_exec` child asks).
#[cfg(feature = "monkey")]
pub(crate) fn hub_is_this_process() -> bool {
    HUB.try_with(|h| {
        h.try_borrow().is_ok_and(|h| {
            h.as_ref()
                .is_some_and(|hub| hub.forks.get() == FORKS.load(Ordering::Relaxed))
        })
    })
    .unwrap_or(false)
}

/// How long a hub waits for an answer owed by another thread before it sleeps in its poller (see
/// `Hub::spin_for_remote`): about what a sleep and wake-up through the poller cost (10-20 us on
/// the machines measured), so that waiting costs at most what sleeping would have.
const REMOTE_SPIN: Duration = Duration::from_micros(20);

/// How many yields before a sleep `Hub::yield_for_io` judges at a time.
const YIELD_WINDOW: u32 = 32;

/// More long yields than this in a window (6%) make the hub back off (see `Hub::yield_for_io`):
/// under `wrk` on the same cores 0.5-1% of them are, beside a CPU-bound thread 9%.
const YIELD_LONG_MAX: u32 = 2;

/// The yields of the current window, before a sleep (see `Hub::yield_for_io`).
#[derive(Clone, Copy, Default)]
struct YieldWindow {
    yields: u32,
    /// Polls after the yield that found nothing.
    misses: u32,
    /// Yields that kept the hub off its core longer than [`YIELD_LONG`].
    longs: u32,
}

/// A yield before a sleep that kept the hub off its core longer than this did not pay (see
/// `Hub::yield_for_io`): the core went to a thread that runs for a whole time slice (the
/// scheduler's is 0.75 ms and more), not to a peer that answers and waits again (measured under
/// `wrk`: 98% of yields came back within 200 us).
const YIELD_LONG: Duration = Duration::from_micros(250);

/// Whether this machine has more than one core (read once).
fn several_cores() -> bool {
    static SEVERAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SEVERAL.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// A new epoll instance, and a cross-thread queue whose waker is registered with it.
fn new_poller() -> std::io::Result<(mio::Poll, Arc<Remote>)> {
    let poll = mio::Poll::new()?;
    let waker = mio::Waker::new(poll.registry(), TOKEN_WAKER)?;
    let remote = Arc::new(Remote {
        queue: Mutex::new(Vec::new()),
        waker,
        has_work: std::sync::atomic::AtomicBool::new(false),
        pending: AtomicUsize::new(0),
        sleeping: std::sync::atomic::AtomicBool::new(false),
    });
    Ok((poll, remote))
}

thread_local! {
    /// What other layers rebuild on this thread after a fork (see [`on_reinit`]).
    static REINIT_HOOKS: RefCell<Vec<fn()>> = const { RefCell::new(Vec::new()) };
}

/// Has `f` called on this thread every time its hub is rebuilt in a forked child, after the hub
/// itself (for state of higher layers tied to threads that do not survive a fork). Register once.
pub(crate) fn on_reinit(f: fn()) {
    REINIT_HOOKS.with(|h| h.borrow_mut().push(f));
}

impl Hub {
    /// In a forked child whose hub still holds the parent's poller: rebuilds it first. One atomic
    /// load and a compare otherwise.
    #[inline]
    pub(crate) fn check_fork(&self) {
        if FORKS.load(Ordering::Relaxed) != self.forks.get() {
            self.reinit_or_die();
        }
    }

    #[cold]
    fn reinit_or_die(&self) {
        if let Err(e) = self.reinit_after_fork() {
            panic!("gevent: cannot rebuild the hub after fork(): {e}");
        }
    }

    /// The fork generation of this hub's poller, after rebuilding it if the process was forked
    /// since (an fd registered in an earlier one must be registered again before a wait).
    #[inline]
    pub(crate) fn poller_gen(&self) -> u64 {
        self.check_fork();
        self.forks.get()
    }

    /// Whether a registration made in the poller of generation `gen` is this process's own (false
    /// in a child for the parent's, also before the rebuild): never rebuilds.
    #[inline]
    pub(crate) fn registered_here(&self, gen: u64) -> bool {
        gen == self.forks.get() && gen == FORKS.load(Ordering::Relaxed)
    }

    /// Rebuilds what a forked child must not share with its parent: a new poller and waker, a new
    /// cross-thread queue (work pending on the parent's threads never comes back here), greenlets
    /// parked on I/O woken (their wait fails: see `io`); then the hooks of [`on_reinit`]. Doing
    /// nothing when the process was not forked since the last rebuild.
    pub(crate) fn reinit_after_fork(&self) -> std::io::Result<()> {
        let now = FORKS.load(Ordering::Relaxed);
        if now == self.forks.get() {
            return Ok(());
        }
        let (poll, remote) = new_poller()?;
        // The old ones only lose this process's references (the parent keeps its own): closing
        // the inherited epoll fd touches none of the parent's registrations.
        drop(std::mem::replace(&mut *self.poll.borrow_mut(), poll));
        let old = std::mem::replace(&mut *self.remote.borrow_mut(), remote);
        // Its queue may have been mid-push on a thread that does not exist here (its lock held
        // for ever): then its contents are not dropped but leaked, with its eventfd.
        if old.queue.try_lock().is_err() {
            std::mem::forget(old);
        }
        self.forks.set(now);
        self.reactor.after_fork(self);
        let hooks = REINIT_HOOKS.with(|h| h.borrow().clone());
        for f in hooks {
            f();
        }
        Ok(())
    }
}
