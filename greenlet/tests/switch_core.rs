//! The switching core's own edge cases (not ported: they exercise how this crate keeps greenlets
//! alive and carries messages, see the module docs of `greenlet::greenlet`).
//!
//! - A greenlet switched to by a finishing child may be referenced by nothing but that child's
//!   `parent`; it must stay alive while it runs even if it cuts that reference itself, and be unwound
//!   once it is suspended with no handle left.
//! - A tracer that panics as a fresh greenlet arrives kills that greenlet before `run`; the panic
//!   reaches its parent.
//! - Values of every shape (zero-sized, with drop glue, large) cross switches intact and are
//!   dropped exactly once; thrown payloads too.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use greenlet::{getcurrent, panic_message, settrace, Event, Greenlet, Value};

/// Counts its drops.
struct Guard(Rc<Cell<u32>>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn parent_kept_alive_by_nothing_but_the_finishing_child() {
    let main = getcurrent();
    let drops = Rc::new(Cell::new(0));
    let child_slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let p = {
        let (main, drops, child_slot) = (main.clone(), drops.clone(), child_slot.clone());
        Greenlet::new(move |_| {
            let _guard = Guard(drops);
            // A child whose parent is this greenlet.
            let child = Greenlet::new(|v| v);
            *child_slot.borrow_mut() = Some(child.clone());
            main.switch(());
            // Resumed by the child finishing. Cut the child's reference to us: nothing else holds
            // us now but the switching machinery.
            child.set_parent(&main).unwrap();
            drop(child);
            let buf = vec![7u8; 4096]; // use the heap and our stack while unreferenced
            assert_eq!(buf.iter().map(|&b| b as usize).sum::<usize>(), 7 * 4096);
            main.switch(("p ran", buf.len()));
            unreachable!("nobody switches back to p");
        })
    };
    p.switch(());
    // Only the child's `parent` holds p now.
    drop(p);
    assert_eq!(drops.get(), 0, "p is still referenced by its child");
    let child = child_slot.borrow_mut().take().unwrap();
    let back = child.switch(7);
    assert_eq!(back.take::<(&str, usize)>(), ("p ran", 4096));
    // p switched away with no handle left: it was unwound (its guard dropped), not leaked.
    assert_eq!(drops.get(), 1);
    assert!(child.is_dead());
}

#[test]
fn finished_child_of_a_non_main_parent_hands_over_cleanly() {
    // a -> b (child of a) finishes into a, a finishes into main, in a loop: every stack goes back.
    let before = greenlet::stack::stats();
    for i in 0..1000 {
        let a = Greenlet::new(move |v: Value| {
            let b = Greenlet::new(|v: Value| Value::new(v.take::<i32>() * 2));
            let r = b.switch(v.take::<i32>() + 1).take::<i32>();
            assert!(b.is_dead());
            Value::new(r)
        });
        assert_eq!(a.switch(i).take::<i32>(), (i + 1) * 2);
    }
    let after = greenlet::stack::stats();
    assert!(after.maps - before.maps <= 2, "{before:?} -> {after:?}");
}

#[test]
fn panicking_tracer_on_arrival_kills_the_fresh_greenlet() {
    let ran = Rc::new(Cell::new(false));
    let g = {
        let ran = ran.clone();
        Greenlet::new(move |v| {
            ran.set(true);
            v
        })
    };
    settrace(Some(Box::new(|e: &Event| {
        if let Event::Switch { target, .. } = e {
            if !target.is_main() {
                panic!("tracer refuses");
            }
        }
    })));
    let r = catch_unwind(AssertUnwindSafe(|| g.switch(1)));
    // The tracer uninstalled itself by panicking.
    assert!(settrace(None).is_none());
    let payload = r.expect_err("the panic reaches the parent");
    assert_eq!(panic_message(&*payload), "tracer refuses");
    assert!(!ran.get(), "run never started");
    assert!(g.is_dead());
}

#[test]
fn values_of_every_shape_cross_and_drop_once() {
    let drops = Rc::new(Cell::new(0));
    let main = getcurrent();
    let g = {
        let main = main.clone();
        Greenlet::new(move |mut v: Value| {
            // Echo everything back until a `bool`.
            while !v.is::<bool>() {
                v = main.switch(v);
            }
            v
        })
    };
    assert!(g.switch(()).is_none());
    assert_eq!(g.switch(5u8).take::<u8>(), 5);
    assert_eq!(g.switch([9u64; 64]).take::<[u64; 64]>(), [9u64; 64]);
    assert_eq!(g.switch(String::from("x")).take::<String>(), "x");
    struct Zst;
    assert!(g.switch(Zst).is::<Zst>());
    for _ in 0..10 {
        drop(g.switch(Guard(drops.clone())));
    }
    assert_eq!(drops.get(), 10);
    assert!(g.switch(true).take::<bool>());
    assert!(g.is_dead());
}

/// Counts its drops; `Send`, as thrown payloads must be.
struct SendGuard(Arc<AtomicU32>);

impl Drop for SendGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn thrown_payloads_cross_and_drop_once() {
    let drops = Arc::new(AtomicU32::new(0));
    let main = getcurrent();
    let g = {
        let main = main.clone();
        Greenlet::new(move |_| loop {
            match catch_unwind(AssertUnwindSafe(|| main.switch(()))) {
                Ok(v) if v.is::<bool>() => return v,
                Ok(_) => {}
                Err(p) => {
                    assert!(p.is::<SendGuard>());
                    drop(p);
                }
            }
        })
    };
    g.switch(());
    for _ in 0..10 {
        g.throw_with(SendGuard(drops.clone()));
    }
    assert_eq!(drops.load(Ordering::Relaxed), 10);
    g.switch(true);
    assert!(g.is_dead());
}

#[inline(never)]
fn capture_here() -> String {
    std::backtrace::Backtrace::force_capture().to_string()
}

#[inline(never)]
fn switcher_marker_frame(g: &Greenlet) -> Value {
    g.switch(())
}

#[test]
fn backtraces_cross_into_a_live_switcher_and_stop_after_a_finished_one() {
    // Switched to by this test's frame: the backtrace continues into it.
    let g = Greenlet::new(|_| Value::new(capture_here()));
    let bt = switcher_marker_frame(&g).take::<String>();
    assert!(bt.contains("capture_here"), "{bt}");
    assert!(bt.contains("switcher_marker_frame"), "{bt}");
    // Switched to by a finishing child, whose stack is gone: the backtrace stops at the root frame
    // (it must not walk into the dead stack).
    let g = Greenlet::new(|_| {
        Greenlet::new(|v| v).switch(());
        Value::new(capture_here())
    });
    let bt = switcher_marker_frame(&g).take::<String>();
    assert!(bt.contains("capture_here"), "{bt}");
    assert!(!bt.contains("switcher_marker_frame"), "{bt}");
}

/// Panics in its destructor (unless already unwinding).
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.0);
        }
    }
}

