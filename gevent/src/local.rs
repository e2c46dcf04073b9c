//! [`Local<T>`]: greenlet-local storage (gevent's `gevent.local.local`).
//!
//! # Ground rules
//! - A `Local` holds one value per greenlet, keyed by the raw greenlet's id (unique for the thread's
//!   lifetime, never reused, so a dead greenlet's key cannot be mistaken for a new one's). The value
//!   is created on first use by the `Local`'s init function.
//! - When a greenlet spawned by gevent ([`spawn`](crate::spawn), [`spawn_raw`](crate::spawn_raw),
//!   pools) finishes — returns, panics or is killed — its values in every `Local` are dropped, in
//!   that greenlet, before its links run. A thread-wide registry maps each greenlet to the `Local`s
//!   holding a value for it (weakly: dropping a `Local` drops all its values and needs no cleanup).
//! - Greenlets made directly with the `greenlet` crate have no exit hook: their values live until
//!   the `Local` is dropped (or [`Local::remove`] is called from them).
//! - The value is borrowed only during [`Local::with`]; the map itself is never borrowed across a
//!   call into user code, so values may yield, and other greenlets may use the same `Local`
//!   meanwhile.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::{Rc, Weak};

/// What the registry needs from a `Local`: drop the value of one greenlet.
trait Purge {
    fn purge(&self, greenlet: u64);
}

thread_local! {
    /// Raw greenlet id -> the `Local`s holding a value for it.
    static REGISTRY: RefCell<HashMap<u64, Vec<Weak<dyn Purge>>>> = RefCell::new(HashMap::new());
}

/// Called by the greenlet entry points when the current greenlet's function has ended: drops its
/// values in every `Local`.
pub(crate) fn greenlet_exited() {
    let id = greenlet::getcurrent().id();
    let Some(locals) = REGISTRY.with(|r| r.borrow_mut().remove(&id)) else {
        return;
    };
    for l in locals {
        if let Some(l) = l.upgrade() {
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| l.purge(id))) {
                eprintln!(
                    "gevent: dropping a greenlet-local value panicked (ignored): {}",
                    greenlet::panic_message(&*p)
                );
            }
        }
    }
}

struct Inner<T> {
    values: RefCell<HashMap<u64, Rc<RefCell<T>>>>,
    init: Box<dyn Fn() -> T>,
}

impl<T: 'static> Purge for Inner<T> {
    fn purge(&self, greenlet: u64) {
        let v = self.values.borrow_mut().remove(&greenlet);
        drop(v); // outside the borrow: the value's destructor may use this Local
    }
}

/// A value per greenlet (gevent's `local`).
///
/// Cloning gives another handle to the same storage.
///
/// # Examples
/// ```
/// use gevent::local::Local;
/// let counter = Local::new(|| 0);
/// let c2 = counter.clone();
/// let g = gevent::spawn(move || {
///     c2.with(|n| *n += 10);
///     c2.get()
/// });
/// counter.with(|n| *n += 1);
/// assert_eq!(g.get(), Ok(10));
/// assert_eq!(counter.get(), 1); // the main greenlet's own value
/// ```
pub struct Local<T: 'static> {
    inner: Rc<Inner<T>>,
}

impl<T> Clone for Local<T> {
    fn clone(&self) -> Self {
        Local {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Default + 'static> Default for Local<T> {
    fn default() -> Self {
        Local::new(T::default)
    }
}

impl<T> fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Local(greenlets: {})", self.inner.values.borrow().len())
    }
}

impl<T: 'static> Local<T> {
    /// Storage whose value in each greenlet starts as `init()`.
    pub fn new(init: impl Fn() -> T + 'static) -> Local<T> {
        Local {
            inner: Rc::new(Inner {
                values: RefCell::new(HashMap::new()),
                init: Box::new(init),
            }),
        }
    }

    fn slot(&self) -> Rc<RefCell<T>> {
        let id = greenlet::getcurrent().id();
        if let Some(v) = self.inner.values.borrow().get(&id) {
            return v.clone();
        }
        // Not borrowed while `init` runs (it may use this Local, or yield).
        let v = Rc::new(RefCell::new((self.inner.init)()));
        let v = self
            .inner
            .values
            .borrow_mut()
            .entry(id)
            .or_insert(v)
            .clone();
        self.register(id);
        v
    }

    fn register(&self, id: u64) {
        let me: Rc<dyn Purge> = self.inner.clone();
        let me = Rc::downgrade(&me);
        REGISTRY.with(|r| {
            let mut r = r.borrow_mut();
            let list = r.entry(id).or_default();
            if list.iter().any(|w| w.ptr_eq(&me)) {
                return;
            }
            // Forget `Local`s dropped meanwhile, so a long-lived greenlet that makes many does not
            // grow its list without bound.
            if list.len() >= 8 && list.len().is_power_of_two() {
                list.retain(|w| w.strong_count() > 0);
            }
            list.push(me);
        });
    }

    /// Calls `f` with the current greenlet's value (created first if needed).
    ///
    /// # Panics
    /// If `f` calls `with` on the same `Local` again from the same greenlet (the value is already
    /// borrowed).
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let slot = self.slot();
        let mut v = slot.borrow_mut();
        f(&mut v)
    }

    /// A copy of the current greenlet's value.
    pub fn get(&self) -> T
    where
        T: Clone,
    {
        self.with(|v| v.clone())
    }

    /// Replaces the current greenlet's value.
    pub fn set(&self, value: T) {
        self.with(|v| *v = value);
    }

    /// Removes and returns the current greenlet's value, if it has one (the next use creates a new
    /// one).
    pub fn remove(&self) -> Option<T> {
        let id = greenlet::getcurrent().id();
        let slot = self.inner.values.borrow_mut().remove(&id)?;
        match Rc::try_unwrap(slot) {
            Ok(cell) => Some(cell.into_inner()),
            Err(_) => None, // borrowed by an enclosing `with`: dropped when that ends
        }
    }

    /// Whether the current greenlet has a value yet.
    pub fn is_set(&self) -> bool {
        let id = greenlet::getcurrent().id();
        self.inner.values.borrow().contains_key(&id)
    }

    /// How many greenlets have a value (dead greenlets' values are already gone).
    pub fn len(&self) -> usize {
        self.inner.values.borrow().len()
    }

    /// Whether no greenlet has a value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
