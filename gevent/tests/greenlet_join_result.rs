//! Results that are not `Clone` (issue 15.2): `Greenlet::join_result` moves the outcome out, as
//! gevent's `Greenlet.get()` returns it. Follows gevent's `src/gevent/tests/test__greenlet.py`
//! `TestBasic.test_simple_exit` / `test_error_exit` (value, exception and `successful()` after the
//! greenlet ended) and `TestGet` (get after a kill), with a result type that has no `Clone`.

use gevent::GetError;

/// Not `Clone`, like `io::Result<Output>` or a connection.
#[derive(Debug, PartialEq)]
struct Conn(u32);

#[test]
fn join_result_moves_the_value_out() {
    let g = gevent::spawn(|| {
        gevent::sleep(std::time::Duration::from_millis(1));
        Conn(7)
    });
    let other = g.clone();
    assert_eq!(g.join_result(), Ok(Conn(7)));
    // test_simple_exit: still ready and successful; the value itself has left.
    assert!(other.ready() && other.successful());
    assert!(other.exception().is_none());
    assert_eq!(other.take_result(), Err(GetError::Taken));
    assert!(other.take_value().is_none());
}

#[test]
fn join_result_tells_panicked_from_killed() {
    // test_error_exit: the failure is the panic message.
    let g = gevent::spawn(|| -> Conn { panic!("refused") });
    match g.join_result() {
        Err(GetError::Panicked(f)) => assert_eq!(f.message(), "refused"),
        other => panic!("expected Panicked, got {other:?}"),
    }
    // TestGet after a kill: killed, not "no value".
    let g = gevent::spawn(|| {
        gevent::sleep(std::time::Duration::from_secs(10));
        Conn(1)
    });
    gevent::sleep(std::time::Duration::ZERO);
    g.kill();
    assert_eq!(g.join_result(), Err(GetError::Killed));
}

#[test]
fn take_result_does_not_wait() {
    let g = gevent::spawn(|| Conn(3));
    assert_eq!(g.take_result(), Err(GetError::NotReady));
    g.join();
    assert_eq!(g.take_result(), Ok(Conn(3)));
    assert_eq!(g.take_result(), Err(GetError::Taken));
}

#[test]
fn get_on_a_non_clone_result_points_to_join_result() {
    // The compiler error itself is checked by the `compile_fail` doc test on `CloneResult`; here the
    // Clone path still works as before.
    let g = gevent::spawn(|| String::from("v"));
    assert_eq!(g.get(), Ok("v".to_owned()));
    assert_eq!(g.get(), Ok("v".to_owned()));
    assert_eq!(g.value().as_deref(), Some("v"));
}
