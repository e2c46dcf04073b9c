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
//! - **fork**: threads do not survive `fork()`. In a forked child every pool (the default pool, the
//!   DNS hooks' pool, and pools made before the fork) starts afresh at its first use there: no
//!   threads, an empty queue, nothing shared with the parent's (whose locks a vanished thread may
//!   hold). Jobs queued or running at the fork stay the parent's; a greenlet waiting for one is
//!   woken in the child when its hub is rebuilt, and [`ThreadPool::spawn`] returns `Err` with a
//!   message saying so (the job never completes there).
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
    /// The pool of the process that made it (fork generation `born`).
    shared: Arc<Shared>,
    born: u64,
    maxsize: usize,
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
                let s = new_shared(self.maxsize);
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
            shutdown: false,
        }),
        cond: Condvar::new(),
        maxsize,
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
        let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        st.shutdown = true;
        drop(st);
        shared.cond.notify_all();
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
    /// Whether [`wake_orphans`] is registered with this thread's hub.
    static HOOKED: Cell<bool> = const { Cell::new(false) };
}

/// Run when this thread's hub is rebuilt in a forked child: the jobs of the callers waiting here
/// were the parent's threads' work and never come back; wake the callers (`spawn` says why).
fn wake_orphans() {
    let orphans: Vec<Rc<Waiter>> =
        WAITING.with(|w| w.borrow_mut().drain().map(|(_, w)| w).collect());
    for w in orphans {
        w.wake();
    }
}

/// What [`ThreadPool::spawn`] returns in a forked child for a job submitted in the parent.
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

impl ThreadPool {
    /// A pool of at most `maxsize` threads (at least 1). No thread starts before the first job.
    pub fn new(maxsize: usize) -> ThreadPool {
        let maxsize = maxsize.max(1);
        ThreadPool {
            owner: Arc::new(Owner {
                shared: new_shared(maxsize),
                born: crate::hub::fork_generation(),
                maxsize,
                forked: Mutex::new(None),
            }),
        }
    }

    /// The most threads it will run.
    pub fn maxsize(&self) -> usize {
        self.owner.maxsize
    }

    /// The threads running now (in this process: 0 in a forked child until its first job).
    pub fn size(&self) -> usize {
        lock(&self.owner.current()).threads
    }

    /// Queues `job` and makes sure a thread will run it.
    fn submit(&self, job: Job) -> std::io::Result<()> {
        let shared = &self.owner.current();
        let mut st = lock(shared);
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
            let mut st = lock(shared);
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
        // After `handle`, which rebuilds the hub of a forked child first.
        let gen = crate::hub::fork_generation();
        if !HOOKED.get() {
            HOOKED.set(true);
            crate::hub::on_reinit(wake_orphans);
        }
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
            if crate::hub::fork_generation() != gen {
                // A forked child (the slot's lock may be held by a thread that is not here).
                drop(forget);
                return Err(Box::new(LOST_IN_FORK));
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

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
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
