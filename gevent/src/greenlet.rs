//! [`Greenlet<T>`]: a task the hub schedules, with a result, links and kill — gevent's `Greenlet`.
//!
//! # Ground rules
//! - `spawn` only queues the start; the raw greenlet (and its stack) is made when the hub starts it,
//!   so spawning never fails and a greenlet killed before it starts never costs a stack.
//! - A spawned greenlet's parent is the hub: when it finishes, control returns to the hub's loop.
//! - Every panic is caught at the greenlet's entry: reported on stderr as `<Greenlet-N> failed with …`
//!   (what [`describe_panic`] says of the payload: the message, `Timeout: 10ms`, a type name) and
//!   kept for [`Greenlet::get`]; the hub and the other greenlets go on. A payload whose own `Drop`
//!   panics changes none of that (the greenlet still ends failed and its joiners wake).
//! - Links and joiners are notified from a hub callback after the greenlet died, in link order.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::{GreenletExit, Value};

use crate::hub::registry::{Registry, Snapshot};
use crate::hub::{drop_payload, get_hub, LoopExit, TimerId, Waiter};
pub use crate::hub::{Failure, Waitable};

/// Says what a panic payload is, as a greenlet's failure report and its [`Failure`] do:
/// - a `&str` or `String` (what `panic!` makes): the message itself;
/// - a [`TimeoutError`](crate::TimeoutError) (a [`Timeout`](crate::Timeout) nobody caught):
///   `Timeout: 10ms`;
/// - [`GreenletExit`] (a plain kill): `GreenletExit`;
/// - a `std::io::Error`, a `Box<dyn Error + Send (+ Sync)>`, a [`LoopExit`], a [`GetError`] or a
///   [`Failure`]: its type and message (`std::io::Error: broken pipe`);
/// - a type given to [`register_panic_payload`]: its type name and message;
/// - a type some greenlet was killed with ([`Greenlet::kill_with`]): its type name;
/// - anything else: `<non-string panic payload>` (a `dyn Any` does not know its type's name).
pub fn describe_panic(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        return (*s).to_owned();
    }
    if let Some(s) = payload.downcast_ref::<String>() {
        return s.clone();
    }
    if let Some(t) = payload.downcast_ref::<crate::TimeoutError>() {
        return format!("Timeout: {:?}", t.duration());
    }
    if payload.is::<GreenletExit>() {
        return "GreenletExit".to_owned();
    }
    if let Some(e) = payload.downcast_ref::<std::io::Error>() {
        return format!("std::io::Error: {e}");
    }
    if let Some(e) = payload.downcast_ref::<Box<dyn std::error::Error + Send + Sync>>() {
        return format!("Box<dyn Error + Send + Sync>: {e}");
    }
    if let Some(e) = payload.downcast_ref::<Box<dyn std::error::Error + Send>>() {
        return format!("Box<dyn Error + Send>: {e}");
    }
    if let Some(e) = payload.downcast_ref::<LoopExit>() {
        return e.to_string(); // "LoopExit: ..."
    }
    if let Some(e) = payload.downcast_ref::<GetError>() {
        return format!("gevent::GetError: {e}");
    }
    if let Some(f) = payload.downcast_ref::<Failure>() {
        return format!("gevent::Failure: {f}");
    }
    let id = (*payload).type_id();
    let names = PAYLOAD_NAMES.lock().unwrap_or_else(|e| e.into_inner());
    match names.iter().find(|n| n.id == id) {
        Some(PayloadName {
            name,
            show: Some(show),
            ..
        }) => format!("{name}: {}", show(payload)),
        Some(n) => n.name.to_owned(),
        None => "<non-string panic payload>".to_owned(),
    }
}

/// A panic payload type [`describe_panic`] can name (a `dyn Any` knows only its `TypeId`).
struct PayloadName {
    id: std::any::TypeId,
    name: &'static str,
    /// Its message, for types registered with one.
    show: Option<fn(&(dyn Any + Send)) -> String>,
}

/// The payload types named so far: a handful (one per distinct kill payload type or registered
/// type), looked up only when a greenlet fails.
static PAYLOAD_NAMES: std::sync::Mutex<Vec<PayloadName>> = std::sync::Mutex::new(Vec::new());

pub(crate) fn name_payload_type<P: Any>(show: Option<fn(&(dyn Any + Send)) -> String>) {
    let id = std::any::TypeId::of::<P>();
    let mut names = PAYLOAD_NAMES.lock().unwrap_or_else(|e| e.into_inner());
    match names.iter_mut().find(|n| n.id == id) {
        Some(n) => n.show = n.show.or(show),
        None => names.push(PayloadName {
            id,
            name: std::any::type_name::<P>(),
            show,
        }),
    }
}

/// Lets greenlet failures name panic payloads of type `P` with their message: a greenlet that
/// dies of a `P` (from `std::panic::panic_any`, `resume_unwind` or [`Greenlet::kill_with`]) is
/// then reported as `<Greenlet-N> failed with my_crate::Shutdown: <P's Display>`, and its
/// [`Failure`] says the same (without it, the type name alone once some greenlet was killed with a
/// `P`, else `<non-string panic payload>`). Process-wide; registering twice is harmless.
///
/// # Examples
/// ```
/// use std::fmt;
/// struct Shutdown(&'static str);
/// impl fmt::Display for Shutdown {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         write!(f, "shutting down: {}", self.0)
///     }
/// }
/// gevent::greenlets::register_panic_payload::<Shutdown>();
/// let g = gevent::spawn(|| std::panic::panic_any(Shutdown("maintenance")));
/// g.join();
/// assert!(g.exception().unwrap().message().ends_with("Shutdown: shutting down: maintenance"));
/// ```
pub fn register_panic_payload<P: Any + fmt::Display>() {
    fn show<P: Any + fmt::Display>(p: &(dyn Any + Send)) -> String {
        p.downcast_ref::<P>().map(P::to_string).unwrap_or_default()
    }
    name_payload_type::<P>(Some(show::<P>));
}

