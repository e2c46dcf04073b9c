//! [`Hubs`]: a hub on each of N OS threads (thread-per-core), and [`Task`]s handed to them from
//! any thread.
//!
//! A hub and its greenlets belong to one thread; to use more cores, start more hubs. [`Hubs::start`]
//! runs a hub on each of N threads (default: [`std::thread::available_parallelism`]); from any
//! thread, an OS thread or a greenlet on any hub, [`Spawner::spawn_on`] runs a `Send` closure in a
//! new greenlet on the hub you choose ([`Spawner::spawn`]: the next one, round-robin;
//! [`Spawner::spawn_each`]: one on every hub) and gives back a [`Task`] whose result (or panic) any
//! greenlet or thread can wait for. [`run_each`] does all of that in one call.
//!
//! # How load is balanced, and why not more
//! Greenlets never migrate: a greenlet runs, from start to end, on the hub it was spawned on. Work is
//! spread only where it enters:
//! - **Connections**: [`StreamServer::bind_workers`](crate::server::StreamServer::bind_workers) gives
//!   every hub its own listening socket bound to the same address with `SO_REUSEPORT`; the kernel
//!   spreads new connections across them (on Linux by a hash of the connection's addresses), and
//!   each connection is served by the hub that accepted it.
//! - **Explicit placement**: [`Spawner::spawn_on`] (a hub you pick, e.g. by a key's hash so that
//!   related work shares a hub and its `Rc` state), or [`Spawner::spawn`] (round-robin).
//!
//! There is no work stealing. A stackful greenlet that moved to another thread in the middle of its
//! run would see another thread's thread-locals after any wait, while its frames may still hold
//! references into the first thread's (an `Rc`, a `RefCell` borrow, std's `Mutex` guard, a
//! thread-local's address cached by the compiler across the switch): unsound, and not detectable
//! (may#6, where work-stealing stackful coroutines hit exactly that). Everything in this crate is
//! therefore `!Send` and stays on its hub; what crosses is a `Send` closure, once, before it starts.
//!
//! # How work crosses
//! [`Spawner::spawn_on`] hands the hub a callback through its remote queue
//! ([`HubHandle::run_callback`]: a mutex-protected queue and an eventfd wake); the callback spawns the
//! greenlet. The result travels back through the [`Task`]'s shared slot: an OS thread waiting on it
//! blocks on a condition variable; a greenlet waiting on it parks, and the completion wakes it
//! through its own hub's remote queue (directly, when the completing greenlet is on the same hub).
//!
//! # Shutdown
//! [`Hubs::shutdown`] stops taking new work, lets every hub's greenlets finish for a grace period,
//! kills those still alive, reports how many there were per hub, and joins the threads. Dropping
//! [`Hubs`] does the same with no grace period.
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! use gevent::hubs::Hubs;
//!
//! let hubs = Hubs::start(2).unwrap();
//! // One on each hub, from this (plain) thread: each says which thread it ran on.
//! let tasks = hubs.spawner().spawn_each(|_i| std::thread::current().id());
//! let ids: Vec<_> = tasks.into_iter().map(|t| t.join().unwrap()).collect();
//! assert_ne!(ids[0], ids[1]);
//! // A panic comes back as an error.
//! let t = hubs.spawner().spawn_on(1, || -> u32 { panic!("boom") });
//! assert!(t.join().unwrap_err().to_string().contains("boom"));
//! let report = hubs.shutdown(Duration::from_secs(1));
//! assert_eq!(report.alive, vec![0, 0]);
//! ```

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use greenlet::GreenletExit;

use crate::hub::{get_hub, try_hub, HubHandle, Waiter};

/// How long [`Hubs::shutdown`] waits for killed greenlets to die (their destructors may wait).
const KILL_WAIT: Duration = Duration::from_secs(1);

/// Why a [`Task`] has no value.
#[derive(Debug)]
#[non_exhaustive]
pub enum TaskError {
    /// The closure panicked; the payload, as `std::thread::JoinHandle::join` gives it.
    Panicked(Box<dyn Any + Send>),
    /// Its greenlet was killed (by a kill, or by [`Hubs::shutdown`]).
    Killed,
    /// The closure never ran: the hub was shut down before it could start it.
    NotRun,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Panicked(p) => {
                write!(f, "the task panicked: {}", greenlet::panic_message(&**p))
            }
            TaskError::Killed => f.write_str("the task's greenlet was killed"),
            TaskError::NotRun => f.write_str("the task never ran: its hub was shut down"),
        }
    }
}

