//! The switch engine: a greenlet's shared state ([`Inner`]), the thread's switching state (`CURRENT`,
//! the slow-path flags and hand-over slots), and every switch: the fast path inlined into
//! [`Greenlet::switch`], the slow ones, a greenlet's start (`entry`) and its last switch (`finish`).
//! The public handle's methods live in [`crate::greenlet`]; the [`Greenlet`] type itself is defined
//! here because the engine holds handles (a greenlet's parent, `KEEP`). The machine-level switch is
//! [`crate::arch`]; this module is the only caller.
//!
//! # How a switch works
//!
//! Every greenlet but the main one runs on its own stack; a suspended greenlet is its saved stack
//! pointer (`Inner::sp`). A switch from the current greenlet `C` to a target `T`:
//!
//! 1. `T` dead: the switch goes to `T`'s parent instead (walking up past dead parents).
//! 2. `T` is `C`: the value is simply returned (greenlet's switch-to-self).
//! 3. Otherwise `CURRENT` becomes `T` and one machine-level switch (`arch::switch`) saves
//!    `C`'s stack pointer and resumes `T` where it stopped (an unstarted `T` starts in `entry`).
//!    It carries three words in registers: `C`'s address with flag bits (`SlowBits`), and the message:
//!    the two words of a [`Value`]. A panic payload to raise waits in `THROWN` instead.
//!
//! This is the switch of Python's greenlet minus the stack copying: symmetric, one context switch
//! whatever the greenlets' relation. (It used to be built on corosensei's asymmetric coroutines with a
//! per-thread chain of resumers; that bookkeeping made a round trip 3.2x corosensei's own.)
//!
//! A greenlet whose `run` is over returns from `entry` to its root frame, which makes the last
//! switch: to its parent, carrying its result and the `DEAD` bit. It cannot give its stack back
//! itself (it still runs on it, and the pool may unmap it), so the parent does on arrival.
//!
//! # Who keeps what alive
//! - The running greenlet is kept alive by the greenlet that switched to it: that one is suspended
//!   inside `switch(&self)`, borrowing a handle, and nothing can drop a borrowed handle (safe code
//!   reaches a shared one only through a `RefCell`-like guard, which stays locked). Internal
//!   switches hold an owned handle in the switcher's frame instead (to a dead greenlet's parent, or
//!   to a greenlet being unwound because its last handle went).
//! - The exception: a finished greenlet's frame is gone for good, so the parent it switches to is
//!   held by the thread-local `KEEP` for as long as it runs (unless it is the main greenlet); when it next switches away, the next
//!   greenlet drops that handle on arrival (and so unwinds the parent if that was the last one).
//! - A suspended greenlet lives as long as handles to it do; dropping the last one unwinds it.
//! - The main greenlet is also held by the thread-local `MAIN`.
//!
//! # What makes a switch cheap
//! - The message travels in registers, never through memory; the flag bits put everything uncommon
//!   (tracing, throws, finished greenlets, `KEEP`) behind one test on each side.
//! - The switcher's side reads one thread-local word: `CURRENT` with the `SLOW` bits and `CHECK` in
//!   its low bits, so "a current greenlet exists, nothing to do on the way out, no canary to check"
//!   is one test; the target's "started, no canary" is one byte compared with 0 ([`StateCell`]).
//!   Dense stacks (with a canary) and tracing take the checked path.
//! - The switch path is inlined into `Greenlet::switch`. After a stack switch, every `ret` on the new
//!   stack is mispredicted (the return-stack buffer holds the other stack's addresses), so each
//!   out-of-line frame between the user's `switch` call and the machine switch costs ~15 cycles.
//!
//! # Ground rules
//! - Everything here is thread-local: a [`Greenlet`] is `!Send` and `!Sync`, so no greenlet is ever
//!   touched from another thread.
//! - Panics never cross a stack boundary by unwinding: `entry` catches them and they travel as
//!   `Msg::Throw`, to be resumed (with `resume_unwind`) in whichever greenlet receives them.
//! - Backtraces: a greenlet's root frame links to the frames of the greenlet that switched to it, and
//!   stops there (see the `arch` module).

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::fmt;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;

use crate::arch;
use crate::error::GreenletExit;
use crate::sanitizer;
use crate::stack::{Stack, StackBounds, StackConfig, StackError};
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

/// A greenlet's `run`.
pub(crate) type RunFn = Box<dyn FnOnce(Value) -> Value>;

/// Where a greenlet is in its life. `Started` is 0, so the switch's first test is a compare with 0.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum State {
    /// Started and not finished: running, or suspended in a switch.
    Started = 0,
    /// Created; `run` has not been entered.
    Unstarted = 1,
    /// Finished (returned, panicked or exited); its stack is back in the pool.
    Dead = 2,
}

/// A greenlet's [`State`] and whether its stack has a canary to check, in one byte: the fast switch
/// tests "started, and nothing to check when it switches away" with one compare with 0.
pub(crate) struct StateCell(Cell<u8>);

