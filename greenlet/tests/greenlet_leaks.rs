//! Nothing passed through a switch, or held by a finished greenlet, is kept alive.
//!
//! Ported from python-greenlet `src/greenlet/tests/test_leaks.py` (the scenarios, not the code):
//! - `TestLeaks.test_arg_refs`   -> `switch_args_are_not_leaked` (strong counts of an `Rc` argument)
//! - `TestLeaks.test_kwarg_refs` -> `switch_args_are_not_leaked` (a second, compound argument)
//! - `TestLeaks.test_threaded_leak`, `test_threaded_adv_leak` (a thread's main and finished
//!   greenlets are freed with the thread) -> `thread_exit_frees_its_finished_greenlets`
//!
//! and from `src/greenlet/tests/test_gc.py`:
//! - `TestGC.test_dead_circular_ref` (a dead greenlet that returned itself)
//!   -> `dead_greenlet_returning_itself_is_freed`
//!
//! and from `src/greenlet/tests/test_greenlet.py`:
//! - `TestGreenlet.test_dealloc_switch_args_not_lost` (values in flight are delivered, not lost)
//!   -> `values_in_flight_are_delivered_or_dropped_once`

use std::cell::Cell;
use std::rc::{Rc, Weak};

use greenlet::{getcurrent, Greenlet, GreenletExit, Value};

fn parent_switch<V: 'static>(v: V) -> Value {
    let parent = getcurrent()
        .parent()
        .expect("called inside a child greenlet");
    parent.switch(v)
}

