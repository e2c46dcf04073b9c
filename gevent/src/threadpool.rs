//! [`ThreadPool`]: run blocking work on OS threads while the hub keeps serving the other greenlets
//! (gevent's `gevent.threadpool.ThreadPool`).
//!
//! [`ThreadPool::spawn`] queues a closure and returns a [`JobHandle`] at once; the handle can be
//! waited on and joined from a greenlet on any hub (which parks, the hub running the others) or from
//! a plain OS thread (which blocks). [`ThreadPool::apply`] is spawn-and-join with the panic
//! continuing in the caller; [`ThreadPool::map`] and [`ThreadPool::imap`] run a function over many
//! items, results in order. The result travels in a [`crate::sync`] one-shot slot: the worker fills
//! it and wakes the joiner through its hub's [`HubHandle`](crate::HubHandle); while a greenlet waits
//! for it, its hub counts the job as outstanding work (no [`LoopExit`](crate::LoopExit)).
//!
//! # Ground rules
//! - Workers are started on demand up to `maxsize` ([`ThreadPool::set_maxsize`] changes it at run
//!   time: more threads start for queued jobs, extra idle ones exit, busy ones after their job);
//!   jobs beyond `maxsize` queue FIFO.
//! - A joiner killed while waiting leaves the job running to completion on its thread (threads
//!   cannot be cancelled); its result is dropped there.
//! - **fork**: threads do not survive `fork()`. In a forked child every pool (the default pool, the
//!   DNS hooks' pool, and pools made before the fork) starts afresh at its first use there: no
//!   threads, an empty queue, nothing shared with the parent's (whose locks a vanished thread may
//!   hold), the size the parent's had at the fork. Jobs queued or running at the fork stay the
//!   parent's: in the child their [`JobHandle`] never becomes ready, a greenlet waiting for one is
//!   woken when its hub is rebuilt, and [`JobHandle::join`] returns `Err` with a message saying so
//!   (a job that had finished before the fork keeps its result).
//!
//! # Examples
//! ```
//! let pool = gevent::threadpool::ThreadPool::new(2);
//! let h = pool.spawn(|| std::thread::current().id());
//! // ... the greenlet is free to do other things meanwhile ...
//! assert_ne!(h.join().unwrap(), std::thread::current().id());
//! assert_eq!(pool.map(|x: u32| x * 2, [1, 2, 3]), [2, 4, 6]);
//! ```

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::hub::Waiter;
use crate::sync::Slot;

type Job = Box<dyn FnOnce() + Send>;

struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    maxsize: usize,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
}

/// Owned by the [`ThreadPool`] handles (not by the workers): its drop shuts the pool down.
struct Owner {
    /// The pool of the process that made it (fork generation `born`).
    shared: Arc<Shared>,
    born: u64,
    /// The latest [`ThreadPool::set_maxsize`] (or `new`), for the pool a forked child makes.
    maxsize: AtomicUsize,
    /// In a forked child (and its children): the pool made there, with its generation. Never
    /// locked in the process that made the pool.
    forked: Mutex<Option<(u64, Arc<Shared>)>>,
}

impl Owner {
    /// This process's pool.
    fn current(&self) -> Arc<Shared> {
        let gen = crate::hub::fork_generation();
        if gen == self.born {
            return self.shared.clone();
        }
        let mut f = self.forked.lock().unwrap_or_else(|e| e.into_inner());
        match &*f {
            Some((g, s)) if *g == gen => s.clone(),
            // The parent's (or an older generation's) state is left alone: its lock may be held by
            // a thread that does not exist here. It leaks, with the jobs it holds.
            _ => {
                let s = new_shared(self.maxsize.load(Ordering::Relaxed));
                if let Some((_, old)) = f.replace((gen, s.clone())) {
                    std::mem::forget(old);
                }
                s
            }
        }
    }
}

fn new_shared(maxsize: usize) -> Arc<Shared> {
    Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            threads: 0,
            idle: 0,
            maxsize,
            shutdown: false,
        }),
        cond: Condvar::new(),
    })
}