// From the review of the own switch (rev2 probes): nothing may unwind out of a greenlet's entry
// function, which is `extern "C"` (that would abort the process).
#[test]
fn throw_into_unstarted_whose_run_panics_when_dropped() {
    let p = PanicOnDrop("drop of run's capture");
    let g = Greenlet::new(move |v| {
        let _keep = &p;
        v
    });
    let r = catch_unwind(AssertUnwindSafe(|| g.throw_with("thrown")));
    let payload = r.expect_err("the destructor's panic reaches the thrower");
    assert_eq!(panic_message(&*payload), "drop of run's capture");
    assert!(g.is_dead());
}

#[test]
fn tracer_panicking_on_arrival_when_run_panics_when_dropped() {
    let p = PanicOnDrop("drop of run's capture (tracer)");
    let g = Greenlet::new(move |v| {
        let _keep = &p;
        v
    });
    settrace(Some(Box::new(|e: &Event| {
        if let Event::Switch { target, .. } = e {
            if !target.is_main() {
                panic!("tracer");
            }
        }
    })));
    let r = catch_unwind(AssertUnwindSafe(|| g.switch(())));
    settrace(None);
    let payload = r.expect_err("a panic reaches the parent");
    assert_eq!(panic_message(&*payload), "drop of run's capture (tracer)");
    assert!(g.is_dead());
}

