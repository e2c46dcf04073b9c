//! gevent's module-level and Greenlet API (issue 15.4). Each test names the upstream test in
//! gevent's `src/gevent/tests/test__greenlet.py` it follows.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use gevent::{Greenlet, JoinAll};

#[derive(Debug)]
struct ExpectedError(#[allow(dead_code)] &'static str);

/// TestStuff.test_wait_noerrors: joinall(raise_error=True) with no failure; the values are there.
#[test]
fn joinall_raise_error_without_errors() {
    let x = gevent::spawn(|| 1);
    let y = gevent::spawn(|| 2);
    let z = gevent::spawn(|| 3);
    let done = JoinAll::new().raise_error().run([&x, &y, &z]).unwrap();
    assert_eq!(done.len(), 3);
    assert_eq!(
        [x.value(), y.value(), z.value()],
        [Some(1), Some(2), Some(3)]
    );
}

/// TestStuff.test_wait_error: the failure of `y` (thrown from inside) is raised by joinall,
/// while `x` still runs.
#[test]
fn joinall_raise_error_returns_the_failure() {
    let x = gevent::spawn(|| {
        gevent::sleep(Duration::from_millis(20));
        1
    });
    let y = gevent::spawn(|| {
        gevent::greenlets::current()
            .unwrap()
            .throw(ExpectedError("test_wait_error"));
        0
    });
    let e = JoinAll::new().raise_error().run([&x, &y]).unwrap_err();
    assert!(e.message().contains("ExpectedError"), "{e}");
    assert!(!x.ready(), "joinall returned at the first failure");
    let e = JoinAll::new().raise_error().run([&y]).unwrap_err();
    assert!(e.message().contains("ExpectedError"));
    x.join();
}

/// TestStuff.test_joinall_exception_order: the earliest failure (in time) is the one raised.
#[test]
fn joinall_raise_error_earliest_failure_first() {
    let a = gevent::spawn(|| -> () {
        gevent::sleep(Duration::from_millis(50));
        panic!("first")
    });
    let b = gevent::spawn(|| -> () { panic!("second") });
    let e = JoinAll::new().raise_error().run([&a, &b]).unwrap_err();
    assert_eq!(e.message(), "second");
    gevent::joinall([&a, &b]);
    // Both dead before the call: still the one that died first, not the first given.
    let e = JoinAll::new().raise_error().run([&a, &b]).unwrap_err();
    assert_eq!(e.message(), "second");
    let done = JoinAll::new().run([&a, &b]).unwrap();
    assert!(std::ptr::eq(done[0], &b) && std::ptr::eq(done[1], &a));
}

/// TestStuff.test_joinall_count_raise_error: without raise_error, count still works, and the
/// finished greenlets are returned in the order they finished.
#[test]
fn joinall_count_without_raise_error() {
    let slow = gevent::spawn(|| -> () { gevent::sleep(Duration::from_secs(10)) });
    let fails = gevent::spawn(|| -> () { panic!("count") });
    let done = JoinAll::new().count(1).run([&slow, &fails]).unwrap();
    assert_eq!(done.len(), 1);
    assert!(std::ptr::eq(done[0], &fails));
    // With a timeout: only those finished by then.
    let done = JoinAll::new()
        .timeout(Duration::from_millis(10))
        .run([&slow, &fails])
        .unwrap();
    assert_eq!(done.len(), 1);
    slow.kill();
}

/// gevent's `wait()` with no objects (test__greenlet's TestJoinAll0 / hub.join): runs the loop
/// until nothing is left.
#[test]
fn wait_all_runs_until_nothing_is_left() {
    let n = Rc::new(Cell::new(0));
    let t = Instant::now();
    for i in 0..50 {
        let n = n.clone();
        gevent::spawn(move || {
            gevent::sleep(Duration::from_millis(20 + i % 5));
            n.set(n.get() + 1);
        });
    }
    gevent::wait_all();
    assert_eq!(n.get(), 50);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "the sleeps overlapped"
    );
}

