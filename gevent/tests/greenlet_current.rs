//! The current greenlet as gevent sees it (issue 15.3). Follows gevent's
//! `src/gevent/tests/test__greenlet.py`: `TestStr` (a greenlet's name), `TestStuff.test_minimal_id`,
//! `TestStuff.test_wait_error` (`getcurrent().throw(...)` from inside) and `TestUnlink` /
//! `LinksTestCase` (links reached through the greenlet's own handle).

// The glob import must leave the `greenlet` crate's paths alone (`greenlet::Builder`,
// `greenlet::Greenlet`): gevent's module is `gevent::greenlets`.
use gevent::*;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

#[test]
fn glob_import_keeps_the_greenlet_crate_paths() {
    let g: greenlet::Greenlet = greenlet::Builder::new().name("raw").build(|v| v).unwrap();
    assert_eq!(g.switch(5).take::<i32>(), 5);
    let main: greenlet::Greenlet = getcurrent();
    assert!(main.is_main());
}

#[test]
fn getcurrent_name_is_the_gevent_name() {
    // Named before the start: copied to the raw greenlet.
    let g = Greenlet::new(|| getcurrent().name());
    g.set_name("worker-1");
    g.start();
    assert_eq!(g.get().unwrap(), "worker-1");
    // Renamed while it runs.
    let ev = event::Event::new();
    let ev2 = ev.clone();
    let g = spawn(move || {
        ev2.wait();
        getcurrent().name()
    });
    sleep(Duration::ZERO);
    g.set_name("worker-2");
    ev.set();
    assert_eq!(g.get().unwrap(), "worker-2");
    // Unnamed: Greenlet-N, as gevent's repr.
    let g = spawn(|| getcurrent().name());
    let expected = format!("Greenlet-{}", g.minimal_ident());
    assert_eq!(g.get().unwrap(), expected);
}

#[test]
fn current_is_the_greenlets_own_handle() {
    assert!(
        greenlets::current().is_none(),
        "the main greenlet has no gevent object"
    );
    let g = spawn(|| {
        let me = greenlets::current().expect("inside a gevent greenlet");
        (me.name(), me.minimal_ident(), me.started(), me.ready())
    });
    g.set_name("self-aware");
    let (name, ident, started, ready) = g.get().unwrap();
    assert_eq!(name, "self-aware");
    assert_eq!(ident, g.minimal_ident());
    assert!(started && !ready);
    assert_eq!(g.as_ref(), g.as_ref(), "handles of one greenlet are equal");
}

#[test]
fn current_renames_itself_and_links_from_inside() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let g = spawn(move || {
        let me = greenlets::current().unwrap();
        me.set_name("renamed");
        let s2 = s.clone();
        me.link(move |g| s2.borrow_mut().push(format!("link {}", g.name())));
        let dropped = me.link(|_| panic!("unlinked: never called"));
        assert!(me.has_links());
        assert!(me.unlink(dropped));
        getcurrent().name()
    });
    assert_eq!(g.get().unwrap(), "renamed");
    assert_eq!(g.name(), "renamed");
    sleep(Duration::ZERO); // links run on the hub's turn after the death
    assert_eq!(*seen.borrow(), ["link renamed"]);
}

#[test]
fn current_kill_and_throw_from_inside() {
    // test_wait_error: `getcurrent().throw(ExpectedError(...))` from inside fails the greenlet.
    #[derive(Debug)]
    struct ExpectedError(#[allow(dead_code)] &'static str);
    let g = spawn(|| {
        greenlets::current()
            .unwrap()
            .throw(ExpectedError("test_wait_error"));
        unreachable!("throw at the current greenlet unwinds at once")
    });
    g.join();
    assert!(!g.successful());
    assert!(g.exception().unwrap().message().contains("ExpectedError"));
    // A kill from inside ends it as killed (successful, no value).
    let g = spawn(|| {
        greenlets::current().unwrap().kill();
        unreachable!()
    });
    assert_eq!(g.get(), Err(GetError::Killed));
    assert!(g.successful());
}

#[test]
fn raw_and_hub_greenlets_have_no_gevent_object() {
    let found = Rc::new(RefCell::new(None));
    let f = found.clone();
    spawn_raw(move || *f.borrow_mut() = Some(greenlets::current().is_none()));
    sleep(Duration::ZERO);
    assert_eq!(*found.borrow(), Some(true));
    // From a link (run by the hub).
    let g = spawn(|| ());
    let f = found.clone();
    g.link(move |_| *f.borrow_mut() = Some(greenlets::current().is_none()));
    *found.borrow_mut() = None;
    g.join();
    sleep(Duration::ZERO);
    assert_eq!(*found.borrow(), Some(true));
}