impl StateCell {
    /// The flag bit: the greenlet's stack is dense, with a canary (fixed for its life).
    const CANARY: u8 = 4;

    fn new(state: State, canary: bool) -> StateCell {
        StateCell(Cell::new(
            state as u8 | if canary { Self::CANARY } else { 0 },
        ))
    }

    #[inline(always)]
    pub(crate) fn get(&self) -> State {
        match self.0.get() & 3 {
            0 => State::Started,
            1 => State::Unstarted,
            _ => State::Dead,
        }
    }

    #[inline(always)]
    fn set(&self, state: State) {
        self.0.set(self.0.get() & Self::CANARY | state as u8);
    }

    /// Started, and a guarded stack (or the main greenlet's): a target for the fast switch.
    #[inline(always)]
    fn is_plain_started(&self) -> bool {
        self.0.get() == 0
    }
}

/// The shared state of one greenlet.
///
/// `repr(C)` with what a switch reads first: a switch to a greenlet that has not run for a while
/// (one of 100k waking waiters) then misses one cache line of it, not several.
#[repr(C)]
pub(crate) struct Inner {
    /// The saved context.
    ///
    /// # Invariant
    /// While the greenlet is suspended (or unstarted): a context [`arch::switch`] can resume, on
    /// `stack` (on the thread's own stack for the main greenlet). Meaningless while it runs and once
    /// it is dead.
    sp: Cell<usize>,
    /// Where a switch to this greenlet records the switcher's frame, for backtraces (see
    /// [`crate::arch`]).
    ///
    /// # Invariant
    /// The link slot at the top of `stack` for the others; `main_link` for the main greenlet (which
    /// has no root frame to read it, but a switch writes it all the same, so the path has no branch).
    link: *mut usize,
    /// The address of a dense stack's canary word (checked when the greenlet switches away), 0 for
    /// guarded stacks and the main greenlet; see [`StackBounds`].
    canary: usize,
    pub(crate) state: StateCell,
    pub(crate) is_main: bool,
    /// A number the scheduler attaches ([`Greenlet::set_tag`]); it fits in padding.
    pub(crate) tag: Cell<u32>,
    pub(crate) id: u64,
    /// `None` only for the main greenlet.
    pub(crate) parent: RefCell<Option<Greenlet>>,
    pub(crate) run: Cell<Option<RunFn>>,
    /// The main greenlet's `link` target.
    main_link: UnsafeCell<usize>,
    /// The greenlet's stack.
    ///
    /// # Invariant
    /// `Some` from creation until the greenlet has finished and switched away for good (then the
    /// greenlet it switched to gave it back to the pool, in [`receive_slow`]); always `None` for the
    /// main greenlet.
    stack: Cell<Option<Stack>>,
    /// Where the stack is (for overflow checks and the fault handler); `None` for the main greenlet.
    bounds: Option<StackBounds>,
    /// Borrowed only briefly, never across a switch (the fault handler reads it with `try_borrow`).
    pub(crate) name: RefCell<Name>,
}

impl Inner {
    /// Whether it has not started and has no `run` (switching into it would fail).
    #[inline]
    pub(crate) fn lacks_run(&self) -> bool {
        // SAFETY: a read of the `Option`'s discriminant through the cell; no reference to its
        // contents escapes and nothing can change it meanwhile (single thread, no call in between).
        self.state.get() == State::Unstarted && unsafe { (*self.run.as_ptr()).is_none() }
    }

    /// Whether `run` has finished.
    #[inline]
    fn is_dead(&self) -> bool {
        self.state.get() == State::Dead
    }

    /// A handle to the parent (`None` only for a main greenlet).
    fn parent(&self) -> Option<Greenlet> {
        self.parent.borrow().clone()
    }
}

