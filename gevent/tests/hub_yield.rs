//! `sleep(ZERO)` takes its turn through a ready entry of its own (no `Waiter`): these check what a
//! waiter used to guarantee. Modelled on gevent's `src/gevent/tests/test__sleep0.py` and the
//! kill/timeout cases of `test__greenlet.py` (`TestBasic.test_kill_*`) applied to a yielding
//! greenlet.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use gevent::Timeout;

/// Every ready greenlet runs exactly once per `sleep(ZERO)` of another (gevent's FIFO turn).
#[test]
fn yields_round_robin_in_fifo_order() {
    let log = Rc::new(std::cell::RefCell::new(Vec::new()));
    let gs: Vec<_> = (0..3)
        .map(|i| {
            let log = log.clone();
            gevent::spawn(move || {
                for round in 0..3 {
                    log.borrow_mut().push((round, i));
                    gevent::sleep(Duration::ZERO);
                }
            })
        })
        .collect();
    gevent::joinall(&gs);
    let want: Vec<_> = (0..3).flat_map(|r| (0..3).map(move |i| (r, i))).collect();
    assert_eq!(*log.borrow(), want);
}

/// A timeout landing on a greenlet while its yield is queued unwinds it out of `sleep(ZERO)`; its
/// queued turn is withdrawn with it. Afterwards it takes exactly one turn per yield again: a stale
/// turn left in the queue would run it twice in one round and break the strict alternation with
/// another greenlet that kept yielding all along.
#[test]
fn timeout_during_a_yield_withdraws_its_turn() {
    let log = Rc::new(std::cell::RefCell::new(Vec::new()));
    let phase = Rc::new(Cell::new(false));
    let (l1, p1) = (log.clone(), phase.clone());
    let g = gevent::spawn(move || {
        let t = Timeout::start_new(Duration::from_millis(20));
        let r = catch_unwind(AssertUnwindSafe(|| loop {
            gevent::sleep(Duration::ZERO);
        }));
        let p = r.expect_err("the loop only ends by the timeout");
        assert!(t.is_mine(&*p), "the unwind is the timeout");
        p1.set(true);
        for k in 0..5 {
            l1.borrow_mut().push(('g', k));
            gevent::sleep(Duration::ZERO);
        }
    });
    let (l2, p2) = (log.clone(), phase.clone());
    let h = gevent::spawn(move || {
        let mut k = 0;
        while k < 5 {
            if p2.get() {
                l2.borrow_mut().push(('h', k));
                k += 1;
            }
            gevent::sleep(Duration::ZERO);
        }
    });
    g.join();
    h.join();
    let log = log.borrow();
    assert_eq!(log.len(), 10, "{log:?}");
    for pair in log.chunks(2) {
        assert_eq!(pair[0].1, pair[1].1, "one turn each per round: {log:?}");
        assert_ne!(pair[0].0, pair[1].0, "one turn each per round: {log:?}");
    }
}

/// Killing a greenlet that yields in a loop ends it, and nothing resumes it afterwards.
#[test]
fn kill_while_yielding() {
    let count = Rc::new(Cell::new(0u64));
    let c = count.clone();
    let g = gevent::spawn(move || loop {
        c.set(c.get() + 1);
        gevent::sleep(Duration::ZERO);
    });
    for _ in 0..10 {
        gevent::sleep(Duration::ZERO);
    }
    assert!(
        count.get() >= 5,
        "it ran while main yielded: {}",
        count.get()
    );
    g.kill();
    assert!(g.is_dead());
    let after = count.get();
    for _ in 0..10 {
        gevent::sleep(Duration::ZERO);
    }
    assert_eq!(count.get(), after);
}

/// A `sleep(ZERO)` from the main greenlet with nothing else ready returns (no `LoopExit`).
#[test]
fn yield_alone_returns() {
    for _ in 0..1000 {
        gevent::sleep(Duration::ZERO);
    }
}