impl std::error::Error for TaskError {}

/// A greenlet parked on a [`Task`]: where its waiter is (thread, hub) and its key in that thread's
/// [`WAITING`] table.
struct Parked {
    thread: ThreadId,
    hub: HubHandle,
    id: u64,
}

struct SlotState<T> {
    result: Option<Result<T, TaskError>>,
    done: bool,
    parked: Vec<Parked>,
}

/// What a [`Task`] and the greenlet running its closure share.
struct Slot<T> {
    state: Mutex<SlotState<T>>,
    cond: Condvar,
}

impl<T> Slot<T> {
    fn new() -> Slot<T> {
        Slot {
            state: Mutex::new(SlotState {
                result: None,
                done: false,
                parked: Vec::new(),
            }),
            cond: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SlotState<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores the result and wakes every waiter: threads through the condition variable,
    /// greenlets through their hubs.
    fn complete(&self, r: Result<T, TaskError>) {
        let parked = {
            let mut st = self.lock();
            if st.done {
                return;
            }
            st.result = Some(r);
            st.done = true;
            std::mem::take(&mut st.parked)
        };
        self.cond.notify_all();
        if parked.is_empty() {
            return;
        }
        let me = std::thread::current().id();
        for p in parked {
            if p.thread == me {
                wake_parked(p.id);
            } else {
                let id = p.id;
                p.hub.run_callback(move || wake_parked(id));
            }
        }
    }
}

thread_local! {
    /// Greenlets of this thread parked on a task, by id.
    static WAITING: RefCell<HashMap<u64, Rc<Waiter>>> = RefCell::new(HashMap::new());
    /// On a worker thread: the waiter its main greenlet parks on until the hub is stopped.
    static STOP: RefCell<Option<Rc<Waiter>>> = const { RefCell::new(None) };
    /// On a worker thread: the grace period the stop asked for.
    static GRACE: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    /// On a worker thread: its group and index.
    static CURRENT: RefCell<Option<(Spawner, usize)>> = const { RefCell::new(None) };
}

static NEXT_PARK_ID: AtomicU64 = AtomicU64::new(1);

fn wake_parked(id: u64) {
    let w = WAITING
        .try_with(|w| w.borrow_mut().remove(&id))
        .ok()
        .flatten();
    if let Some(w) = w {
        w.wake();
    }
}

/// Completes the slot with [`TaskError::NotRun`] if dropped before it was completed (the closure
/// was dropped unrun: its hub's queue went away, or its greenlet was killed before it started).
struct Completer<T> {
    slot: Arc<Slot<T>>,
}

impl<T> Completer<T> {
    fn complete(&self, r: Result<T, TaskError>) {
        self.slot.complete(r);
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        self.slot.complete(Err(TaskError::NotRun));
    }
}

/// The result of a closure handed to a hub: wait for it from any greenlet (it parks) or any OS
/// thread (it blocks). `Send + Sync`.
pub struct Task<T> {
    slot: Arc<Slot<T>>,
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ready = self.slot.lock().done;
        write!(f, "Task({})", if ready { "ready" } else { "pending" })
    }
}

impl<T: Send + 'static> Task<T> {
    /// Whether the result is in (waiting would return at once).
    pub fn is_ready(&self) -> bool {
        self.slot.lock().done
    }

