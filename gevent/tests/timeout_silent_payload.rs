//! `Timeout` that ends the block silently and with a user payload (issue 15.4). Follows gevent's
//! `src/gevent/tests/test__timeout.py`: `test_context_manager_false` (`Timeout(s, False)` ends the
//! block silently), `test_expires_str` / `test_expires_non_exception` (a custom exception value is
//! what is raised), `test_with_timeout` (`timeout_value`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq)]
struct TooSlow(&'static str);

#[test]
fn silent_timeout_ends_the_block() {
    let t = Instant::now();
    let r = gevent::with_timeout_silent(Duration::from_millis(20), || {
        gevent::sleep(Duration::from_secs(10));
        "finished"
    });
    assert_eq!(r, None);
    assert!(t.elapsed() < Duration::from_secs(5));
    // Not expired: the value.
    assert_eq!(
        gevent::with_timeout_silent(Duration::from_secs(5), || 7),
        Some(7)
    );
}

#[test]
fn timeout_value_is_returned() {
    let v = gevent::with_timeout_or(Duration::from_millis(10), -1, || {
        gevent::sleep(Duration::from_secs(10));
        1
    });
    assert_eq!(v, -1);
    assert_eq!(gevent::with_timeout_or(Duration::from_secs(5), -1, || 1), 1);
}

#[test]
fn payload_timeout_raises_the_payload() {
    let t = gevent::Timeout::with_payload(Duration::from_millis(10), TooSlow("too slow"));
    t.start();
    let p = catch_unwind(AssertUnwindSafe(|| gevent::sleep(Duration::from_secs(10)))).unwrap_err();
    assert_eq!(p.downcast_ref::<TooSlow>(), Some(&TooSlow("too slow")));
    assert!(!t.is_mine(&*p), "not its TimeoutError");
    // Restart (test__timeout's _check_expires starts it twice): the payload again.
    t.start();
    let p = catch_unwind(AssertUnwindSafe(|| gevent::sleep(Duration::from_secs(10)))).unwrap_err();
    assert_eq!(p.downcast_ref::<TooSlow>(), Some(&TooSlow("too slow")));
    t.cancel();
    // Uncaught in a greenlet: it fails with the payload, named by its type.
    let g = gevent::spawn(|| {
        let _t = gevent::Timeout::with_payload(Duration::from_millis(10), TooSlow("db"));
        _t.start();
        gevent::sleep(Duration::from_secs(10));
    });
    g.join();
    assert!(g.exception().unwrap().message().ends_with("TooSlow"));
    // with_timeout does not catch a payload timeout (it only catches its own).
    let r = catch_unwind(AssertUnwindSafe(|| {
        gevent::with_timeout(Duration::from_secs(5), || {
            let _t = gevent::Timeout::with_payload(Duration::from_millis(10), TooSlow("inner"));
            _t.start();
            gevent::sleep(Duration::from_secs(10));
        })
    }));
    assert!(r.unwrap_err().is::<TooSlow>());
}
