//! `throw`: raising GreenletExit or a custom payload inside a greenlet.
//!
//! Ported from python-greenlet `src/greenlet/tests/test_throw.py` (the scenarios, not the code):
//! - `ThrowTests.test_class`                          -> `throw_custom_payload_caught_inside`
//! - `ThrowTests.test_val`                            -> `throw_payload_value_is_preserved`
//! - `ThrowTests.test_kill`                           -> `throw_kills_and_returns_greenlet_exit`,
//!   `throw_into_dead_greenlet_returns_greenlet_exit`
//! - `ThrowTests.test_throw_goes_to_original_parent`  -> `throw_goes_to_original_parent_*`
//! - `ThrowTests.test_non_traceback_param` (throw into `getcurrent()`) -> `throw_into_current_unwinds_caller`
//!
//! and from `src/greenlet/tests/test_greenlet.py`:
//! - `TestGreenlet.test_throw_no_run_raises_AttributeError` -> `throw_into_unbound_greenlet`
//! - `TestGreenlet.test_send_exception` (uncaught payload continues in the parent, which sees it
//!   at its pending switch)                          -> `uncaught_throw_continues_in_parent`
//! - `TestGreenlet.test_throw_no_run_raises_AttributeError` (adapted: an unbound greenlet that is
//!   thrown into dies without needing a run)        -> `throw_into_unbound_greenlet`
//! - greenlet's documented "throw into an unstarted greenlet: it dies without running"
//!   -> `throw_into_unstarted_*`

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, panic_any, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;

use greenlet::{getcurrent, panic_message, Greenlet, GreenletExit, Value};

fn parent_switch<V: 'static>(v: V) -> Value {
    // Bound first: a `getcurrent()` temporary would live across the switch and keep this
    // greenlet alive from its own stack (see greenlet_dealloc.rs).
    let parent = getcurrent()
        .parent()
        .expect("called inside a child greenlet");
    parent.switch(v)
}

/// Python's `RuntimeError(msg)`.
#[derive(Debug, PartialEq)]
struct RuntimeError(&'static str);

/// Python's `IndexError`.
#[derive(Debug, PartialEq)]
struct IndexError;

/// `try: body() except T: handler(payload)`, re-raising anything else.
fn catching<T: 'static, R>(body: impl FnOnce() -> R, handler: impl FnOnce(T) -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(p) => match p.downcast::<T>() {
            Ok(t) => handler(*t),
            Err(p) => resume_unwind(p),
        },
    }
}

#[test]
fn throw_custom_payload_caught_inside() {
    let g = Greenlet::new(|_| {
        catching(
            || {
                parent_switch("ok");
                parent_switch("fail");
            },
            |_: RuntimeError| {
                parent_switch("ok");
            },
        );
        Value::none()
    });
    assert_eq!(g.switch(()).take::<&str>(), "ok");
    assert_eq!(g.throw_with(RuntimeError("")).take::<&str>(), "ok");
    assert!(
        g.is_active(),
        "the greenlet caught the payload and carried on"
    );
    assert!(g.switch(()).is_none());
    assert!(g.is_dead());
}

#[test]
fn throw_payload_value_is_preserved() {
    let f = |_: Value| {
        catching(
            || {
                parent_switch("ok");
            },
            |e: RuntimeError| {
                if e.0 == "ciao" {
                    parent_switch("ok");
                } else {
                    parent_switch("fail");
                }
            },
        );
        Value::none()
    };
    let g = Greenlet::new(f);
    assert_eq!(g.switch(()).take::<&str>(), "ok");
    assert_eq!(g.throw_with(RuntimeError("ciao")).take::<&str>(), "ok");

    // A boxed payload, as catch_unwind hands it out (the `throw(type, value)` form).
    let g = Greenlet::new(f);
    assert_eq!(g.switch(()).take::<&str>(), "ok");
    let boxed: Box<dyn std::any::Any + Send> = Box::new(RuntimeError("ciao"));
    assert_eq!(g.throw_payload(boxed).take::<&str>(), "ok");
}

#[test]
fn throw_kills_and_returns_greenlet_exit() {
    let g = Greenlet::new(|_| {
        parent_switch("ok");
        parent_switch("fail");
        Value::none()
    });
    assert_eq!(g.switch(()).take::<&str>(), "ok");
    let res = g.throw();
    assert_eq!(res.downcast::<GreenletExit>().ok(), Some(GreenletExit));
    assert!(g.is_dead());
}

