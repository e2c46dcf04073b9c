//! A kill or Timeout that lands while a greenlet is still unwinding from an earlier one (inside a
//! destructor that itself waits) must not abort the process: a panic inside a destructor run by an
//! unwind is fatal in Rust, so such a payload is kept and raised at the greenlet's next normal wait.
//! Scenario after gevent's src/gevent/tests/test__greenlet.py (kill during a `finally` that sleeps)
//! and test__timeout.py (a timeout firing in cleanup code).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

struct SleepsOnDrop(Rc<Cell<u32>>);

impl Drop for SleepsOnDrop {
    fn drop(&mut self) {
        gevent::sleep(Duration::from_millis(100));
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn timeout_firing_inside_a_killed_greenlets_sleeping_destructor() {
    let cleaned = Rc::new(Cell::new(0));
    let c = cleaned.clone();
    let g = gevent::spawn(move || {
        // Armed before the kill, fires (at 30 ms) while the kill's unwind sleeps in the destructor.
        let _t = gevent::Timeout::start_new(Duration::from_millis(30));
        let _guard = SleepsOnDrop(c);
        gevent::sleep(Duration::from_secs(30));
    });
    gevent::sleep(Duration::from_millis(5)); // let it start and park
    let t = Instant::now();
    g.kill();
    assert!(g.ready());
    assert_eq!(cleaned.get(), 1, "the destructor ran to its end");
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn timeout_inside_a_timed_out_greenlets_sleeping_destructor() {
    let cleaned = Rc::new(Cell::new(0));
    let c = cleaned.clone();
    let r = gevent::with_timeout(Duration::from_millis(20), move || {
        let _outer = gevent::Timeout::start_new(Duration::from_millis(40));
        let _guard = SleepsOnDrop(c);
        gevent::sleep(Duration::from_secs(30));
    });
    assert!(r.is_err(), "the first timeout ends the call");
    assert_eq!(cleaned.get(), 1);
    // The second timeout (40 ms) landed during the destructor and was kept; it was cancelled when
    // its guard dropped, so nothing more is raised here.
    gevent::sleep(Duration::from_millis(60));
}