impl Drop for Owner {
    fn drop(&mut self) {
        let shared = if crate::hub::fork_generation() == self.born {
            self.shared.clone()
        } else {
            // A forked child: shut down its own pool, if it made one; the parent's is not ours.
            let f = self.forked.get_mut().unwrap_or_else(|e| e.into_inner());
            let shared = std::mem::replace(&mut self.shared, new_shared(1));
            std::mem::forget(shared);
            match f.take() {
                Some((g, s)) if g == crate::hub::fork_generation() => s,
                Some((_, s)) => {
                    std::mem::forget(s);
                    return;
                }
                None => return,
            }
        };
        let mut st = lock(&shared);
        st.shutdown = true;
        drop(st);
        shared.cond.notify_all();
    }
}

/// A bounded set of OS threads that run blocking closures for greenlets and threads.
///
/// Cloning gives another handle to the same pool; the pool's threads finish their queued jobs and
/// exit once every handle is dropped. `Send + Sync`.
#[derive(Clone)]
pub struct ThreadPool {
    owner: Arc<Owner>,
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ThreadPool(maxsize {}, threads {})",
            self.maxsize(),
            self.size()
        )
    }
}

thread_local! {
    static DEFAULT: RefCell<Option<ThreadPool>> = const { RefCell::new(None) };
    /// Greenlets of this thread waiting in [`JobHandle::wait`] and friends, by wait id.
    static JOINING: RefCell<HashMap<u64, Rc<Waiter>>> = RefCell::new(HashMap::new());
    static NEXT_WAIT: Cell<u64> = const { Cell::new(1) };
    /// Whether [`wake_orphans`] is registered with this thread's hub.
    static HOOKED: Cell<bool> = const { Cell::new(false) };
}

/// Run when this thread's hub is rebuilt in a forked child: the jobs the greenlets waiting here
/// wait for are the parent's threads' work and never finish here; wake them (`join` says why).
fn wake_orphans() {
    let orphans: Vec<Rc<Waiter>> =
        JOINING.with(|w| w.borrow_mut().drain().map(|(_, w)| w).collect());
    for w in orphans {
        w.wake();
    }
}

/// What [`JobHandle::join`] returns in a forked child for a job submitted in the parent.
const LOST_IN_FORK: &str =
    "gevent: the thread-pool job was running or queued when the process forked; \
     its thread does not exist in the child, which never gets its result";

/// The default size of [`default_pool`] (gevent's default `maxsize` is 10 as well).
pub const DEFAULT_MAXSIZE: usize = 10;

/// This thread's (this hub's) default pool, created on first use with [`DEFAULT_MAXSIZE`] threads.
/// Name resolution in [`crate::net`] runs here.
pub fn default_pool() -> ThreadPool {
    DEFAULT.with(|d| {
        d.borrow_mut()
            .get_or_insert_with(|| ThreadPool::new(DEFAULT_MAXSIZE))
            .clone()
    })
}

/// The result of a job given to [`ThreadPool::spawn`], to wait for and join from a greenlet on any
/// hub or from any OS thread (gevent's `AsyncResult` returned by `spawn`). `Send + Sync` when `T:
/// Send`.
///
/// Dropping it detaches the job: it still runs, its result is dropped.
///
/// In a forked child, a job of the parent's never finishes (see the module docs, **fork**).
pub struct JobHandle<T> {
    slot: Arc<Slot<std::thread::Result<T>>>,
    /// The fork generation of the process that spawned the job.
    born: u64,
}

impl<T> fmt::Debug for JobHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self
            .slot
            .try_with(|r| match r {
                None => "running",
                Some(Ok(_)) => "done",
                Some(Err(_)) => "panicked",
            })
            .unwrap_or("busy");
        let state = if self.lost() && state == "running" {
            "lost in fork"
        } else {
            state
        };
        write!(f, "JobHandle({state})")
    }
}

