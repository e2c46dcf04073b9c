//! Queues between greenlets (gevent's `gevent.queue`): [`Queue`] (FIFO, with `task_done`/`join` and
//! `shutdown`), [`SimpleQueue`], [`LifoQueue`], [`PriorityQueue`] and the rendezvous [`Channel`].
//!
//! # Ground rules
//! - A queue is a cheap-to-clone handle owned by one thread's hub; clones share the queue.
//! - Waiters are served FIFO, and hand-offs are direct: a `put` that finds a getter waiting gives it
//!   the item (the getter does not race later arrivals for it), and a `get` that frees a slot moves
//!   the oldest waiting putter's item in. A putter is woken only once its item is in, so a woken
//!   putter has nothing left to do.
//! - Invariants: getters wait only while no item is available; putters wait only while the queue is
//!   full (for a [`Channel`], always: it holds nothing).
//! - A waiter that is killed or times out leaves no trace (its guard unlists it on the way out). A
//!   getter handed an item that is killed or times out before it runs gives the item back: to the
//!   next waiting getter, or to the front of the queue (even beyond `maxsize`). No item is lost.
//! - A hand-off costs no allocation beyond the waiter: items travel in the waiter lists themselves.

mod channel;
mod core;
mod errors;
mod store;

pub use self::channel::Channel;
pub use self::core::{Iter, LifoQueue, PriorityQueue, Queue, SimpleQueue, StoreQueue};
pub use self::errors::{
    GetTimeoutError, PutTimeoutError, ShutDown, ShutDownError, TaskDoneError, TryGetError,
    TryPutError,
};
pub use self::store::Store;
