//! [`Greenlet`]: a stackful task switched explicitly. This module is the handle: creating,
//! switching, throwing, the parent chain, names and tags, and the unwinding of a suspended greenlet
//! whose last handle is dropped. How a switch works, and who keeps what alive while it happens, is
//! the switch engine's part (`crate::switch`, private); [`Builder`] is in its own module.

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

pub use crate::builder::Builder;
use crate::error::{Error, GreenletExit};
use crate::stack::StackError;
use crate::switch::{
    current_ptr, current_ptr_if_any, switch_to, switch_value, DisplayName, Msg, Name, State,
};
pub use crate::switch::{getcurrent, Greenlet};
use crate::value::Value;

impl Greenlet {
    /// Creates a greenlet that will run `run` when first switched to; its parent is the current greenlet.
    ///
    /// # Panics
    /// When no stack can be allocated, like `std::thread::spawn` when no thread can be created; use
    /// [`Greenlet::try_new`] or [`Builder`] to get the error instead.
    #[track_caller]
    pub fn new<F>(run: F) -> Greenlet
    where
        F: FnOnce(Value) -> Value + 'static,
    {
        Greenlet::try_new(run).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Greenlet::new`], returning the error when no stack can be allocated.
    ///
    /// # Errors
    /// The [`StackError`] explains why (and, at the mapping limit, what to do instead).
    pub fn try_new<F>(run: F) -> Result<Greenlet, StackError>
    where
        F: FnOnce(Value) -> Value + 'static,
    {
        Builder::new().build(run)
    }

    /// Creates a greenlet with an explicit parent.
    ///
    /// # Panics
    /// As [`Greenlet::new`].
    #[track_caller]
    pub fn with_parent<F>(run: F, parent: &Greenlet) -> Greenlet
    where
        F: FnOnce(Value) -> Value + 'static,
    {
        Builder::new()
            .parent(parent)
            .build(run)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Creates a greenlet with no `run` yet (so that two greenlets can name each other before either
    /// runs); give it one with [`Greenlet::set_run`].
    ///
    /// Until then, a switch or throw into it (or a child finishing into it) fails as in greenlet:
    /// the switcher panics with a message saying it has no `run` (a child's result goes on to the
    /// next parent up as that panic), and it stays unstarted, so every later switch fails the same
    /// way until it has a `run`.
    ///
    /// # Panics
    /// As [`Greenlet::new`].
    #[track_caller]
    pub fn unbound() -> Greenlet {
        Builder::new()
            .build_unbound()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Gives the greenlet its `run`.
    ///
    /// # Errors
    /// [`Error::RunAlreadySet`] once the greenlet has started or already has a `run`.
    pub fn set_run<F>(&self, run: F) -> Result<(), Error>
    where
        F: FnOnce(Value) -> Value + 'static,
    {
        let old = self.0.run.take();
        if self.0.state.get() != State::Unstarted || self.0.is_main || old.is_some() {
            self.0.run.set(old);
            return Err(Error::RunAlreadySet);
        }
        self.0.run.set(Some(Box::new(run)));
        Ok(())
    }

    /// Switches to this greenlet, passing `v`; returns the value this (the calling) greenlet is
    /// switched back with.
    ///
    /// - The first switch starts `run(v)`; later ones make its pending `switch` return `v`.
    /// - Switching to the current greenlet returns `v` at once.
    /// - Switching to a dead greenlet switches to its parent (and so on up).
    /// - Switching to a greenlet that has not started and has no `run` ([`Greenlet::unbound`])
    ///   panics here, in the caller; `v` is dropped and the greenlet stays unstarted.
    /// - When `run` returns, its value is what the parent's pending `switch` returns. When `run`
    ///   panics, the panic continues in the parent, from its pending `switch`; when it dies of
    ///   [`GreenletExit`], the parent's `switch` returns a `Value` holding the `GreenletExit`.
    ///
    /// `v` may be any `'static` value; a [`Value`] is passed as is.
    #[inline]
    pub fn switch<V: 'static>(&self, v: V) -> Value {
        switch_value(&self.0, Value::new(v))
    }

