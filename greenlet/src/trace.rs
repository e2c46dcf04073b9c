//! [`settrace`]: watch every switch of this thread.
//!
//! The tracer is called once per logical switch, on the target's side, after the switch happened
//! (as greenlet's `settrace` callback is): `origin` is the greenlet that switched away (or that
//! finished), `target` the one now running.

use std::cell::RefCell;

use crate::greenlet::{getcurrent, set_slow, Greenlet, TRACING};

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
    set_slow(TRACING, tracer.is_some());
    TRACER.with(|t| std::mem::replace(&mut *t.borrow_mut(), tracer))
}

/// Records `g` as the origin of the switch that is starting (only while a tracer is installed).
pub(crate) fn set_origin(g: Greenlet) {
    ORIGIN.with(|o| *o.borrow_mut() = Some(g));
}

/// Takes the origin recorded for the switch that just arrived, if any.
pub(crate) fn take_origin() -> Option<Greenlet> {
    ORIGIN.with(|o| o.borrow_mut().take())
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
    tracer(&event);
    TRACER.with(|t| {
        let mut slot = t.borrow_mut();
        if slot.is_none() {
            *slot = Some(tracer);
        }
    });
    set_slow(TRACING, true);
}
