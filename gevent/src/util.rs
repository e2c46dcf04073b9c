//! Debugging helpers: what the hub of this thread and its greenlets are doing (gevent's
//! `gevent.util.print_run_info` / `format_run_info`).
//!
//! # What it shows
//! The thread's hub (its ready queue and timers), the thread's main greenlet, then every gevent
//! [`Greenlet`](crate::Greenlet) of the thread that is still referenced, oldest first, with its name
//! and state:
//! - `pending`: spawned, not started yet;
//! - `running`: it is the current greenlet (the one calling [`format_run_info`]);
//! - `waiting`: started and suspended (parked on the hub, or woken and about to run again);
//! - `dead`: finished, still held by a handle.
//!
//! With [`set_track_waits`]`(true)`, each wait that begins afterwards also records where it was
//! called from, and a waiting greenlet's line ends with `at file:line` (the first frame of the
//! wait's backtrace outside gevent, greenlet and the standard library, e.g. the line that called
//! `event.wait()`). That costs a backtrace capture (a few microseconds) per wait, so it is off by
//! default; off, a wait pays one relaxed atomic load for it.
//!
//! # Ground rules
//! - Every gevent greenlet is registered, per thread, when it is created (a weak reference put in a
//!   slab) and unregistered when its state is dropped (its slot freed): O(1) each, nothing when it
//!   switches or waits. The registry never keeps a greenlet alive.
//! - `spawn_raw` greenlets have no [`Greenlet`](crate::Greenlet) object and are not listed; greenlets
//!   of other threads are not listed (each thread has its own hub).
//! - Formatting only reads state; it never switches, so it can be called anywhere, also from a hub
//!   callback or a `Drop`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::Weak;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a registered greenlet tells [`format_run_info`].
pub(crate) struct Snapshot {
    pub(crate) ident: u64,
    pub(crate) name: String,
    pub(crate) phase: Phase,
    /// The raw greenlet while it runs (started, not dead).
    pub(crate) raw: Option<greenlet::Greenlet>,
}

/// A registered greenlet's life stage, as its gevent object knows it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Phase {
    Pending,
    Started,
    Dead,
}

/// Implemented by the state of every gevent greenlet, whatever its result type.
pub(crate) trait Tracked: crate::greenlet::Erased {
    fn snapshot(&self) -> Snapshot;
    /// Whether it has not finished (pending or started).
    fn is_alive(&self) -> bool;
    /// A handle to wait for it (`hubs`' shutdown).
    fn waitable(self: std::rc::Rc<Self>) -> Box<dyn crate::greenlet::Waitable>;
    /// Asks it to die without waiting (`Greenlet::kill_nowait`).
    fn kill_nowait(self: std::rc::Rc<Self>);
}

/// The greenlet registered in `slot`, if it is still alive (what `greenlets::current` finds
/// from the raw greenlet's tag).
pub(crate) fn lookup(slot: u32) -> Option<std::rc::Rc<dyn crate::greenlet::Erased>> {
    REGISTRY
        .try_with(|r| {
            let r = r.try_borrow().ok()?;
            let g = r.slots.get(slot as usize)?.as_ref()?.upgrade()?;
            Some(g as std::rc::Rc<dyn crate::greenlet::Erased>)
        })
        .ok()
        .flatten()
}

/// This thread's gevent greenlets: a slab of weak references, indexed by the slot each greenlet
/// keeps, with a free list of slots; and the next greenlet ident.
struct Registry {
    slots: Vec<Option<Weak<dyn Tracked>>>,
    free: Vec<u32>,
    next_ident: u64,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = const {
        RefCell::new(Registry { slots: Vec::new(), free: Vec::new(), next_ident: 1 })
    };
}