/// Drops `v` (a greenlet's value, dropped unused), catching a panic of its `Drop` as
/// `hub::drop_payload` does.
fn drop_value<T>(v: T) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(move || drop(v))) {
        eprintln!(
            "gevent: dropping a greenlet's value panicked (ignored): {}",
            describe_panic(&*p)
        );
        drop_payload(p);
    }
}

/// The bound of [`Greenlet::get`], [`Greenlet::value`] and [`Greenlet::peek`]: `Clone`, under a
/// name whose compiler error points to [`Greenlet::join_result`] (which moves a result that is not
/// `Clone` out). Implemented for every `Clone` type.
///
/// ```compile_fail
/// struct Conn; // not Clone
/// let g = gevent::spawn(|| Conn);
/// // error: `Conn` is not `Clone`, which `Greenlet::get`/`value`/`peek` need: use
/// // `Greenlet::join_result()` (moves the result out, like `JoinHandle::join`) or `take_result()`
/// let _ = g.get();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not `Clone`, which `Greenlet::get`/`value`/`peek` need: use `Greenlet::join_result()` (moves the result out, like `JoinHandle::join`) or `take_result()`",
    label = "`{Self}` is not `Clone`: use `join_result()` or `take_result()` here",
    note = "`Greenlet::join_result(self) -> Result<T, GetError>` waits and moves the value out"
)]
pub trait CloneResult: Clone {}

impl<T: Clone> CloneResult for T {}

/// Why [`Greenlet::get`] has no value to give.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GetError {
    /// The greenlet panicked.
    Panicked(Failure),
    /// The greenlet was killed (before or after it started).
    Killed,
    /// It has not finished (only from the non-blocking and timed variants).
    NotReady,
    /// Nothing could ever finish it (see [`LoopExit`]).
    LoopExit,
    /// The value was moved out by [`Greenlet::take_value`].
    Taken,
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Panicked(p) => write!(f, "the greenlet panicked: {p}"),
            GetError::Killed => f.write_str("the greenlet was killed"),
            GetError::NotReady => f.write_str("the greenlet has not finished"),
            GetError::LoopExit => write!(f, "{LoopExit}"),
            GetError::Taken => f.write_str("the greenlet's value was already taken"),
        }
    }
}

impl std::error::Error for GetError {}

enum Outcome<T> {
    Value(T),
    /// The value was moved out by `take_value`.
    Taken,
    Panicked(Failure),
    Killed,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Pending,
    Running,
    Dead,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LinkKind {
    Any,
    Value,
    Exception,
}

/// Identifies a link, for [`Greenlet::unlink`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkId(pub(crate) u64);

type LinkFn<T> = Box<dyn FnOnce(&Greenlet<T>)>;

struct State<T: 'static> {
    ident: u64,
    name: RefCell<Option<String>>,
    func: Cell<Option<Box<dyn FnOnce() -> T>>>,
    /// The running greenlet: `Some` from start until death.
    raw: RefCell<Option<greenlet::Greenlet>>,
    phase: Cell<Phase>,
    outcome: RefCell<Option<Outcome<T>>>,
    links: RefCell<Vec<(LinkId, LinkKind, LinkFn<T>)>>,
    next_link: Cell<u64>,
    joiners: RefCell<Vec<Rc<Waiter>>>,
    /// Tasks awaiting it as a `Future` (see `bridge`), woken with the joiners.
    wakers: RefCell<Vec<std::task::Waker>>,
    start_timer: Cell<Option<TimerId>>,
    /// Its slot in the registry of `util::format_run_info` (the raw greenlet's tag is this + 1:
    /// how [`current`] finds it).
    registry_slot: u32,
    /// Whether its function began to run (`started()` stays false for one killed before that).
    ran: Cell<bool>,
    /// When it finished, in this thread's order of greenlet deaths (0 while alive).
    finish_order: Cell<u64>,
    /// Its context (see [`crate::context`]): the spawner's, shared, unless it sets its own.
    context: RefCell<Option<Rc<Context>>>,
}

/// A greenlet's context values ([`crate::context`]): immutable once shared, replaced (copied) by a
/// `set`, so a child sees its spawner's values as they were at the spawn.
#[derive(Default)]
pub(crate) struct Context {
    pub(crate) values: Vec<(std::any::TypeId, Rc<dyn Any>)>,
}

thread_local! {
    /// Greenlets of this thread that have finished (their `finish_order`).
    static FINISHED: Cell<u64> = const { Cell::new(0) };
    /// Whether any context value was ever set on this thread: until then a spawn does not look
    /// for its spawner's context (one thread-local read).
    pub(crate) static CONTEXT_USED: Cell<bool> = const { Cell::new(false) };
    /// The context of the main greenlet and of greenlets that have no gevent object.
    pub(crate) static ROOT_CONTEXT: RefCell<Option<Rc<Context>>> = const { RefCell::new(None) };
}

/// The running greenlet's context (a shared reference, no copy).
pub(crate) fn current_context() -> Option<Rc<Context>> {
    match current() {
        Some(g) => g.st.context().borrow().clone(),
        None => ROOT_CONTEXT.with(|c| c.borrow().clone()),
    }
}

/// Replaces the running greenlet's context.
pub(crate) fn set_current_context(ctx: Option<Rc<Context>>) {
    CONTEXT_USED.with(|u| u.set(true));
    let old = match current() {
        Some(g) => g.st.context().replace(ctx),
        None => ROOT_CONTEXT.with(|c| c.replace(ctx)),
    };
    drop(old); // outside the borrow: a value's destructor may use the context
}

impl<T: 'static> Drop for State<T> {
    fn drop(&mut self) {
        unregister(self.registry_slot);
    }
}

/// A greenlet scheduled by the hub, returning a `T`.
///
/// Cloning gives another handle to the same greenlet. `!Send`: it belongs to its thread's hub.
///
/// # Examples
/// ```
/// let g = gevent::spawn(|| 6 * 7);
/// g.join();
/// assert_eq!(g.value(), Some(42));
/// ```
pub struct Greenlet<T: 'static> {
    st: Rc<State<T>>,
}