    /// Raises [`GreenletExit`] in this greenlet (at its pending `switch`, or, if it never started,
    /// kills it without running it; one with no `run` yet cannot be thrown into: as with `switch`,
    /// the caller panics and it stays unstarted). Returns what the current greenlet is switched back with — for a
    /// greenlet that lets the exit end it, a `Value` holding `GreenletExit` from its parent chain.
    pub fn throw(&self) -> Value {
        self.throw_with(GreenletExit)
    }

    /// Raises an arbitrary panic payload in this greenlet, as [`Greenlet::throw`] does.
    ///
    /// If the greenlet does not catch it, it dies and the payload continues in its parent.
    pub fn throw_with<P: Any + Send>(&self, payload: P) -> Value {
        switch_to(&self.0, Msg::Throw(Box::new(payload)))
    }

    /// Like [`Greenlet::throw_with`] with an already boxed payload (as `catch_unwind` returns it).
    pub fn throw_payload(&self, payload: Box<dyn Any + Send>) -> Value {
        switch_to(&self.0, Msg::Throw(payload))
    }

    /// The parent: where `run`'s value or panic goes. `None` only for a main greenlet.
    pub fn parent(&self) -> Option<Greenlet> {
        self.0.parent.borrow().clone()
    }

    /// Changes the parent.
    ///
    /// # Errors
    /// [`Error::CyclicParent`] if `parent` is this greenlet or one of its descendants;
    /// [`Error::MainHasNoParent`] on a main greenlet.
    pub fn set_parent(&self, parent: &Greenlet) -> Result<(), Error> {
        if self.0.is_main {
            return Err(Error::MainHasNoParent);
        }
        let mut p = Some(parent.clone());
        while let Some(g) = p {
            if Rc::ptr_eq(&g.0, &self.0) {
                return Err(Error::CyclicParent);
            }
            p = g.parent();
        }
        let old = self.0.parent.replace(Some(parent.clone()));
        drop(old);
        Ok(())
    }

    /// Whether `run` has finished (returned, panicked or exited). A main greenlet is never dead.
    pub fn is_dead(&self) -> bool {
        self.0.state.get() == State::Dead
    }

    /// Whether it has been switched to at least once.
    pub fn is_started(&self) -> bool {
        self.0.state.get() != State::Unstarted
    }

    /// Started and not dead (Python's `bool(g)`).
    pub fn is_active(&self) -> bool {
        self.0.state.get() == State::Started
    }

    /// Whether this is a thread's main greenlet.
    pub fn is_main(&self) -> bool {
        self.0.is_main
    }

    /// Whether this is the current greenlet.
    pub fn is_current(&self) -> bool {
        Rc::as_ptr(&self.0) == current_ptr()
    }

    /// A number unique among this thread's greenlets (the main greenlet is 0).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The name given by [`Builder::name`], [`Builder::name_numbered`] or [`Greenlet::set_name`],
    /// or `greenlet-<id>`. It is what a stack overflow report says.
    pub fn name(&self) -> String {
        DisplayName(&self.0).to_string()
    }

    /// Renames the greenlet (at any time, also while it runs); later reports use the new name.
    ///
    /// # Examples
    /// ```
    /// let g = greenlet::Greenlet::new(|v| v);
    /// g.set_name("worker");
    /// assert_eq!(g.name(), "worker");
    /// ```
    pub fn set_name(&self, name: impl Into<String>) {
        let new = Name::Owned(name.into().into_boxed_str());
        // The old name is dropped after the borrow ends.
        drop(self.0.name.replace(new));
    }

    /// The number a scheduler attached with [`Greenlet::set_tag`] (0 until then): how gevent finds
    /// its own object for the running greenlet. Costs nothing (it sits in padding).
    pub fn tag(&self) -> u32 {
        self.0.tag.get()
    }

    /// Attaches a number to the greenlet, for the scheduler that runs it (an index into its own
    /// table, say); read back with [`Greenlet::tag`].
    ///
    /// # Examples
    /// ```
    /// let g = greenlet::Greenlet::new(|v| v);
    /// assert_eq!(g.tag(), 0);
    /// g.set_tag(7);
    /// assert_eq!(g.tag(), 7);
    /// ```
    pub fn set_tag(&self, tag: u32) {
        self.0.tag.set(tag);
    }

