//! [`settrace`]: watch every switch of this thread.
//!
//! The tracer is called once per logical switch, on the target's side, after the switch happened
//! (as greenlet's `settrace` callback is): `origin` is the greenlet that switched away (or that
//! finished), `target` the one now running.

use std::cell::{Cell, RefCell};

use crate::switch::{getcurrent, install_trace_hooks, set_slow, Greenlet, TraceHooks, TRACING};

/// One switch, as seen by a tracer.
#[derive(Debug, Clone)]
pub enum Event {
    /// `origin` switched (or finished) and `target` now runs with a value.
    Switch {
        /// The greenlet that left the CPU.
        origin: Greenlet,
        /// The greenlet that now runs.
        target: Greenlet,
    },
    /// `origin` threw a payload into `target`, which now runs and will unwind with it.
    Throw {
        /// The greenlet that left the CPU.
        origin: Greenlet,
        /// The greenlet that now runs.
        target: Greenlet,
    },
}

/// A trace callback.
pub type Tracer = Box<dyn FnMut(&Event)>;

thread_local! {
    static TRACER: RefCell<Option<Tracer>> = const { RefCell::new(None) };
    static ORIGIN: RefCell<Option<Greenlet>> = const { RefCell::new(None) };
    /// Bumped by every [`settrace`], so that a tracer that installs another one (or none) while it
    /// runs is not put back afterwards.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
}

/// Installs `tracer` for this thread (or removes it, with `None`); returns the previous one.
///
/// While the tracer runs it is uninstalled, so switches it makes are not traced. If it panics, it stays
/// uninstalled and the panic continues in the target greenlet.
///
/// # Examples
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// use greenlet::{settrace, Event, Greenlet};
/// let seen = Rc::new(RefCell::new(Vec::new()));
/// let s = seen.clone();
/// settrace(Some(Box::new(move |e: &Event| {
///     s.borrow_mut().push(matches!(e, Event::Switch { .. }))
/// })));
/// Greenlet::new(|v| v).switch(());
/// settrace(None);
/// assert_eq!(*seen.borrow(), vec![true, true]); // main -> g, g (finished) -> main
/// ```
pub fn settrace(tracer: Option<Tracer>) -> Option<Tracer> {
    install_trace_hooks(TraceHooks {
        set_origin,
        take_origin,
        fire,
    });
    set_slow(TRACING, tracer.is_some());
    GENERATION.with(|g| g.set(g.get() + 1));
    TRACER.with(|t| std::mem::replace(&mut *t.borrow_mut(), tracer))
}

/// Whether a tracer is installed on this thread (and not running: while it runs it is
/// uninstalled). A scheduler that may skip a switch it would otherwise make (a direct hand-off
/// between two greenlets instead of one through its loop) asks this first, so that a tracer sees
/// the switches it expects.
#[inline]
pub fn is_tracing() -> bool {
    crate::switch::slow_bits() & TRACING != 0
}

/// Records `g` as the origin of the switch that is starting (only while a tracer is installed;
/// ignored while the thread is being torn down).
pub(crate) fn set_origin(g: Greenlet) {
    let _ = ORIGIN.try_with(|o| *o.borrow_mut() = Some(g));
}

/// Takes the origin recorded for the switch that just arrived, if any.
pub(crate) fn take_origin() -> Option<Greenlet> {
    ORIGIN.try_with(|o| o.borrow_mut().take()).ok().flatten()
}

/// Reports a switch from `origin` to the current greenlet to the tracer, if one is installed.
#[cold]
pub(crate) fn fire(origin: Greenlet, throw: bool) {
    let target = getcurrent();
    let event = if throw {
        Event::Throw { origin, target }
    } else {
        Event::Switch { origin, target }
    };
    let Some(mut tracer) = TRACER.with(|t| t.borrow_mut().take()) else {
        return;
    };
    set_slow(TRACING, false);
    let generation = GENERATION.with(Cell::get);
    tracer(&event);
    // Put it back unless it called `settrace` itself (then what it installed stays).
    if GENERATION.with(Cell::get) == generation {
        TRACER.with(|t| *t.borrow_mut() = Some(tracer));
        set_slow(TRACING, true);
    }
}