/// A greenlet's state as a hub task: notifies its links and joiners (queued once it finished, or
/// when a link is added to a finished greenlet).
///
/// The start stays a boxed callback: queued as a task too, it made spawn + join ~10% faster but
/// the bench's 100k sleepers woke 3x later at the 99th percentile (15 against 4.8 ms, 3 runs each,
/// alternating), for reasons the allocation pattern hides; as it is, both beat the boxed versions.
impl<T: 'static> crate::hub::Task for State<T> {
    fn run(self: Rc<Self>) {
        Greenlet { st: self }.notify();
    }
}

impl<T> Clone for Greenlet<T> {
    fn clone(&self) -> Self {
        Greenlet {
            st: self.st.clone(),
        }
    }
}

impl<T> fmt::Debug for Greenlet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.st.phase.get() {
            Phase::Pending => "pending",
            Phase::Running => "running",
            Phase::Dead => "dead",
        };
        write!(f, "<{} ({phase})>", self.name())
    }
}

/// Spawns `f` in a new greenlet, started on the hub's next turn (gevent's `spawn`).
///
/// # Examples
/// ```
/// let g1 = gevent::spawn(|| "noah");
/// let g2 = gevent::spawn(|| "bobo");
/// gevent::joinall([&g1, &g2]);
/// assert_eq!((g1.value(), g2.value()), (Some("noah"), Some("bobo")));
/// ```
pub fn spawn<T: 'static>(f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
    let g = Greenlet::new(f);
    g.start();
    g
}

/// Spawns `f` to start after `delay` (gevent's `spawn_later`).
pub fn spawn_later<T: 'static>(delay: Duration, f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
    let g = Greenlet::new(f);
    g.start_later(delay);
    g
}

/// Spawns `f` with no result object: the cheapest way to run something in a greenlet. A panic is
/// reported on stderr.
pub fn spawn_raw(f: impl FnOnce() + 'static) {
    let hub = get_hub();
    hub.run_callback(move || {
        let hub = get_hub();
        match greenlet::Builder::new()
            .parent(hub.greenlet())
            .build(move |_| {
                let r = catch_unwind(AssertUnwindSafe(f));
                crate::hub::done_unwinding();
                if let Some(p) = crate::hub::take_deferred() {
                    drop_payload(p);
                }
                crate::local::greenlet_exited();
                if let Err(p) = r {
                    if !p.is::<GreenletExit>() {
                        eprintln!("<raw greenlet> failed with {}", describe_panic(&*p));
                    }
                    drop_payload(p);
                }
                Value::none()
            }) {
            Ok(g) => {
                g.switch(());
            }
            Err(e) => eprintln!("<raw greenlet> could not start: {e}"),
        }
    });
}