    /// Waits until the result is in or `timeout` passes (forever with `None`); returns whether it
    /// is in. In a greenlet (on any hub) the greenlet parks and its hub runs the others; on a thread
    /// without a hub, the thread blocks.
    ///
    /// # Panics
    /// When called from a hub callback (the hub cannot wait).
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it; the task goes on and its result stays
    /// for a later wait.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        if self.is_ready() {
            return true;
        }
        match try_hub() {
            Some(_) => self.park(deadline),
            None => self.block(deadline),
        }
    }

    /// Waits for the result and returns it.
    ///
    /// # Errors
    /// [`TaskError`]: the closure panicked, was killed, or never ran.
    ///
    /// # Panics
    /// As [`Task::wait`].
    ///
    /// # Cancel safety
    /// As [`Task::wait`]; the result is dropped with the task.
    pub fn join(self) -> Result<T, TaskError> {
        self.wait(None);
        self.take()
    }

    /// [`Task::join`] if the result comes within `timeout`; otherwise the task back.
    ///
    /// # Errors
    /// `Err(self)` on timeout.
    ///
    /// # Cancel safety
    /// As [`Task::wait`].
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, TaskError>, Task<T>> {
        if self.wait(Some(timeout)) {
            Ok(self.take())
        } else {
            Err(self)
        }
    }

    fn take(&self) -> Result<T, TaskError> {
        self.slot
            .lock()
            .result
            .take()
            .unwrap_or(Err(TaskError::NotRun))
    }

    /// An OS thread without a hub: block on the condition variable.
    fn block(&self, deadline: Option<Instant>) -> bool {
        let mut st = self.slot.lock();
        while !st.done {
            match deadline {
                None => st = self.slot.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    st = self
                        .slot
                        .cond
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        true
    }

    /// A greenlet: park on a waiter the completion wakes through this hub.
    fn park(&self, deadline: Option<Instant>) -> bool {
        let hub = get_hub();
        let handle = hub.handle();
        let id = NEXT_PARK_ID.fetch_add(1, Ordering::Relaxed);
        {
            let mut st = self.slot.lock();
            if st.done {
                return true;
            }
            st.parked.push(Parked {
                thread: std::thread::current().id(),
                hub: handle.clone(),
                id,
            });
        }
        // While parked, the hub must not declare LoopExit: the wake comes from another thread.
        handle.begin_pending();
        /// Undoes the registration however the wait ends (woken, timed out, killed).
        struct Unpark<'a, T> {
            slot: &'a Slot<T>,
            handle: HubHandle,
            id: u64,
        }
        impl<T> Drop for Unpark<'_, T> {
            fn drop(&mut self) {
                self.handle.end_pending();
                let _ = WAITING.try_with(|m| m.borrow_mut().remove(&self.id));
                self.slot.lock().parked.retain(|p| p.id != self.id);
            }
        }
        let _unpark = Unpark {
            slot: &self.slot,
            handle,
            id,
        };
        loop {
            // A waiter is woken once: a fresh one for each round (the completion wakes whatever
            // is registered under `id` when its callback runs, on this thread).
            let w = Waiter::new();
            WAITING.with(|m| m.borrow_mut().insert(id, w.clone()));
            if self.is_ready() {
                return true;
            }
            // LoopExit cannot come while pending is declared; a timeout ends the wait.
            let _ = crate::wait::wait_with_deadline(&w, deadline);
            if self.is_ready() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
        }
    }
}

/// One hub of a group, as other threads see it.
struct Member {
    handle: HubHandle,
    thread: ThreadId,
    /// False once the group is shutting down: no new work is queued (checked under this lock, so
    /// every callback queued before the stop runs before it).
    open: Mutex<bool>,
}

struct Shared {
    members: Vec<Member>,
    next: AtomicUsize,
}

/// Hands closures to the hubs of a [`Hubs`] group, from any thread. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Spawner {
    shared: Arc<Shared>,
}

impl fmt::Debug for Spawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Spawner({} hubs)", self.len())
    }
}

impl Spawner {
    /// The spawner of the group whose hub runs on this thread, if it is one.
    pub fn current() -> Option<Spawner> {
        CURRENT
            .try_with(|c| c.borrow().as_ref().map(|(s, _)| s.clone()))
            .ok()
            .flatten()
    }

    /// How many hubs the group has.
    pub fn len(&self) -> usize {
        self.shared.members.len()
    }

    /// Always false: a group has at least one hub.
    pub fn is_empty(&self) -> bool {
        self.shared.members.is_empty()
    }

    /// A handle to hub `i`'s remote queue (to run a callback there).
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn handle(&self, i: usize) -> HubHandle {
        self.member(i).handle.clone()
    }

    fn member(&self, i: usize) -> &Member {
        let n = self.len();
        self.shared
            .members
            .get(i)
            .unwrap_or_else(|| panic!("gevent::hubs: no hub {i} (the group has {n})"))
    }

