//! [`Greenlet`]: a stackful task switched explicitly, and the per-thread switching machinery.
//!
//! # How a symmetric switch is built on corosensei's asymmetric coroutines
//!
//! corosensei gives `resume` (enter a coroutine) and `suspend` (return to whoever resumed it). A greenlet
//! may switch to *any* other greenlet, so each thread keeps a **resume chain**: the main greenlet at the
//! root, then every greenlet that is blocked inside `Coroutine::resume` of the next one, and the current
//! greenlet on top. A switch from the current greenlet `C` to a target `T`:
//!
//! - `T` is `C`: the value is simply returned (greenlet's switch-to-self).
//! - `T` is not in the chain (suspended or not yet started): `C` resumes `T`, which pushes it — one
//!   context switch, exactly corosensei's cost.
//! - `T` is in the chain below `C`: `C` suspends with `T`'s address; its resumer receives it
//!   and either is `T` (done: one context switch) or passes it on the same way.
//!
//! In gevent's pattern (the hub resumes a greenlet, the greenlet switches back to the hub) every switch is
//! a single context switch; only switches to a greenlet deeper than one level below pay one hop per level.
//! A greenlet that finishes returns to its resumer, which forwards the result to the greenlet's *parent*
//! (walking up past dead parents), so values and panics reach the parent whoever resumed last.
//!
//! # What makes a switch cheap
//! - The message never travels through corosensei: the sender leaves it in the target's `inbox`
//!   (a two-word [`Value`] plus a flag) and passes at most one register (the target's address).
//!   Larger values passed through `resume`/`suspend` cost several times the switch itself here.
//! - The switch path is inlined into `Greenlet::switch`. After a stack switch, every `ret` on the new
//!   stack is mispredicted (the return-stack buffer holds the other stack's addresses), so each frame
//!   between the user's `switch` call and corosensei's switch costs ~15 cycles: with the helpers
//!   out of line a round trip took 31-34 ns here, inlined 5.5-6 ns (corosensei's own: 2.2 ns).
//!
//! # Ground rules
//! - Everything here is thread-local: a [`Greenlet`] is `!Send` and `!Sync`, so no greenlet is ever
//!   touched from another thread.
//! - A greenlet in the chain is kept alive by the strong handle on its resumer's stack frame; the main
//!   greenlet by the thread-local `MAIN`. `CURRENT` is therefore a plain pointer.
//! - Panics never cross a coroutine boundary by unwinding: the coroutine body catches them and they travel
//!   as `Msg::Throw`, to be resumed (with `resume_unwind`) in whichever greenlet receives them.

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;

use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::error::{Error, GreenletExit};
use crate::stack::{Stack, StackBounds, StackConfig, StackError};
use crate::trace;
use crate::value::Value;

/// A panic payload, as `catch_unwind` hands it out.
pub(crate) type Payload = Box<dyn Any + Send>;

/// What a greenlet receives when it is switched to.
pub(crate) enum Msg {
    /// A value: its pending `switch` returns it (or `run` starts with it).
    Value(Value),
    /// A payload to raise: its pending `switch` unwinds with it.
    Throw(Payload),
}

/// The coroutine's types: nothing is passed through corosensei but, on a suspend, the address of the
/// greenlet to transfer control to (one register). The message itself waits in the target's `inbox`.
type Coro = Coroutine<(), usize, (), Stack>;

type RunFn = Box<dyn FnOnce(Value) -> Value>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Created; `run` has not been entered.
    Unstarted,
    /// Started and not finished: running, or suspended in a switch.
    Started,
    /// Finished (returned, panicked or exited); its stack is back in the pool.
    Dead,
}

