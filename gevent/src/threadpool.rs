//! [`ThreadPool`]: run blocking work on OS threads while the hub keeps serving the other greenlets
//! (gevent's `gevent.threadpool.ThreadPool`).
//!
//! The calling greenlet parks on a [`Waiter`]; a worker thread runs the closure, stores the result (or
//! the panic) in a shared slot and hands the hub a callback through [`HubHandle::run_callback`] that
//! wakes the caller. While a job is in flight the hub is told so ([`HubHandle::begin_pending`]), so a
//! main greenlet waiting for it never gets [`LoopExit`](crate::LoopExit).
//!
//! # Ground rules
//! - Workers are started on demand up to `maxsize` and live until the pool is dropped; jobs beyond
//!   `maxsize` queue FIFO.
//! - A `Waiter` is `!Send`, so it never leaves the hub's thread: the worker carries only a job id,
//!   and the callback looks the waiter up in a thread-local table of the hub's thread.
//! - A caller killed while waiting leaves the job running to completion on its thread (threads
//!   cannot be cancelled); its result is dropped on the worker.
//!
//! # Examples
//! ```
//! let pool = gevent::threadpool::ThreadPool::new(2);
//! let r = pool.spawn(|| std::thread::current().id());
//! assert_ne!(r.unwrap(), std::thread::current().id());
//! ```

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};

use crate::hub::{get_hub, HubHandle, Waiter};

type Job = Box<dyn FnOnce() + Send>;

struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
    maxsize: usize,
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

/// A bounded set of OS threads that run blocking closures for greenlets.
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
    /// Callers waiting in this thread, by job id.
    static WAITING: RefCell<HashMap<u64, Rc<Waiter>>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
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
                        shutdown: false,
                    }),
                    cond: Condvar::new(),
                    maxsize: maxsize.max(1),
                }),
            }),
        }
    }

    /// The most threads it will run.
    pub fn maxsize(&self) -> usize {
        self.owner.shared.maxsize
    }

    /// The threads running now.
    pub fn size(&self) -> usize {
        self.lock().threads
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.owner
            .shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `job` and makes sure a thread will run it.
    fn submit(&self, job: Job) -> std::io::Result<()> {
        let shared = &self.owner.shared;
        let mut st = self.lock();
        st.queue.push_back(job);
        // Idle workers cover the queue (a woken worker stays counted idle until it runs): wake one.
        if st.queue.len() <= st.idle {
            drop(st);
            shared.cond.notify_one();
            return Ok(());
        }
        if st.threads >= shared.maxsize {
            return Ok(()); // a busy worker takes it when done
        }
        st.threads += 1;
        drop(st);
        let worker_shared = shared.clone();
        let r = std::thread::Builder::new()
            .name("gevent-threadpool".into())
            .spawn(move || worker(worker_shared));
        if let Err(e) = r {
            let mut st = self.lock();
            st.threads -= 1;
            if st.threads == 0 {
                // Nobody will ever run it: take it back and report.
                st.queue.pop_back();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Runs `f` on one of the pool's threads; the calling greenlet waits, the hub keeps running the
    /// others. Returns `f`'s value, or the payload it panicked with (as `std::thread::JoinHandle::join`).
    ///
    /// # Panics
    /// If no thread can be started at all (the error is the panic message); when called from the hub
    /// itself (a hub callback).
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it at once; `f` keeps running on its thread to the
    /// end and its result is dropped there.
    pub fn spawn<T, F>(&self, f: F) -> Result<T, Box<dyn Any + Send>>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let hub = get_hub();
        let handle: HubHandle = hub.handle();
        let id = NEXT_ID.with(|n| {
            let i = n.get();
            n.set(i + 1);
            i
        });
        let slot: Arc<Mutex<Option<std::thread::Result<T>>>> = Arc::new(Mutex::new(None));
        let slot2 = slot.clone();
        let waiter = Waiter::new();
        WAITING.with(|w| w.borrow_mut().insert(id, waiter.clone()));
        struct Forget(u64);
        impl Drop for Forget {
            fn drop(&mut self) {
                let _ = WAITING.try_with(|w| w.borrow_mut().remove(&self.0));
            }
        }
        let forget = Forget(id);
        handle.begin_pending();
        let h2 = handle.clone();
        let job: Job = Box::new(move || {
            let r = catch_unwind(AssertUnwindSafe(f));
            *slot2.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            // Queue the wake before ending `pending`, so the hub never sees neither.
            h2.run_callback(move || {
                let w = WAITING.with(|w| w.borrow_mut().remove(&id));
                if let Some(w) = w {
                    w.wake();
                }
            });
            h2.end_pending();
        });
        if let Err(e) = self.submit(job) {
            handle.end_pending();
            panic!("gevent: the thread pool cannot start a thread: {e}");
        }
        loop {
            if let Err(e) = waiter.wait() {
                // Cannot happen while the job is pending; keep the invariant visible.
                panic!("{e}");
            }
            if let Some(r) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                drop(forget);
                return r;
            }
        }
    }

    /// Like [`ThreadPool::spawn`], but a panic in `f` continues unwinding in the caller
    /// (gevent's `apply`).
    ///
    /// # Panics
    /// With `f`'s panic; as [`ThreadPool::spawn`].
    ///
    /// # Cancel safety
    /// As [`ThreadPool::spawn`].
    pub fn apply<T, F>(&self, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        match self.spawn(f) {
            Ok(v) => v,
            Err(p) => resume_unwind(p),
        }
    }
}

fn worker(shared: Arc<Shared>) {
    let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            // Jobs catch their own panics; this one is a last resort so the count stays right.
            let _ = catch_unwind(AssertUnwindSafe(job));
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