    /// Runs `f` in a new greenlet on hub `i`, from any thread; returns at once with its [`Task`].
    /// The greenlet starts on that hub's next turn and stays there. If the group is shut down, the
    /// task fails with [`TaskError::NotRun`].
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn spawn_on<T, F>(&self, i: usize, f: F) -> Task<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let member = self.member(i);
        let slot = Arc::new(Slot::new());
        let completer = Completer { slot: slot.clone() };
        let open = member.open.lock().unwrap_or_else(|e| e.into_inner());
        if *open && member.thread == std::thread::current().id() {
            // Onto this thread's own hub: spawned directly, no trip through the remote queue.
            crate::spawn(move || run_task(completer, f));
        } else if *open {
            member.handle.run_callback(move || {
                crate::spawn(move || run_task(completer, f));
            });
        } else {
            drop(completer);
        }
        drop(open);
        Task { slot }
    }

    /// [`Spawner::spawn_on`] the next hub, round-robin.
    pub fn spawn<T, F>(&self, f: F) -> Task<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let i = self.shared.next.fetch_add(1, Ordering::Relaxed) % self.len();
        self.spawn_on(i, f)
    }

    /// Runs `f(i)` on every hub `i`; the tasks in hub order.
    pub fn spawn_each<T, F>(&self, f: F) -> Vec<Task<T>>
    where
        T: Send + 'static,
        F: Fn(usize) -> T + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        (0..self.len())
            .map(|i| {
                let f = f.clone();
                self.spawn_on(i, move || f(i))
            })
            .collect()
    }
}

/// The body of a task's greenlet.
fn run_task<T, F: FnOnce() -> T>(completer: Completer<T>, f: F) {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => completer.complete(Ok(v)),
        Err(p) if p.is::<GreenletExit>() => {
            completer.complete(Err(TaskError::Killed));
            // The greenlet dies killed, as it would have without the task around it.
            resume_unwind(p);
        }
        Err(p) => completer.complete(Err(TaskError::Panicked(p))),
    }
}

/// The index of this thread's hub in its [`Hubs`] group, if it is one.
pub fn current_index() -> Option<usize> {
    CURRENT
        .try_with(|c| c.borrow().as_ref().map(|(_, i)| *i))
        .ok()
        .flatten()
}

/// What [`Hubs::shutdown`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Per hub, the gevent greenlets still alive when the grace period ended (they were then
    /// killed). Greenlets of `spawn_raw` are not counted.
    pub alive: Vec<usize>,
}

impl ShutdownReport {
    /// All hubs' [`alive`](ShutdownReport::alive) together.
    pub fn total_alive(&self) -> usize {
        self.alive.iter().sum()
    }
}

/// N hubs on N threads (see the [module docs](self)). Shut down by [`Hubs::shutdown`] or on drop
/// (with no grace period; dropped on one of its own hubs, it stops them without joining the
/// threads).
pub struct Hubs {
    spawner: Spawner,
    threads: Vec<JoinHandle<usize>>,
}

impl fmt::Debug for Hubs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hubs({})", self.len())
    }
}