/// The shared state of one greenlet.
pub(crate) struct Inner {
    id: u64,
    state: Cell<State>,
    /// # Invariant
    /// True iff this greenlet is the current one, or is blocked inside `Coroutine::resume` of the next
    /// greenlet of the chain (see the module docs). The main greenlet's is always true.
    in_chain: Cell<bool>,
    is_main: bool,
    /// `None` only for the main greenlet.
    parent: RefCell<Option<Greenlet>>,
    run: Cell<Option<RunFn>>,
    /// The message of the switch under way to this greenlet.
    ///
    /// # Invariant
    /// Filled by the switching greenlet just before control starts towards this one, emptied by this
    /// greenlet as the first thing it does on arrival; only intermediaries that run no user code
    /// execute in between, so it never holds two messages. A finished greenlet leaves its result here
    /// for its resumer.
    inbox: Cell<Option<Value>>,
    /// Whether `inbox` holds a [`Thrown`] payload rather than a value (a flag, so telling the two
    /// apart costs no dynamic type check on the hot path).
    inbox_throw: Cell<bool>,
    /// # Invariant
    /// `Some` from creation until the greenlet is dead (then its stack went back to the pool); always
    /// `None` for the main greenlet. Only the greenlet that resumes this one touches it, and only while
    /// `in_chain` is false (nobody else is inside `resume`), so no two `&mut` to it ever coexist.
    coro: UnsafeCell<Option<Coro>>,
    /// The coroutine's yielder, set when the body starts.
    ///
    /// # Invariant
    /// Null before the body starts; afterwards points into this greenlet's own stack, which stays
    /// mapped until the coroutine is finished (after which it is never read again).
    yielder: Cell<*const Yielder<(), usize>>,
    /// Where the stack is (for overflow checks and the fault handler); `None` for the main greenlet.
    bounds: Option<StackBounds>,
    name: Option<Box<str>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let coro = self.coro.get_mut().take();
        if let Some(coro) = coro {
            if coro.started() && !coro.done() {
                // The greenlet refused to die when its last handle was dropped (it switched away from
                // its own GreenletExit). Unwinding it now, from inside its own destructor, could touch
                // this half-dropped state; leaking its stack is the only sound choice.
                eprintln!(
                    "greenlet: {} was dropped while still running; its stack is leaked",
                    DisplayName(self)
                );
                std::mem::forget(coro);
            } else {
                let coro = finish_unstarted(coro);
                coro.into_stack().release();
            }
        }
    }
}

/// Marks an unstarted (or finished) coroutine as done so its stack can be taken back.
fn finish_unstarted(mut coro: Coro) -> Coro {
    // Not started: this only drops the initial closure (it captures nothing that unwinds). Done: no-op.
    coro.force_unwind();
    coro
}

thread_local! {
    /// The running greenlet of this thread; null until the main greenlet is created.
    static CURRENT: Cell<*const Inner> = const { Cell::new(ptr::null()) };
    /// This thread's main greenlet, created on first use.
    static MAIN: RefCell<Option<Greenlet>> = const { RefCell::new(None) };
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
}

/// The current greenlet's state, creating the main greenlet on first use.
#[inline]
fn current_ptr() -> *const Inner {
    let p = CURRENT.with(Cell::get);
    if p.is_null() {
        init_main()
    } else {
        p
    }
}

#[cold]
fn init_main() -> *const Inner {
    let main = Greenlet(Rc::new(Inner {
        id: 0,
        state: Cell::new(State::Started),
        in_chain: Cell::new(true),
        is_main: true,
        parent: RefCell::new(None),
        run: Cell::new(None),
        inbox: Cell::new(None),
        inbox_throw: Cell::new(false),
        coro: UnsafeCell::new(None),
        yielder: Cell::new(ptr::null()),
        bounds: None,
        name: Some("main".into()),
    }));
    let p = Rc::as_ptr(&main.0);
    MAIN.with(|m| *m.borrow_mut() = Some(main));
    CURRENT.with(|c| c.set(p));
    p
}

fn next_id() -> u64 {
    NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    })
}

/// A greenlet: a function running on its own stack, entered and left only by explicit switches.
///
/// A `Greenlet` is a cheap handle (cloning shares the same greenlet). It is `!Send` and `!Sync`: a
/// greenlet lives and dies on the thread that created it.
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<greenlet::Greenlet>();
/// ```
/// ```compile_fail
/// fn assert_sync<T: Sync>() {}
/// assert_sync::<greenlet::Greenlet>();
/// ```
///
/// # Dropping
/// When the last handle to a suspended greenlet is dropped, it is unwound in place: `GreenletExit`
/// is thrown into it with the dropping greenlet as its temporary parent, so its destructors run.
/// Handles are reference-counted, so a greenlet that holds a handle *to itself* across a switch
/// is never dropped this way (Python's cycle collector has no counterpart here): it and its
/// stack leak. Two common ways to make such a cycle:
/// - `getcurrent().parent().unwrap().switch(v)` in one statement keeps the `getcurrent()` temporary
///   alive across the switch; bind the parent first (`let p = getcurrent().parent().unwrap();
///   p.switch(v)`), as the examples here do;
/// - a suspended greenlet holding a child whose parent is itself. Kill such greenlets explicitly
///   with [`Greenlet::throw`] when done.
///
/// # Examples
/// ```
/// use greenlet::{Greenlet, Value};
/// let g = Greenlet::new(|v: Value| {
///     let n = v.take::<i32>();
///     let parent = greenlet::getcurrent().parent().unwrap();
///     let back = parent.switch(n + 1);
///     Value::new(back.take::<i32>() * 10)
/// });
/// assert_eq!(g.switch(1).take::<i32>(), 2); // paused inside g
/// assert_eq!(g.switch(5).take::<i32>(), 50); // g finished: run's value comes back
/// assert!(g.is_dead());
/// ```
#[derive(Clone)]
pub struct Greenlet(Rc<Inner>);