#[test]
fn throw_into_dead_greenlet_returns_greenlet_exit() {
    // test_kill: `res = g.throw()  # immediately eaten by the already-dead greenlet`;
    // `isinstance(res, GreenletExit)`. greenlet's throw_greenlet turns GreenletExit into a regular
    // return when the target is dead.
    let g = Greenlet::new(|_| {
        parent_switch("ok");
        Value::none()
    });
    g.switch(());
    assert!(g.throw().is::<GreenletExit>());
    assert!(g.is_dead());
    let res = catch_unwind(AssertUnwindSafe(|| g.throw()));
    match res {
        Ok(v) => assert!(v.is::<GreenletExit>()),
        Err(p) => panic!(
            "throw() into a dead greenlet unwound the caller with {}",
            panic_message(&*p)
        ),
    }
}

#[test]
fn throw_custom_payload_into_dead_greenlet_reaches_parent() {
    // Not GreenletExit: the payload continues in the dead greenlet's parent (here, the caller).
    let g = Greenlet::new(|v| v);
    g.switch(());
    let err = catch_unwind(AssertUnwindSafe(|| g.throw_with(IndexError))).unwrap_err();
    assert_eq!(
        err.downcast::<IndexError>().ok().map(|b| *b),
        Some(IndexError)
    );
}

/// `f1` of test_throw_goes_to_original_parent.
fn f1(main: Greenlet) -> impl FnOnce(Value) -> Value {
    move |_| {
        catching(
            || {
                main.switch("f1 ready to catch");
                Value::new("normal exit")
            },
            |_: IndexError| Value::new("caught"),
        )
    }
}

/// `f2` of test_throw_goes_to_original_parent.
fn f2(main: Greenlet) -> impl FnOnce(Value) -> Value {
    move |_| {
        main.switch("from f2");
        Value::none()
    }
}

#[test]
fn throw_goes_to_original_parent_both_unstarted() {
    let main = getcurrent();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g1 = Greenlet::new(move |v| {
        r.set(true);
        f1(main)(v)
    });
    let g2 = Greenlet::with_parent(f2(getcurrent()), &g1);
    let err = catch_unwind(AssertUnwindSafe(|| g2.throw_with(IndexError))).unwrap_err();
    assert!(err.is::<IndexError>());
    assert!(g2.is_dead());
    assert!(g1.is_dead());
    assert!(
        !ran.get(),
        "g1 received the payload before starting: its run never ran"
    );
}

#[test]
fn throw_goes_to_original_parent_parent_started() {
    let g1 = Greenlet::new(f1(getcurrent()));
    let g2 = Greenlet::with_parent(f2(getcurrent()), &g1);
    assert_eq!(g1.switch(()).take::<&str>(), "f1 ready to catch");
    assert_eq!(g2.throw_with(IndexError).take::<&str>(), "caught");
    assert!(g2.is_dead());
    assert!(g1.is_dead());
}

#[test]
fn throw_goes_to_original_parent_both_started() {
    let g1 = Greenlet::new(f1(getcurrent()));
    let g2 = Greenlet::with_parent(f2(getcurrent()), &g1);
    assert_eq!(g1.switch(()).take::<&str>(), "f1 ready to catch");
    assert_eq!(g2.switch(()).take::<&str>(), "from f2");
    assert_eq!(g2.throw_with(IndexError).take::<&str>(), "caught");
    assert!(g2.is_dead());
    assert!(g1.is_dead());
}

#[test]
fn throw_into_unstarted_with_greenlet_exit_runs_nothing() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = Greenlet::new(move |v| {
        r.set(true);
        v
    });
    assert!(!g.is_started());
    // GreenletExit is returned to the parent (the caller), not raised.
    assert_eq!(
        g.throw().downcast::<GreenletExit>().ok(),
        Some(GreenletExit)
    );
    assert!(g.is_dead());
    assert!(
        g.is_started(),
        "dead counts as started (greenlet: started and not active)"
    );
    assert!(!g.is_active());
    assert!(!ran.get());
}

#[test]
fn throw_into_unstarted_with_custom_payload_reaches_parent() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = Greenlet::new(move |v| {
        r.set(true);
        v
    });
    let err = catch_unwind(AssertUnwindSafe(|| g.throw_with(RuntimeError("early")))).unwrap_err();
    assert_eq!(
        err.downcast::<RuntimeError>().ok().map(|b| *b),
        Some(RuntimeError("early"))
    );
    assert!(g.is_dead());
    assert!(!ran.get());
}

