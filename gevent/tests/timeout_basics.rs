//! Ported from gevent's `src/gevent/tests/test__timeout.py` (gevent 26.x), plus the issue's
//! nested-Timeout cases.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use gevent::{with_timeout, Timeout};

const SHOULD_EXPIRE: Duration = Duration::from_millis(10);
const SHOULD_NOT_EXPIRE: Duration = Duration::from_millis(200);

/// Test.test_expires: a started timeout interrupts a wait, and can be restarted.
#[test]
fn expires_and_restarts() {
    let t = Timeout::new(SHOULD_EXPIRE);
    for _ in 0..2 {
        t.start();
        let p =
            catch_unwind(AssertUnwindSafe(|| gevent::sleep(SHOULD_NOT_EXPIRE * 10))).unwrap_err();
        assert!(t.is_mine(&*p));
        assert!(!t.pending());
    }
}

/// test_cancel: a cancelled timeout never fires.
#[test]
fn cancel() {
    let t = Timeout::start_new(SHOULD_EXPIRE);
    t.cancel();
    gevent::sleep(SHOULD_EXPIRE * 2);
    assert!(!t.pending());
}

/// test_with_timeout.
#[test]
fn with_timeout_variants() {
    assert!(with_timeout(SHOULD_EXPIRE, || gevent::sleep(SHOULD_NOT_EXPIRE)).is_err());
    assert_eq!(
        with_timeout(SHOULD_NOT_EXPIRE, || gevent::sleep(SHOULD_EXPIRE)),
        Ok(())
    );
}

/// A Timeout firing inside a nested Timeout: the inner one fires first and only the inner
/// `with_timeout` sees it; the outer one goes on and fires later.
#[test]
fn inner_fires_inside_outer() {
    let start = Instant::now();
    let outer = with_timeout(Duration::from_millis(500), || {
        let inner = with_timeout(Duration::from_millis(10), || {
            gevent::sleep(Duration::from_secs(10))
        });
        assert!(inner.is_err());
        assert!(start.elapsed() < Duration::from_millis(500));
        gevent::sleep(Duration::from_secs(10));
    });
    assert!(outer.is_err());
    assert!(start.elapsed() >= Duration::from_millis(500));
}

/// The outer Timeout firing while an inner one is pending: the inner `with_timeout` must not
/// swallow it; it reaches the outer one.
#[test]
fn outer_fires_through_inner() {
    let outer = with_timeout(Duration::from_millis(10), || {
        let inner = catch_unwind(AssertUnwindSafe(|| {
            with_timeout(Duration::from_secs(10), || {
                gevent::sleep(Duration::from_secs(10))
            })
        }));
        match inner {
            Ok(_) => panic!("the inner with_timeout returned instead of letting the outer through"),
            Err(p) => resume_unwind(p),
        }
    });
    assert!(outer.is_err());
}

/// A timeout inside a spawned greenlet kills only what it guards.
#[test]
fn timeout_in_greenlet() {
    let g = gevent::spawn(|| {
        with_timeout(SHOULD_EXPIRE, || gevent::sleep(Duration::from_secs(10))).is_err()
    });
    assert_eq!(g.get(), Ok(true));
}
