//! A meeting point between a greenlet scheduler and a lock library that keeps per-thread wait
//! state, so that neither depends on the other.
//!
//! parking_lot_core keeps each OS thread's wait state (its futex word and the links of the wait
//! queue it sits in) in a `thread_local!`. Greenlets of one thread share it, so two of them cannot
//! both wait inside parking_lot. The fork of parking_lot_core in this repository
//! (`vendor/parking_lot_core`, see its `PATCHED.md`) asks [`current`] for a per-greenlet value
//! before it falls back to the thread's own, and [`in_greenlet`] before it yields its thread to
//! the OS in a spin; gevent's `monkey::patch_thread()` installs the [`Provider`] that answers.
//! Until one is installed, both answer "no" (one atomic load) and the library behaves as
//! upstream.
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
//! assert!(!greenlet_park_hook::in_greenlet());
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
    /// Frees a value `new` made, once its greenlet has finished; or when its thread exits, for
    /// greenlets that never finish (a thread's main greenlet, one left suspended). Such a
    /// greenlet never runs again, but may have been suspended inside the library, with the value
    /// still linked where other threads reach it: `free` must then leak it rather than free it
    /// (the library knows whether it is in use).
    ///
    /// # Safety
    /// Called once per value, with a pointer `new` returned, by the provider only, at one of
    /// the times above.
    pub free: unsafe fn(NonNull<()>),
}

/// The scheduler's side, installed with [`set_provider`].
pub struct Provider {
    /// The calling greenlet's value for `key` (made with [`Key::new`] on its first request), or
    /// `None` when the caller should use its thread's own state (it is not in a greenlet the
    /// scheduler keeps values for, such as a hub; or its thread is exiting).
    ///
    /// It must return the same pointer to the same greenlet for as long as it lives, never hand
    /// one greenlet's value to another, and free a value (with [`Key::free`]) only when its
    /// greenlet will never run again (see there): never while that greenlet may still resume
    /// inside a call that got it from [`current`]. It must not panic.
    pub current: fn(&'static Key) -> Option<NonNull<()>>,
    /// Whether the caller runs in a greenlet that `current` gives values to, without making one.
    /// It must not panic, allocate or take locks: a library may ask while it holds its own.
    pub in_greenlet: fn() -> bool,
}

static PROVIDER: AtomicPtr<Provider> = AtomicPtr::new(core::ptr::null_mut());

/// Installs the provider [`current`] and [`in_greenlet`] ask (replacing any earlier one: a
/// process has one greenlet scheduler). Values already handed out stay valid: each provider frees
/// its own.
pub fn set_provider(p: &'static Provider) {
    PROVIDER.store(p as *const Provider as *mut Provider, Ordering::Release);
}

/// The installed provider, if any: one atomic load.
#[inline]
fn provider() -> Option<&'static Provider> {
    // SAFETY: the only non-null value ever stored is a `&'static Provider` (`set_provider`).
    unsafe { PROVIDER.load(Ordering::Acquire).as_ref() }
}

/// Whether a provider is installed.
pub fn is_installed() -> bool {
    provider().is_some()
}

/// The calling greenlet's value for `key`, from the installed [`Provider`]; `None` without one,
/// or when the provider says the caller should use its thread's own state.
///
/// The pointer stays valid while the calling greenlet runs (see [`Provider::current`]); a
/// library that can unwind out of a call while its value is still linked somewhere must make
/// [`Key::free`] leak it rather than free it.
#[inline]
pub fn current(key: &'static Key) -> Option<NonNull<()>> {
    provider().and_then(|p| (p.current)(key))
}

/// Whether the caller runs in a greenlet that [`current`] would give a value to (`false`
/// without a provider). Makes nothing: safe to ask while holding locks.
#[inline]
pub fn in_greenlet() -> bool {
    provider().is_some_and(|p| (p.in_greenlet)())
}
