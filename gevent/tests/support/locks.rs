//! Test scaffolding: std's and parking_lot's `Mutex` and `Condvar` behind one small trait, so that a
//! scenario is written once and run against both (under `monkey::patch_all` each parks a greenlet
//! that waits on it). The guard is passed by value to the condvar waits (std's shape); the
//! parking_lot side waits on it in place and hands it back.

use std::ops::DerefMut;
use std::time::Duration;

/// A family of lock types: a mutex, its guard and a condvar.
pub trait Locks: 'static {
    type Mutex<T: Send + 'static>: Send + Sync + 'static;
    type Guard<'a, T: Send + 'static>: DerefMut<Target = T>;
    type Condvar: Send + Sync + 'static;

    fn mutex<T: Send + 'static>(v: T) -> Self::Mutex<T>;
    /// Locks `m` (std's `lock().unwrap()`: a poisoned mutex fails the test).
    fn lock<T: Send + 'static>(m: &Self::Mutex<T>) -> Self::Guard<'_, T>;
    /// Whether `m` is free now (`try_lock` succeeds; a poisoned std mutex counts as not free).
    fn is_free<T: Send + 'static>(m: &Self::Mutex<T>) -> bool;
    fn condvar() -> Self::Condvar;
    /// An untimed wait for a notification.
    fn wait<'a, T: Send + 'static>(cv: &Self::Condvar, g: Self::Guard<'a, T>)
        -> Self::Guard<'a, T>;
    /// A wait of at most `d`; also says whether it timed out.
    fn wait_for<'a, T: Send + 'static>(
        cv: &Self::Condvar,
        g: Self::Guard<'a, T>,
        d: Duration,
    ) -> (Self::Guard<'a, T>, bool);
    fn notify_all(cv: &Self::Condvar);
}

/// `std::sync`'s `Mutex` and `Condvar`.
pub struct Std;

impl Locks for Std {
    type Mutex<T: Send + 'static> = std::sync::Mutex<T>;
    type Guard<'a, T: Send + 'static> = std::sync::MutexGuard<'a, T>;
    type Condvar = std::sync::Condvar;

    fn mutex<T: Send + 'static>(v: T) -> Self::Mutex<T> {
        std::sync::Mutex::new(v)
    }
    fn lock<T: Send + 'static>(m: &Self::Mutex<T>) -> Self::Guard<'_, T> {
        m.lock().unwrap()
    }
    fn is_free<T: Send + 'static>(m: &Self::Mutex<T>) -> bool {
        m.try_lock().is_ok()
    }
    fn condvar() -> Self::Condvar {
        std::sync::Condvar::new()
    }
    fn wait<'a, T: Send + 'static>(
        cv: &Self::Condvar,
        g: Self::Guard<'a, T>,
    ) -> Self::Guard<'a, T> {
        cv.wait(g).unwrap()
    }
    fn wait_for<'a, T: Send + 'static>(
        cv: &Self::Condvar,
        g: Self::Guard<'a, T>,
        d: Duration,
    ) -> (Self::Guard<'a, T>, bool) {
        let (g, r) = cv.wait_timeout(g, d).unwrap();
        (g, r.timed_out())
    }
    fn notify_all(cv: &Self::Condvar) {
        cv.notify_all();
    }
}

/// parking_lot's `Mutex` and `Condvar` (the workspace's patched parking_lot_core).
pub struct ParkingLot;

impl Locks for ParkingLot {
    type Mutex<T: Send + 'static> = parking_lot::Mutex<T>;
    type Guard<'a, T: Send + 'static> = parking_lot::MutexGuard<'a, T>;
    type Condvar = parking_lot::Condvar;

    fn mutex<T: Send + 'static>(v: T) -> Self::Mutex<T> {
        parking_lot::Mutex::new(v)
    }
    fn lock<T: Send + 'static>(m: &Self::Mutex<T>) -> Self::Guard<'_, T> {
        m.lock()
    }
    fn is_free<T: Send + 'static>(m: &Self::Mutex<T>) -> bool {
        m.try_lock().is_some()
    }
    fn condvar() -> Self::Condvar {
        parking_lot::Condvar::new()
    }
    fn wait<'a, T: Send + 'static>(
        cv: &Self::Condvar,
        mut g: Self::Guard<'a, T>,
    ) -> Self::Guard<'a, T> {
        cv.wait(&mut g);
        g
    }
    fn wait_for<'a, T: Send + 'static>(
        cv: &Self::Condvar,
        mut g: Self::Guard<'a, T>,
        d: Duration,
    ) -> (Self::Guard<'a, T>, bool) {
        let timed_out = cv.wait_for(&mut g, d).timed_out();
        (g, timed_out)
    }
    fn notify_all(cv: &Self::Condvar) {
        cv.notify_all();
    }
}
