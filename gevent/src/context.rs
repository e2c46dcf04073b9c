//! Values that follow a greenlet into the greenlets it spawns: request ids, tracing spans, a
//! deadline (gevent's `spawn_tree_locals`, greenlet's `gr_context` / `contextvars`).
//!
//! # Ground rules
//! - One value per type: [`set`]`(RequestId(7))` replaces the running greenlet's `RequestId`;
//!   [`get`]`::<RequestId>()` reads it (a clone). Use a newtype per meaning.
//! - A greenlet made by [`spawn`](crate::spawn) (or [`Greenlet::new`](crate::Greenlet::new), pools,
//!   servers) starts with the context of the greenlet that made it, as it was then: shared, not
//!   copied (no allocation when a greenlet is spawned, none at all while no value was ever set on
//!   the thread). Setting a value afterwards, in the parent or in the child, changes only that
//!   greenlet's own context (copy on write), like `contextvars`.
//! - The main greenlet, the hub (links, callbacks) and greenlets that have no gevent object
//!   ([`spawn_raw`](crate::spawn_raw), the `greenlet` crate's own) share the thread's root context.
//! - A greenlet's context is dropped with its gevent object.
//!
//! # Examples
//! ```
//! #[derive(Clone, Debug, PartialEq)]
//! struct RequestId(u64);
//!
//! gevent::context::set(RequestId(7));
//! let child = gevent::spawn(|| {
//!     let inherited = gevent::context::get::<RequestId>();
//!     gevent::context::set(RequestId(8)); // its own from now on
//!     inherited
//! });
//! assert_eq!(child.get().unwrap(), Some(RequestId(7)));
//! assert_eq!(gevent::context::get::<RequestId>(), Some(RequestId(7))); // unchanged here
//! ```

use std::any::{Any, TypeId};
use std::rc::Rc;

use crate::greenlet::{current_context, set_current_context, Context};

/// Sets the running greenlet's value of type `T` (replacing the one it had or inherited).
/// Greenlets it spawns from now on inherit it; ones already spawned do not see it.
pub fn set<T: 'static>(value: T) {
    let mut values = current_context()
        .map(|c| c.values.clone())
        .unwrap_or_default();
    let value: Rc<dyn Any> = Rc::new(value);
    match values.iter_mut().find(|(t, _)| *t == TypeId::of::<T>()) {
        Some(slot) => slot.1 = value,
        None => values.push((TypeId::of::<T>(), value)),
    }
    set_current_context(Some(Rc::new(Context { values })));
}

/// The running greenlet's value of type `T` (its own or inherited), cloned.
pub fn get<T: Clone + 'static>() -> Option<T> {
    with(|v: Option<&T>| v.cloned())
}

/// Calls `f` with the running greenlet's value of type `T`, without cloning it.
///
/// `f` may yield and use the context; the value stays alive until it returns.
pub fn with<T: 'static, R>(f: impl FnOnce(Option<&T>) -> R) -> R {
    let ctx = current_context();
    let value = ctx.as_ref().and_then(|c| {
        c.values
            .iter()
            .find(|(t, _)| *t == TypeId::of::<T>())
            .and_then(|(_, v)| v.downcast_ref::<T>())
    });
    f(value)
}

/// Removes the running greenlet's value of type `T`; returns whether it had one.
pub fn remove<T: 'static>() -> bool {
    let Some(ctx) = current_context() else {
        return false;
    };
    if !ctx.values.iter().any(|(t, _)| *t == TypeId::of::<T>()) {
        return false;
    }
    let values: Vec<_> = ctx
        .values
        .iter()
        .filter(|(t, _)| *t != TypeId::of::<T>())
        .cloned()
        .collect();
    set_current_context(Some(Rc::new(Context { values })));
    true
}

/// Removes every value of the running greenlet (greenlets it spawned keep theirs).
pub fn clear() {
    if current_context().is_some() {
        set_current_context(None);
    }
}