    /// Whether two handles name the same greenlet.
    pub fn ptr_eq(a: &Greenlet, b: &Greenlet) -> bool {
        Rc::ptr_eq(&a.0, &b.0)
    }
}

impl PartialEq for Greenlet {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Greenlet {}

impl fmt::Debug for Greenlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.0.state.get() {
            State::Unstarted => "unstarted",
            State::Started if self.is_current() => "current",
            State::Started => "suspended",
            State::Dead => "dead",
        };
        write!(f, "<greenlet {} ({state})>", DisplayName(&self.0))
    }
}

impl Drop for Greenlet {
    /// Inline: nearly every drop is of one handle among several, which costs a compare here;
    /// the rare last handle to a suspended greenlet goes out of line.
    #[inline]
    fn drop(&mut self) {
        // The last handle to a suspended greenlet: unwind it so its destructors run (greenlet's
        // dealloc does the same: parent := current, then throw GreenletExit).
        if Rc::strong_count(&self.0) != 1 || self.0.state.get() != State::Started || self.0.is_main
        {
            return;
        }
        self.unwind_dropped();
    }
}

impl Greenlet {
    /// [`Drop`] of the last handle to a suspended greenlet: throws `GreenletExit` into it.
    #[cold]
    #[inline(never)]
    fn unwind_dropped(&mut self) {
        if current_ptr_if_any().is_null() {
            return; // the thread is being torn down: nothing to switch from; Inner::drop leaks it
        }
        let me = self.clone();
        let cur = getcurrent();
        let old_parent = me.0.parent.replace(Some(cur));
        let result = catch_unwind(AssertUnwindSafe(|| me.throw()));
        if !me.is_dead() {
            // It caught the exit and lives on (resurrected): give it its parent back, as greenlet's
            // dealloc does, unless it made that greenlet its own descendant meanwhile (the cycle
            // check of `set_parent`); then the dropper stays its parent.
            if let Some(old) = old_parent {
                let _ = me.set_parent(&old);
            }
        }
        if let Err(p) = result {
            let msg = crate::panic_message(&*p);
            eprintln!(
                "greenlet: panic while unwinding dropped greenlet {} ignored: {msg}",
                DisplayName(&me.0)
            );
        }
    }
}

/// Writes the running greenlet's name into `out` (truncated to fit) and returns how many bytes it
/// wrote: `main` for the main greenlet. Async-signal-safe: no allocation and no lock, so a signal
/// handler on this thread may call it (a watchdog naming a thread's blocked greenlet); if the
/// signal interrupted a rename, the name reads as `greenlet-<id>`.
///
/// # Examples
/// ```
/// let g = greenlet::Builder::new()
///     .name("worker")
///     .build(|_| {
///         let mut buf = [0u8; 32];
///         let n = greenlet::greenlet::current_name_into(&mut buf);
///         greenlet::Value::new(String::from_utf8_lossy(&buf[..n]).into_owned())
///     })
///     .unwrap();
/// assert_eq!(g.switch(()).take::<String>(), "worker");
/// ```
pub fn current_name_into(out: &mut [u8]) -> usize {
    struct Buf<'a>(&'a mut [u8], usize);
    impl fmt::Write for Buf<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let room = self.0.len() - self.1;
            let n = s.len().min(room);
            self.0[self.1..self.1 + n].copy_from_slice(&s.as_bytes()[..n]);
            self.1 += n;
            Ok(())
        }
    }
    let mut buf = Buf(out, 0);
    let p = current_ptr_if_any();
    if p.is_null() {
        let _ = fmt::Write::write_str(&mut buf, "main");
    } else {
        // SAFETY: non-null CURRENT points at a live greenlet of this thread (module invariant),
        // which this thread keeps alive while it runs.
        let inner = unsafe { &*p };
        let _ = fmt::Write::write_fmt(&mut buf, format_args!("{}", DisplayName(inner)));
    }
    buf.1
}