/// greenlet's `test_throw_no_run_raises_AttributeError` (issue 15.1): a throw into a greenlet with
/// no `run` fails in the thrower like a switch, and the greenlet stays unstarted.
#[test]
fn throw_into_unbound_greenlet() {
    let g = Greenlet::unbound();
    for _ in 0..2 {
        let err = catch_unwind(AssertUnwindSafe(|| g.throw())).unwrap_err();
        let msg = panic_message(&*err);
        assert!(msg.contains("has no run"), "{msg}");
        assert!(!g.is_started() && !g.is_dead());
    }
    g.set_run(|_| unreachable!("killed before it runs"))
        .unwrap();
    assert!(g.throw().is::<GreenletExit>());
    assert!(g.is_dead());
}

#[test]
fn throw_into_current_unwinds_caller() {
    let main = getcurrent();
    let err = catch_unwind(AssertUnwindSafe(|| main.throw_with(RuntimeError("self")))).unwrap_err();
    assert_eq!(
        err.downcast::<RuntimeError>().ok().map(|b| *b),
        Some(RuntimeError("self"))
    );
    // Inside a greenlet: throwing into itself unwinds it right there, like a panic.
    let g = Greenlet::new(|_| {
        catching(
            || {
                getcurrent().throw_with(IndexError);
                Value::new("not reached")
            },
            |_: IndexError| Value::new("caught own throw"),
        )
    });
    assert_eq!(g.switch(()).take::<&str>(), "caught own throw");
}

#[test]
fn uncaught_throw_continues_in_parent() {
    // fmain of test_greenlet.py: record what arrives at the pending switch and re-raise it.
    let seen: Rc<RefCell<Vec<String>>> = Rc::default();
    let s = seen.clone();
    let g1 = Greenlet::new(move |_| {
        match catch_unwind(AssertUnwindSafe(|| parent_switch(()))) {
            Ok(_) => {}
            Err(p) => {
                s.borrow_mut().push(panic_message(&*p));
                resume_unwind(p);
            }
        }
        panic_any(RuntimeError("SomeError"));
    });
    g1.switch(());
    // send_exception: a greenlet whose parent is g1 raises; g1 receives it at its pending switch.
    let crasher = Greenlet::with_parent(|_| panic_any(String::from("KeyError")), &g1);
    let err = catch_unwind(AssertUnwindSafe(|| crasher.switch(()))).unwrap_err();
    assert_eq!(
        err.downcast::<String>().ok().map(|b| *b).as_deref(),
        Some("KeyError")
    );
    assert_eq!(*seen.borrow(), vec!["KeyError".to_string()]);
    assert!(g1.is_dead() && crasher.is_dead());

    // The same with throw_with instead of a crashing child.
    let s = seen.clone();
    let g = Greenlet::new(move |_| {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| parent_switch(()))) {
            s.borrow_mut().push(panic_message(&*p));
            resume_unwind(p);
        }
        Value::none()
    });
    g.switch(());
    let err = catch_unwind(AssertUnwindSafe(|| g.throw_with("thrown"))).unwrap_err();
    assert_eq!(err.downcast::<&str>().ok().map(|b| *b), Some("thrown"));
    assert_eq!(seen.borrow().last().map(String::as_str), Some("thrown"));
}

#[test]
fn greenlet_can_catch_greenlet_exit_and_keep_running() {
    let g = Greenlet::new(|_| {
        let first = catching(
            || {
                parent_switch("waiting");
                "not killed"
            },
            |_: GreenletExit| "caught exit",
        );
        parent_switch(first);
        Value::new("finished normally")
    });
    g.switch(());
    assert_eq!(g.throw().take::<&str>(), "caught exit");
    assert!(g.is_active());
    assert_eq!(g.switch(()).take::<&str>(), "finished normally");
}

#[test]
fn destructors_run_when_thrown_payload_unwinds() {
    struct Guard(Rc<Cell<u32>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let g = Greenlet::new(move |_| {
        let _a = Guard(d.clone());
        let _b = Guard(d);
        parent_switch(());
        Value::none()
    });
    g.switch(());
    assert_eq!(drops.get(), 0);
    let err = catch_unwind(AssertUnwindSafe(|| g.throw_with(IndexError))).unwrap_err();
    assert!(err.is::<IndexError>());
    assert_eq!(drops.get(), 2);
}