/// Counts drops; `Value`s holding one are dropped exactly once, wherever they end up.
struct Counted(Rc<Cell<u32>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn switch_args_are_not_leaked() {
    let args = Rc::new(("a", "b", "c"));
    let kwargs = Rc::new(vec![("k", 1)]);
    // Echoes whatever it is given back to its parent, forever.
    let g = Greenlet::new(|v| {
        let mut v = v;
        loop {
            v = parent_switch(v);
        }
    });
    for _ in 0..100 {
        let back = g.switch((args.clone(), kwargs.clone()));
        let (a, k) = back.take::<(Rc<(&str, &str, &str)>, Rc<Vec<(&str, i32)>>)>();
        assert_eq!(Rc::strong_count(&args), 2);
        assert!(Rc::ptr_eq(&a, &args) && Rc::ptr_eq(&k, &kwargs));
    }
    assert_eq!(Rc::strong_count(&args), 1);
    assert_eq!(Rc::strong_count(&kwargs), 1);
    // Values sent and ignored by the receiver are dropped as well.
    let ignoring = Greenlet::new(|first| {
        drop(first); // (a `_` parameter would keep it until run returns, which is never)
        loop {
            parent_switch(());
        }
    });
    for _ in 0..100 {
        assert!(ignoring.switch(args.clone()).is_none());
    }
    assert_eq!(Rc::strong_count(&args), 1);
    assert!(g.throw().is::<GreenletExit>());
    assert!(ignoring.throw().is::<GreenletExit>());
}

#[test]
fn values_in_flight_are_delivered_or_dropped_once() {
    let drops = Rc::new(Cell::new(0));
    // Delivered to a greenlet that drops it.
    let g = Greenlet::new(|v| {
        drop(v);
        parent_switch(());
        Value::none()
    });
    g.switch(Counted(drops.clone()));
    assert_eq!(drops.get(), 1);
    // Delivered to a suspended greenlet, which never looks at it.
    g.switch(Counted(drops.clone()));
    assert_eq!(drops.get(), 2);
    assert!(g.is_dead());
    // Sent to a dead greenlet: it goes to the parent chain (us) and comes back.
    let back = g.switch(Counted(drops.clone()));
    assert_eq!(drops.get(), 2);
    assert!(back.is::<Counted>());
    drop(back);
    assert_eq!(drops.get(), 3);
    // Returned by run to a parent that ignores it.
    let g = Greenlet::new({
        let d = drops.clone();
        move |_| Value::new(Counted(d))
    });
    g.switch(());
    assert_eq!(drops.get(), 4);
    // The first argument of a run that passes it on.
    let relay = Greenlet::new(parent_switch::<Value>);
    let back = relay.switch(Counted(drops.clone()));
    assert_eq!(drops.get(), 4);
    drop(back);
    assert_eq!(drops.get(), 5);
    drop(relay); // suspended: killed, nothing more to drop
    assert_eq!(drops.get(), 5);
}

#[test]
fn dead_greenlet_releases_everything_it_held() {
    let held = Rc::new("held by the greenlet");
    let captured = held.clone();
    let on_stack = held.clone();
    let g = Greenlet::new(move |v| {
        let local = on_stack;
        let got = parent_switch(());
        drop(got);
        let _ = (&captured, &local, v);
        Value::none()
    });
    g.switch(held.clone());
    assert_eq!(
        Rc::strong_count(&held),
        4,
        "closure, stack local, and the run argument"
    );
    g.switch(held.clone());
    assert!(g.is_dead());
    // The handle is still alive, but nothing it held is.
    assert_eq!(Rc::strong_count(&held), 1);
}

#[test]
fn suspended_greenlet_releases_everything_when_killed() {
    let held = Rc::new(0);
    let (a, b) = (held.clone(), held.clone());
    let g = Greenlet::new(move |_| {
        let _local = a;
        parent_switch(());
        let _ = &b;
        Value::none()
    });
    g.switch(());
    assert_eq!(Rc::strong_count(&held), 3);
    assert!(g.throw().is::<GreenletExit>());
    assert_eq!(Rc::strong_count(&held), 1);
}

#[test]
fn unstarted_greenlet_releases_its_run_when_dropped() {
    let held = Rc::new(0);
    let h = held.clone();
    let g = Greenlet::new(move |_| Value::new(*h));
    assert_eq!(Rc::strong_count(&held), 2);
    drop(g);
    assert_eq!(Rc::strong_count(&held), 1);
}

#[test]
fn dead_unstarted_greenlet_releases_its_run() {
    // greenlet clears `run` when the greenlet dies, also when it dies of a throw before starting
    // (inner_bootstrap clears _run_callable on both paths).
    let held = Rc::new(0);
    let h = held.clone();
    let g = Greenlet::new(move |_| Value::new(*h));
    assert!(g.throw().is::<GreenletExit>());
    assert!(g.is_dead());
    assert_eq!(
        Rc::strong_count(&held),
        1,
        "the dead greenlet still holds its never-run closure"
    );
}

#[test]
fn dead_greenlet_returning_itself_is_freed() {
    // A greenlet returns a handle to itself; once that handle is dropped, it is gone.
    let marker = Rc::new(());
    let weak: Weak<()> = Rc::downgrade(&marker);
    let g = Greenlet::new(move |_| {
        let _m = marker;
        Value::new(getcurrent())
    });
    let same = g.switch(()).take::<Greenlet>();
    assert_eq!(same, g);
    assert!(same.is_dead());
    drop((g, same));
    assert!(weak.upgrade().is_none());
}

#[test]
fn thread_exit_frees_its_finished_greenlets() {
    // Counted across threads, so with an atomic.
    let drops = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    struct SendCounted(std::sync::Arc<std::sync::atomic::AtomicU32>);
    impl Drop for SendCounted {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let d = drops.clone();
    std::thread::spawn(move || {
        // The thread's main greenlet and two finished greenlets holding values.
        let main = getcurrent();
        assert!(main.is_main());
        let keep: Vec<Greenlet> = (0..2)
            .map(|_| {
                let c = SendCounted(d.clone());
                let g = Greenlet::new(move |_| {
                    let _c = c;
                    Value::none()
                });
                g.switch(());
                g
            })
            .collect();
        assert!(keep.iter().all(Greenlet::is_dead));
        // A value the thread's main greenlet still holds in a thread-local at exit.
        thread_local! {
            static HELD: std::cell::RefCell<Option<Value>> = const { std::cell::RefCell::new(None) };
        }
        let d2 = d.clone();
        HELD.with(|h| *h.borrow_mut() = Some(Value::new(SendCounted(d2))));
    })
    .join()
    .unwrap();
    assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 3);
}
