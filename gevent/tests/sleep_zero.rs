//! Ported from gevent's `src/gevent/tests/test__sleep0.py` (gevent 26.x): a loop of `sleep(0)` is
//! interruptible by a Timeout; and `sleep(0)` yields to every other ready greenlet once.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

#[test]
fn sleep_zero_loop_is_interruptible() {
    let r = gevent::with_timeout(Duration::from_millis(10), || loop {
        gevent::sleep(Duration::ZERO);
    });
    assert!(r.is_err());
}

#[test]
fn sleep_zero_yields_to_each_ready_greenlet_once() {
    let log = Rc::new(RefCell::new(Vec::new()));
    for i in 0..3 {
        let l = log.clone();
        gevent::spawn(move || {
            l.borrow_mut().push(i);
            gevent::sleep(Duration::ZERO);
            l.borrow_mut().push(i + 10);
        });
    }
    gevent::sleep(Duration::ZERO);
    assert_eq!(*log.borrow(), [0, 1, 2]);
    gevent::sleep(Duration::ZERO);
    assert_eq!(*log.borrow(), [0, 1, 2, 10, 11, 12]);
}
