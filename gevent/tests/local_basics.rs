//! Ported from gevent's `src/gevent/tests/test__local.py` (gevent 26.x; the attribute/descriptor
//! cases are Python-object mechanics with no Rust counterpart): per-greenlet values, and values
//! freed when their greenlet dies even while handles to it remain (gevent issue 387) or when the
//! `Local` is dropped in a running greenlet (issue 981).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use gevent::local::Local;

/// A value that records its drop.
struct Sentinel(Rc<Cell<usize>>);
impl Drop for Sentinel {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// test_local_opts_not_subclassed / test_objects: each greenlet sees its own value.
#[test]
fn values_are_per_greenlet() {
    let l: Local<String> = Local::default();
    l.set("main".into());
    let gs: Vec<_> = (0..3)
        .map(|i| {
            let l = l.clone();
            gevent::spawn(move || {
                assert_eq!(l.get(), "", "a new greenlet starts from init()");
                l.set(format!("g{i}"));
                gevent::sleep(Duration::ZERO);
                l.get()
            })
        })
        .collect();
    let got: Vec<_> = gs.iter().map(|g| g.get().unwrap()).collect();
    assert_eq!(got, ["g0", "g1", "g2"]);
    assert_eq!(l.get(), "main");
}

/// test_locals_collected_when_greenlet_dead_but_still_referenced (gevent issue 387).
#[test]
fn values_dropped_when_greenlet_dies() {
    let created = Rc::new(Cell::new(0));
    let dropped = Rc::new(Cell::new(0));
    let (c, d) = (created.clone(), dropped.clone());
    let l = Local::new(move || {
        c.set(c.get() + 1);
        Sentinel(d.clone())
    });
    let gs: Vec<_> = (0..5)
        .map(|_| {
            let l = l.clone();
            gevent::spawn(move || l.with(|_| ()))
        })
        .collect();
    gevent::joinall(&gs); // the handles in `gs` are still alive
    assert_eq!(created.get(), 5);
    assert_eq!(dropped.get(), 5);
    assert!(l.is_empty());
    // Killed greenlets too, and spawn_raw ones.
    let l2 = l.clone();
    let k = gevent::spawn(move || {
        l2.with(|_| ());
        gevent::sleep(Duration::from_secs(100));
    });
    let l3 = l.clone();
    gevent::spawn_raw(move || l3.with(|_| ()));
    gevent::sleep(Duration::ZERO);
    k.kill();
    assert_eq!(dropped.get(), 7);
    assert!(l.is_empty());
}

/// test_locals_collected_when_unreferenced_even_in_running_greenlet (gevent issue 981).
#[test]
fn values_dropped_with_the_local_in_a_running_greenlet() {
    let dropped = Rc::new(Cell::new(0));
    let d = dropped.clone();
    let g = gevent::spawn(move || {
        for _ in 0..1000 {
            let d = d.clone();
            let x = Local::new(move || Sentinel(d.clone()));
            x.with(|_| ());
        }
        d.get()
    });
    assert_eq!(
        g.get(),
        Ok(1000),
        "all dropped while the greenlet still ran"
    );
    assert_eq!(dropped.get(), 1000);
}

/// A value whose destructor sleeps, in a greenlet that is killed: freed, and the kill completes.
#[test]
fn killed_greenlet_with_sleeping_destructor() {
    struct SlowDrop(Rc<RefCell<Vec<&'static str>>>);
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            gevent::sleep(Duration::from_millis(1));
            self.0.borrow_mut().push("dropped");
        }
    }
    let log = Rc::new(RefCell::new(Vec::new()));
    let lg = log.clone();
    let l = Local::new(move || SlowDrop(lg.clone()));
    let l2 = l.clone();
    let g = gevent::spawn(move || {
        l2.with(|_| ());
        gevent::sleep(Duration::from_secs(100));
    });
    gevent::sleep(Duration::ZERO);
    g.kill();
    assert_eq!(*log.borrow(), ["dropped"]);
    assert!(l.is_empty());
}

/// remove / is_set.
#[test]
fn remove_and_is_set() {
    let l = Local::new(|| 5);
    assert!(!l.is_set());
    l.with(|v| *v += 1);
    assert!(l.is_set());
    assert_eq!(l.remove(), Some(6));
    assert_eq!(l.get(), 5);
}
