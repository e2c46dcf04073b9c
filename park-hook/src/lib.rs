//! A meeting point between a greenlet scheduler and a lock library that keeps per-thread wait
//! state, so that neither depends on the other.
//!
//! parking_lot_core keeps each OS thread's wait state (its futex word and the links of the wait
//! queue it sits in) in a `thread_local!`. Greenlets of one thread share it, so two of them cannot
//! both wait inside parking_lot. The fork of parking_lot_core in this repository
//! (`vendor/parking_lot_core`, see its `PATCHED.md`) asks [`current`] for a per-greenlet value
//! before it falls back to the thread's own; gevent's `monkey::patch_thread()` installs the
//! [`Provider`] that answers. Until one is installed, [`current`] returns `None` (one atomic
//! load) and the library behaves as upstream.
//!
//! ```
//! use greenlet_park_hook::{current, Key};
//! use std::ptr::NonNull;
//!
//! fn new() -> NonNull<()> {
//!     NonNull::from(Box::leak(Box::new(0u64))).cast()
//! }
//! unsafe fn free(p: NonNull<()>) {
//!     // SAFETY: `p` came from `new` (the provider's contract), freed once.
//!     drop(unsafe { Box::from_raw(p.cast::<u64>().as_ptr()) });
//! }
//! static KEY: Key = Key { new, free };
//! // No provider installed: the caller uses its thread's own state.
//! assert!(current(&KEY).is_none());
//! ```

#![no_std]
#![warn(missing_docs)]

use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};

/// How a library's per-greenlet value is made and freed. Use one `static` per kind of value: the
/// provider tells values apart by the key's address.
pub struct Key {
    /// Makes the value, the first time a greenlet asks for it. It may allocate and take locks
    /// (the provider holds none of its own while it runs), but must not ask [`current`] for the
    /// same key.
    pub new: fn() -> NonNull<()>,
    /// Frees a value `new` made, once its greenlet has finished (or, for a thread's main
    /// greenlet, when the thread exits).
    ///
    /// # Safety
    /// Called once per value, with a pointer `new` returned, by the provider only.
    pub free: unsafe fn(NonNull<()>),
}

/// The scheduler's side: the calling greenlet's value for `key` (made with [`Key::new`] on its
/// first request), or `None` when the caller should use its thread's own state (it is not in a
/// greenlet the scheduler keeps values for, such as a hub; or that thread is exiting).
///
/// A provider must return the same pointer to the same greenlet for as long as it lives, never
/// hand one greenlet's value to another, and free a value (with [`Key::free`]) only after its
/// greenlet has finished running: never while that greenlet may still be inside a call that
/// got it from [`current`]. It must not panic.
pub type Provider = fn(&'static Key) -> Option<NonNull<()>>;

static PROVIDER: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Installs the provider [`current`] asks (replacing any earlier one: a process has one greenlet
/// scheduler). Values already handed out stay valid: each provider frees its own.
pub fn set_provider(p: Provider) {
    PROVIDER.store(p as *mut (), Ordering::Release);
}

/// Whether a provider is installed.
pub fn is_installed() -> bool {
    !PROVIDER.load(Ordering::Acquire).is_null()
}

/// The calling greenlet's value for `key`, from the installed [`Provider`]; `None` without one,
/// or when the provider says the caller should use its thread's own state.
///
/// The pointer stays valid while the calling greenlet runs (see [`Provider`]); a library that can
/// unwind out of a call while its value is still linked somewhere must make [`Key::free`] leak
/// it rather than free it.
#[inline]
pub fn current(key: &'static Key) -> Option<NonNull<()>> {
    let p = PROVIDER.load(Ordering::Acquire);
    if p.is_null() {
        return None;
    }
    // SAFETY: the only non-null value ever stored is a `Provider` (a fn pointer) cast by
    // `set_provider`; fn pointers and data pointers have the same size on every supported target.
    let f = unsafe { core::mem::transmute::<*mut (), Provider>(p) };
    f(key)
}
