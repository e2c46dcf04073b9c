//! `rawlink` / `link` / `unlink` on `Event` and `AsyncResult` (issue 15.4). Follows gevent's
//! `src/gevent/tests/test__event.py` `TestAsyncResult.test_link` (rawlink / unlink, unlinking twice
//! is harmless), `TestAsyncResultAsLinkTarget.test_set` / `test_set_exception` (an AsyncResult fed
//! by a greenlet's links, read with `with_timeout(..., timeout_value=)`), and test__greenlet.py's
//! `TestStuff.test_multiple_listeners_error_unlink_AsyncResult_rawlink` (a link that unlinks
//! another).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use gevent::event::{AsyncResult, Event};

#[test]
fn event_rawlink_runs_in_the_hub_each_time_it_is_set() {
    let ev = Event::new();
    let seen = Rc::new(Cell::new(0));
    let s = seen.clone();
    let id = ev.rawlink(move |ev| {
        assert!(ev.is_set());
        s.set(s.get() + 1);
    });
    assert_eq!(ev.link_count(), 1);
    ev.set();
    assert_eq!(
        seen.get(),
        0,
        "links run on the hub's turn, not inside set()"
    );
    gevent::sleep(Duration::ZERO);
    assert_eq!(seen.get(), 1);
    ev.set(); // already set: not "becoming set" again
    gevent::sleep(Duration::ZERO);
    assert_eq!(seen.get(), 1);
    ev.clear();
    ev.set();
    gevent::sleep(Duration::ZERO);
    assert_eq!(seen.get(), 2);
    assert!(ev.unlink(id));
    assert!(!ev.unlink(id), "unlinking twice is harmless");
    ev.clear();
    ev.set();
    gevent::sleep(Duration::ZERO);
    assert_eq!(seen.get(), 2);
}

#[test]
fn rawlink_on_a_ready_object_fires_at_once() {
    let ev = Event::new();
    ev.set();
    let seen = Rc::new(Cell::new(false));
    let s = seen.clone();
    ev.rawlink(move |_| s.set(true));
    gevent::sleep(Duration::ZERO);
    assert!(seen.get());

    let r: AsyncResult<i32> = AsyncResult::new();
    r.set(3);
    let got = Rc::new(Cell::new(0));
    let g = got.clone();
    r.rawlink(move |r| g.set(r.peek().unwrap()));
    gevent::sleep(Duration::ZERO);
    assert_eq!(got.get(), 3);
}

#[test]
fn event_link_runs_in_a_greenlet_and_may_block() {
    let ev = Event::new();
    let done = Event::new();
    let d = done.clone();
    ev.link(move |_| {
        gevent::sleep(Duration::from_millis(1)); // would panic in the hub
        d.set();
    });
    gevent::spawn({
        let ev = ev.clone();
        move || ev.set()
    });
    assert!(done.wait_timeout(Duration::from_secs(5)));
}

#[test]
fn a_link_that_unlinks_another() {
    let r: AsyncResult<i32> = AsyncResult::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let second = Rc::new(Cell::new(None));
    let (l, s2) = (log.clone(), second.clone());
    r.rawlink(move |r| {
        l.borrow_mut().push("first");
        r.unlink(s2.get().unwrap());
    });
    let l = log.clone();
    second.set(Some(r.rawlink(move |_| l.borrow_mut().push("second"))));
    r.set(1);
    gevent::sleep(Duration::ZERO);
    assert_eq!(*log.borrow(), ["first"]);
}

#[test]
fn async_result_as_link_target() {
    // test_set
    let g = gevent::spawn(|| 1);
    let (s1, s2, s3) = (AsyncResult::new(), AsyncResult::new(), AsyncResult::new());
    let a = s1.clone();
    g.link(move |g| a.set_from(g));
    let b = s2.clone();
    g.link_value(move |g| b.set_from(g));
    let c = s3.clone();
    g.link_exception(move |g| c.set_from(g));
    assert_eq!(s1.get(), Ok(1));
    assert_eq!(s2.get(), Ok(1));
    let x = gevent::with_timeout_or(
        Duration::from_millis(20),
        Err(gevent::GetError::NotReady),
        || s3.get(),
    );
    assert_eq!(x, Err(gevent::GetError::NotReady));

    // test_set_exception, and the results' own links see it
    let g = gevent::spawn(|| -> i32 { panic!("TestAsyncResultAsLinkTarget.test_set_exception") });
    let (s1, s3) = (AsyncResult::new(), AsyncResult::new());
    let failed = Rc::new(Cell::new(false));
    let f = failed.clone();
    s1.rawlink(move |r: &AsyncResult<i32>| f.set(r.exception().is_some()));
    let a = s1.clone();
    g.link(move |g| a.set_from(g));
    let c = s3.clone();
    g.link_exception(move |g| c.set_from(g));
    assert!(matches!(s1.get(), Err(gevent::GetError::Panicked(_))));
    assert!(matches!(s3.get(), Err(gevent::GetError::Panicked(_))));
    gevent::sleep(Duration::ZERO);
    assert!(failed.get());
}
