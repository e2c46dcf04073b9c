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
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

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
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        st.shutdown = true;
        drop(st);
        self.shared.cond.notify_all();
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
}

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
pub struct JobHandle<T> {
    slot: Arc<Slot<std::thread::Result<T>>>,
}

impl<T> fmt::Debug for JobHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.slot.with(|r| match r {
            None => "running",
            Some(Ok(_)) => "done",
            Some(Err(_)) => "panicked",
        });
        write!(f, "JobHandle({state})")
    }
}

impl<T> JobHandle<T> {
    /// Whether the job has finished (returned or panicked).
    pub fn ready(&self) -> bool {
        self.slot.is_ready()
    }

    /// Whether the job has finished without panicking.
    pub fn successful(&self) -> bool {
        self.slot.with(|r| matches!(r, Some(Ok(_))))
    }

    /// Waits until the job has finished (a greenlet parks, a thread without a hub blocks).
    ///
    /// # Cancel safety
    /// A kill or [`Timeout`](crate::Timeout) landing here unwinds out of it; the job is not
    /// affected.
    pub fn wait(&self) {
        self.slot.wait(None);
    }

    /// Waits at most `timeout`; returns whether the job has finished.
    ///
    /// # Cancel safety
    /// As [`JobHandle::wait`].
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.slot.wait(Some(Instant::now() + timeout))
    }

    /// Waits for the job and returns its value, or the payload it panicked with (as
    /// `std::thread::JoinHandle::join`).
    ///
    /// # Cancel safety
    /// A kill or [`Timeout`](crate::Timeout) landing here unwinds out of it; the job keeps running
    /// on its thread to the end and its result is dropped.
    pub fn join(self) -> std::thread::Result<T> {
        loop {
            self.slot.wait(None);
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
        ThreadPool {
            owner: Arc::new(Owner {
                shared: Arc::new(Shared {
                    state: Mutex::new(State {
                        queue: VecDeque::new(),
                        threads: 0,
                        idle: 0,
                        maxsize: maxsize.max(1),
                        shutdown: false,
                    }),
                    cond: Condvar::new(),
                }),
            }),
        }
    }

    /// The most threads it will run.
    pub fn maxsize(&self) -> usize {
        self.lock().maxsize
    }

    /// Changes the most threads it will run (at least 1), at run time: raising it starts threads
    /// for queued jobs now; lowering it ends idle threads beyond it now and busy ones after their
    /// current job (gevent's `maxsize` setter).
    ///
    /// # Errors
    /// The error of starting a thread, if one was needed and none could be started (the jobs wait
    /// for the running threads).
    pub fn set_maxsize(&self, maxsize: usize) -> std::io::Result<()> {
        let mut st = self.lock();
        st.maxsize = maxsize.max(1);
        let wanted = st.queue.len().saturating_sub(st.idle);
        let room = st.maxsize.saturating_sub(st.threads);
        let start = wanted.min(room);
        st.threads += start;
        drop(st);
        // Idle threads beyond the new size exit when they look again.
        self.owner.shared.cond.notify_all();
        for _ in 0..start {
            self.start_worker()?;
        }
        Ok(())
    }

    /// The threads running now.
    pub fn size(&self) -> usize {
        self.lock().threads
    }

    /// Jobs queued and not started yet.
    pub fn queued(&self) -> usize {
        self.lock().queue.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.owner
            .shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a worker already counted in `threads`; uncounts it if that fails.
    fn start_worker(&self) -> std::io::Result<()> {
        let worker_shared = self.owner.shared.clone();
        let r = std::thread::Builder::new()
            .name("gevent-threadpool".into())
            .spawn(move || worker(worker_shared));
        if let Err(e) = r {
            self.lock().threads -= 1;
            return Err(e);
        }
        Ok(())
    }

    /// Queues `job` and makes sure a thread will run it; gives it back if no thread ever could.
    fn submit(&self, job: Job) -> Result<(), (Job, std::io::Error)> {
        let shared = &self.owner.shared;
        let mut st = self.lock();
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
        if let Err(e) = self.start_worker() {
            let mut st = self.lock();
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
        JobHandle { slot }
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
