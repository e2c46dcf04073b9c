//! One wait of one greenlet ([`Waiter`]), the deadline wait every blocking call builds on, and
//! what can be waited for ([`Waitable`], [`Failure`]).

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::Instant;

use super::unwind::raise_deferred;
use super::{get_hub, Hub, LoopExit, TimerGuard, Wakeup};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum WaitState {
    Waiting,
    Woken,
    Cancelled,
}

/// One wait of one greenlet: gevent's `Waiter`.
///
/// The waiting greenlet creates it, hands clones to whatever will wake it, and calls [`Waiter::wait`].
/// [`Waiter::wake`] resumes it once, from the hub's ready queue; later wakes are no-ops.
pub struct Waiter {
    greenlet: greenlet::Greenlet,
    state: Cell<WaitState>,
}

impl fmt::Debug for Waiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Waiter({:?}, {:?})", self.greenlet, self.state.get())
    }
}

thread_local! {
    /// A finished waiter kept for reuse, so that a wait does not allocate: the only reference to
    /// itself (no other strong or weak one), holding its hub's greenlet, never the greenlet that
    /// waited on it (a spare must not keep a greenlet alive). One is enough for a wait after
    /// each wake, the steady state of hand-offs; a burst of wakes frees the others as before.
    static SPARE: Cell<Option<Rc<Waiter>>> = const { Cell::new(None) };
}

impl Waiter {
    /// A waiter for the current greenlet.
    #[inline]
    pub fn new() -> Rc<Waiter> {
        let greenlet = greenlet::getcurrent();
        match SPARE.try_with(Cell::take).ok().flatten() {
            Some(mut w) => {
                // `recycle` keeps only waiters it holds the sole reference to, and nothing has
                // cloned this one since.
                if let Some(inner) = Rc::get_mut(&mut w) {
                    inner.greenlet = greenlet;
                    inner.state.set(WaitState::Waiting);
                    return w;
                }
                Self::fresh(greenlet)
            }
            None => Self::fresh(greenlet),
        }
    }

    #[inline]
    fn fresh(greenlet: greenlet::Greenlet) -> Rc<Waiter> {
        Rc::new(Waiter {
            greenlet,
            state: Cell::new(WaitState::Waiting),
        })
    }

    /// Keeps `w` for a later [`Waiter::new`] when the caller holds its last reference: the hub
    /// does after resuming the waiting greenlet, which has dropped its own by the time the hub
    /// runs again. The waiting greenlet's handle is released here, as dropping `w` would.
    #[inline]
    pub(super) fn recycle(mut w: Rc<Waiter>, hub_greenlet: &greenlet::Greenlet) {
        let Some(inner) = Rc::get_mut(&mut w) else {
            return;
        };
        inner.greenlet = hub_greenlet.clone();
        // A spare already there is freed (outside the thread-local access).
        let old = SPARE.try_with(|s| s.replace(Some(w)));
        drop(old);
    }

    /// Wakes the waiting greenlet (on the hub's next turn). Returns false if it was already woken or
    /// has stopped waiting (killed, timed out).
    #[inline]
    pub fn wake(self: &Rc<Self>) -> bool {
        if self.state.get() != WaitState::Waiting {
            return false;
        }
        self.state.set(WaitState::Woken);
        get_hub().schedule_wake(self.clone());
        true
    }

    /// [`Waiter::wake`], handing this reference itself to `hub` (this thread's), which is what the
    /// hub's own dispatch has at hand: no reference count traffic, no thread-local lookup.
    #[inline]
    pub(crate) fn wake_into(self: Rc<Self>, hub: &Hub) -> bool {
        if self.state.get() != WaitState::Waiting {
            return false;
        }
        self.state.set(WaitState::Woken);
        hub.schedule_wake(self);
        true
    }

    /// Whether [`Waiter::wake`] was called.
    pub fn is_woken(&self) -> bool {
        self.state.get() == WaitState::Woken
    }

    /// Whether the greenlet still waits on it.
    pub fn is_waiting(&self) -> bool {
        self.state.get() == WaitState::Waiting
    }

    /// The greenlet that waits.
    pub fn greenlet(&self) -> &greenlet::Greenlet {
        &self.greenlet
    }

    /// Called by the hub: switch into the greenlet if this waiter was woken and nothing else resumed it.
    #[inline(always)]
    pub(super) fn resume(self: &Rc<Self>) {
        if self.state.get() == WaitState::Woken && !self.greenlet.is_dead() {
            // `()` is Woken: it needs no allocation (LoopExit is the rare, boxed case).
            self.greenlet.switch(());
        }
    }

    /// Switches to the hub until woken.
    ///
    /// # Errors
    /// [`LoopExit`] when nothing can ever wake it (the waiter is then cancelled).
    ///
    /// # Cancel safety
    /// A kill or a [`Timeout`](crate::Timeout) landing here unwinds out of this call; the waiter is
    /// then cancelled, so a later `wake` does nothing. Callers that were handed something with the
    /// wake (a lock, a queue slot) check [`Waiter::is_woken`] in their own guard and pass it on.
    #[inline(always)]
    pub fn wait(self: &Rc<Self>) -> Result<(), LoopExit> {
        self.wait_in(&get_hub())
    }

