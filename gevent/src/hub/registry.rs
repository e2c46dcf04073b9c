//! What run-info ([`util::format_run_info`](crate::util::format_run_info)) reads below the
//! greenlet layer: the slab that registers this thread's gevent greenlets (the greenlet layer keeps
//! one, of its own trait object), what each tells about itself ([`Snapshot`]), and where waits
//! began ([`set_track_waits`]). `util` only formats what it finds here.
//!
//! # Ground rules
//! - Every gevent greenlet is registered, per thread, when it is created (a weak reference put in a
//!   slab) and unregistered when its state is dropped (its slot freed): O(1) each, nothing when it
//!   switches or waits. The registry never keeps a greenlet alive.
//! - Wait sites are recorded only while [`track_waits`] is on; off, a wait pays one relaxed load.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};

/// What a registered greenlet tells run-info.
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

/// A thread's gevent greenlets: a slab of weak references, indexed by the slot each greenlet
/// keeps, with a free list of slots; and the next greenlet ident. `T` is the greenlet layer's
/// trait object (this layer does not name it).
pub(crate) struct Registry<T: ?Sized> {
    slots: Vec<Option<Weak<T>>>,
    free: Vec<u32>,
    next_ident: u64,
}

impl<T: ?Sized> Registry<T> {
    /// An empty registry; idents start at 1.
    pub(crate) const fn new() -> Registry<T> {
        Registry {
            slots: Vec::new(),
            free: Vec::new(),
            next_ident: 1,
        }
    }

    /// Registers a new greenlet; returns its ident (1, 2, ...: its `minimal_ident`) and the slot to
    /// give to [`Registry::unregister`]. Called once per greenlet, at creation.
    #[inline]
    pub(crate) fn register(&mut self, g: Weak<T>) -> (u64, u32) {
        let ident = self.next_ident;
        self.next_ident += 1;
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(g);
                i
            }
            None => {
                self.slots.push(Some(g));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        (ident, slot)
    }

    /// Forgets the greenlet in `slot` (from [`Registry::register`]). Called once, when its state
    /// is dropped, so its allocation is freed then: a weak reference left until a later prune would
    /// keep it allocated, which measurably slowed `spawn`+`join` (malloc could not reuse the memory
    /// of the last batch).
    #[inline]
    pub(crate) fn unregister(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            if s.take().is_some() {
                self.free.push(slot);
            }
        }
    }

    /// The greenlet registered in `slot`, if it is still alive.
    pub(crate) fn get(&self, slot: u32) -> Option<Rc<T>> {
        self.slots.get(slot as usize)?.as_ref()?.upgrade()
    }

    /// Every registered greenlet that is still referenced, in slot order.
    pub(crate) fn all(&self) -> Vec<Rc<T>> {
        self.slots
            .iter()
            .flatten()
            .filter_map(Weak::upgrade)
            .collect()
    }
}

static TRACK_WAITS: AtomicBool = AtomicBool::new(false);

/// Turns recording where greenlets wait on or off (all threads). Waits that began before it was
/// turned on show no place. See [`util`](crate::util).
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

/// `f` of the recorded place where the raw greenlet `id` waits, if there is one.
pub(crate) fn with_wait_site<R>(
    id: u64,
    f: impl FnOnce(&mut backtrace::Backtrace) -> Option<R>,
) -> Option<R> {
    WAIT_SITES
        .try_with(|s| s.borrow_mut().get_mut(&id).and_then(f))
        .ok()
        .flatten()
}
