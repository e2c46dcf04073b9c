//! The waiting core shared by every primitive of [`crate::sync`]: a [`Node`] that a primitive keeps in
//! its FIFO queue (behind its own `std::sync::Mutex`), and a [`Parker`] that the waiting side keeps on
//! its stack.
//!
//! A waiter is either a greenlet (the calling thread has a hub) or a plain OS thread (no hub):
//! - a greenlet parks on a hub [`Waiter`]; the `Rc<Waiter>` never leaves its thread (it is `!Send`):
//!   it sits in a thread-local table under a process-unique id, and the node carries only that id, the
//!   thread's key and the hub's [`HubHandle`]. A waker on the same thread wakes it directly (the hub's
//!   ready queue: no syscall); a waker on another thread hands the hub a callback that does it.
//!   While parked, the greenlet counts as outstanding cross-thread work of its hub
//!   ([`HubHandle::begin_pending`]), so the hub does not declare `LoopExit` while another thread may
//!   still wake it;
//! - an OS thread parks with `std::thread::park` and is woken with `unpark`.
//!
//! A primitive decides the outcome under its own lock (it sets the node's state while it holds it,
//! and removes the node from its queue); the wake itself may happen after that lock is released.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::hub::{HubHandle, Waiter};

/// Still waiting.
pub(super) const WAITING: u8 = 0;
/// Granted / notified: what it waited for was handed to it.
pub(super) const NOTIFIED: u8 = 1;
/// The primitive was closed while it waited.
pub(super) const CLOSED: u8 = 2;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's key (process-unique, never 0).
    static THREAD_KEY: u64 = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    /// Greenlets of this thread parked on a `sync` primitive, by id.
    static PARKED: RefCell<HashMap<u64, Rc<Waiter>>> = RefCell::new(HashMap::new());
}

fn thread_key() -> u64 {
    THREAD_KEY.try_with(|k| *k).unwrap_or(0)
}

/// Whom a node wakes.
enum Target {
    Greenlet {
        thread: u64,
        id: u64,
        hub: HubHandle,
    },
    Thread(std::thread::Thread),
}

/// One waiter in a primitive's queue. `V` is what a channel hands over with the wake (`()` elsewhere).
pub(crate) struct Node<V = ()> {
    target: Target,
    state: AtomicU8,
    /// A value handed to (or taken back from) the waiter; only touched under the primitive's lock.
    pub(super) value: Mutex<Option<V>>,
}

impl<V> Node<V> {
    /// The current state (`WAITING`, `NOTIFIED`, `CLOSED`).
    pub(super) fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// Sets the outcome; the caller holds the primitive's lock and calls [`wake`] afterwards.
    pub(super) fn set_state(&self, s: u8) {
        self.state.store(s, Ordering::Release);
    }

    /// The value slot.
    pub(super) fn slot(&self) -> MutexGuard<'_, Option<V>> {
        self.value.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Wakes the waiter of `node` (whose state was set).
pub(super) fn wake<V>(node: &Node<V>) {
    match &node.target {
        Target::Thread(t) => t.unpark(),
        Target::Greenlet { thread, id, hub } => {
            if *thread == thread_key() {
                wake_local(*id);
            } else {
                let id = *id;
                hub.run_callback(move || wake_local(id));
            }
        }
    }
}

/// Wakes every node of `nodes`, one hub callback per other hub rather than one per waiter.
pub(super) fn wake_all<V>(nodes: Vec<Arc<Node<V>>>) {
    if nodes.len() == 1 {
        wake(&nodes[0]);
        return;
    }
    let me = thread_key();
    let mut remote: Vec<(u64, HubHandle, Vec<u64>)> = Vec::new();
    for n in &nodes {
        match &n.target {
            Target::Thread(t) => t.unpark(),
            Target::Greenlet { thread, id, .. } if *thread == me => wake_local(*id),
            Target::Greenlet { thread, id, hub } => {
                match remote.iter_mut().find(|(t, _, _)| t == thread) {
                    Some((_, _, ids)) => ids.push(*id),
                    None => remote.push((*thread, hub.clone(), vec![*id])),
                }
            }
        }
    }
    for (_, hub, ids) in remote {
        hub.run_callback(move || ids.into_iter().for_each(wake_local));
    }
}

fn wake_local(id: u64) {
    let w = PARKED
        .try_with(|p| p.borrow().get(&id).cloned())
        .ok()
        .flatten();
    if let Some(w) = w {
        w.wake();
    }
}

/// The waiting side of one wait: creates the node, parks, and on drop unregisters (whatever way the
/// wait ends, an unwinding kill or Timeout included).
pub(crate) struct Parker<V = ()> {
    pub(super) node: Arc<Node<V>>,
    local: Option<(u64, Rc<Waiter>)>,
}

impl<V> Parker<V> {
    /// A parker for the caller: a greenlet's if this thread has a hub, the thread's otherwise.
    pub(super) fn new() -> Parker<V> {
        match crate::hub::try_hub() {
            Some(hub) => {
                let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
                let w = Waiter::new();
                PARKED.with(|p| p.borrow_mut().insert(id, w.clone()));
                let handle = hub.handle();
                handle.begin_pending();
                Parker {
                    node: Arc::new(Node {
                        target: Target::Greenlet {
                            thread: thread_key(),
                            id,
                            hub: handle,
                        },
                        state: AtomicU8::new(WAITING),
                        value: Mutex::new(None),
                    }),
                    local: Some((id, w)),
                }
            }
            None => Parker {
                node: Arc::new(Node {
                    target: Target::Thread(std::thread::current()),
                    state: AtomicU8::new(WAITING),
                    value: Mutex::new(None),
                }),
                local: None,
            },
        }
    }

