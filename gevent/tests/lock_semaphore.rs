//! Ported from gevent's `src/gevent/tests/test__semaphore.py` (gevent 26.x; the multi-thread
//! cases do not apply: these locks are per hub, `!Send`), plus RLock and the cancellation cases of
//! the issue: a greenlet killed while waiting on a Semaphore, and the semaphore still works and
//! loses no permit.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use gevent::lock::{
    BoundedSemaphore, DummySemaphore, NotOwner, NotOwnerError, OverRelease, OverReleaseError,
    RLock, Semaphore,
};

/// issue 39: acquire with a timeout returns false after the timeout.
#[test]
fn acquire_returns_false_after_timeout() {
    let s = Semaphore::new(0);
    assert!(!s.acquire_timeout(Duration::from_millis(10)));
    assert_eq!(s.waiter_count(), 0);
}

/// test_release_twice (rawlink notifiers become watchers through gevent::wait).
#[test]
fn release_twice_and_wait_on_unacquired() {
    let s = Semaphore::new(1);
    // test_rawlink_on_unacquired_runs_notifiers: waiting on a free semaphore returns at once.
    assert_eq!(gevent::wait([&s], None, None), [0]);
    s.release();
    s.release();
    assert_eq!(s.available(), 3);
}

/// BoundedSemaphore: over-release is an error and changes nothing.
#[test]
fn bounded_over_release() {
    let s = BoundedSemaphore::new(2);
    assert_eq!(s.release(), Err(OverReleaseError));
    assert_eq!(s.release(), Err(OverRelease)); // the earlier name still works
    s.acquire();
    assert!(s.try_acquire());
    assert!(!s.try_acquire());
    s.release().unwrap();
    s.release().unwrap();
    assert_eq!(
        s.release().unwrap_err().to_string(),
        "semaphore released too many times"
    );
    assert_eq!(s.available(), 2);
    {
        let _g = s.acquire_guard();
        assert_eq!(s.available(), 1);
    }
    assert_eq!(s.available(), 2);
}

/// TestSemaphoreFair.test_fair_or_hangs (gevent issue 1487): with a fair semaphore the greenlet
/// that only acquires gets its turn; an unfair one would spin between the other two forever.
#[test]
fn fair_or_hangs() {
    fn acquire_then_spawn(sem: Semaphore, quit: Rc<RefCell<bool>>) {
        if *quit.borrow() {
            return;
        }
        sem.acquire();
        let (s, q) = (sem.clone(), quit.clone());
        gevent::spawn(move || release_then_spawn(s, q)).join();
    }
    fn release_then_spawn(sem: Semaphore, quit: Rc<RefCell<bool>>) {
        sem.release();
        if *quit.borrow() {
            return;
        }
        let (s, q) = (sem.clone(), quit.clone());
        gevent::spawn(move || acquire_then_spawn(s, q)).join();
    }
    let sem = Semaphore::new(1);
    let quit = Rc::new(RefCell::new(false));
    let (s, q) = (sem.clone(), quit.clone());
    let keep_going1 = gevent::spawn(move || acquire_then_spawn(s, q));
    let (s, q) = (sem.clone(), quit.clone());
    let keep_going2 = gevent::spawn(move || acquire_then_spawn(s, q));
    let (s, q) = (sem.clone(), quit.clone());
    let exiting = gevent::spawn(move || {
        s.acquire();
        *q.borrow_mut() = true;
    });
    let r = catch_unwind(AssertUnwindSafe(|| {
        gevent::joinall([&keep_going1, &keep_going2, &exiting])
    }));
    assert!(greenlet::panic_message(&*r.unwrap_err()).contains("would block forever"));
    assert!(exiting.ready());
    assert!(keep_going2.ready());
    assert!(!keep_going1.ready());
    sem.release();
    keep_going1.kill();
    keep_going2.kill();
    exiting.kill();
    gevent::idle();
}

/// FIFO: waiters get the permit in the order they asked, even against later try_acquire.
#[test]
fn waiters_served_fifo() {
    let sem = Semaphore::new(0);
    let order = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = (0..5)
        .map(|i| {
            let (s, o) = (sem.clone(), order.clone());
            gevent::spawn(move || {
                s.acquire();
                o.borrow_mut().push(i);
            })
        })
        .collect();
    gevent::sleep(Duration::ZERO);
    for _ in 0..5 {
        sem.release();
        assert!(!sem.try_acquire(), "the permit went to the oldest waiter");
    }
    gevent::joinall(&gs);
    assert_eq!(*order.borrow(), [0, 1, 2, 3, 4]);
}

/// Cancellation: a greenlet killed while waiting leaves no trace; the semaphore still works.
#[test]
fn killed_waiter_leaves_no_trace() {
    let sem = Semaphore::new(0);
    let s = sem.clone();
    let victim = gevent::spawn(move || s.acquire());
    gevent::sleep(Duration::ZERO);
    assert_eq!(sem.waiter_count(), 1);
    victim.kill();
    assert_eq!(sem.waiter_count(), 0);
    sem.release();
    assert_eq!(sem.available(), 1);
    assert!(sem.try_acquire());
}

/// Cancellation: a waiter handed the permit and killed before it runs passes the permit on.
#[test]
fn permit_of_killed_woken_waiter_passes_on() {
    let sem = Semaphore::new(0);
    let (a, b) = (sem.clone(), sem.clone());
    let victim = gevent::spawn(move || a.acquire());
    let survivor = gevent::spawn(move || b.acquire());
    gevent::sleep(Duration::ZERO);
    victim.kill_nowait(); // queued before the wake that release queues
    sem.release();
    survivor.join();
    assert!(survivor.successful());
    assert_eq!(victim.get(), Err(gevent::GetError::Killed));
    // No other waiter: the permit goes back to the counter.
    let c = sem.clone();
    let victim2 = gevent::spawn(move || c.acquire());
    gevent::sleep(Duration::ZERO);
    victim2.kill_nowait();
    sem.release();
    victim2.join();
    assert_eq!(sem.available(), 1);
}

/// A timed-out waiter leaves no trace; a Timeout unwinding through acquire too.
#[test]
fn timed_out_waiter_leaves_no_trace() {
    let sem = Semaphore::new(0);
    assert!(gevent::with_timeout(Duration::from_millis(5), || sem.acquire()).is_err());
    assert_eq!(sem.waiter_count(), 0);
    sem.release();
    assert_eq!(sem.available(), 1);
}

/// RLock: reentrant in its owner, exclusive across greenlets, release by a non-owner fails.
#[test]
fn rlock_reentrant_per_greenlet() {
    let lock = RLock::new();
    lock.acquire();
    lock.acquire();
    let l2 = lock.clone();
    let other = gevent::spawn(move || {
        assert!(l2.release().is_err());
        assert!(!l2.try_acquire());
        let _g = l2.acquire_guard();
        assert!(l2.is_owned());
        "got it"
    });
    gevent::sleep(Duration::ZERO);
    lock.release().unwrap();
    gevent::sleep(Duration::ZERO);
    assert!(!other.ready(), "still held once");
    lock.release().unwrap();
    assert_eq!(other.get(), Ok("got it"));
    assert!(!lock.is_locked());
    assert_eq!(lock.release(), Err(NotOwnerError));
    assert_eq!(lock.release(), Err(NotOwner)); // the earlier name still works
}

/// DummySemaphore never blocks.
#[test]
fn dummy_semaphore() {
    let d = DummySemaphore::new();
    for _ in 0..3 {
        d.acquire();
        assert!(d.try_acquire());
    }
    d.release();
    let _g = d.acquire_guard();
    assert!(!d.is_locked());
}