// Found by LeakSanitizer (.ci/sanitize): the tracer's payload, superseded by the panic of run's
// destructor, was forgotten instead of dropped.
#[test]
fn superseded_panic_payload_is_dropped() {
    let drops = Arc::new(AtomicU32::new(0));
    let p = PanicOnDrop("drop of run's capture (superseding)");
    let g = Greenlet::new(move |v| {
        let _keep = &p;
        v
    });
    let d = drops.clone();
    settrace(Some(Box::new(move |e: &Event| {
        if let Event::Switch { target, .. } = e {
            if !target.is_main() {
                std::panic::panic_any(SendGuard(d.clone()));
            }
        }
    })));
    let r = catch_unwind(AssertUnwindSafe(|| g.switch(())));
    settrace(None);
    let payload = r.expect_err("a panic reaches the parent");
    assert_eq!(
        panic_message(&*payload),
        "drop of run's capture (superseding)"
    );
    assert_eq!(
        drops.load(Ordering::Relaxed),
        1,
        "the tracer's payload was dropped"
    );
}

#[test]
fn tracer_can_uninstall_itself() {
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    settrace(Some(Box::new(move |_: &Event| {
        c.set(c.get() + 1);
        settrace(None);
    })));
    Greenlet::new(|v| v).switch(());
    Greenlet::new(|v| v).switch(());
    assert_eq!(calls.get(), 1);
    assert!(settrace(None).is_none(), "it stayed uninstalled");
}

#[test]
fn tracer_can_replace_itself() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s1 = seen.clone();
    settrace(Some(Box::new(move |_: &Event| {
        s1.borrow_mut().push("first");
        let s2 = s1.clone();
        settrace(Some(Box::new(move |_: &Event| {
            s2.borrow_mut().push("second")
        })));
    })));
    Greenlet::new(|v| v).switch(());
    settrace(None);
    assert_eq!(*seen.borrow(), ["first", "second"]);
}

#[test]
fn resurrected_greenlet_does_not_get_a_parent_cycle_back() {
    // From the review: a greenlet that survives the kill of its drop gets its old parent back, unless
    // it made that parent its own descendant meanwhile. Run on a thread: a cycle would hang.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let main = getcurrent();
        let p = Greenlet::new(|v| v); // never started
        let v = {
            let (main, p2) = (main.clone(), p.clone());
            Greenlet::with_parent(
                move |_| {
                    // Killed by main's drop (main is our parent meanwhile): refuse, adopt p.
                    let _ = catch_unwind(AssertUnwindSafe(|| main.switch(())));
                    p2.set_parent(&getcurrent()).unwrap(); // p -> v -> main
                    main.switch(());
                    unreachable!("nobody switches back");
                },
                &p,
            )
        };
        v.switch(());
        drop(v); // the last handle: killed, and it survives
        let v = p.parent().expect("v adopted p");
        assert!(v.is_active(), "it survived the kill");
        // Restoring p as v's parent would have made a cycle: the dropper stays its parent.
        assert!(Greenlet::ptr_eq(&v.parent().unwrap(), &main));
        // p's parent chain ends: making p another greenlet's parent terminates.
        let q = Greenlet::new(|v| v);
        q.set_parent(&p).unwrap();
        drop(v);
        tx.send(()).unwrap();
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("no parent cycle: set_parent returned");
}