impl<T: 'static> Greenlet<T> {
    /// Creates a greenlet for `f` without starting it (gevent's `Greenlet(f)`); see [`Greenlet::start`].
    pub fn new(f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
        // Registered for `util::format_run_info` (which also hands out the ident): a weak reference
        // in a slab, freed when the state is dropped; nothing on switches or waits.
        let st = Rc::new_cyclic(|weak: &std::rc::Weak<State<T>>| {
            let (ident, registry_slot) = register(weak.clone());
            State {
                ident,
                name: RefCell::new(None),
                func: Cell::new(Some(Box::new(f))),
                raw: RefCell::new(None),
                phase: Cell::new(Phase::Pending),
                outcome: RefCell::new(None),
                links: RefCell::new(Vec::new()),
                next_link: Cell::new(0),
                joiners: RefCell::new(Vec::new()),
                wakers: RefCell::new(Vec::new()),
                start_timer: Cell::new(None),
                registry_slot,
                ran: Cell::new(false),
                finish_order: Cell::new(0),
                context: RefCell::new(if CONTEXT_USED.with(Cell::get) {
                    current_context()
                } else {
                    None
                }),
            }
        });
        Greenlet { st }
    }

    /// Schedules the start on the hub's next turn. Starting twice, or after a kill, does nothing.
    pub fn start(&self) {
        if self.st.phase.get() != Phase::Pending || self.st.start_timer.get().is_some() {
            return;
        }
        let g = self.clone();
        get_hub().run_callback(move || g.run_now());
    }

    /// Schedules the start after `delay`.
    pub fn start_later(&self, delay: Duration) {
        if self.st.phase.get() != Phase::Pending || self.st.start_timer.get().is_some() {
            return;
        }
        let g = self.clone();
        let id = get_hub().add_timer(Instant::now() + delay, move || {
            g.st.start_timer.set(None);
            g.run_now();
        });
        self.st.start_timer.set(Some(id));
    }

    /// In the hub: make the raw greenlet and switch into it.
    fn run_now(&self) {
        let Some(func) = self.st.func.take() else {
            return; // killed before it started
        };
        let hub = get_hub();
        let st = self.st.clone();
        // The raw greenlet carries the gevent name, for overflow and monitor reports: `Greenlet-N`
        // is formatted only when shown (no allocation per spawn); a name set before the start is
        // copied.
        let builder = greenlet::Builder::new().parent(hub.greenlet());
        let builder = match &*self.st.name.borrow() {
            Some(n) => builder.name(n.as_str()),
            None => builder.name_numbered("Greenlet-", self.st.ident),
        };
        let built = builder.build(move |_| {
            let result = catch_unwind(AssertUnwindSafe(func));
            crate::local::greenlet_exited();
            let g = Greenlet { st };
            crate::hub::done_unwinding();
            // Nothing below may panic out of here (it would skip `finish`): payloads and values
            // are dropped through `drop_payload` / `drop_value`, whose `Drop` may panic.
            let outcome = match (result, crate::hub::take_deferred()) {
                // A kill that landed inside a C caller (see `monkey`) still counts.
                (Ok(v), Some(p)) => {
                    drop_value(v);
                    g.outcome_of_panic(p)
                }
                (Ok(v), None) => Outcome::Value(v),
                (Err(p), deferred) => {
                    if let Some(d) = deferred {
                        drop_payload(d);
                    }
                    g.outcome_of_panic(p)
                }
            };
            g.finish(outcome);
            Value::none()
        });
        match built {
            Ok(raw) => {
                self.st.phase.set(Phase::Running);
                self.st.ran.set(true);
                // How `current()` finds this object from the raw greenlet (a thread exiting
                // registers nothing: slot `u32::MAX`, tag 0).
                raw.set_tag(self.st.registry_slot.wrapping_add(1));
                *self.st.raw.borrow_mut() = Some(raw.clone());
                raw.switch(());
            }
            Err(e) => {
                let failure = Failure::new(format!("could not start: {e}"));
                eprintln!("<{}> failed with {failure}", self.name());
                self.finish(Outcome::Panicked(failure));
            }
        }
    }

    /// What a panic with payload `p` makes of the greenlet (reported on stderr unless a plain
    /// kill); drops `p` without letting a panic of its `Drop` out.
    fn outcome_of_panic(&self, p: Box<dyn Any + Send>) -> Outcome<T> {
        let outcome = if p.is::<GreenletExit>() {
            Outcome::Killed
        } else {
            let message = describe_panic(&*p);
            eprintln!("<{}> failed with {message}", self.name());
            Outcome::Panicked(Failure::new(message))
        };
        drop_payload(p);
        outcome
    }

    /// Records the outcome, marks the greenlet dead and queues the notification of links and joiners.
    fn finish(&self, outcome: Outcome<T>) {
        *self.st.outcome.borrow_mut() = Some(outcome);
        self.st.finish_order.set(FINISHED.with(|n| {
            n.set(n.get() + 1);
            n.get()
        }));
        self.st.phase.set(Phase::Dead);
        // Dropping our handle to the raw greenlet is fine even while running on it: its resumer holds one.
        self.st.raw.borrow_mut().take();
        get_hub().run_task(self.st.clone());
    }

    fn notify(&self) {
        for w in self.st.joiners.take() {
            w.wake();
        }
        for w in self.st.wakers.take() {
            w.wake();
        }
        let successful = self.successful();
        loop {
            let next = {
                let mut links = self.st.links.borrow_mut();
                if links.is_empty() {
                    None
                } else {
                    Some(links.remove(0))
                }
            };
            let Some((_, kind, f)) = next else { break };
            let run = match kind {
                LinkKind::Any => true,
                LinkKind::Value => successful,
                LinkKind::Exception => !successful,
            };
            if run {
                let g = self.clone();
                if let Err(p) = catch_unwind(AssertUnwindSafe(move || f(&g))) {
                    eprintln!(
                        "gevent: a link of <{}> panicked (ignored): {}",
                        self.name(),
                        describe_panic(&*p)
                    );
                    drop_payload(p);
                }
            }
        }
    }

    /// Waits until the greenlet has finished (returns at once if it has).
    ///
    /// # Panics
    /// With [`LoopExit`]'s message if nothing can ever finish it; when a greenlet joins itself.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it and leaves nothing registered.
    pub fn join(&self) {
        if let Err(e) = self.join_deadline(None) {
            panic!("{e}");
        }
    }

    /// Waits at most `timeout`; returns whether the greenlet has finished.
    ///
    /// # Panics
    /// As [`Greenlet::join`].
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        match self.join_deadline(Some(Instant::now() + timeout)) {
            Ok(()) => self.ready(),
            Err(e) => panic!("{e}"),
        }
    }

    fn join_deadline(&self, deadline: Option<Instant>) -> Result<(), LoopExit> {
        if self.ready() {
            return Ok(());
        }
        if let Some(raw) = &*self.st.raw.borrow() {
            assert!(!raw.is_current(), "a greenlet cannot join itself");
        }
        let w = Waiter::new();
        self.st.joiners.borrow_mut().push(w.clone());
        // Unlisted on every way out, a kill or Timeout unwinding out of the wait included.
        struct Unjoin<'a, T: 'static>(&'a State<T>, &'a Rc<Waiter>);
        impl<T: 'static> Drop for Unjoin<'_, T> {
            fn drop(&mut self) {
                self.0
                    .joiners
                    .borrow_mut()
                    .retain(|j| !Rc::ptr_eq(j, self.1));
            }
        }
        let _unjoin = Unjoin(&self.st, &w);
        crate::hub::wait_with_deadline(&w, deadline)
    }

    /// Waits for the result (gevent's `get()`), a clone of it: every handle can `get` it again.
    /// For a result that is not `Clone` (`io::Result<Output>`, a connection), use
    /// [`Greenlet::join_result`], which moves it out.
    ///
    /// # Errors
    /// [`GetError::Panicked`] with the panic message, [`GetError::Killed`], or [`GetError::LoopExit`].
    ///
    /// # Cancel safety
    /// As [`Greenlet::join`].
    #[doc(alias = "join_result")]
    pub fn get(&self) -> Result<T, GetError>
    where
        T: CloneResult,
    {
        if self.join_deadline(None).is_err() {
            return Err(GetError::LoopExit);
        }
        self.peek()
    }

    /// Waits at most `timeout` for the result.
    ///
    /// # Errors
    /// As [`Greenlet::get`], and [`GetError::NotReady`] at the timeout.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError>
    where
        T: CloneResult,
    {
        if self.join_deadline(Some(Instant::now() + timeout)).is_err() {
            return Err(GetError::LoopExit);
        }
        self.peek()
    }

    /// The result without waiting.
    ///
    /// # Errors
    /// [`GetError::NotReady`] if it has not finished, otherwise as [`Greenlet::get`].
    pub fn peek(&self) -> Result<T, GetError>
    where
        T: CloneResult,
    {
        match &*self.st.outcome.borrow() {
            None => Err(GetError::NotReady),
            Some(Outcome::Value(v)) => Ok(v.clone()),
            Some(Outcome::Panicked(f)) => Err(GetError::Panicked(f.clone())),
            Some(Outcome::Killed) => Err(GetError::Killed),
            Some(Outcome::Taken) => Err(GetError::Taken),
        }
    }

    /// Waits for the greenlet and moves its result out: the Rust shape of gevent's `get()`, like
    /// [`std::thread::JoinHandle::join`], for results that are not `Clone`.
    ///
    /// Named after `join` (it waits like [`Greenlet::join`]) and what it gives back. It consumes
    /// this handle because the value leaves the greenlet: other handles then see
    /// [`GetError::Taken`] from [`Greenlet::get`] (`None` from [`Greenlet::value`]), while
    /// `ready`, `successful` and `exception` still tell how it ended.
    ///
    /// # Examples
    /// ```
    /// struct Conn(u32); // not Clone
    /// let g = gevent::spawn(|| Conn(7));
    /// let conn = g.join_result().unwrap();
    /// assert_eq!(conn.0, 7);
    ///
    /// let g = gevent::spawn(|| -> Conn { panic!("refused") });
    /// assert!(matches!(g.join_result(), Err(gevent::GetError::Panicked(f)) if f.message() == "refused"));
    /// ```
    ///
    /// # Errors
    /// [`GetError::Panicked`] with the panic message, [`GetError::Killed`], [`GetError::Taken`]
    /// if another handle took the value, or [`GetError::LoopExit`].
    ///
    /// # Cancel safety
    /// As [`Greenlet::join`]: a kill or Timeout landing here unwinds out of it and the value stays
    /// in the greenlet (for another handle).
    pub fn join_result(self) -> Result<T, GetError> {
        if self.join_deadline(None).is_err() {
            return Err(GetError::LoopExit);
        }
        self.take_result()
    }

    /// Moves the result out without waiting: [`Greenlet::peek`] for results that are not `Clone`.
    ///
    /// # Errors
    /// [`GetError::NotReady`] if it has not finished, otherwise as [`Greenlet::join_result`].
    pub fn take_result(&self) -> Result<T, GetError> {
        let mut o = self.st.outcome.borrow_mut();
        match &*o {
            None => Err(GetError::NotReady),
            Some(Outcome::Value(_)) => match o.replace(Outcome::Taken) {
                Some(Outcome::Value(v)) => Ok(v),
                _ => unreachable!("checked just above"),
            },
            Some(Outcome::Panicked(f)) => Err(GetError::Panicked(f.clone())),
            Some(Outcome::Killed) => Err(GetError::Killed),
            Some(Outcome::Taken) => Err(GetError::Taken),
        }
    }

    /// Takes the value out, for values that are not `Clone`. Returns `None` if it has not finished
    /// successfully or the value was already taken; afterwards [`Greenlet::get`] and
    /// [`Greenlet::value`] report [`GetError::Taken`] / `None`. [`Greenlet::take_result`] and
    /// [`Greenlet::join_result`] also say why there is no value.
    pub fn take_value(&self) -> Option<T> {
        let mut o = self.st.outcome.borrow_mut();
        if matches!(&*o, Some(Outcome::Value(_))) {
            if let Some(Outcome::Value(v)) = o.replace(Outcome::Taken) {
                return Some(v);
            }
        }
        None
    }

    /// Calls `f` with a reference to the value, if it finished successfully and the value is
    /// still there.
    pub(crate) fn with_value(&self, f: impl FnOnce(&T)) -> bool {
        match &*self.st.outcome.borrow() {
            Some(Outcome::Value(v)) => {
                f(v);
                true
            }
            _ => false,
        }
    }

    /// The value once finished successfully (gevent's `g.value`), else `None`.
    pub fn value(&self) -> Option<T>
    where
        T: CloneResult,
    {
        self.peek().ok()
    }

    /// Whether it has finished (gevent's `ready()`); same as [`Greenlet::is_dead`].
    pub fn ready(&self) -> bool {
        self.st.phase.get() == Phase::Dead
    }

    /// Whether it has finished (returned, panicked or killed).
    pub fn is_dead(&self) -> bool {
        self.ready()
    }

    /// Finished without panicking. As in gevent, a greenlet killed with `GreenletExit` counts as
    /// successful (its value is then `None`).
    pub fn successful(&self) -> bool {
        matches!(
            &*self.st.outcome.borrow(),
            Some(Outcome::Value(_)) | Some(Outcome::Killed) | Some(Outcome::Taken)
        )
    }

    /// The panic it died of, if it did (gevent's `exception`).
    pub fn exception(&self) -> Option<Failure> {
        match &*self.st.outcome.borrow() {
            Some(Outcome::Panicked(f)) => Some(f.clone()),
            _ => None,
        }
    }

    /// Whether its function began to run (it may have finished since). False for one killed
    /// before it started, which never runs (gevent's `TestKill`; gevent's own `started` is also
    /// false again once the greenlet is dead, see [`Greenlet::is_alive`]).
    pub fn started(&self) -> bool {
        self.st.ran.get()
    }

    /// Started and not finished (gevent's `bool(greenlet)`).
    pub fn is_alive(&self) -> bool {
        self.st.phase.get() == Phase::Running
    }

    /// "Greenlet-N" unless renamed.
    pub fn name(&self) -> String {
        match &*self.st.name.borrow() {
            Some(n) => n.clone(),
            None => format!("Greenlet-{}", self.st.ident),
        }
    }

    /// Renames it (also the name a stack overflow or monitor report gives).
    pub fn set_name(&self, name: impl Into<String>) {
        let name = name.into();
        if let Some(raw) = &*self.st.raw.borrow() {
            raw.set_name(name.as_str());
        }
        *self.st.name.borrow_mut() = Some(name);
    }

    /// A small number unique among this thread's gevent greenlets.
    pub fn minimal_ident(&self) -> u64 {
        self.st.ident
    }

    /// The raw greenlet while it runs.
    pub fn raw(&self) -> Option<greenlet::Greenlet> {
        self.st.raw.borrow().clone()
    }

    fn add_link(&self, kind: LinkKind, f: LinkFn<T>) -> LinkId {
        let id = LinkId(self.st.next_link.get());
        self.st.next_link.set(id.0 + 1);
        self.st.links.borrow_mut().push((id, kind, f));
        if self.ready() && self.st.links.borrow().len() == 1 {
            get_hub().run_task(self.st.clone());
        }
        id
    }

    /// Calls `f` (in the hub) when the greenlet finishes, however it finishes.
    pub fn link(&self, f: impl FnOnce(&Greenlet<T>) + 'static) -> LinkId {
        self.add_link(LinkKind::Any, Box::new(f))
    }

    /// Calls `f` when the greenlet finishes successfully.
    pub fn link_value(&self, f: impl FnOnce(&Greenlet<T>) + 'static) -> LinkId {
        self.add_link(LinkKind::Value, Box::new(f))
    }

    /// Calls `f` when the greenlet dies of a panic.
    pub fn link_exception(&self, f: impl FnOnce(&Greenlet<T>) + 'static) -> LinkId {
        self.add_link(LinkKind::Exception, Box::new(f))
    }

    /// Removes a link; returns whether it was still there.
    pub fn unlink(&self, id: LinkId) -> bool {
        let removed = {
            let mut links = self.st.links.borrow_mut();
            links
                .iter()
                .position(|(i, _, _)| *i == id)
                .map(|at| links.remove(at))
        };
        removed.is_some() // dropped outside the borrow: the closure may hold anything
    }

    /// Whether links are waiting to be called (gevent's `has_links()`; joiners do not count).
    pub fn has_links(&self) -> bool {
        !self.st.links.borrow().is_empty()
    }

    /// Removes every link (gevent's `unlink_all()`).
    pub fn unlink_all(&self) {
        let links = self.st.links.take();
        drop(links); // outside the borrow
    }

    /// A handle to it that does not carry the result type, as [`current`] gives.
    pub fn as_ref(&self) -> GreenletRef {
        GreenletRef {
            st: self.st.clone(),
        }
    }

    /// Kills it with `GreenletExit` and waits until it is dead (gevent's `kill()`).
    ///
    /// Never fails and can be repeated: every call throws again, so a greenlet that caught an
    /// earlier kill and went on dies of the next one (one still unwinding from an earlier kill, in
    /// a destructor that waits, gets it at its next wait after the unwind, if any). Before it
    /// started, it never runs (its links still fire). Killing the current greenlet unwinds it at
    /// once.
    pub fn kill(&self) {
        self.kill_with(GreenletExit, None);
    }

    /// Kills it and waits at most `timeout`; returns whether it is dead.
    pub fn kill_timeout(&self, timeout: Duration) -> bool {
        self.kill_with(GreenletExit, Some(timeout))
    }

    /// Asks it to die without waiting (gevent's `kill(block=False)`).
    pub fn kill_nowait(&self) {
        self.request_kill(Box::new(GreenletExit));
    }

    /// Kills it with a custom panic payload (it dies as if it had panicked, unless it catches it).
    /// Waits at most `timeout` (forever with `None`); returns whether it is dead.
    pub fn kill_with<P: Any + Send>(&self, payload: P, timeout: Option<Duration>) -> bool {
        self.kill_boxed(boxed_payload(payload), true, timeout)
    }

    /// Raises `payload` in it without waiting (gevent's `throw()`): it dies of it as if it had
    /// panicked with it, unless it catches it; one that has not started never runs, and its links
    /// see the failure. Thrown at the current greenlet, it unwinds at once.
    ///
    /// gevent's `throw` switches into the greenlet right away (and may only be called from the
    /// hub); here the throw is queued on the hub, as [`Greenlet::kill_nowait`] does, so any
    /// greenlet may call it.
    pub fn throw<P: Any + Send>(&self, payload: P) {
        self.kill_boxed(boxed_payload(payload), false, None);
    }

    fn kill_boxed(
        &self,
        payload: Box<dyn Any + Send>,
        block: bool,
        timeout: Option<Duration>,
    ) -> bool {
        if let Some(raw) = self.raw() {
            if raw.is_current() {
                resume_unwind(payload);
            }
        }
        self.request_kill(payload);
        if self.ready() || !block {
            return true;
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        match self.join_deadline(deadline) {
            Ok(()) => self.ready(),
            Err(e) => panic!("{e}"),
        }
    }

    fn request_kill(&self, payload: Box<dyn Any + Send>) {
        match self.st.phase.get() {
            Phase::Dead => {}
            Phase::Pending => {
                if let Some(t) = self.st.start_timer.take() {
                    get_hub().cancel_timer(t);
                }
                if let Some(f) = self.st.func.take() {
                    drop_value(f);
                }
                let outcome = if payload.is::<GreenletExit>() {
                    Outcome::Killed
                } else {
                    Outcome::Panicked(Failure::new(describe_panic(&*payload)))
                };
                drop_payload(payload);
                self.finish(outcome);
            }
            Phase::Running => {
                let g = self.clone();
                get_hub().run_callback(move || {
                    if let Some(raw) = g.raw() {
                        // Every kill throws again (gevent: "may be called multiple times"): one
                        // that survived an earlier kill (caught it) dies of this one. Into a
                        // greenlet still unwinding from an earlier throw (a destructor that
                        // waits), `throw_into` defers it to its next normal wait instead.
                        if !raw.is_dead() {
                            crate::hub::throw_into(&raw, payload);
                        }
                    }
                });
            }
        }
    }
}