/// Registers a new gevent greenlet of this thread; returns its ident (1, 2, ...: its
/// `minimal_ident`) and the slot to give to [`unregister`]. Called once per greenlet, at creation.
#[inline]
pub(crate) fn register(g: Weak<dyn Tracked>) -> (u64, u32) {
    REGISTRY
        .try_with(|r| {
            let mut r = r.borrow_mut();
            let ident = r.next_ident;
            r.next_ident += 1;
            let slot = match r.free.pop() {
                Some(i) => {
                    r.slots[i as usize] = Some(g);
                    i
                }
                None => {
                    r.slots.push(Some(g));
                    u32::try_from(r.slots.len() - 1).unwrap_or(u32::MAX)
                }
            };
            (ident, slot)
        })
        // The thread is exiting: not listed, and an ident no other greenlet has.
        .unwrap_or((u64::MAX, u32::MAX))
}

/// Forgets the greenlet in `slot` (from [`register`]). Called once, when its state is dropped, so
/// its allocation is freed then: a weak reference left until a later prune would keep it allocated,
/// which measurably slowed `spawn`+`join` (malloc could not reuse the memory of the last batch).
#[inline]
pub(crate) fn unregister(slot: u32) {
    let _ = REGISTRY.try_with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            if let Some(s) = r.slots.get_mut(slot as usize) {
                if s.take().is_some() {
                    r.free.push(slot);
                }
            }
        }
    });
}

static TRACK_WAITS: AtomicBool = AtomicBool::new(false);

/// Turns recording where greenlets wait on or off (all threads). Waits that began before it was
/// turned on show no place. See the [module docs](self).
pub fn set_track_waits(on: bool) {
    TRACK_WAITS.store(on, Ordering::Relaxed);
}

/// Whether waits record where they were called from ([`set_track_waits`]).
#[inline(always)]
pub fn track_waits() -> bool {
    TRACK_WAITS.load(Ordering::Relaxed)
}

thread_local! {
    /// Where each waiting greenlet of this thread (by raw greenlet id) began its wait; only filled
    /// while [`track_waits`] is on.
    static WAIT_SITES: RefCell<HashMap<u64, backtrace::Backtrace>> = RefCell::new(HashMap::new());
}

/// The record of one wait's place; forgets it when the wait ends (returns or unwinds).
pub(crate) struct WaitSite(u64);

impl Drop for WaitSite {
    fn drop(&mut self) {
        let _ = WAIT_SITES.try_with(|s| s.borrow_mut().remove(&self.0));
    }
}

/// Called by `Waiter::wait` (when [`track_waits`] is on) as the current greenlet `g` begins to
/// wait: records where from, until the returned guard is dropped.
#[cold]
#[inline(never)]
pub(crate) fn record_wait_site(g: &greenlet::Greenlet) -> Option<WaitSite> {
    let bt = backtrace::Backtrace::new_unresolved();
    let id = g.id();
    WAIT_SITES
        .try_with(|s| s.borrow_mut().insert(id, bt))
        .ok()?;
    Some(WaitSite(id))
}

/// Crates whose frames are the machinery of a wait, not the place that waits.
const INTERNAL: &[&str] = &[
    "gevent",
    "greenlet",
    "std",
    "core",
    "alloc",
    "backtrace",
    "corosensei",
];

/// The first frame of `bt` outside [`INTERNAL`] crates, as `file:line`; failing that (an optimised
/// build may keep no frame of a small closure that only calls, say, `gevent::sleep`), the gevent
/// function the wait was entered through, as `file:line (function)`.
fn user_frame(bt: &mut backtrace::Backtrace) -> Option<String> {
    bt.resolve();
    // The outermost gevent frame of the innermost run of gevent frames: the API the user called.
    let mut api: Option<String> = None;
    let mut api_done = false;
    for frame in bt.frames() {
        for sym in frame.symbols() {
            let Some(name) = sym.name() else { continue };
            let name = format!("{name:#}");
            let krate = name
                .trim_start_matches('<')
                .split("::")
                .next()
                .unwrap_or("");
            if krate == "gevent" && !api_done {
                if let Some(file) = sym.filename() {
                    let line = sym.lineno().unwrap_or(0);
                    api = Some(format!("{}:{line} ({name})", short_path(file)));
                }
            } else if api.is_some() {
                api_done = true;
            }
            if INTERNAL.contains(&krate) || name.starts_with("__") {
                continue;
            }
            let Some(file) = sym.filename() else { continue };
            let line = sym.lineno().unwrap_or(0);
            return Some(format!("{}:{line}", short_path(file)));
        }
    }
    api
}