/// Unregisters a greenlet's wait on a [`JobHandle`], however the wait ends.
struct Joining<'a, T> {
    id: u64,
    w: Rc<Waiter>,
    handle: &'a JobHandle<T>,
}

impl<T> Drop for Joining<'_, T> {
    fn drop(&mut self) {
        let _ = JOINING.try_with(|j| j.borrow_mut().remove(&self.id));
        if self.handle.lost() {
            // A forked child: the slot's lock may be held by a thread that is not here.
            self.handle.slot.forget_subscription(&self.w);
        } else {
            self.handle.slot.unsubscribe(&self.w);
        }
    }
}

impl<T> JobHandle<T> {
    /// Whether the job is the parent's of a fork since (it never finishes here).
    fn lost(&self) -> bool {
        crate::hub::fork_generation() != self.born
    }

    /// Whether the job has finished (returned or panicked).
    pub fn ready(&self) -> bool {
        self.slot.is_ready()
    }

    /// Whether the job has finished without panicking.
    pub fn successful(&self) -> bool {
        self.ready() && self.slot.try_with(|r| matches!(r, Some(Ok(_)))) == Some(true)
    }

    /// Waits until the job has finished or `deadline`; returns whether it has. Returns at once in
    /// a forked child for a job of the parent's.
    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        if self.slot.is_ready() {
            return true;
        }
        if self.lost() {
            return false;
        }
        if crate::hub::try_hub().is_none() {
            // A plain thread: it cannot be forked away from under itself.
            return self.slot.wait(deadline);
        }
        // A greenlet waits through a subscription whose waiter a fork can reach (`wake_orphans`).
        if !HOOKED.get() {
            HOOKED.set(true);
            crate::hub::on_reinit(wake_orphans);
        }
        let id = NEXT_WAIT.get();
        NEXT_WAIT.set(id + 1);
        let w = Waiter::new();
        JOINING.with(|j| j.borrow_mut().insert(id, w.clone()));
        let joining = Joining {
            id,
            w: w.clone(),
            handle: self,
        };
        self.slot.subscribe(&w);
        // No LoopExit: the subscription counts as pending work of the hub (in a forked child
        // the rebuild wakes it).
        let _ = crate::wait::wait_with_deadline(&w, deadline);
        drop(joining);
        self.slot.is_ready()
    }

    /// Waits until the job has finished (a greenlet parks, a thread without a hub blocks). In a
    /// forked child, for a job of the parent's, returns at once (or when the hub is rebuilt, for a
    /// greenlet waiting at the fork) without it having finished.
    ///
    /// # Cancel safety
    /// A kill or [`Timeout`](crate::Timeout) landing here unwinds out of it; the job is not
    /// affected.
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits at most `timeout`; returns whether the job has finished.
    ///
    /// # Cancel safety
    /// As [`JobHandle::wait`].
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Some(Instant::now() + timeout))
    }

    /// Waits for the job and returns its value, or the payload it panicked with (as
    /// `std::thread::JoinHandle::join`). In a forked child, for a job of the parent's that had not
    /// finished at the fork: `Err` at once with a message (a `&str`) saying so.
    ///
    /// # Cancel safety
    /// A kill or [`Timeout`](crate::Timeout) landing here unwinds out of it; the job keeps running
    /// on its thread to the end and its result is dropped.
    pub fn join(self) -> std::thread::Result<T> {
        loop {
            self.wait_until(None);
            if self.lost() {
                return self
                    .slot
                    .try_take()
                    .flatten()
                    .unwrap_or_else(|| Err(Box::new(LOST_IN_FORK)));
            }
            if let Some(r) = self.slot.take() {
                return r;
            }
        }
    }
}

