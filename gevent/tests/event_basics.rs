//! Ported from gevent's `src/gevent/tests/test__event.py` (gevent 26.x): scenarios, not code.
//! Plus the cancellation cases of the issue: a greenlet killed while waiting on an Event, and
//! LoopExit when the main greenlet waits on an Event no one sets.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use gevent::event::{AsyncResult, Event};
use gevent::GetError;

const DELAY: Duration = Duration::from_millis(20);

/// TestEventWait / TestAsyncResultWait: a timed wait on something never set returns false after
/// (not before) the timeout.
#[test]
fn wait_timeout_on_unset() {
    let t = Instant::now();
    assert!(!Event::new().wait_timeout(DELAY));
    assert!(t.elapsed() >= DELAY);
    let t = Instant::now();
    assert!(!AsyncResult::<i32>::new().wait_timeout(DELAY));
    assert!(t.elapsed() >= DELAY);
    // TestAsyncResultGet: get with a timeout reports NotReady.
    assert_eq!(
        AsyncResult::<i32>::new().get_timeout(DELAY),
        Err(GetError::NotReady)
    );
}

/// TestGeventWaitOnEvent / TestWaitAsyncResult: gevent::wait accepts events and results.
#[test]
fn gevent_wait_accepts_events() {
    let e = Event::new();
    assert!(gevent::wait([&e], Some(DELAY), None).is_empty());
    let r = AsyncResult::<u8>::new();
    assert!(gevent::wait([&r], Some(DELAY), None).is_empty());
    let (e2, r2) = (e.clone(), r.clone());
    gevent::spawn(move || {
        e2.set();
        r2.set(1);
    });
    assert_eq!(gevent::wait([&e], None, None), [0]);
    gevent::joinall([&r]);
    assert_eq!(r.get(), Ok(1));
}

/// test_set_during_wait (gevent issue 771): after set/clear, a new wait must not see the old set.
#[test]
fn set_during_wait_then_clear() {
    let event = Event::new();
    let e = event.clone();
    let waiter = gevent::spawn(move || {
        let e2 = e.clone();
        let s = gevent::spawn(move || e2.set());
        assert!(e.wait());
        assert!(e.ready());
        s.join();
        e.clear();
        assert!(!e.ready());
        let o = gevent::wait([&e], Some(Duration::from_millis(10)), None);
        assert!(o.is_empty());
        assert!(!e.ready());
    });
    waiter.get().unwrap();
}

/// TestAsyncResult.test_set_exc: a waiter gets the failure.
#[test]
fn async_result_set_exception() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let r: AsyncResult<i32> = AsyncResult::new();
    assert!(r.exception().is_none());
    let (r2, l2) = (r.clone(), log.clone());
    gevent::spawn(move || {
        let e = r2.get().unwrap_err();
        l2.borrow_mut().push(e.to_string());
    });
    gevent::sleep(Duration::ZERO);
    r.set_exception("MyException");
    gevent::sleep(Duration::ZERO);
    assert_eq!(*log.borrow(), ["the greenlet panicked: MyException"]);
    assert!(r.ready() && !r.successful());
    assert_eq!(r.exception().unwrap().message(), "MyException");
}

/// TestAsyncResult.test_set: a Timeout of 0 interrupts a get whose value comes later.
#[test]
fn async_result_get_interrupted_by_timeout() {
    let r: AsyncResult<&str> = AsyncResult::new();
    let r2 = r.clone();
    let setter = gevent::spawn_later(DELAY * 5, move || r2.set("hello event1"));
    let res = gevent::with_timeout(Duration::ZERO, || r.get());
    assert!(res.is_err(), "the timeout fired first");
    setter.kill();
}

/// test_set_with_timeout / test_nonblocking_get.
#[test]
fn async_result_timeout_value_and_nonblocking() {
    let r: AsyncResult<i32> = AsyncResult::new();
    assert!(gevent::with_timeout(DELAY, || r.get()).is_err());
    assert_eq!(r.peek(), Err(GetError::NotReady));
    assert_eq!(r.value(), None);
}

/// TestAsyncResultAsLinkTarget: an AsyncResult as the target of link / link_value / link_exception.
#[test]
fn async_result_as_link_target() {
    let g = gevent::spawn(|| 1);
    let (s1, s2, s3) = (AsyncResult::new(), AsyncResult::new(), AsyncResult::new());
    let (a, b, c) = (s1.clone(), s2.clone(), s3.clone());
    g.link(move |g| a.set_from(g));
    g.link_value(move |g| b.set_from(g));
    g.link_exception(move |g| c.set_from(g));
    assert_eq!(s1.get(), Ok(1));
    assert_eq!(s2.get(), Ok(1));
    assert!(gevent::with_timeout(DELAY, || s3.get()).is_err());

    let g = gevent::spawn(|| -> i32 { panic!("ExpectedException") });
    let (s1, s2, s3) = (AsyncResult::new(), AsyncResult::new(), AsyncResult::new());
    let (a, b, c) = (s1.clone(), s2.clone(), s3.clone());
    g.link(move |g| a.set_from(g));
    g.link_value(move |g| b.set_from(g));
    g.link_exception(move |g| c.set_from(g));
    assert!(matches!(s1.get(), Err(GetError::Panicked(f)) if f.message() == "ExpectedException"));
    assert!(gevent::with_timeout(DELAY, || s2.get()).is_err());
    assert!(matches!(s3.get(), Err(GetError::Panicked(_))));
}