    /// Waits until the node's state leaves `WAITING` or `deadline` passes; returns the state then
    /// (the caller settles a `WAITING` outcome under its lock: it may have been granted meanwhile).
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here (greenlets only) unwinds out of it; the caller's guard settles
    /// the node under the primitive's lock.
    pub(super) fn park(&self, deadline: Option<Instant>) -> u8 {
        match &self.local {
            Some((_, w)) => {
                if self.node.state() == WAITING {
                    // LoopExit cannot happen: this wait counts as pending work of the hub.
                    let _ = crate::wait::wait_with_deadline(w, deadline);
                }
                self.node.state()
            }
            None => loop {
                let s = self.node.state();
                if s != WAITING {
                    return s;
                }
                if let Some(s) = self.spin() {
                    return s;
                }
                match deadline {
                    None => std::thread::park(),
                    Some(d) => {
                        let now = Instant::now();
                        if now >= d {
                            return self.node.state();
                        }
                        std::thread::park_timeout(d - now);
                    }
                }
            },
        }
    }
}

/// How an OS thread waits on its node before it parks: rounds of 1, 2, .. 256 pause instructions
/// (crossbeam's `Backoff` without its yields, which on a busy machine hand the core away for a
/// whole time slice), a few microseconds in all. An answer from a greenlet of a hub that is running
/// (or spinning for it, see the hub's `REMOTE_SPIN`) comes within that and costs no sleep and
/// wake-up of this thread.
const SPIN_ROUNDS: u32 = 9;

impl<V> Parker<V> {
    /// An OS thread's short wait before it parks: the node's state once it left `WAITING`, or
    /// `None` after [`SPIN_ROUNDS`].
    fn spin(&self) -> Option<u8> {
        for round in 0..SPIN_ROUNDS {
            for _ in 0..1u32 << round {
                std::hint::spin_loop();
            }
            let s = self.node.state();
            if s != WAITING {
                return Some(s);
            }
        }
        None
    }
}

impl<V> Drop for Parker<V> {
    fn drop(&mut self) {
        if let Some((id, _)) = self.local.take() {
            let _ = PARKED.try_with(|p| p.borrow_mut().remove(&id));
            if let Target::Greenlet { hub, .. } = &self.node.target {
                hub.end_pending();
            }
        }
    }
}

/// A hub waiter subscribed to a primitive through [`crate::greenlet::Waitable`] (`gevent::wait`,
/// `iwait`, `joinall`): woken like a parked greenlet until unsubscribed.
struct Sub {
    /// The primitive's address.
    key: usize,
    /// The waiter's address (compared, never dereferenced; the `PARKED` entry keeps it alive).
    waiter: *const Waiter,
    id: u64,
    node: Arc<Node>,
}

thread_local! {
    static SUBS: RefCell<Vec<Sub>> = const { RefCell::new(Vec::new()) };
}

/// Subscribes hub waiter `w` (of this thread) to the primitive at `key`; returns the node to queue.
/// Until [`unsubscribe`], its hub counts it as outstanding cross-thread work.
pub(super) fn subscribe(key: usize, w: &Rc<Waiter>) -> Arc<Node> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    PARKED.with(|p| p.borrow_mut().insert(id, w.clone()));
    let handle = crate::hub::get_hub().handle();
    handle.begin_pending();
    let node = Arc::new(Node {
        target: Target::Greenlet {
            thread: thread_key(),
            id,
            hub: handle,
        },
        state: AtomicU8::new(WAITING),
        value: Mutex::new(None),
    });
    SUBS.with(|s| {
        s.borrow_mut().push(Sub {
            key,
            waiter: Rc::as_ptr(w),
            id,
            node: node.clone(),
        })
    });
    node
}

/// Ends the subscription of `w` to the primitive at `key`; returns its node (for the primitive to
/// unlist), if it was subscribed.
pub(super) fn unsubscribe(key: usize, w: &Rc<Waiter>) -> Option<Arc<Node>> {
    let sub = SUBS
        .try_with(|s| {
            let mut s = s.borrow_mut();
            let i = s
                .iter()
                .position(|x| x.key == key && x.waiter == Rc::as_ptr(w))?;
            Some(s.swap_remove(i))
        })
        .ok()
        .flatten()?;
    let _ = PARKED.try_with(|p| p.borrow_mut().remove(&sub.id));
    if let Target::Greenlet { hub, .. } = &sub.node.target {
        hub.end_pending();
    }
    Some(sub.node)
}

/// Runs `f` when dropped unless disarmed: the cancel path of a wait (a kill or Timeout unwinding).
pub(super) struct OnUnwind<F: FnMut()>(pub(super) Option<F>);

impl<F: FnMut()> OnUnwind<F> {
    /// The wait ended normally: do not run it.
    pub(super) fn disarm(mut self) {
        self.0 = None;
    }
}

impl<F: FnMut()> Drop for OnUnwind<F> {
    fn drop(&mut self) {
        if let Some(mut f) = self.0.take() {
            f();
        }
    }
}

/// Locks a primitive's internal mutex (never held across a switch; poisoning is meaningless for it).
pub(super) fn lock<S>(m: &Mutex<S>) -> MutexGuard<'_, S> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes `node` from `queue`; returns whether it was there.
pub(super) fn unlist<V>(
    queue: &mut std::collections::VecDeque<Arc<Node<V>>>,
    node: &Arc<Node<V>>,
) -> bool {
    match queue.iter().position(|n| Arc::ptr_eq(n, node)) {
        Some(i) => {
            queue.remove(i);
            true
        }
        None => false,
    }
}