/// With `gevent::wait`, `iwait` and `joinall`, alongside greenlets and events.
impl<T> crate::greenlet::Waitable for JobHandle<T> {
    fn is_ready(&self) -> bool {
        self.ready()
    }
    fn subscribe(&self, w: &std::rc::Rc<crate::Waiter>) {
        self.slot.subscribe(w);
    }
    fn unsubscribe(&self, w: &std::rc::Rc<crate::Waiter>) {
        self.slot.unsubscribe(w);
    }
}

impl ThreadPool {
    /// A pool of at most `maxsize` threads (at least 1). No thread starts before the first job.
    pub fn new(maxsize: usize) -> ThreadPool {
        let maxsize = maxsize.max(1);
        ThreadPool {
            owner: Arc::new(Owner {
                shared: new_shared(maxsize),
                born: crate::hub::fork_generation(),
                maxsize: AtomicUsize::new(maxsize),
                forked: Mutex::new(None),
            }),
        }
    }

    /// The most threads it will run.
    pub fn maxsize(&self) -> usize {
        self.owner.maxsize.load(Ordering::Relaxed)
    }

    /// Changes the most threads it will run (at least 1), at run time: raising it starts threads
    /// for queued jobs now; lowering it ends idle threads beyond it now and busy ones after their
    /// current job (gevent's `maxsize` setter).
    ///
    /// # Errors
    /// The error of starting a thread, if one was needed and none could be started (the jobs wait
    /// for the running threads).
    pub fn set_maxsize(&self, maxsize: usize) -> std::io::Result<()> {
        let shared = self.owner.current();
        let mut st = lock(&shared);
        st.maxsize = maxsize.max(1);
        // Under the pool's lock, so racing setters leave both in agreement.
        self.owner.maxsize.store(st.maxsize, Ordering::Relaxed);
        let wanted = st.queue.len().saturating_sub(st.idle);
        let room = st.maxsize.saturating_sub(st.threads);
        let start = wanted.min(room);
        st.threads += start;
        drop(st);
        // Idle threads beyond the new size exit when they look again.
        shared.cond.notify_all();
        for _ in 0..start {
            start_worker(&shared)?;
        }
        Ok(())
    }

    /// The threads running now (in this process: 0 in a forked child until its first job).
    pub fn size(&self) -> usize {
        lock(&self.owner.current()).threads
    }

    /// Jobs queued and not started yet (in this process).
    pub fn queued(&self) -> usize {
        lock(&self.owner.current()).queue.len()
    }

    /// Queues `job` and makes sure a thread will run it; gives it back if no thread ever could.
    fn submit(&self, job: Job) -> Result<(), (Job, std::io::Error)> {
        let shared = &self.owner.current();
        let mut st = lock(shared);
        st.queue.push_back(job);
        // Idle workers cover the queue (a woken worker stays counted idle until it runs): wake one.
        if st.queue.len() <= st.idle {
            drop(st);
            shared.cond.notify_one();
            return Ok(());
        }
        if st.threads >= st.maxsize {
            return Ok(()); // a busy worker takes it when done
        }
        st.threads += 1;
        drop(st);
        if let Err(e) = start_worker(shared) {
            let mut st = lock(shared);
            if st.threads == 0 {
                // Nobody will ever run it: take it back and report.
                let job = st.queue.pop_back().expect("just queued");
                return Err((job, e));
            }
        }
        Ok(())
    }