/// A greenlet's name, as given to [`Builder`](crate::Builder) or [`Greenlet::set_name`].
pub(crate) enum Name {
    /// `greenlet-<id>`.
    Default,
    Owned(Box<str>),
    /// `<prefix><n>`, formatted only when shown: a scheduler names its tasks without allocating.
    Numbered(&'static str, u64),
}

impl Drop for Inner {
    fn drop(&mut self) {
        let Some(stack) = self.stack.take() else {
            return; // main, or finished: the stack went back to the pool
        };
        if self.state.get() == State::Started {
            // The greenlet refused to die when its last handle was dropped (it switched away from
            // its own GreenletExit), or the thread is being torn down. Its frames are still on the
            // stack and cannot be unwound from here; leaking the stack is the only sound choice.
            eprintln!(
                "greenlet: {} was dropped while still running; its stack is leaked",
                DisplayName(self)
            );
            std::mem::forget(stack);
        } else {
            // Unstarted: nothing of ours is on it (`run` lives in this struct).
            stack.release();
        }
    }
}

/// This thread's main greenlet; dropping it at thread exit also clears `CURRENT`.
struct MainSlot(RefCell<Option<Greenlet>>);

impl Drop for MainSlot {
    fn drop(&mut self) {
        let Some(main) = self.0.get_mut().take() else {
            return;
        };
        if current_ptr_raw() == Rc::as_ptr(&main.0) {
            // Registered when the main greenlet was made, so destroyed after every thread-local
            // first used later (whose greenlets could still be unwound from here); greenlets dropped
            // later find no current greenlet and leak what they cannot unwind.
            CURRENT.with(|c| c.set(c.get() & SLOW_BITS | CHECK));
        }
        drop(main);
    }
}

/// The flag bits of a switch's first word (the switcher's address, whose low bits are free).
///
/// Any of them set sends the arriving greenlet down [`receive_slow`].
pub(crate) struct SlowBits;

impl SlowBits {
    /// The switcher finished: give its stack back.
    const DEAD: usize = 1;
    /// The message is a panic payload, waiting in `THROWN`.
    const THROW: usize = 2;
    /// Something else: a tracer to call (`ORIGIN` set), a handle in `RELEASE` or a message in
    /// `DISCARDED` to drop.
    const OTHER: usize = 4;
    const ALL: usize = 7;
}

/// What the tracing layer (`trace.rs`, above this one) does at a switch; `settrace` installs it
/// before it sets [`TRACING`], so that this file calls up only through these pointers.
pub(crate) struct TraceHooks {
    /// Records the greenlet a traced switch starts from.
    pub(crate) set_origin: fn(Greenlet),
    /// Takes what `set_origin` recorded, on the target's side.
    pub(crate) take_origin: fn() -> Option<Greenlet>,
    /// Reports a switch from the origin to the current greenlet (`true`: a throw).
    pub(crate) fire: fn(Greenlet, bool),
}

/// The tracing layer's hooks, once any thread installed a tracer (the same functions for all).
static TRACE_HOOKS: std::sync::OnceLock<TraceHooks> = std::sync::OnceLock::new();

/// Installs the tracing layer's hooks (idempotent: the first call's stay).
pub(crate) fn install_trace_hooks(hooks: TraceHooks) {
    let _ = TRACE_HOOKS.set(hooks);
}

/// Bits of `SLOW`: what the switcher side must look at.
pub(crate) const TRACING: u8 = 1;
/// `KEEP` holds a handle to the current greenlet.
const KEEPING: u8 = 2;
/// The `SLOW` bits, in `CURRENT`'s word.
const SLOW_BITS: usize = (TRACING | KEEPING) as usize;
/// In `CURRENT`'s word: there is no current greenlet (null pointer), or the current one has a
/// canary to check when it switches away.
const CHECK: usize = 4;
/// Every flag bit of `CURRENT`'s word; a switch with all of them clear takes the fast path.
const FLAGS: usize = SLOW_BITS | CHECK;

thread_local! {
    /// `CURRENT` and `SLOW` in one word: the running greenlet of this thread (null until the main
    /// greenlet is created), with `SLOW`'s bits (`TRACING | KEEPING`) and `CHECK` in its low bits
    /// (an `Inner` is 8-aligned). The fast switch reads this one word and tests all the flags with
    /// one test: no slow work, a current greenlet exists, and it has no canary. Measured with
    /// callgrind: 97 -> 79 instructions per round trip (with the state byte's canary flag and the
    /// fast path laid out first), 5.4 -> 4.7 ns.
    ///
    /// # Invariant
    /// The pointer, when not null, points to a live greenlet (see the module docs for who keeps it
    /// alive); `CHECK` is set exactly when it is null or that greenlet has a canary.
    static CURRENT: Cell<usize> = const { Cell::new(CHECK) };
    // The next three have no destructor (`ManuallyDrop`), so they are usable until the thread's very
    // end (a finishing greenlet must never fail to reach them); they are empty whenever the thread
    // is not between two halves of a switch, except `KEEP` while a kept greenlet runs.

    /// A handle to the current greenlet, when nothing else keeps it alive (it was switched to by a
    /// finishing greenlet). `KEEPING` is set in `SLOW` exactly when this is `Some`.
    static KEEP: ManuallyDrop<Cell<Option<Greenlet>>> = const { ManuallyDrop::new(Cell::new(None)) };
    /// A handle for the arriving greenlet to drop (`SlowBits::OTHER`): what `KEEP` held.
    static RELEASE: ManuallyDrop<Cell<Option<Greenlet>>> =
        const { ManuallyDrop::new(Cell::new(None)) };
    /// What a finishing greenlet sent to a parent that has no `run` (the switch into it failed, so
    /// the failure went on up instead), for the arriving greenlet to drop (`SlowBits::OTHER`):
    /// destructors must not run on the finishing greenlet's way out.
    static DISCARDED: ManuallyDrop<Cell<Option<Msg>>> = const { ManuallyDrop::new(Cell::new(None)) };
    /// The payload of a switch with `SlowBits::THROW`.
    static THROWN: ManuallyDrop<Cell<Option<Payload>>> = const { ManuallyDrop::new(Cell::new(None)) };
    /// This thread's main greenlet, created on first use.
    static MAIN: MainSlot = const { MainSlot(RefCell::new(None)) };
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
}

/// The current greenlet, or null when there is none yet or the thread is being torn down (for code
/// that must not create the main greenlet: destructors, signal handlers).
pub(crate) fn current_ptr_if_any() -> *const Inner {
    CURRENT
        .try_with(|c| (c.get() & !FLAGS) as *const Inner)
        .unwrap_or(ptr::null())
}

/// `CURRENT`'s pointer (null when there is no current greenlet).
#[inline(always)]
fn current_ptr_raw() -> *const Inner {
    (CURRENT.with(Cell::get) & !FLAGS) as *const Inner
}

/// Makes `t` the current greenlet, keeping the `SLOW` bits and setting `CHECK` as `t` needs.
#[inline(always)]
fn set_current(t: &Inner) {
    let check = if t.canary != 0 { CHECK } else { 0 };
    CURRENT.with(|c| c.set(t as *const Inner as usize | c.get() & SLOW_BITS | check));
}

/// This thread's `SLOW` flags.
#[inline]
pub(crate) fn slow_bits() -> u8 {
    (CURRENT.with(Cell::get) & SLOW_BITS) as u8
}

/// Sets or clears `bit` of this thread's `SLOW` flags.
pub(crate) fn set_slow(bit: u8, on: bool) {
    let bit = bit as usize;
    CURRENT.with(|c| c.set(if on { c.get() | bit } else { c.get() & !bit }));
}

/// The current greenlet's state, creating the main greenlet on first use.
#[inline]
pub(crate) fn current_ptr() -> *const Inner {
    let p = current_ptr_raw();
    if p.is_null() {
        init_main()
    } else {
        p
    }
}

#[cold]
fn init_main() -> *const Inner {
    // Every greenlet stack is made after some thread's main greenlet: the fault handler can name the
    // running greenlet from the first one on.
    crate::stack::set_fault_context(current_fault_context);
    let mut rc: Rc<std::mem::MaybeUninit<Inner>> = Rc::new_uninit();
    let slot = Rc::get_mut(&mut rc).expect("a fresh Rc is unique");
    let inner = slot.write(Inner {
        id: 0,
        state: StateCell::new(State::Started, false),
        is_main: true,
        tag: Cell::new(0),
        parent: RefCell::new(None),
        run: Cell::new(None),
        sp: Cell::new(0),
        link: ptr::null_mut(),
        main_link: UnsafeCell::new(0),
        canary: 0,
        stack: Cell::new(None),
        bounds: None,
        name: RefCell::new(Name::Owned("main".into())),
    });
    inner.link = inner.main_link.get();
    // SAFETY: every field was written just above.
    let main = Greenlet(unsafe { rc.assume_init() });
    let p = Rc::as_ptr(&main.0);
    MAIN.with(|m| *m.0.borrow_mut() = Some(main));
    // SAFETY: `p` is the main greenlet just stored in MAIN, alive.
    set_current(unsafe { &*p });
    p
}

/// A fresh greenlet id for this thread.
pub(crate) fn next_id() -> u64 {
    NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    })
}