/// Boxes a kill payload, naming its type first so that the failure it causes can say what killed
/// the greenlet (see [`describe_panic`]).
fn boxed_payload<P: Any + Send>(payload: P) -> Box<dyn Any + Send> {
    if std::any::TypeId::of::<P>() != std::any::TypeId::of::<GreenletExit>() {
        name_payload_type::<P>(None);
    }
    Box::new(payload)
}

/// What a [`GreenletRef`] does with a greenlet of any result type.
pub(crate) trait Erased {
    fn handle_name(&self) -> String;
    fn handle_set_name(self: Rc<Self>, name: String);
    fn ident(&self) -> u64;
    fn is_ready(&self) -> bool;
    fn is_started(&self) -> bool;
    fn is_successful(&self) -> bool;
    fn failure(&self) -> Option<Failure>;
    fn kill_payload(
        self: Rc<Self>,
        p: Box<dyn Any + Send>,
        block: bool,
        t: Option<Duration>,
    ) -> bool;
    fn join_until(self: Rc<Self>, deadline: Option<Instant>) -> Result<(), LoopExit>;
    fn link_ref(self: Rc<Self>, f: Box<dyn FnOnce(&GreenletRef)>) -> LinkId;
    fn unlink_id(self: Rc<Self>, id: LinkId) -> bool;
    fn links_pending(&self) -> bool;
    fn clear_links(self: Rc<Self>);
    fn joiners(&self) -> &RefCell<Vec<Rc<Waiter>>>;
    fn context(&self) -> &RefCell<Option<Rc<Context>>>;
}

