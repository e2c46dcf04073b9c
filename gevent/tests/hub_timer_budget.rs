//! A long ready queue does not starve due timers: the hub runs the queue for at most its switch
//! interval (5 ms, gevent's `getswitchinterval()`) before it lets due timers in, and what they wake
//! goes ahead of the rest of the queue (as gevent's `_run_callbacks` stops every 50 callbacks once
//! the switch interval has passed, and libev then runs its timers).
//!
//! Not ported: gevent has no test of this; the bench's `timers_100k` rows measure its effect.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Busy for `d` of wall-clock time without yielding (a greenlet doing CPU work).
fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

#[test]
fn a_due_timer_gets_in_while_a_long_ready_queue_runs() {
    const BUSY: usize = 400; // 400 x 100 us: 40 ms of work queued at once
    let done = Rc::new(Cell::new(0usize));
    let seen_by_sleeper = Rc::new(Cell::new(usize::MAX));
    let sleeper = {
        let (done, seen) = (done.clone(), seen_by_sleeper.clone());
        gevent::spawn(move || {
            gevent::sleep(Duration::from_millis(1));
            seen.set(done.get());
        })
    };
    gevent::sleep(Duration::ZERO); // the sleeper's timer is armed before the work is queued
    let busy: Vec<_> = (0..BUSY)
        .map(|_| {
            let done = done.clone();
            gevent::spawn(move || {
                spin(Duration::from_micros(100));
                done.set(done.get() + 1);
            })
        })
        .collect();
    gevent::joinall(&busy);
    sleeper.join();
    let seen = seen_by_sleeper.get();
    // Without the budget the sleeper would run after all 400 (40 ms late); with it, after about
    // 5 ms of them (~50). Generous bounds: only "well before the end" matters.
    assert!(
        seen < BUSY / 2,
        "the sleeper woke after {seen} of {BUSY} busy greenlets"
    );
    assert_eq!(done.get(), BUSY);
}

#[test]
fn without_timers_the_queue_runs_through_in_order() {
    // The budget only applies while timers wait: a plain queue keeps its FIFO order and runs in one
    // turn (sleep(ZERO) after spawning still sees every spawned greenlet started).
    let order = Rc::new(std::cell::RefCell::new(Vec::new()));
    let gs: Vec<_> = (0..300)
        .map(|i| {
            let order = order.clone();
            gevent::spawn(move || {
                spin(Duration::from_micros(30));
                order.borrow_mut().push(i);
            })
        })
        .collect();
    gevent::sleep(Duration::ZERO);
    assert_eq!(order.borrow().len(), 300);
    assert!(order.borrow().windows(2).all(|w| w[0] < w[1]));
    gevent::joinall(&gs);
}