/// TestEvent_SetThenClear{,100,1000}: set then clear at once still releases every waiter.
#[test]
fn set_then_clear_releases_all() {
    for n in [1, 100, 1000] {
        let e = Event::new();
        let waiters: Vec<_> = (0..n)
            .map(|_| {
                let e = e.clone();
                gevent::spawn(move || e.wait())
            })
            .collect();
        // gevent's test sleeps 1 ms here; a yield is what it means (every spawned waiter starts and
        // parks before we go on) without depending on how long starting 1000 greenlets takes: the
        // hub lets a due timer in after 5 ms of running the ready queue, as gevent does.
        gevent::sleep(Duration::ZERO);
        assert_eq!(e.waiter_count(), n);
        e.set();
        e.clear();
        for g in &waiters {
            assert_eq!(g.get(), Ok(true));
        }
        assert_eq!(e.waiter_count(), 0);
    }
}

/// TestWait (count None/1/2, with and without timeout): gevent::wait over events and results set
/// one by one.
#[test]
fn wait_on_many_with_count() {
    for count in [None, Some(1), Some(2)] {
        let events: Vec<Event> = (0..5).map(|_| Event::new()).collect();
        let results: Vec<AsyncResult<()>> = (0..5).map(|_| AsyncResult::new()).collect();
        let (ev, rs) = (events.clone(), results.clone());
        let sender = gevent::spawn(move || {
            for (e, r) in ev.iter().zip(&rs) {
                gevent::sleep(Duration::from_millis(2));
                e.set();
                gevent::sleep(Duration::from_millis(2));
                r.set(());
            }
        });
        let mut all: Vec<&dyn gevent::Waitable> = Vec::new();
        all.extend(events.iter().map(|e| e as &dyn gevent::Waitable));
        all.extend(results.iter().map(|r| r as &dyn gevent::Waitable));
        let got = gevent::wait(all.iter().copied(), Some(Duration::from_secs(5)), count);
        match count {
            None => {
                assert_eq!(got.len(), 10);
                sender.join();
                assert!(sender.ready());
            }
            Some(c) => {
                assert_eq!(got.len(), c);
                assert!(!sender.ready());
                sender.kill();
            }
        }
    }
}

/// test_wait_while_notifying (gevent#1520): waiters run in the order they began to wait, and a wait
/// that starts while `set()` is still waking them (the main greenlet's) queues behind them.
#[test]
fn waiters_woken_in_fifo_order() {
    let e = Event::new();
    let results = Rc::new(RefCell::new(Vec::new()));
    for i in 1..=2 {
        let (e, r) = (e.clone(), results.clone());
        gevent::spawn(move || {
            e.wait();
            r.borrow_mut().push(i);
        });
    }
    gevent::idle();
    assert_eq!(e.waiter_count(), 2);
    e.set();
    e.wait(); // set, but 1 and 2 have not run yet: behind them
    results.borrow_mut().push(3);
    assert_eq!(*results.borrow(), [1, 2, 3]);
}

/// test_gevent_wait_twice_when_already_set.
#[test]
fn wait_twice_when_already_set() {
    let e = Event::new();
    e.set();
    assert_eq!(gevent::wait([&e], None, None), [0]);
    assert_eq!(gevent::wait([&e], None, None), [0]);
}

/// Cancellation: a greenlet killed while waiting leaves no trace; the event still works.
#[test]
fn killed_waiter_leaves_no_trace() {
    let e = Event::new();
    let e1 = e.clone();
    let victim = gevent::spawn(move || e1.wait());
    let e2 = e.clone();
    let survivor = gevent::spawn(move || e2.wait());
    gevent::sleep(Duration::ZERO);
    assert_eq!(e.waiter_count(), 2);
    victim.kill();
    assert_eq!(victim.get(), Err(GetError::Killed));
    assert_eq!(e.waiter_count(), 1);
    e.set();
    assert_eq!(survivor.get(), Ok(true));
    assert_eq!(e.waiter_count(), 0);
}

/// Cancellation: a timed-out waiter (Timeout unwinding through wait) leaves no trace either.
#[test]
fn timed_out_waiter_leaves_no_trace() {
    let e = Event::new();
    assert!(gevent::with_timeout(DELAY, || e.wait()).is_err());
    assert_eq!(e.waiter_count(), 0);
    assert!(!e.wait_timeout(Duration::from_millis(1)));
    assert_eq!(e.waiter_count(), 0);
}

/// LoopExit: the main greenlet waiting on an Event no one sets gets a clear message.
#[test]
fn main_waiting_on_unset_event_is_loop_exit() {
    let e = Event::new();
    let err = catch_unwind(AssertUnwindSafe(|| e.wait())).unwrap_err();
    let msg = greenlet::panic_message(&*err);
    assert!(
        msg.contains("LoopExit") && msg.contains("would block forever"),
        "{msg}"
    );
    assert_eq!(e.waiter_count(), 0);
    // Joining a greenlet that waits on it: the same.
    let e2 = e.clone();
    let g = gevent::spawn(move || e2.wait());
    let err = catch_unwind(AssertUnwindSafe(|| g.join())).unwrap_err();
    assert!(greenlet::panic_message(&*err).contains("would block forever"));
    // And the event still works afterwards.
    e.set();
    assert_eq!(g.get(), Ok(true));
}