impl<T: 'static> Erased for State<T> {
    fn handle_name(&self) -> String {
        match &*self.name.borrow() {
            Some(n) => n.clone(),
            None => format!("Greenlet-{}", self.ident),
        }
    }
    fn handle_set_name(self: Rc<Self>, name: String) {
        Greenlet { st: self }.set_name(name);
    }
    fn ident(&self) -> u64 {
        self.ident
    }
    fn is_ready(&self) -> bool {
        self.phase.get() == Phase::Dead
    }
    fn is_started(&self) -> bool {
        self.ran.get()
    }
    fn is_successful(&self) -> bool {
        matches!(
            &*self.outcome.borrow(),
            Some(Outcome::Value(_)) | Some(Outcome::Killed) | Some(Outcome::Taken)
        )
    }
    fn failure(&self) -> Option<Failure> {
        match &*self.outcome.borrow() {
            Some(Outcome::Panicked(f)) => Some(f.clone()),
            _ => None,
        }
    }
    fn kill_payload(
        self: Rc<Self>,
        p: Box<dyn Any + Send>,
        block: bool,
        t: Option<Duration>,
    ) -> bool {
        Greenlet { st: self }.kill_boxed(p, block, t)
    }
    fn join_until(self: Rc<Self>, deadline: Option<Instant>) -> Result<(), LoopExit> {
        Greenlet { st: self }.join_deadline(deadline)
    }
    fn link_ref(self: Rc<Self>, f: Box<dyn FnOnce(&GreenletRef)>) -> LinkId {
        Greenlet { st: self }.link(move |g| f(&g.as_ref()))
    }
    fn unlink_id(self: Rc<Self>, id: LinkId) -> bool {
        Greenlet { st: self }.unlink(id)
    }
    fn links_pending(&self) -> bool {
        !self.links.borrow().is_empty()
    }
    fn clear_links(self: Rc<Self>) {
        Greenlet { st: self }.unlink_all();
    }
    fn joiners(&self) -> &RefCell<Vec<Rc<Waiter>>> {
        &self.joiners
    }
    fn context(&self) -> &RefCell<Option<Rc<Context>>> {
        &self.context
    }
}

