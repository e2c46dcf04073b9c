//! Kills and timeouts thrown into greenlets by the hub, and the ones deferred to a greenlet's next
//! wait (where they could not unwind, or while it still unwinds an earlier one).

use std::cell::RefCell;

thread_local! {
    /// Kills and timeouts that landed where they could not unwind (inside a C caller of a
    /// `monkey` hook), per greenlet, to be raised at its next wait.
    static DEFERRED: RefCell<Vec<(greenlet::Greenlet, Box<dyn std::any::Any + Send>)>> =
        const { RefCell::new(Vec::new()) };
}

/// Keeps `payload` to be raised in the current greenlet at its next wait (see `monkey`).
#[cfg_attr(not(feature = "monkey"), allow(dead_code))]
pub(crate) fn defer_unwind(payload: Box<dyn std::any::Any + Send>) {
    let g = greenlet::getcurrent();
    DEFERRED.with(|d| d.borrow_mut().push((g, payload)));
}

/// Takes the payload deferred for the current greenlet, if any.
pub(crate) fn take_deferred() -> Option<Box<dyn std::any::Any + Send>> {
    DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_empty() {
            return None;
        }
        let i = d.iter().position(|(g, _)| g.is_current())?;
        Some(d.swap_remove(i).1)
    })
}

/// At the start of a wait: a greenlet that waits while not unwinding has finished (or caught) any
/// kill or timeout thrown into it earlier, so it can take the next one; a deferred one is raised now.
#[inline]
pub(super) fn raise_deferred() {
    if UNWINDING.with(|u| u.borrow().is_empty()) && DEFERRED.with(|d| d.borrow().is_empty()) {
        return;
    }
    raise_deferred_slow();
}

#[cold]
fn raise_deferred_slow() {
    if std::thread::panicking() {
        // Waiting inside a destructor run by an unwind: raising here would abort the process.
        return;
    }
    let me = greenlet::getcurrent();
    UNWINDING.with(|u| u.borrow_mut().retain(|id| *id != me.id()));
    if let Some(p) = take_deferred() {
        UNWINDING.with(|u| u.borrow_mut().push(me.id()));
        std::panic::resume_unwind(p);
    }
}

thread_local! {
    /// Greenlets into which the hub threw a kill or timeout that they have not finished unwinding
    /// (ids; they leave the list when they next wait normally, finish, or catch a timeout).
    static UNWINDING: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Throws `payload` (a kill or a timeout) into `g` from the hub.
///
/// A greenlet still unwinding from an earlier one may be waiting inside a destructor that the
/// unwind runs; a second panic there would abort the process, so the payload is kept and raised at
/// its next normal wait instead (or dropped when it finishes).
pub(crate) fn throw_into(g: &greenlet::Greenlet, payload: Box<dyn std::any::Any + Send>) {
    if g.is_dead() {
        return;
    }
    if UNWINDING.with(|u| u.borrow().contains(&g.id())) {
        DEFERRED.with(|d| d.borrow_mut().push((g.clone(), payload)));
        return;
    }
    UNWINDING.with(|u| u.borrow_mut().push(g.id()));
    g.throw_payload(payload);
}

/// Drops deferred payloads that `stale` says no longer apply (a cancelled Timeout's).
pub(crate) fn forget_deferred(stale: impl Fn(&(dyn std::any::Any + Send)) -> bool) {
    DEFERRED.with(|d| d.borrow_mut().retain(|(_, p)| !stale(&**p)));
}

/// Whether the current greenlet is unwinding a kill or Timeout the hub threw into it (not a panic
/// of its own): `sync`'s lock guards do not poison then.
pub(crate) fn unwinding_cancel() -> bool {
    UNWINDING
        .try_with(|u| {
            let u = u.borrow();
            !u.is_empty() && u.contains(&greenlet::getcurrent().id())
        })
        .unwrap_or(false)
}

/// The current greenlet has caught (or finished with) what was thrown into it.
pub(crate) fn done_unwinding() {
    let me = greenlet::getcurrent();
    UNWINDING.with(|u| u.borrow_mut().retain(|id| *id != me.id()));
}