    /// Queues `f` to run on one of the pool's threads and returns its handle at once (gevent's
    /// `spawn`). Callable from anywhere: a greenlet, a hub callback, an OS thread.
    ///
    /// If no thread can be started at all, the handle holds a failure whose payload is the error
    /// message (a `String`).
    pub fn spawn<T, F>(&self, f: F) -> JobHandle<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let born = crate::hub::fork_generation();
        let slot: Arc<Slot<std::thread::Result<T>>> = Arc::new(Slot::new());
        let s2 = slot.clone();
        let job: Job = Box::new(move || {
            let r = catch_unwind(AssertUnwindSafe(f));
            s2.put(r);
        });
        if let Err((job, e)) = self.submit(job) {
            drop(job);
            slot.put(Err(Box::new(format!(
                "gevent: the thread pool cannot start a thread: {e}"
            ))));
        }
        JobHandle { slot, born }
    }

    /// Runs `f` on one of the pool's threads and waits for it (a greenlet parks, the hub runs the
    /// others; a thread without a hub blocks); a panic in `f` continues unwinding in the caller
    /// (gevent's `apply`).
    ///
    /// # Panics
    /// With `f`'s panic, or if no thread can be started at all.
    ///
    /// # Cancel safety
    /// As [`JobHandle::join`].
    pub fn apply<T, F>(&self, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        match self.spawn(f).join() {
            Ok(v) => v,
            Err(p) => resume_unwind(p),
        }
    }

    /// Runs `f` on every item on the pool's threads and returns the results in order (gevent's
    /// `map`).
    ///
    /// # Panics
    /// With the first (in order) panic of `f`.
    ///
    /// # Cancel safety
    /// As [`ThreadPool::imap`].
    pub fn map<I, T, F>(&self, f: F, items: I) -> Vec<T>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        T: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
    {
        self.imap(f, items).collect()
    }

    /// Runs `f` on the items on the pool's threads, yielding the results in order as they are
    /// ready (gevent's `imap`). At most twice `maxsize` items are in flight ahead of the consumer,
    /// so the items may be an endless iterator.
    ///
    /// # Panics
    /// The iterator's `next` continues a panic of `f`.
    ///
    /// # Cancel safety
    /// A kill or [`Timeout`](crate::Timeout) landing in `next` unwinds out of it; the jobs in flight
    /// run to completion on their threads and their results are dropped there.
    pub fn imap<I, T, F>(&self, f: F, items: I) -> IMap<T, I::IntoIter, F>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        T: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
    {
        IMap {
            pool: self.clone(),
            items: items.into_iter(),
            f: Arc::new(f),
            inflight: VecDeque::new(),
        }
    }
}

/// The iterator of [`ThreadPool::imap`].
pub struct IMap<T, It, F> {
    pool: ThreadPool,
    items: It,
    f: Arc<F>,
    inflight: VecDeque<JobHandle<T>>,
}

impl<T, It, F> fmt::Debug for IMap<T, It, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IMap(in flight: {})", self.inflight.len())
    }
}

impl<T, It, F> Iterator for IMap<T, It, F>
where
    It: Iterator,
    It::Item: Send + 'static,
    T: Send + 'static,
    F: Fn(It::Item) -> T + Send + Sync + 'static,
{
    type Item = T;

    fn next(&mut self) -> Option<T> {
        let window = 2 * self.pool.maxsize();
        while self.inflight.len() < window {
            let Some(item) = self.items.next() else { break };
            let f = self.f.clone();
            self.inflight.push_back(self.pool.spawn(move || f(item)));
        }
        let h = self.inflight.pop_front()?;
        match h.join() {
            Ok(v) => Some(v),
            Err(p) => resume_unwind(p),
        }
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts a worker of `shared` already counted in `threads`; uncounts it if that fails.
fn start_worker(shared: &Arc<Shared>) -> std::io::Result<()> {
    let worker_shared = shared.clone();
    let r = std::thread::Builder::new()
        .name("gevent-threadpool".into())
        .spawn(move || worker(worker_shared));
    if let Err(e) = r {
        lock(shared).threads -= 1;
        return Err(e);
    }
    Ok(())
}

fn worker(shared: Arc<Shared>) {
    let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if st.threads > st.maxsize {
            st.threads -= 1; // the pool was made smaller
            return;
        }
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            // Jobs catch their own panics; this one is a last resort so the count stays right.
            if let Err(p) = catch_unwind(AssertUnwindSafe(job)) {
                drop_panic(p);
            }
            st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        if st.shutdown {
            st.threads -= 1;
            return;
        }
        st.idle += 1;
        st = shared.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        st.idle -= 1;
    }
}

fn drop_panic(p: Box<dyn Any + Send>) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(p)));
}
