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
//!
//! # Names
//! `put`, `get`, `peek` and `join` wait as long as it takes; `try_*` never wait; `*_timeout` wait
//! at most a timeout. gevent's method names are search aliases of these (`put_nowait` is
//! [`Queue::try_put`], `qsize` is [`Queue::len`], `empty`/`full` are [`Queue::is_empty`]/
//! [`Queue::is_full`]). The errors follow the same three ways to wait ([`PutError`]/[`ShutDownError`],
//! `Try*Error`, `*TimeoutError`), and gevent's `Empty`, `Full(item)` and `ShutDown` are exported
//! as names for what they correspond to.
//!
//! # Files
//! `core.rs` holds the queue (its shared state and hand-off rules, and the handle); `store.rs` the
//! orders items come out in; `errors.rs` the errors; `channel.rs` the rendezvous [`Channel`].

mod channel;
mod core;
mod errors;
mod store;

pub use self::channel::Channel;
pub use self::core::{Iter, LifoQueue, PriorityQueue, Queue, SimpleQueue};
pub use self::errors::{
    GetTimeoutError, PutError, PutTimeoutError, ShutDownError, TaskDoneError, TryGetError,
    TryPutError,
};
pub use self::store::Store;

// gevent's exception names, so code ported from gevent reads the same: `Err(ShutDown)` from a `get`,
// `Err(Empty)` from a `try_get`, `Err(Full(item))` from a `try_put` (constructors and patterns).
pub use self::errors::ShutDownError as ShutDown;
pub use self::errors::TryGetError::Empty;
pub use self::errors::TryPutError::Full;