// The public handle. Defined here, with the engine that holds handles (a greenlet's parent, `KEEP`);
// its methods, and the unwinding of a greenlet whose last handle is dropped, are in `crate::greenlet`.
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
pub struct Greenlet(pub(crate) Rc<Inner>);

/// Makes a greenlet that will start in [`entry`] on a fresh stack made as `cfg` says; its parent is
/// `parent`, or the current greenlet.
///
/// # Errors
/// When no stack can be allocated.
pub(crate) fn new_greenlet(
    cfg: StackConfig,
    parent: Option<Greenlet>,
    name: Name,
    run: Option<RunFn>,
) -> Result<Greenlet, StackError> {
    let (stack, bounds) = Stack::alloc(cfg)?;
    let base = stack.base();
    // SAFETY: `base` is the 16-byte aligned top of a stack we own and that only this greenlet
    // will run on, until it finishes.
    let sp = unsafe { arch::init_stack(base, entry) };
    let parent = parent.unwrap_or_else(getcurrent);
    // Allocate first and build in place: moving the finished `Inner` into `Rc::new` was a
    // visible part of creating a greenlet.
    let mut rc: Rc<std::mem::MaybeUninit<Inner>> = Rc::new_uninit();
    let slot = Rc::get_mut(&mut rc).expect("a fresh Rc is unique");
    slot.write(Inner {
        id: next_id(),
        state: StateCell::new(State::Unstarted, bounds.canary_addr() != 0),
        is_main: false,
        tag: Cell::new(0),
        parent: RefCell::new(Some(parent)),
        run: Cell::new(run),
        sp: Cell::new(sp),
        link: arch::link_slot(base),
        main_link: UnsafeCell::new(0),
        canary: bounds.canary_addr(),
        stack: Cell::new(Some(stack)),
        bounds: Some(bounds),
        name: RefCell::new(name),
    });
    // SAFETY: every field was written by the `write` just above.
    Ok(Greenlet(unsafe { rc.assume_init() }))
}

