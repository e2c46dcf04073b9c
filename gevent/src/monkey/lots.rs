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

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

use greenlet_park_hook::Key;

use crate::local::Local;

/// One greenlet's values, by key (parking_lot_core asks for one kind; a second fork would add
/// another).
#[derive(Default)]
struct Values(Vec<(&'static Key, NonNull<()>)>);

impl Values {
    fn find(&self, key: &'static Key) -> Option<NonNull<()>> {
        self.0
            .iter()
            .find(|(k, _)| std::ptr::eq(*k, key))
            .map(|&(_, p)| p)
    }
}

impl Drop for Values {
    fn drop(&mut self) {
        for (k, p) in self.0.drain(..) {
            // SAFETY: `p` was made by `k.new` and handed to this greenlet only, which has finished
            // (a `Local` value is dropped at its greenlet's end, or when its thread exits, as the
            // main greenlet's values are): nothing of it is inside parking_lot any more, and the
            // value is freed once (drained).
            unsafe { (k.free)(p) };
        }
    }
}

thread_local! {
    /// The values of this thread's greenlets other than its main one.
    static SPAWNED: Local<Values> = Local::new(Values::default);
    /// The values of this thread's main greenlet, freed when the thread exits.
    static MAIN: RefCell<Values> = RefCell::new(Values::default());
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
                m.borrow_mut().0.push((key, p));
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
                    l.with(|v| v.0.push((key, p)));
                    p
                })
                .ok()
        }
    }))
    .ok()
    .flatten()
}