    /// [`Waiter::wait`] with this thread's hub at hand.
    #[inline(always)]
    pub(crate) fn wait_in(self: &Rc<Self>, hub: &Hub) -> Result<(), LoopExit> {
        if super::registry::track_waits() {
            return self.wait_recording_where(hub);
        }
        self.wait_here(hub)
    }

    /// [`Waiter::wait`] while `util::set_track_waits` is on: records where the wait was called
    /// from, for `util::format_run_info`, for as long as it lasts. Out of line, so that the usual
    /// wait pays only the flag's load.
    #[cold]
    #[inline(never)]
    fn wait_recording_where(self: &Rc<Self>, hub: &Hub) -> Result<(), LoopExit> {
        let _site = super::registry::record_wait_site(&self.greenlet);
        self.wait_here(hub)
    }

    /// [`Waiter::wait`] itself.
    #[inline(always)]
    fn wait_here(self: &Rc<Self>, hub: &Hub) -> Result<(), LoopExit> {
        struct Cancel<'a>(&'a Waiter);
        impl Drop for Cancel<'_> {
            fn drop(&mut self) {
                if self.0.state.get() == WaitState::Waiting {
                    self.0.state.set(WaitState::Cancelled);
                }
            }
        }
        debug_assert!(
            self.greenlet.is_current(),
            "a Waiter is waited on by its own greenlet"
        );
        raise_deferred();
        let guard = Cancel(self);
        loop {
            let v = hub.switch_waiting();
            if v.is_none() && self.state.get() == WaitState::Woken {
                std::mem::forget(guard);
                return Ok(());
            }
            match v.downcast_ref::<Wakeup>() {
                Some(Wakeup::LoopExit) => {
                    drop(guard);
                    return Err(LoopExit);
                }
                // A switch that was not meant for this wait (a stray raw switch): keep waiting.
                _ => continue,
            }
        }
    }
}

/// Lets every other ready greenlet run once, then returns (gevent's `sleep(0)`).
///
/// # Panics
/// With [`LoopExit`]'s message only if the hub's loop is empty, which cannot happen here (this
/// greenlet's own wake is queued).
pub(crate) fn yield_now() {
    let hub = get_hub();
    if super::registry::track_waits() {
        // Through a waiter, so that the wait's site is recorded like any other.
        let w = Waiter::new();
        w.clone().wake_into(&hub);
        if let Err(e) = w.wait_in(&hub) {
            panic!("{e}");
        }
        return;
    }
    raise_deferred();
    let me = greenlet::getcurrent();
    let id = me.id();
    hub.schedule_yield(me);
    /// Removes the queued yield when the wait unwinds (a kill or timeout thrown in).
    struct Unqueue<'a>(&'a Hub, u64);
    impl Drop for Unqueue<'_> {
        fn drop(&mut self) {
            self.0.unqueue_yield(self.1);
        }
    }
    let guard = Unqueue(&hub, id);
    loop {
        let v = hub.switch();
        if hub.take_yield_turn(id) {
            std::mem::forget(guard);
            return;
        }
        if let Some(Wakeup::LoopExit) = v.downcast_ref::<Wakeup>() {
            drop(guard);
            panic!("{LoopExit}");
        }
        // A switch that was not this yield's turn (a stray raw switch): keep waiting.
    }
}

/// Waits on `w` until woken or `deadline`.
///
/// # Errors
/// [`LoopExit`] when nothing can ever wake it.
///
/// # Cancel safety
/// As [`Waiter::wait`]; the timer is disarmed however the wait ends.
#[inline(always)]
pub(crate) fn wait_with_deadline(
    w: &Rc<Waiter>,
    deadline: Option<Instant>,
) -> Result<(), LoopExit> {
    let hub = get_hub();
    let timer = deadline.map(|d| hub.add_wake_timer(d, w.clone()));
    // Disarmed however the wait ends, a kill or Timeout unwinding out of it included.
    let _timer = TimerGuard::new(&hub, timer);
    w.wait_in(&hub)
}

/// Something a greenlet can wait for: a [`Greenlet`](crate::Greenlet), an event, a result.
pub trait Waitable {
    /// Whether waiting would return at once.
    fn is_ready(&self) -> bool;
    /// Registers `w` to be woken when it becomes ready.
    fn subscribe(&self, w: &Rc<Waiter>);
    /// Removes `w` (registered with `subscribe`), if still there.
    fn unsubscribe(&self, w: &Rc<Waiter>);
    /// How it failed, once ready, if it did (for `JoinAll::raise_error`): a greenlet's panic, an
    /// `AsyncResult`'s exception. `None` by default.
    fn failure(&self) -> Option<Failure> {
        None
    }
    /// For greenlets, a number that orders their deaths on this thread (so that `JoinAll` can
    /// tell which of several finished first); `None` by default.
    fn finish_order(&self) -> Option<u64> {
        None
    }
}

/// How a greenlet ended badly: the panic message (the payload itself stays in the greenlet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    message: String,
}

impl Failure {
    /// A failure with `message` (for results set by hand, e.g. `AsyncResult::set_exception`).
    pub(crate) fn new(message: String) -> Failure {
        Failure { message }
    }

    /// The panic message, or what the payload was (see [`describe_panic`](crate::greenlets::describe_panic): `Timeout: 10ms`, a
    /// type name, ...).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}