/// A handle to a gevent greenlet whatever its result type: what [`current`] gives a greenlet
/// about itself (its name, kill, links), and [`Greenlet::as_ref`] for any greenlet.
///
/// Cheap to clone (an `Rc`); `!Send`. Two handles are equal when they name the same greenlet.
#[derive(Clone)]
pub struct GreenletRef {
    st: Rc<dyn Erased>,
}

impl PartialEq for GreenletRef {
    fn eq(&self, other: &Self) -> bool {
        self.st.ident() == other.st.ident()
    }
}

impl Eq for GreenletRef {}

impl fmt::Debug for GreenletRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.name())
    }
}

impl GreenletRef {
    /// Its name (`Greenlet-N` unless renamed), as [`Greenlet::name`].
    pub fn name(&self) -> String {
        self.st.handle_name()
    }

    /// Renames it, as [`Greenlet::set_name`] (stack overflow and monitor reports follow).
    pub fn set_name(&self, name: impl Into<String>) {
        self.st.clone().handle_set_name(name.into());
    }

    /// As [`Greenlet::minimal_ident`].
    pub fn minimal_ident(&self) -> u64 {
        self.st.ident()
    }

    /// As [`Greenlet::ready`].
    pub fn ready(&self) -> bool {
        self.st.is_ready()
    }

    /// As [`Greenlet::started`].
    pub fn started(&self) -> bool {
        self.st.is_started()
    }

    /// As [`Greenlet::successful`].
    pub fn successful(&self) -> bool {
        self.st.is_successful()
    }

    /// As [`Greenlet::exception`].
    pub fn exception(&self) -> Option<Failure> {
        self.st.failure()
    }

    /// As [`Greenlet::join`].
    ///
    /// # Panics
    /// As [`Greenlet::join`].
    ///
    /// # Cancel safety
    /// As [`Greenlet::join`].
    pub fn join(&self) {
        if let Err(e) = self.st.clone().join_until(None) {
            panic!("{e}");
        }
    }

    /// As [`Greenlet::kill`]: from inside (the handle of [`current`]) it unwinds at once.
    pub fn kill(&self) {
        self.st
            .clone()
            .kill_payload(Box::new(GreenletExit), true, None);
    }

    /// As [`Greenlet::kill_nowait`].
    pub fn kill_nowait(&self) {
        self.st
            .clone()
            .kill_payload(Box::new(GreenletExit), false, None);
    }

    /// As [`Greenlet::kill_with`].
    pub fn kill_with<P: Any + Send>(&self, payload: P, timeout: Option<Duration>) -> bool {
        self.st
            .clone()
            .kill_payload(boxed_payload(payload), true, timeout)
    }

    /// As [`Greenlet::throw`].
    pub fn throw<P: Any + Send>(&self, payload: P) {
        self.st
            .clone()
            .kill_payload(boxed_payload(payload), false, None);
    }

    /// Calls `f` (in the hub) when the greenlet finishes, as [`Greenlet::link`].
    pub fn link(&self, f: impl FnOnce(&GreenletRef) + 'static) -> LinkId {
        self.st.clone().link_ref(Box::new(f))
    }

    /// As [`Greenlet::unlink`].
    pub fn unlink(&self, id: LinkId) -> bool {
        self.st.clone().unlink_id(id)
    }

    /// As [`Greenlet::has_links`].
    pub fn has_links(&self) -> bool {
        self.st.links_pending()
    }

    /// As [`Greenlet::unlink_all`].
    pub fn unlink_all(&self) {
        self.st.clone().clear_links();
    }
}

impl Waitable for GreenletRef {
    fn is_ready(&self) -> bool {
        self.ready()
    }
    fn subscribe(&self, w: &Rc<Waiter>) {
        self.st.joiners().borrow_mut().push(w.clone());
    }
    fn unsubscribe(&self, w: &Rc<Waiter>) {
        self.st.joiners().borrow_mut().retain(|j| !Rc::ptr_eq(j, w));
    }
    fn failure(&self) -> Option<Failure> {
        self.exception()
    }
}