/// Builds a greenlet with a name, a parent or a stack other than the defaults.
///
/// # Examples
/// ```
/// use greenlet::{Builder, StackConfig, Value};
/// let g = Builder::new()
///     .name("worker")
///     .stack(StackConfig::guarded(64 * 1024))
///     .build(|v| v)
///     .expect("stack");
/// assert_eq!(g.name(), "worker");
/// assert_eq!(g.switch(7).take::<i32>(), 7);
/// ```
#[derive(Default)]
pub struct Builder {
    name: Option<String>,
    parent: Option<Greenlet>,
    stack: Option<StackConfig>,
}

impl Builder {
    /// A builder with every default: unnamed, parent = the current greenlet, the thread's default stack.
    pub fn new() -> Self {
        Builder::default()
    }

    /// Names the greenlet (shown by `Debug`, in overflow reports and traces).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the parent (default: the greenlet current when it is built).
    pub fn parent(mut self, parent: &Greenlet) -> Self {
        self.parent = Some(parent.clone());
        self
    }

    /// Sets the stack (default: [`crate::stack::thread_default`]).
    pub fn stack(mut self, cfg: StackConfig) -> Self {
        self.stack = Some(cfg);
        self
    }

    /// Builds the greenlet with its `run`.
    ///
    /// # Errors
    /// When no stack can be allocated (for example past the kernel's limit on memory mappings).
    pub fn build<F>(self, run: F) -> Result<Greenlet, StackError>
    where
        F: FnOnce(Value) -> Value + 'static,
    {
        self.build_inner(Some(Box::new(run)))
    }

    /// Builds the greenlet without a `run`; give it one with [`Greenlet::set_run`] before it starts.
    ///
    /// # Errors
    /// As [`Builder::build`].
    pub fn build_unbound(self) -> Result<Greenlet, StackError> {
        self.build_inner(None)
    }

    fn build_inner(self, run: Option<RunFn>) -> Result<Greenlet, StackError> {
        let cfg = self.stack.unwrap_or_else(crate::stack::thread_default);
        let stack = Stack::alloc(cfg)?;
        let bounds = stack.bounds();
        let parent = self.parent.unwrap_or_else(getcurrent);
        // Allocate first and build in place: moving the finished `Inner` (coroutine included) into
        // `Rc::new` was a visible part of creating a greenlet.
        let mut rc: Rc<std::mem::MaybeUninit<Inner>> = Rc::new_uninit();
        let slot = Rc::get_mut(&mut rc).expect("a fresh Rc is unique");
        slot.write(Inner {
            id: next_id(),
            state: Cell::new(State::Unstarted),
            in_chain: Cell::new(false),
            is_main: false,
            parent: RefCell::new(Some(parent)),
            run: Cell::new(run),
            inbox: Cell::new(None),
            inbox_throw: Cell::new(false),
            coro: UnsafeCell::new(Some(Coroutine::with_stack(stack, body))),
            yielder: Cell::new(ptr::null()),
            bounds: Some(bounds),
            name: self.name.map(String::into_boxed_str),
        });
        // SAFETY: every field was written by the `write` just above.
        Ok(Greenlet(unsafe { rc.assume_init() }))
    }
}

/// The coroutine body of every greenlet.
fn body(yielder: &Yielder<(), usize>, _: ()) {
    // SAFETY: the resumer set CURRENT to this greenlet just before resuming it and holds a strong
    // handle to it for as long as it runs; when it is suspended nothing here runs.
    let me = unsafe { &*current_ptr() };
    me.yielder.set(yielder);
    let first = take_inbox(me);
    trace::arrived(&first);
    let result = match first {
        Msg::Throw(payload) => {
            // Dies without running: release what `run` captured now, as greenlet clears `run`.
            drop(me.run.take());
            died_of(payload)
        }
        Msg::Value(v) => match me.run.take() {
            Some(run) => match catch_unwind(AssertUnwindSafe(move || run(v))) {
                Ok(v) => Msg::Value(v),
                Err(payload) => died_of(payload),
            },
            None => died_of(Box::new(format!(
                "greenlet {} was switched to but has no run",
                DisplayName(me)
            ))),
        },
    };
    deposit(me, result);
}

