//! Ported from gevent's `src/gevent/tests/test__joinall.py` (gevent 26.x): joinall with the same
//! greenlet twice; and the joinall timeout/count variants of test__greenlet.py's TestJoinAll.

use std::time::Duration;

#[test]
fn joinall_with_duplicates() {
    let a = gevent::spawn(|| ());
    let b = gevent::spawn(|| ());
    gevent::joinall([&a, &b, &a]);
    assert!(a.ready() && b.ready());
}

#[test]
fn joinall_timeout_counts_finished() {
    let a = gevent::spawn(|| ());
    let b = gevent::spawn(|| gevent::sleep(Duration::from_secs(10)));
    assert_eq!(
        gevent::joinall_timeout([&a, &b], Duration::from_millis(10)),
        1
    );
    b.kill();
    assert_eq!(gevent::joinall_timeout([&a, &b], Duration::ZERO), 2);
}
