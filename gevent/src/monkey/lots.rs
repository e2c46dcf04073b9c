//! Per-greenlet wait state for parking_lot ([`patch_thread`](super::patch_thread)), through the
//! `greenlet_park_hook` provider that the patched parking_lot_core of this repository
//! (`vendor/parking_lot_core`, `PATCHED.md`) asks before it uses its thread's `ThreadData`.
//!
//! Every greenlet that is not a hub (spawned ones and the thread's main greenlet) gets its own
//! `ThreadData`, made the first time it parks inside parking_lot (so only greenlets that ever
//! wait there pay for one: about 64 bytes, and one more entry in parking_lot's thread count,
//! which sizes its hash table). Its futex word is then an ordinary heap word, which
//! [`super::futex`] parks on cooperatively like any other. It is freed:
//! - for a greenlet spawned by gevent, when it finishes (a [`Local`] value: dropped at its end);
//! - for the thread's main greenlet, and for greenlets made directly with the `greenlet` crate,
//!   when the thread exits (they have no exit hook).
//!
//! The fork leaks, instead of freeing, a `ThreadData` whose greenlet unwound out of
//! parking_lot's `park` while it may still have been linked in a wait queue (no hook unwinds
//! there: a kill or `Timeout` is returned as an error, see [`super::futex`]).
//!
//! Hubs, threads without a hub, and a thread's teardown get `None`: parking_lot uses the thread's
//! own `ThreadData` there, as upstream.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

use greenlet_park_hook::Key;

use crate::local::Local;

/// One greenlet's values, by key (parking_lot_core asks for one kind; a second fork would add
/// another); `counted` in [`wait_states`] (all but the main greenlet's).
#[derive(Default)]
struct Values {
    held: Vec<(&'static Key, NonNull<()>)>,
    counted: bool,
}

impl Values {
    fn find(&self, key: &'static Key) -> Option<NonNull<()>> {
        self.held
            .iter()
            .find(|(k, _)| std::ptr::eq(*k, key))
            .map(|&(_, p)| p)
    }
}

impl Drop for Values {
    fn drop(&mut self) {
        if self.counted {
            let _ = LIVE.try_with(|n| n.set(n.get().saturating_sub(self.held.len())));
        }
        for (k, p) in self.held.drain(..) {
            // SAFETY: `p` was made by `k.new`, handed to this greenlet only, and is freed once
            // (drained). Its greenlet has finished (a `Local` value is dropped at a spawned
            // greenlet's end), or its thread is exiting (the main greenlet's values; those of a
            // greenlet that never finished, made with the `greenlet` crate or still suspended
            // when the hub went away): such a greenlet never runs again, and a value it may
            // still have linked inside parking_lot is leaked by `free` (the `Key` contract).
            unsafe { (k.free)(p) };
        }
    }
}

thread_local! {
    /// The values of this thread's greenlets other than its main one.
    static SPAWNED: Local<Values> = Local::new(Values::default);
    /// The values of this thread's main greenlet, freed when the thread exits.
    static MAIN: RefCell<Values> = RefCell::new(Values::default());
    /// How many values this thread's greenlets other than the main one hold ([`wait_states`]).
    static LIVE: Cell<usize> = const { Cell::new(0) };
}

/// How many per-greenlet parking_lot wait states (`ThreadData`) the greenlets of this thread
/// other than its main one hold: one per greenlet that has waited inside parking_lot and not
/// finished yet. (The main greenlet's is freed when the thread exits.) Tests check that finished
/// and killed greenlets free theirs.
#[doc(hidden)]
pub fn wait_states() -> usize {
    LIVE.try_with(|n| n.get()).unwrap_or(0)
}

/// Counts a value made for `v`, a greenlet of this thread other than the main one.
fn made(v: &mut Values) {
    v.counted = true;
    let _ = LIVE.try_with(|n| n.set(n.get() + 1));
}

static PROVIDER: greenlet_park_hook::Provider = greenlet_park_hook::Provider {
    current: provide,
    in_greenlet: crate::hub::may_park,
};

/// Installs [`provide`] (called by [`patch_thread`](super::patch_thread)).
pub(super) fn link() {
    greenlet_park_hook::set_provider(&PROVIDER);
}

/// [`greenlet_park_hook::Provider::current`]: the current greenlet's value for `key`, made on its
/// first request; `None` on a hub, outside gevent, and while the thread's storage is being torn
/// down. (`Provider::in_greenlet` is [`may_park`](crate::hub::may_park): the greenlets this
/// gives values to.)
fn provide(key: &'static Key) -> Option<NonNull<()>> {
    if !crate::hub::may_park() {
        return None;
    }
    // Nothing here may panic into parking_lot (which called us before taking any lock); a
    // thread-local already torn down makes the caller use its thread's state.
    catch_unwind(AssertUnwindSafe(|| {
        if greenlet::getcurrent().is_main() {
            MAIN.try_with(|m| {
                if let Some(p) = m.borrow().find(key) {
                    return p;
                }
                // Not borrowed while `new` runs: it may park (parking_lot's hash table lock).
                let p = (key.new)();
                m.borrow_mut().held.push((key, p));
                p
            })
            .ok()
        } else {
            SPAWNED
                .try_with(|l| {
                    if let Some(p) = l.with(|v| v.find(key)) {
                        return p;
                    }
                    let p = (key.new)();
                    l.with(|v| {
                        v.held.push((key, p));
                        made(v);
                    });
                    p
                })
                .ok()
        }
    }))
    .ok()
    .flatten()
}