/// What a greenlet that died of `payload` sends its parent: `GreenletExit` as a plain value (greenlet
/// returns it rather than raising it), anything else to be raised there.
fn died_of(payload: Payload) -> Msg {
    match payload.downcast::<GreenletExit>() {
        Ok(exit) => Msg::Value(Value::new(*exit)),
        Err(p) => Msg::Throw(p),
    }
}

/// Takes the message of the switch that just arrived in `g`.
#[inline(always)]
fn take_inbox(g: &Inner) -> Msg {
    let v = match g.inbox.take() {
        Some(v) => v,
        None => unreachable!("every switch leaves a message in its target's inbox"),
    };
    if g.inbox_throw.get() {
        g.inbox_throw.set(false);
        match v.downcast::<Thrown>() {
            Ok(Thrown(p)) => Msg::Throw(p),
            Err(_) => unreachable!("inbox_throw marks a Thrown"),
        }
    } else {
        Msg::Value(v)
    }
}

/// Leaves `msg` in `g`'s inbox (two words and a flag: what is stored and loaded on every switch).
#[inline(always)]
fn deposit(g: &Inner, msg: Msg) {
    debug_assert!(
        g.inbox.take().is_none(),
        "a greenlet has one switch under way at most"
    );
    match msg {
        Msg::Value(v) => g.inbox.set(Some(v)),
        Msg::Throw(p) => {
            g.inbox.set(Some(Value::new(Thrown(p))));
            g.inbox_throw.set(true);
        }
    }
}

/// A payload on its way to be raised, boxed as a [`Value`] while it waits in an inbox.
struct Thrown(Payload);

/// Leaves the CPU to our resumer, asking it to pass control on to `target` (a greenlet below us in
/// the chain, whose inbox already holds the message); returns what we are switched back with.
#[inline(always)]
fn suspend_towards(cur: &Inner, target: *const Inner) -> Value {
    let y = cur.yielder.get();
    debug_assert!(
        !y.is_null(),
        "only a started, non-main greenlet can be above another"
    );
    // SAFETY: `cur` is running, so it is started and its yielder points into its live stack.
    unsafe { &*y }.suspend(target as usize);
    trace::arrive(take_inbox(cur))
}

/// Switches from the current greenlet to `target` carrying `msg`; returns what the current greenlet
/// receives when it is next switched to.
#[inline(always)]
fn switch_to(target: &Rc<Inner>, mut msg: Msg) -> Value {
    let cur_ptr = current_ptr();
    // SAFETY: the current greenlet is alive (invariant of CURRENT, see the module docs).
    let cur = unsafe { &*cur_ptr };
    trace::set_origin_current();
    // Keeps alive a target found by walking up parents (the caller's handle keeps `target` alive).
    let mut owned: Option<Greenlet> = None;
    let mut tp: *const Inner = Rc::as_ptr(target);
    loop {
        // SAFETY: `tp` is alive: it is `target` (borrowed from the caller for this whole call) or
        // held by `owned`.
        let t = unsafe { &*tp };
        if t.state.get() == State::Dead {
            // greenlet's switch to a dead greenlet goes to its parent; a GreenletExit thrown at it
            // becomes a plain value on the way (nothing is left to exit).
            if let Msg::Throw(p) = msg {
                msg = died_of(p);
            }
            let parent = t.parent.borrow().clone();
            let parent = parent.expect("a dead greenlet always has a parent (main never dies)");
            tp = Rc::as_ptr(&parent.0);
            owned = Some(parent);
            continue;
        }
        if tp == cur_ptr {
            drop(owned);
            return trace::arrive(msg);
        }
        deposit(t, msg);
        if t.in_chain.get() {
            // The target is below us in the chain: give control back to our resumer, who passes it on.
            return suspend_towards(cur, tp);
        }
        t.in_chain.set(true);
        t.state.set(State::Started);
        CURRENT.with(|c| c.set(tp));
        // SAFETY: `in_chain` was false, so no other frame is inside this coroutine's `resume` (field
        // invariant of `coro`); `t` is kept alive as said above.
        let coro = unsafe { (*t.coro.get()).as_mut() }.expect("a live greenlet has a coroutine");
        let result = coro.resume(());
        CURRENT.with(|c| c.set(cur_ptr));
        t.in_chain.set(false);
        check_stack(t);
        match result {
            CoroutineResult::Yield(next) => {
                // `next` was in the chain when `t` suspended, so it is us or below us; its inbox holds
                // the message.
                let next = next as *const Inner;
                if next == cur_ptr {
                    return trace::arrive(take_inbox(cur));
                }
                return suspend_towards(cur, next);
            }
            CoroutineResult::Return(()) => {
                t.state.set(State::Dead);
                // SAFETY: as above; the coroutine is done and nobody is inside it.
                if let Some(coro) = unsafe { (*t.coro.get()).take() } {
                    coro.into_stack().release();
                }
                msg = take_inbox(t);
                trace::set_origin_ptr(tp);
                let parent = t.parent.borrow().clone();
                let parent = parent.expect("a non-main greenlet always has a parent");
                tp = Rc::as_ptr(&parent.0);
                owned = Some(parent);
            }
        }
    }
}

