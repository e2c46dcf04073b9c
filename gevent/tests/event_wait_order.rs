//! A `wait()` that starts while `Event::set()` is still waking earlier waiters queues behind them
//! (issue 15, item 1; gevent#1520). Follows gevent's `src/gevent/tests/test__event.py`
//! `TestEventBasics.test_wait_while_notifying` (itself ported in `event_basics.rs`
//! `waiters_woken_in_fifo_order`), pushed further: a woken waiter's own second wait, and no yield
//! once the notification is over. `AsyncResult` keeps the same order.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gevent::event::{AsyncResult, Event};

type Results = Rc<RefCell<Vec<u32>>>;

fn wait_then_append(event: &Event, results: &Results, arg: u32) {
    event.wait();
    results.borrow_mut().push(arg);
}

/// A woken waiter that waits again on the still-set event runs after the other woken waiters,
/// and a greenlet spawned after the set whose wait starts meanwhile does too.
#[test]
fn rewait_by_a_woken_waiter_keeps_order() {
    let event = Event::new();
    let results: Results = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = [1, 2, 3]
        .into_iter()
        .map(|arg| {
            let (e, r) = (event.clone(), results.clone());
            gevent::spawn(move || {
                wait_then_append(&e, &r, arg);
                if arg == 1 {
                    // Still notifying 2 and 3: this second wait queues behind them.
                    wait_then_append(&e, &r, 10);
                }
            })
        })
        .collect();
    gevent::idle();
    event.set();
    gevent::joinall(&gs);
    assert_eq!(*results.borrow(), [1, 2, 3, 10]);
}

/// Once the woken waiters have all run, a wait on the set event returns at once (no yield).
#[test]
fn wait_after_notification_returns_at_once() {
    let event = Event::new();
    let e2 = event.clone();
    let g = gevent::spawn(move || e2.wait());
    gevent::idle();
    event.set();
    assert_eq!(g.get(), Ok(true));
    gevent::sleep(Duration::ZERO); // the notification is over
    let ran = Rc::new(RefCell::new(false));
    let r2 = ran.clone();
    gevent::spawn(move || *r2.borrow_mut() = true);
    assert!(event.wait());
    assert!(
        !*ran.borrow(),
        "a wait on a set event yielded with nothing to queue behind"
    );
    gevent::sleep(Duration::ZERO);
    assert!(*ran.borrow());
    // A set with no waiters leaves nothing to queue behind either.
    let idle_event = Event::new();
    idle_event.set();
    let r3 = ran.clone();
    *ran.borrow_mut() = false;
    gevent::spawn(move || *r3.borrow_mut() = true);
    assert!(idle_event.wait());
    assert!(!*ran.borrow());
}

/// The same for `AsyncResult`: a reader woken by `set` that reads again runs after the other woken
/// readers, and a read after the notification is over does not yield.
#[test]
fn async_result_rewait_by_a_woken_reader_keeps_order() {
    let r: AsyncResult<u32> = AsyncResult::new();
    let results: Results = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = [1, 2, 3]
        .into_iter()
        .map(|arg| {
            let (r, out) = (r.clone(), results.clone());
            gevent::spawn(move || {
                let v = r.get().unwrap();
                out.borrow_mut().push(arg * v);
                if arg == 1 {
                    let v = r.get().unwrap();
                    out.borrow_mut().push(10 * v);
                }
            })
        })
        .collect();
    gevent::idle();
    r.set(1);
    gevent::joinall(&gs);
    assert_eq!(*results.borrow(), [1, 2, 3, 10]);
    let ran = Rc::new(RefCell::new(false));
    let r2 = ran.clone();
    gevent::spawn(move || *r2.borrow_mut() = true);
    assert_eq!(r.get(), Ok(1));
    assert!(!*ran.borrow(), "a read after the notification yielded");
}