/// The running greenlet's gevent object, as gevent's `getcurrent()` gives it inside a greenlet:
/// its name, kill and links. `None` in the main greenlet, the hub, and greenlets that have no gevent
/// object ([`spawn_raw`], the `greenlet` crate's own).
///
/// For the low-level greenlet, [`crate::getcurrent`] (whose `name()` is the same name).
///
/// # Examples
/// ```
/// let g = gevent::spawn(|| {
///     let me = gevent::greenlets::current().unwrap();
///     me.name()
/// });
/// g.set_name("worker-1");
/// assert_eq!(g.get().unwrap(), "worker-1");
/// assert!(gevent::greenlets::current().is_none()); // the main greenlet
/// ```
pub fn current() -> Option<GreenletRef> {
    let tag = greenlet::getcurrent().tag();
    if tag == 0 {
        return None;
    }
    lookup(tag - 1).map(|st| GreenletRef { st })
}

// ---- the registry of this thread's greenlets (for run-info and `hubs`' shutdown) ----

/// Implemented by the state of every gevent greenlet, whatever its result type: what the
/// registry ([`crate::hub::registry`]) holds.
pub(crate) trait Tracked: Erased {
    fn snapshot(&self) -> Snapshot;
    /// Whether it has not finished (pending or started).
    fn is_alive(&self) -> bool;
    /// A handle to wait for it (`hubs`' shutdown).
    fn waitable(self: Rc<Self>) -> Box<dyn Waitable>;
    /// Asks it to die without waiting (`Greenlet::kill_nowait`).
    fn kill_nowait(self: Rc<Self>);
}

thread_local! {
    static REGISTRY: RefCell<Registry<dyn Tracked>> = const { RefCell::new(Registry::new()) };
}

/// Registers a new gevent greenlet of this thread: its ident and registry slot.
#[inline]
fn register(g: std::rc::Weak<dyn Tracked>) -> (u64, u32) {
    REGISTRY
        .try_with(|r| r.borrow_mut().register(g))
        // The thread is exiting: not listed, and an ident no other greenlet has.
        .unwrap_or((u64::MAX, u32::MAX))
}

/// Forgets the greenlet in `slot` (when its state is dropped).
#[inline]
fn unregister(slot: u32) {
    let _ = REGISTRY.try_with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            r.unregister(slot);
        }
    });
}

/// The greenlet registered in `slot`, if it is still alive (what [`current`] finds from the raw
/// greenlet's tag).
fn lookup(slot: u32) -> Option<Rc<dyn Erased>> {
    REGISTRY
        .try_with(|r| {
            let g = r.try_borrow().ok()?.get(slot)?;
            Some(g as Rc<dyn Erased>)
        })
        .ok()
        .flatten()
}

/// This thread's gevent greenlets that are still referenced (for `util::format_run_info`).
pub(crate) fn registered() -> Vec<Rc<dyn Tracked>> {
    REGISTRY.try_with(|r| r.borrow().all()).unwrap_or_default()
}

/// This thread's gevent greenlets that have not finished (pending or started), oldest first.
pub(crate) fn live_greenlets() -> Vec<Rc<dyn Tracked>> {
    let mut live = registered();
    live.retain(|g| g.is_alive());
    live
}

impl<T: 'static> Tracked for State<T> {
    fn snapshot(&self) -> Snapshot {
        use crate::hub::registry::Phase as P;
        Snapshot {
            ident: self.ident,
            name: match &*self.name.borrow() {
                Some(n) => n.clone(),
                None => format!("Greenlet-{}", self.ident),
            },
            phase: match self.phase.get() {
                Phase::Pending => P::Pending,
                Phase::Running => P::Started,
                Phase::Dead => P::Dead,
            },
            raw: self.raw.borrow().clone(),
        }
    }

    fn is_alive(&self) -> bool {
        self.phase.get() != Phase::Dead
    }

    fn waitable(self: Rc<Self>) -> Box<dyn Waitable> {
        Box::new(Greenlet { st: self })
    }

    fn kill_nowait(self: Rc<Self>) {
        Greenlet { st: self }.kill_nowait();
    }
}

impl<T: 'static> Waitable for Greenlet<T> {
    fn is_ready(&self) -> bool {
        self.ready()
    }
    fn subscribe(&self, w: &Rc<Waiter>) {
        self.st.joiners.borrow_mut().push(w.clone());
    }
    fn unsubscribe(&self, w: &Rc<Waiter>) {
        self.st.joiners.borrow_mut().retain(|j| !Rc::ptr_eq(j, w));
    }
    fn failure(&self) -> Option<Failure> {
        self.exception()
    }
    fn finish_order(&self) -> Option<u64> {
        self.ready().then(|| self.st.finish_order.get())
    }
}

/// Awaiting a greenlet from async code (`g.await`, `futures::join!`) waits until it has finished,
/// as [`Greenlet::join`] does, and gives its result, moving the value out (as
/// [`Greenlet::take_value`]: afterwards `get` reports [`GetError::Taken`]).
///
/// # Examples
/// ```
/// let g = gevent::spawn(|| 6 * 7);
/// assert_eq!(gevent::block_on(g), Ok(42));
/// ```
///
/// # Cancel safety
/// Dropping the future (a handle) does nothing to the greenlet; its registered waker is dropped
/// when the greenlet finishes.
impl<T: 'static> std::future::Future for Greenlet<T> {
    type Output = Result<T, GetError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        if !self.ready() {
            let mut wakers = self.st.wakers.borrow_mut();
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            return std::task::Poll::Pending;
        }
        let mut o = self.st.outcome.borrow_mut();
        std::task::Poll::Ready(match &*o {
            None => Err(GetError::NotReady),
            Some(Outcome::Value(_)) => match o.replace(Outcome::Taken) {
                Some(Outcome::Value(v)) => Ok(v),
                _ => unreachable!("checked above"),
            },
            Some(Outcome::Taken) => Err(GetError::Taken),
            Some(Outcome::Panicked(f)) => Err(GetError::Panicked(f.clone())),
            Some(Outcome::Killed) => Err(GetError::Killed),
        })
    }
}