impl Hubs {
    /// A hub on each of [`std::thread::available_parallelism`] threads (1 if unknown).
    ///
    /// # Errors
    /// As [`Hubs::start`].
    pub fn new() -> io::Result<Hubs> {
        Hubs::start(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// A hub on each of `n` new threads (named `gevent-hub-I`), each running until
    /// [`Hubs::shutdown`].
    ///
    /// # Errors
    /// `InvalidInput` if `n` is 0; a thread or a hub that cannot be made (the threads already
    /// started are stopped again).
    pub fn start(n: usize) -> io::Result<Hubs> {
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "gevent::hubs: a group needs at least one hub",
            ));
        }
        let (tx, rx) = mpsc::channel::<(usize, HubHandle, ThreadId)>();
        let mut threads = Vec::with_capacity(n);
        let mut go = Vec::with_capacity(n);
        for i in 0..n {
            let tx = tx.clone();
            let (go_tx, go_rx) = mpsc::channel::<Spawner>();
            let t = std::thread::Builder::new()
                .name(format!("gevent-hub-{i}"))
                .spawn(move || worker(i, tx, go_rx));
            match t {
                Ok(t) => {
                    threads.push(t);
                    go.push(go_tx);
                }
                Err(e) => {
                    drop(go); // the started threads find no spawner and end
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(e);
                }
            }
        }
        drop(tx);
        let mut handles: Vec<Option<(HubHandle, ThreadId)>> = (0..n).map(|_| None).collect();
        for _ in 0..n {
            match rx.recv() {
                Ok((i, h, id)) => handles[i] = Some((h, id)),
                Err(_) => break, // a thread died before reporting: see below
            }
        }
        if handles.iter().any(Option::is_none) {
            drop(go);
            for t in threads {
                let _ = t.join();
            }
            return Err(io::Error::other("gevent::hubs: a hub could not be started"));
        }
        let members = handles
            .into_iter()
            .flatten()
            .map(|(handle, thread)| Member {
                handle,
                thread,
                open: Mutex::new(true),
            })
            .collect();
        let spawner = Spawner {
            shared: Arc::new(Shared {
                members,
                next: AtomicUsize::new(0),
            }),
        };
        for g in go {
            // A thread that is gone shows up when it is joined.
            let _ = g.send(spawner.clone());
        }
        Ok(Hubs { spawner, threads })
    }

    /// How many hubs.
    pub fn len(&self) -> usize {
        self.spawner.len()
    }

    /// Always false: a group has at least one hub.
    pub fn is_empty(&self) -> bool {
        self.spawner.is_empty()
    }

    /// A handle that hands work to these hubs from any thread.
    pub fn spawner(&self) -> Spawner {
        self.spawner.clone()
    }

    /// [`Spawner::spawn_on`].
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn spawn_on<T, F>(&self, i: usize, f: F) -> Task<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.spawner.spawn_on(i, f)
    }

    /// [`Spawner::spawn`] (round-robin).
    pub fn spawn<T, F>(&self, f: F) -> Task<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.spawner.spawn(f)
    }

    /// [`Spawner::spawn_each`].
    pub fn spawn_each<T, F>(&self, f: F) -> Vec<Task<T>>
    where
        T: Send + 'static,
        F: Fn(usize) -> T + Send + Sync + 'static,
    {
        self.spawner.spawn_each(f)
    }

    /// Stops every hub and joins its thread: no new work is taken ([`Spawner::spawn_on`] gives
    /// [`TaskError::NotRun`] from now on), work already handed over is started, the greenlets of
    /// each hub get up to `grace` to finish, those still alive then are counted (the report) and
    /// killed (their tasks fail with [`TaskError::Killed`]), and each thread ends once they are dead
    /// (or after one more second: a greenlet that refuses to die is left to the thread's exit).
    /// The hubs stop in parallel.
    ///
    /// Blocks the calling thread (also when called in a greenlet).
    ///
    /// # Panics
    /// When called on one of the group's own threads (it would wait for itself).
    pub fn shutdown(mut self, grace: Duration) -> ShutdownReport {
        self.stop(grace)
    }

    fn stop(&mut self, grace: Duration) -> ShutdownReport {
        assert!(
            !self.on_own_thread(),
            "gevent::hubs: Hubs::shutdown was called on one of its own hubs"
        );
        self.signal_stop(grace);
        let alive = std::mem::take(&mut self.threads)
            .into_iter()
            .map(|t| match t.join() {
                Ok(n) => n,
                Err(p) => {
                    eprintln!(
                        "gevent::hubs: a hub thread panicked: {}",
                        greenlet::panic_message(&*p)
                    );
                    0
                }
            })
            .collect();
        ShutdownReport { alive }
    }

    /// Whether the caller runs on one of the group's threads.
    pub(crate) fn on_own_thread(&self) -> bool {
        let me = std::thread::current().id();
        self.spawner.shared.members.iter().any(|m| m.thread == me)
    }

    /// Closes the group to new work and asks every hub to stop (without waiting).
    fn signal_stop(&self, grace: Duration) {
        let members = &self.spawner.shared.members;
        for m in members {
            *m.open.lock().unwrap_or_else(|e| e.into_inner()) = false;
        }
        for m in members {
            m.handle.run_callback(move || begin_stop(grace));
        }
    }
}

impl Drop for Hubs {
    fn drop(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        if self.on_own_thread() {
            // Dropped on one of its own hubs: that thread cannot be joined from itself. Every hub
            // stops all the same; the threads are left to end on their own.
            self.signal_stop(Duration::ZERO);
            self.threads.clear();
            return;
        }
        self.stop(Duration::ZERO);
    }
}