/// `file` relative to the current directory when it is under it.
fn short_path(file: &std::path::Path) -> String {
    let rel = std::env::current_dir()
        .ok()
        .and_then(|d| file.strip_prefix(d).ok().map(std::path::Path::to_path_buf));
    rel.as_deref().unwrap_or(file).display().to_string()
}

/// Where the raw greenlet `id` waits, if recorded.
fn wait_place(id: u64) -> Option<String> {
    WAIT_SITES
        .try_with(|s| s.borrow_mut().get_mut(&id).and_then(user_frame))
        .ok()
        .flatten()
}

/// The state word of a started raw greenlet.
fn raw_state(raw: &greenlet::Greenlet) -> &'static str {
    if raw.is_current() {
        "running"
    } else if raw.is_dead() {
        "dead"
    } else {
        "waiting"
    }
}

/// `state` plus ` at file:line` when the greenlet waits and its place was recorded.
fn state_and_place(out: &mut String, raw: &greenlet::Greenlet) {
    let state = raw_state(raw);
    out.push_str(state);
    if state == "waiting" {
        if let Some(place) = wait_place(raw.id()) {
            let _ = write!(out, " at {place}");
        }
    }
}

/// The run info of this thread: its hub, its main greenlet and its gevent greenlets (see the
/// [module docs](self)), one per line.
///
/// # Examples
/// ```
/// let g = gevent::spawn(|| ());
/// g.set_name("worker");
/// let info = gevent::util::format_run_info();
/// assert!(info.contains("worker: pending"), "{info}");
/// g.join();
/// assert!(gevent::util::format_run_info().contains("worker: dead"));
/// ```
pub fn format_run_info() -> String {
    let mut out = String::new();
    let thread = std::thread::current();
    let tname = thread.name().unwrap_or("<unnamed>");
    let _ = write!(out, "thread {tname:?} ({:?}): ", thread.id());
    match crate::hub::try_hub() {
        None => out.push_str("no hub\n"),
        Some(hub) => {
            let (ready, timers) = hub.run_counts();
            let _ = write!(out, "Hub: {ready} ready, {timers} timer(s), ");
            out.push_str(raw_state(hub.greenlet()));
            out.push('\n');
        }
    }
    let mut main = greenlet::getcurrent();
    while let Some(p) = main.parent() {
        main = p;
    }
    out.push_str(" main greenlet: ");
    state_and_place(&mut out, &main);
    out.push('\n');

    let live: Vec<_> = REGISTRY
        .try_with(|r| {
            r.borrow()
                .slots
                .iter()
                .flatten()
                .filter_map(Weak::upgrade)
                .collect()
        })
        .unwrap_or_default();
    let mut snaps: Vec<Snapshot> = live.iter().map(|g| g.snapshot()).collect();
    drop(live); // outside the registry's borrow: the last handle may be dropped here
    snaps.sort_by_key(|s| s.ident);
    for s in snaps {
        let _ = write!(out, " #{} {}: ", s.ident, s.name);
        match (s.phase, &s.raw) {
            (Phase::Pending, _) => out.push_str("pending"),
            (Phase::Dead, _) => out.push_str("dead"),
            (Phase::Started, Some(raw)) => state_and_place(&mut out, raw),
            (Phase::Started, None) => out.push_str("running"),
        }
        out.push('\n');
    }
    out
}

/// This thread's gevent greenlets that have not finished (pending or started), oldest first.
pub(crate) fn live_greenlets() -> Vec<std::rc::Rc<dyn Tracked>> {
    let mut live: Vec<_> = REGISTRY
        .try_with(|r| {
            r.borrow()
                .slots
                .iter()
                .flatten()
                .filter_map(Weak::upgrade)
                .collect()
        })
        .unwrap_or_default();
    live.retain(|g: &std::rc::Rc<dyn Tracked>| g.is_alive());
    live
}

/// Prints [`format_run_info`] to stderr (gevent's `print_run_info`).
pub fn print_run_info() {
    eprint!("{}", format_run_info());
}
