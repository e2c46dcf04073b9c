//! [`settrace`]: watch every switch of this thread.
//!
//! The tracer is called once per logical switch, on the target's side, after the switch happened
//! (as greenlet's `settrace` callback is): `origin` is the greenlet that switched away (or that
//! finished), `target` the one now running. Hops through intermediate resumers (see
//! [`crate::greenlet`]) are not switches and are not reported.

use std::cell::{Cell, RefCell};
use std::panic::resume_unwind;

use crate::greenlet::{getcurrent, Greenlet, Inner, Msg};
use crate::value::Value;

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
    static ENABLED: Cell<bool> = const { Cell::new(false) };
    static TRACER: RefCell<Option<Tracer>> = const { RefCell::new(None) };
    static ORIGIN: RefCell<Option<Greenlet>> = const { RefCell::new(None) };
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
    ENABLED.with(|e| e.set(tracer.is_some()));
    TRACER.with(|t| std::mem::replace(&mut *t.borrow_mut(), tracer))
}

#[inline]
fn enabled() -> bool {
    ENABLED.with(Cell::get)
}

/// Records the current greenlet as the origin of the switch that is starting.
#[inline]
pub(crate) fn set_origin_current() {
    if enabled() {
        ORIGIN.with(|o| *o.borrow_mut() = Some(getcurrent()));
    }
}

/// Records the greenlet at `g` (which just finished, and is alive) as the origin of the switch to its
/// parent.
#[inline]
pub(crate) fn set_origin_ptr(g: *const Inner) {
    if enabled() {
        // SAFETY: the caller guarantees `g` is a live greenlet; this is `Rc::clone`.
        let g = unsafe { Greenlet::from_raw_clone(g) };
        ORIGIN.with(|o| *o.borrow_mut() = Some(g));
    }
}

/// Reports the arrival of `msg` in the current greenlet to the tracer, if any.
#[inline(always)]
pub(crate) fn arrived(msg: &Msg) {
    if enabled() {
        fire(matches!(msg, Msg::Throw(_)));
    }
}

#[cold]
fn fire(throw: bool) {
    let Some(origin) = ORIGIN.with(|o| o.borrow_mut().take()) else {
        return;
    };
    let target = getcurrent();
    let event = if throw {
        Event::Throw { origin, target }
    } else {
        Event::Switch { origin, target }
    };
    let Some(mut tracer) = TRACER.with(|t| t.borrow_mut().take()) else {
        return;
    };
    ENABLED.with(|e| e.set(false));
    tracer(&event);
    TRACER.with(|t| {
        let mut slot = t.borrow_mut();
        if slot.is_none() {
            *slot = Some(tracer);
            ENABLED.with(|e| e.set(true));
        } else {
            ENABLED.with(|e| e.set(true));
        }
    });
}

/// Reports the arrival and turns the message into what `switch` returns (or unwinds with).
#[inline(always)]
pub(crate) fn arrive(msg: Msg) -> Value {
    arrived(&msg);
    match msg {
        Msg::Value(v) => v,
        Msg::Throw(p) => resume_unwind(p),
    }
}