/// Where every greenlet starts, on its own stack, at the first switch to it, with that switch's
/// words; returns (through `out`) where its last switch goes, which the trampoline then makes.
///
/// # Safety
/// Called only by the root frame [`arch::init_stack`] prepared, on the stack of the greenlet that
/// `CURRENT` names, with the words of the switch to it and a place for the exit.
unsafe extern "C" fn entry(out: *mut arch::Exit, arg: usize, w0: usize, w1: usize) {
    sanitizer::first_arrival();
    // SAFETY: CURRENT is this greenlet, alive while it runs (module docs); `me` is only used then.
    let me = unsafe { &*current_ptr() };
    me.state.set(State::Started);
    // Nothing may unwind out of here (an `extern "C"` fn): a panic before or around `run` (a tracer
    // panicking as we arrive, a destructor of what `run` captured when we die unstarted) is what
    // we die of, and goes to our parent like a panic in `run`.
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the words of the switch that started us.
        match unsafe { receive(arg, w0, w1) } {
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
                // Not reached: a switch into a greenlet without `run` fails before it starts
                // (`no_run`, `finish`). Should it happen, it dies of the same message.
                None => died_of(no_run_payload(me)),
            },
        }
    }))
    .unwrap_or_else(died_of);
    // Died before `run` was taken (a tracer panicked as we arrived): release what it captured now,
    // here, where a panic of its destructors is ours to report, not an abort.
    let result = match me.run.take() {
        None => result,
        Some(run) => match catch_unwind(AssertUnwindSafe(move || drop(run))) {
            Ok(()) => result,
            Err(payload) => {
                // Two panics: report the later one, as a panic in a destructor during an unwind
                // would. The first is dropped (LeakSanitizer found it leaked when it was forgotten);
                // should its own destructor panic, that payload is leaked: dropping it could panic.
                if let Err(third) = catch_unwind(AssertUnwindSafe(move || drop(result))) {
                    std::mem::forget(third);
                }
                died_of(payload)
            }
        },
    };
    // SAFETY: `me` is current and its `run` is over; `out` is the trampoline's.
    unsafe { out.write(finish(me, result)) }
}

/// Ends the current greenlet `me`: prepares the switch that sends `msg` to its parent (walking up
/// past dead parents), for good.
///
/// # Safety
/// `me` must be the current greenlet, called from [`entry`] after `run` is over; the returned exit
/// must be taken (by the trampoline) before anything else runs.
unsafe fn finish(me: &Inner, mut msg: Msg) -> arch::Exit {
    me.state.set(State::Dead);
    check_stack(me);
    let mut target = me
        .parent
        .borrow()
        .clone()
        .expect("a non-main greenlet always has a parent");
    let mut bits = 0;
    loop {
        if target.0.is_dead() {
            if let Msg::Throw(p) = msg {
                msg = died_of(p);
            }
        } else if target.0.lacks_run() {
            // greenlet: the switch into a parent with no `run` fails and that failure goes to the
            // next parent up; the parent stays unstarted. What we sent it is dropped by whoever
            // receives the switch (destructors must not run here).
            let sent = std::mem::replace(&mut msg, Msg::Throw(no_run_payload(&target.0)));
            match DISCARDED.with(|d| d.take()) {
                None => DISCARDED.with(|d| d.set(Some(sent))),
                // Already holds what we sent first; `sent` is our own no-run message.
                Some(first) => {
                    DISCARDED.with(|d| d.set(Some(first)));
                    drop(sent);
                }
            }
            bits = SlowBits::OTHER;
        } else {
            break;
        }
        let up = target
            .0
            .parent()
            .expect("a dead or unstarted greenlet always has a parent");
        target = up;
    }
    let me_ptr: *const Inner = me;
    let t = &*target.0;
    // SAFETY: the link slot of a live greenlet (field invariant); our stack is about to be reused,
    // so backtraces taken in the target must not continue into it.
    unsafe { *t.link = arch::terminator() };
    let to = t.sp.get();
    sanitizer::leave_for_good(t.bounds.as_ref());
    let tp = Rc::as_ptr(&target.0);
    let (w0, w1, msg_bits) = into_words(msg);
    bits |= msg_bits | SlowBits::DEAD;
    if slow_bits() != 0 {
        // Before the target takes KEEP: if we were kept, that handle goes to RELEASE.
        bits |= leave_slow(me);
    }
    if t.is_main {
        drop(target); // MAIN keeps it alive
    } else {
        // Nothing else keeps the target alive while it runs (our frame is abandoned): our handle
        // goes to KEEP.
        KEEP.with(|k| k.set(Some(target)));
        set_slow(KEEPING, true);
    }
    // SAFETY: the target is kept alive by KEEP or MAIN (just above).
    set_current(unsafe { &*tp });
    // `to` is the target's saved context (it is suspended or unstarted: not current, not dead), kept
    // alive by KEEP or MAIN. The target gives our stack back when it sees `DEAD`.
    arch::Exit {
        to,
        words: [me_ptr as usize | bits, w0, w1],
    }
}