/// TestKill (block / non-block, killall), assertKilled: a greenlet killed before it starts never
/// runs, is dead and not started, its links run; a second kill does not hurt.
#[test]
fn killed_before_start_is_not_started() {
    for (block, killall) in [(true, false), (false, false), (true, true), (false, true)] {
        let result = Rc::new(Cell::new(false));
        let linked = Rc::new(Cell::new(0));
        let r = result.clone();
        let g = Greenlet::new(move || r.set(true));
        let l = linked.clone();
        g.link(move |_| l.set(l.get() + 1));
        g.start(); // TestKillAfterStart: scheduled, not run yet
        let kill = |g: &Greenlet<()>| match (block, killall) {
            (true, false) => g.kill(),
            (false, false) => g.kill_nowait(),
            (true, true) => gevent::killall(std::slice::from_ref(g)),
            (false, true) => gevent::killall_nowait(std::slice::from_ref(g)),
        };
        kill(&g);
        gevent::sleep(Duration::from_millis(5));
        assert!(g.ready() && g.is_dead() && !g.started() && !g.is_alive());
        assert!(g.successful() && g.exception().is_none());
        kill(&g); // kill second time must not hurt
        gevent::sleep(Duration::from_millis(5));
        assert!(!result.get(), "it never ran");
        assert_eq!(linked.get(), 1);
    }
}

/// TestKillWhileRunning with gevent's killall(timeout=): a greenlet that ignores its kill keeps
/// killall_timeout from succeeding; killall_nowait returns at once.
#[test]
fn killall_timeout_and_nowait() {
    let stubborn = gevent::spawn(|| {
        for _ in 0..3 {
            let _ = std::panic::catch_unwind(|| gevent::sleep(Duration::from_secs(10)));
        }
    });
    let plain = gevent::spawn(|| gevent::sleep(Duration::from_secs(10)));
    gevent::sleep(Duration::ZERO);
    let gs = [stubborn.clone(), plain.clone()];
    let t = Instant::now();
    assert!(!gevent::killall_timeout(&gs, Duration::from_millis(30)));
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(plain.ready() && !stubborn.ready());
    gevent::killall_nowait(&gs);
    assert!(!stubborn.ready(), "nowait does not wait");
    assert!(gevent::killall_timeout(&gs, Duration::from_secs(5)));
    assert!(stubborn.ready());
}

/// TestUnlink / LinksTestCase: has_links, unlink_all; throw with a payload.
#[test]
fn has_links_unlink_all_and_throw() {
    let calls = Rc::new(RefCell::new(Vec::new()));
    let g = gevent::spawn(|| gevent::sleep(Duration::from_secs(10)));
    assert!(!g.has_links());
    let c = calls.clone();
    g.link(move |_| c.borrow_mut().push("link"));
    let c = calls.clone();
    g.link_exception(move |_| c.borrow_mut().push("exception"));
    assert!(g.has_links());
    g.unlink_all();
    assert!(!g.has_links());
    let c = calls.clone();
    g.link_exception(move |g| {
        c.borrow_mut()
            .push(if g.successful() { "?" } else { "exception" })
    });
    gevent::sleep(Duration::ZERO);
    g.throw(ExpectedError("thrown"));
    assert!(!g.ready(), "throw does not wait");
    g.join();
    gevent::sleep(Duration::ZERO);
    assert!(g.exception().unwrap().message().contains("ExpectedError"));
    assert_eq!(*calls.borrow(), ["exception"]);
    // Thrown before it starts: it never runs, and fails with the payload.
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = gevent::spawn(move || r.set(true));
    g.throw(ExpectedError("early"));
    assert!(g.ready() && !g.started() && !g.successful());
    gevent::sleep(Duration::ZERO);
    assert!(!ran.get());
}