/// Aborts with a clear message if the greenlet that just left the CPU overflowed a dense stack.
#[inline]
fn check_stack(inner: &Inner) {
    if let Some(b) = &inner.bounds {
        if b.overflowed() {
            crate::stack::overflow_abort(&DisplayName(inner));
        }
    }
}

/// Returns the current greenlet (the main greenlet of this thread outside any other).
pub fn getcurrent() -> Greenlet {
    // SAFETY: CURRENT points at a live greenlet (module invariant).
    unsafe { Greenlet::from_raw_clone(current_ptr()) }
}

impl Greenlet {
    /// A new handle to the greenlet at `p`.
    ///
    /// # Safety
    /// `p` must come from `Rc::as_ptr` of a greenlet that is alive now.
    pub(crate) unsafe fn from_raw_clone(p: *const Inner) -> Greenlet {
        // SAFETY: per the contract `p` is a live `Rc<Inner>` allocation; taking one more strong count
        // and wrapping it is exactly `Rc::clone`.
        unsafe {
            Rc::increment_strong_count(p);
            Greenlet(Rc::from_raw(p))
        }
    }
}

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
    /// - When `run` returns, its value is what the parent's pending `switch` returns. When `run`
    ///   panics, the panic continues in the parent, from its pending `switch`; when it dies of
    ///   [`GreenletExit`], the parent's `switch` returns a `Value` holding the `GreenletExit`.
    ///
    /// `v` may be any `'static` value; a [`Value`] is passed as is.
    #[inline]
    pub fn switch<V: 'static>(&self, v: V) -> Value {
        switch_to(&self.0, Msg::Value(Value::new(v)))
    }

    /// Raises [`GreenletExit`] in this greenlet (at its pending `switch`, or, if it never started,
    /// kills it without running it). Returns what the current greenlet is switched back with — for a
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

    /// The name given by [`Builder::name`], or `greenlet-<id>`.
    pub fn name(&self) -> String {
        DisplayName(&self.0).to_string()
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

/// Formats a greenlet's name without allocating (usable from the fault handler).
pub(crate) struct DisplayName<'a>(&'a Inner);

impl fmt::Display for DisplayName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.name {
            Some(n) => f.write_str(n),
            None => write!(f, "greenlet-{}", self.0.id),
        }
    }
}

impl Drop for Greenlet {
    fn drop(&mut self) {
        // The last handle to a suspended greenlet: unwind it so its destructors run (greenlet's
        // dealloc does the same: parent := current, then throw GreenletExit).
        if Rc::strong_count(&self.0) != 1 || self.0.state.get() != State::Started || self.0.is_main
        {
            return;
        }
        debug_assert!(
            !self.0.in_chain.get(),
            "a greenlet in the chain has another handle"
        );
        if CURRENT.try_with(Cell::get).map_or(true, |p| p.is_null()) {
            return; // the thread is being torn down: nothing to switch from; Inner::drop leaks it
        }
        let me = self.clone();
        let cur = getcurrent();
        let old_parent = me.0.parent.replace(Some(cur));
        let result = catch_unwind(AssertUnwindSafe(|| me.throw()));
        if !me.is_dead() {
            // It caught the exit and lives on (resurrected): give it its parent back, as greenlet's
            // dealloc does.
            *me.0.parent.borrow_mut() = old_parent;
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

/// What the fault handler needs to know about the running greenlet.
///
/// # Safety
/// Call only on the thread whose state is read (it reads thread-locals and the current greenlet,
/// which that thread keeps alive). Returns `None` on the main greenlet or before any greenlet exists.
pub(crate) unsafe fn current_fault_context<R>(
    f: impl FnOnce(&StackBounds, &dyn fmt::Display) -> R,
) -> Option<R> {
    let p = CURRENT.try_with(Cell::get).ok()?;
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null CURRENT points at a live greenlet (module invariant); the caller is on its thread.
    let inner = unsafe { &*p };
    inner.bounds.as_ref().map(|b| f(b, &DisplayName(inner)))
}