/// Turns the words of the switch that just resumed the current greenlet into its message.
///
/// # Safety
/// The words must be those of that switch (each switch's words are received exactly once).
#[inline(always)]
unsafe fn receive(arg: usize, w0: usize, w1: usize) -> Msg {
    if arg & SlowBits::ALL != 0 {
        if arg & SlowBits::ALL == SlowBits::DEAD {
            // A child finished (the common way to get here), nothing else: inline, it is the end of
            // every greenlet's life.
            // SAFETY: as in `receive_slow`.
            unsafe { release_stack((arg & !SlowBits::ALL) as *const Inner) };
            // SAFETY: without `THROW`, the message words are a value taken apart by the switcher.
            return Msg::Value(unsafe { Value::from_raw(w0, w1) });
        }
        // SAFETY: per the contract.
        return unsafe { receive_slow(arg, w0, w1) };
    }
    // SAFETY: without `THROW`, the message words are a value taken apart by the switcher.
    Msg::Value(unsafe { Value::from_raw(w0, w1) })
}

/// [`receive`] for a switch with any [`SlowBits`].
///
/// # Safety
/// As [`receive`].
#[cold]
#[inline(never)]
unsafe fn receive_slow(arg: usize, w0: usize, w1: usize) -> Msg {
    let prev = (arg & !SlowBits::ALL) as *const Inner;
    // Take what this switch left in the thread-locals before running anything that might switch.
    let msg = if arg & SlowBits::THROW != 0 {
        Msg::Throw(
            THROWN
                .with(|t| t.take())
                .expect("a switch with THROW leaves its payload"),
        )
    } else {
        // SAFETY: the message words are a value taken apart by the switcher.
        Msg::Value(unsafe { Value::from_raw(w0, w1) })
    };
    if arg & SlowBits::DEAD != 0 {
        // SAFETY: as in `release_stack`: RELEASE, which may hold the switcher, is dropped only below.
        unsafe { release_stack(prev) };
    }
    if arg & SlowBits::OTHER != 0 {
        let hooks = TRACE_HOOKS.get();
        let origin = hooks.and_then(|h| (h.take_origin)());
        drop(DISCARDED.with(|d| d.take()));
        // May unwind a greenlet whose last handle this was (a switch to it and back).
        drop(RELEASE.with(|r| r.take()));
        if let (Some(origin), Some(h)) = (origin, hooks) {
            (h.fire)(origin, matches!(msg, Msg::Throw(_)));
        }
    }
    msg
}

/// Gives the stack of the greenlet at `prev`, which finished and switched away from it for good, back
/// to the pool.
///
/// # Safety
/// `prev` is the switcher of a switch with `DEAD` that just arrived. It is still alive: held by a
/// handle in the suspended frame that switched to it, or by `RELEASE`.
#[inline(always)]
unsafe fn release_stack(prev: *const Inner) {
    // SAFETY: per the contract.
    let prev = unsafe { &*prev };
    if let Some(stack) = prev.stack.take() {
        stack.release();
    }
}

/// What a greenlet that died of `payload` sends its parent: `GreenletExit` as a plain value (greenlet
/// returns it rather than raising it), anything else to be raised there.
fn died_of(payload: Payload) -> Msg {
    match payload.downcast::<GreenletExit>() {
        Ok(exit) => Msg::Value(Value::new(*exit)),
        Err(p) => Msg::Throw(p),
    }
}

/// Switches from the current greenlet to `target` carrying the value `v` (what [`Greenlet::switch`]
/// does); returns what the current greenlet receives when it is next switched to.
///
/// The fast path (`target` started and not current) takes `v` apart into its two words right away:
/// a [`Msg`] is built only on the other paths, so the common switch stores nothing on the stack for
/// it.
#[inline(always)]
pub(crate) fn switch_value(target: &Rc<Inner>, v: Value) -> Value {
    let tp = Rc::as_ptr(target);
    // SAFETY: the caller's handle keeps `target` alive for this whole call.
    let t = unsafe { &*tp };
    let word = CURRENT.with(Cell::get);
    // Nested tests, each one compare and branch (written with `&&`, two of them became a `setne`).
    if word & FLAGS == 0 {
        // SAFETY: no flag in `CURRENT`: it points at the current greenlet (not null: `CHECK` is
        // clear), alive (its invariant), which has no canary and nothing to do on the way out.
        let cur = unsafe { &*(word as *const Inner) };
        if t.state.is_plain_started() {
            if tp as usize == word {
                unlikely();
            } else {
                let (w0, w1) = v.into_raw();
                // SAFETY: as just said of `cur`; `t` is alive (borrowed by our caller for as long as
                // we are suspended), started, not dead, not current, and has no canary either.
                return unsafe { switch_words::<false, true>(cur, t, w0, w1, 0) };
            }
        } else if t.state.get() == State::Unstarted {
            // Starting a greenlet (possibly one with a canary).
            unlikely();
            // SAFETY: as above; `t` has not started, so it is not current.
            return unsafe { switch_into::<true, true>(cur, t, Msg::Value(v)) };
        }
    }
    unlikely();
    let cur_ptr = current_ptr();
    let state = t.state.get();
    if state == State::Started && tp != cur_ptr {
        let (w0, w1) = v.into_raw();
        // SAFETY: the current greenlet is alive (CURRENT's invariant); `t` is alive (borrowed by our
        // caller for as long as we are suspended), started, not dead and not current.
        return unsafe { switch_words::<false, false>(&*cur_ptr, t, w0, w1, 0) };
    }
    if state == State::Unstarted {
        // SAFETY: as above; `t` has not started, so it is not current (a greenlet is marked started
        // before anything runs on it).
        return unsafe { switch_into::<true, false>(&*cur_ptr, t, Msg::Value(v)) };
    }
    switch_slow(target, Msg::Value(v))
}