/// Starts `n` hubs (the available parallelism with `None`), runs `f(i)` on each hub `i`, waits for
/// all of them, shuts the hubs down (killing what `f` left running) and returns the results in hub
/// order.
///
/// # Examples
/// ```
/// let r = gevent::hubs::run_each(Some(2), |i| i * 10).unwrap();
/// assert_eq!(r.into_iter().map(Result::unwrap).collect::<Vec<_>>(), vec![0, 10]);
/// ```
///
/// # Errors
/// As [`Hubs::start`].
///
/// # Cancel safety
/// In a greenlet, a kill or Timeout landing in the wait unwinds out of it, and the hubs are shut
/// down on the way (with no grace period).
pub fn run_each<T, F>(n: Option<usize>, f: F) -> io::Result<Vec<Result<T, TaskError>>>
where
    T: Send + 'static,
    F: Fn(usize) -> T + Send + Sync + 'static,
{
    let hubs = match n {
        Some(n) => Hubs::start(n)?,
        None => Hubs::new()?,
    };
    let tasks = hubs.spawn_each(f);
    let results = tasks.into_iter().map(Task::join).collect();
    hubs.shutdown(Duration::ZERO);
    Ok(results)
}

/// Run in a worker's hub by [`Hubs::stop`]: wakes the main greenlet.
fn begin_stop(grace: Duration) {
    GRACE.with(|g| g.set(grace));
    if let Some(w) = STOP.with(|s| s.borrow_mut().take()) {
        w.wake();
    }
}

/// A worker thread: makes its hub, reports it, parks its main greenlet until stopped (the hub runs
/// everything else meanwhile), then finishes its greenlets. Returns how many were alive when the
/// grace period ended.
fn worker(
    index: usize,
    tx: mpsc::Sender<(usize, HubHandle, ThreadId)>,
    go: mpsc::Receiver<Spawner>,
) -> usize {
    let hub = get_hub();
    let handle = hub.handle();
    drop(hub);
    // The loop must not end while the main greenlet waits for the stop.
    handle.begin_pending();
    let stop = Waiter::new();
    STOP.with(|s| *s.borrow_mut() = Some(stop.clone()));
    let reported = tx
        .send((index, handle.clone(), std::thread::current().id()))
        .is_ok();
    drop(tx);
    let spawner = if reported { go.recv().ok() } else { None };
    let Some(spawner) = spawner else {
        handle.end_pending();
        return 0;
    };
    CURRENT.with(|c| *c.borrow_mut() = Some((spawner, index)));
    // Woken by `begin_stop` (LoopExit cannot come while pending is declared).
    let _ = stop.wait();
    let alive = finish_greenlets(GRACE.with(Cell::get));
    CURRENT.with(|c| c.borrow_mut().take());
    handle.end_pending();
    alive
}

/// Waits up to `grace` for this thread's greenlets to finish, then kills the rest; returns how many
/// were left to kill.
fn finish_greenlets(grace: Duration) -> usize {
    let deadline = Instant::now() + grace;
    wait_live(deadline);
    let left = crate::greenlet::live_greenlets();
    let alive = left.len();
    if alive == 0 {
        return 0;
    }
    // Greenlets spawned by the dying ones are killed too (a few rounds, bounded in time).
    let kill_deadline = Instant::now() + KILL_WAIT;
    let mut live = left;
    for _ in 0..3 {
        for g in &live {
            g.clone().kill_nowait();
        }
        drop(live);
        wait_live(kill_deadline);
        live = crate::greenlet::live_greenlets();
        if live.is_empty() {
            break;
        }
    }
    alive
}

/// Waits until this thread has no live gevent greenlet or `deadline` passes.
fn wait_live(deadline: Instant) {
    loop {
        let live = crate::greenlet::live_greenlets();
        let now = Instant::now();
        if live.is_empty() || now >= deadline {
            return;
        }
        let ws: Vec<Box<dyn crate::greenlet::Waitable>> =
            live.into_iter().map(|g| g.waitable()).collect();
        crate::wait(ws.iter().map(|w| &**w), Some(deadline - now), None);
    }
}