/// Marks the path that calls it as the unlikely one: the fast switch is then laid out first, and
/// its state test is one compare with 0 instead of a test for each other state.
#[cold]
#[inline(never)]
fn unlikely() {}

/// Switches from the current greenlet to `target` carrying `msg` (a throw, or a value as
/// [`switch_value`] does); returns what the current greenlet receives when it is next switched to.
#[inline(always)]
pub(crate) fn switch_to(target: &Rc<Inner>, msg: Msg) -> Value {
    let cur_ptr = current_ptr();
    let tp = Rc::as_ptr(target);
    // SAFETY: the caller's handle keeps `target` alive for this whole call.
    let t = unsafe { &*tp };
    match t.state.get() {
        // SAFETY: the current greenlet is alive (CURRENT's invariant); `t` is alive (borrowed by our
        // caller for as long as we are suspended), started, not dead and not current.
        State::Started if tp != cur_ptr => unsafe {
            switch_into::<false, false>(&*cur_ptr, t, msg)
        },
        State::Unstarted => {
            unlikely();
            // SAFETY: as above; `t` has not started, so it is not current.
            unsafe { switch_into::<true, false>(&*cur_ptr, t, msg) }
        }
        _ => {
            unlikely();
            switch_slow(target, msg)
        }
    }
}

/// The other switches: to a greenlet that has not started (entered with a call, see
/// `arch::switch_call`), to the current greenlet, or to a dead one (which goes to its parent).
#[inline(never)]
fn switch_slow(target: &Rc<Inner>, mut msg: Msg) -> Value {
    let cur_ptr = current_ptr();
    let mut target = Greenlet(target.clone());
    while target.0.is_dead() {
        // greenlet's switch to a dead greenlet goes to its parent; a GreenletExit thrown at it becomes
        // a plain value on the way (nothing is left to exit).
        if let Msg::Throw(p) = msg {
            msg = died_of(p);
        }
        let up = target
            .0
            .parent()
            .expect("a dead greenlet always has a parent (main never dies)");
        target = up;
    }
    if Rc::as_ptr(&target.0) == cur_ptr {
        if slow_bits() & TRACING != 0 {
            if let Some(h) = TRACE_HOOKS.get() {
                (h.fire)(getcurrent(), matches!(msg, Msg::Throw(_)));
            }
        }
        return deliver(msg);
    }
    // SAFETY: the current greenlet is alive; `target` (held by this frame while we are suspended) is
    // not dead and not current.
    unsafe {
        if target.0.state.get() == State::Unstarted {
            switch_into::<true, false>(&*cur_ptr, &target.0, msg)
        } else {
            switch_into::<false, false>(&*cur_ptr, &target.0, msg)
        }
    }
}

/// What a `switch` returns for `msg`: the value, or the unwinding of the payload.
#[inline(always)]
fn deliver(msg: Msg) -> Value {
    match msg {
        Msg::Value(v) => v,
        Msg::Throw(p) => std::panic::resume_unwind(p),
    }
}

/// The switch itself: `CURRENT` to `t`, and the machine switch carrying `msg`.
///
/// # Safety
/// `cur` is the current greenlet; `t` is neither current nor dead, and stays alive while we are
/// suspended (a handle in a frame of ours holds it, see the module docs). `START` iff `t` has not
/// started. `FAST` as in [`switch_words`].
#[inline(always)]
unsafe fn switch_into<const START: bool, const FAST: bool>(
    cur: &Inner,
    t: &Inner,
    msg: Msg,
) -> Value {
    if START && t.lacks_run() {
        no_run(t, msg);
    }
    let (w0, w1, bits) = into_words(msg);
    // SAFETY: per the contract; `t` has a `run` if it has not started.
    unsafe { switch_words::<START, FAST>(cur, t, w0, w1, bits) }
}

/// [`switch_into`] with the message already taken apart ([`into_words`]).
///
/// # Safety
/// As [`switch_into`], and if `t` has not started it has a `run`; `w0`, `w1` and `bits` are the
/// words and bits of one message, received exactly once (by `t`). `FAST`: `CURRENT` has no flag
/// bit set (the checks on the way out are skipped), and `t`, if started, has no canary.
#[inline(always)]
unsafe fn switch_words<const START: bool, const FAST: bool>(
    cur: &Inner,
    t: &Inner,
    w0: usize,
    w1: usize,
    bits: usize,
) -> Value {
    let mut arg = cur as *const Inner as usize | bits;
    if FAST {
        // No flag was set: `CURRENT` is `t`'s address, with `CHECK` if `t` has a canary (which a
        // started target of this path does not).
        let check = if START && t.canary != 0 { CHECK } else { 0 };
        CURRENT.with(|c| c.set(t as *const Inner as usize | check));
    } else {
        if slow_bits() != 0 {
            arg |= leave_slow(cur);
        }
        if cur.canary != 0 {
            check_stack(cur);
        }
        set_current(t);
    }
    let leaving = sanitizer::leave(t.bounds.as_ref());
    // SAFETY: `t` is suspended or unstarted, so `t.sp` is a context to resume (field invariant), on a
    // stack it owns; `cur.sp` and both link slots are ours to write; we stay suspended on a live
    // stack (the current greenlet's) until someone resumes us through `cur.sp`.
    let (arg, w0, w1) = unsafe {
        let words = (arg, w0, w1);
        if START {
            arch::switch_call(cur.sp.as_ptr(), t.sp.get(), t.link, cur.link, words)
        } else {
            arch::switch(cur.sp.as_ptr(), t.sp.get(), t.link, cur.link, words)
        }
    };
    sanitizer::arrive(leaving);
    // SAFETY: the words of the switch that resumed us.
    deliver(unsafe { receive(arg, w0, w1) })
}

/// A switch (or throw) into `t`, which has not started and has no `run`, fails in the switcher, as
/// in greenlet (`AttributeError: run`); `t` stays unstarted, so every later switch fails the same
/// way until it is given a `run`. What was sent is dropped.
#[cold]
#[inline(never)]
fn no_run(t: &Inner, msg: Msg) -> ! {
    let payload = no_run_payload(t);
    drop(msg);
    std::panic::resume_unwind(payload)
}

/// The panic payload of a failed switch into `t`, which has no `run`.
#[cold]
fn no_run_payload(t: &Inner) -> Payload {
    Box::new(format!(
        "greenlet {} has no run: give it one with set_run before switching to it",
        DisplayName(t)
    ))
}

/// The message words of a switch carrying `msg`, and the bits it adds: a value travels in the two
/// words, a payload waits in `THROWN`.
#[inline(always)]
fn into_words(msg: Msg) -> (usize, usize, usize) {
    match msg {
        Msg::Value(v) => {
            let (w0, w1) = v.into_raw();
            (w0, w1, 0)
        }
        Msg::Throw(p) => {
            THROWN.with(|t| t.set(Some(p)));
            (0, 0, SlowBits::THROW)
        }
    }
}

/// The switcher's side of the slow path (also a finishing greenlet's): records the tracer's origin,
/// moves `KEEP` to `RELEASE`.
/// Returns the bits to add to the switch.
#[cold]
#[inline(never)]
fn leave_slow(cur: &Inner) -> usize {
    let slow = slow_bits();
    if slow & TRACING != 0 {
        // SAFETY: `cur` is the current greenlet, alive.
        let g = unsafe { Greenlet::from_raw_clone(cur) };
        if let Some(h) = TRACE_HOOKS.get() {
            (h.set_origin)(g);
        }
    }
    if slow & KEEPING != 0 {
        // KEEP held us (a finished greenlet switched to us); whoever we switch to drops that handle
        // once we are off the CPU.
        RELEASE.with(|r| r.set(KEEP.with(|k| k.take())));
        set_slow(KEEPING, false);
    }
    SlowBits::OTHER
}

/// Aborts with a clear message if the greenlet switching away overflowed a dense stack.
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

/// Formats a greenlet's name without allocating (usable from the fault handler: if the fault
/// interrupted a rename, the name reads as `greenlet-<id>`).
pub(crate) struct DisplayName<'a>(pub(crate) &'a Inner);

impl fmt::Display for DisplayName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.name.try_borrow().as_deref() {
            Ok(Name::Owned(n)) => f.write_str(n),
            Ok(Name::Numbered(prefix, n)) => write!(f, "{prefix}{n}"),
            Ok(Name::Default) | Err(_) => write!(f, "greenlet-{}", self.0.id),
        }
    }
}

/// The fault handler's view of the running greenlet ([`crate::stack::FaultContext`], installed by
/// [`init_main`]): calls `f` with its stack bounds and name; nothing on the main greenlet or before
/// any greenlet exists.
///
/// # Safety
/// Call only on the thread whose state is read (it reads thread-locals and the current greenlet,
/// which that thread keeps alive). Async-signal-safe: no allocation, no lock (the name is read with
/// `try_borrow`).
unsafe fn current_fault_context(f: &mut dyn FnMut(&StackBounds, &dyn fmt::Display)) {
    let p = current_ptr_if_any();
    if p.is_null() {
        return;
    }
    // SAFETY: non-null CURRENT points at a live greenlet (module invariant); the caller is on its thread.
    let inner = unsafe { &*p };
    if let Some(b) = inner.bounds.as_ref() {
        f(b, &DisplayName(inner));
    }
}
