//! The embedding interface: what greenlet's C API offers another native module, through this
//! crate's Rust API.
//!
//! Ported from python-greenlet `src/greenlet/tests/test_extension_interface.py` (with
//! `_test_extension.c`), the scenarios, not the code:
//! - `CAPITests.test_switch` (`PyGreenlet_Switch`)        -> `switch_returns_run_value`
//! - `CAPITests.test_switch_kwargs`                       -> `switch_with_compound_argument`
//! - `CAPITests.test_getcurrent` (`PyGreenlet_GetCurrent`: a valid, active greenlet)
//!   -> `getcurrent_is_active`
//! - `CAPITests.test_new_greenlet` (`PyGreenlet_New` + switch) -> `new_greenlet_and_switch`
//! - `CAPITests.test_setparent` (`PyGreenlet_SetParent` on a suspended greenlet, then switch)
//!   -> `setparent_then_switch`
//! - `CAPITests.test_throw` (`PyGreenlet_Throw` with a ValueError("take that sucka!") caught
//!   inside) -> `throw_custom_payload_caught_inside`
//! - `CAPITests.test_leaks` (results of those calls hold no extra references) -> `results_not_retained`

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use greenlet::{getcurrent, Greenlet, GreenletExit, Value};

fn parent_switch<V: 'static>(v: V) -> Value {
    let parent = getcurrent()
        .parent()
        .expect("called inside a child greenlet");
    parent.switch(v)
}

#[test]
fn switch_returns_run_value() {
    assert_eq!(
        Greenlet::new(|_| Value::new(50)).switch(()).take::<i32>(),
        50
    );
}

#[test]
fn switch_with_compound_argument() {
    let g = Greenlet::new(|v| {
        let (x, y) = v.take::<(i32, i32)>();
        Value::new(x * y)
    });
    assert_eq!(g.switch((3, 2)).take::<i32>(), 6);
}

#[test]
fn getcurrent_is_active() {
    let g = getcurrent();
    assert!(g.is_active() && g.is_current());
    let inside = Greenlet::new(|_| {
        let g = getcurrent();
        Value::new(g.is_active() && g.is_current() && !g.is_main())
    });
    assert!(inside.switch(()).take::<bool>());
}

#[test]
fn new_greenlet_and_switch() {
    // The greenlet handle is dropped right after the switch: it is dead, nothing to kill.
    let r = {
        let g = Greenlet::new(|_| Value::new(-15));
        g.switch(())
    };
    assert_eq!(r.take::<i32>(), -15);
}

#[test]
fn setparent_then_switch() {
    // foo starts bar and hands it to us; we make ourselves bar's parent and switch to it: bar's
    // next switch to its parent comes here, not to foo.
    let foo = Greenlet::new(|_| {
        let bar = Greenlet::new(|_| {
            parent_switch(());
            parent_switch("bar to new parent");
            panic!("should never have reached this code");
        });
        bar.switch(());
        parent_switch(bar.clone());
        panic!("should never reach this code");
    });
    let foo_child = foo.switch(()).take::<Greenlet>();
    foo_child.set_parent(&getcurrent()).unwrap();
    assert_eq!(foo_child.switch(()).take::<&str>(), "bar to new parent");
    assert!(foo_child.is_active());
    // Neither is ever resumed normally; killing them unwinds them without reaching the panics.
    assert!(foo_child.throw().is::<GreenletExit>());
    assert!(foo.throw().is::<GreenletExit>());
}

#[test]
fn throw_custom_payload_caught_inside() {
    #[derive(Debug)]
    struct ValueError(&'static str);
    let seen: Rc<RefCell<Vec<String>>> = Rc::default();
    let s = seen.clone();
    let g = Greenlet::new(move |_| {
        match catch_unwind(AssertUnwindSafe(|| parent_switch(()))) {
            Ok(_) => {}
            Err(p) => match p.downcast::<ValueError>() {
                Ok(e) => s.borrow_mut().push(e.0.to_string()),
                Err(p) if p.is::<GreenletExit>() => panic!("GreenletExit instead of ValueError"),
                Err(p) => std::panic::resume_unwind(p),
            },
        }
        Value::none()
    });
    g.switch(());
    assert!(g.throw_with(ValueError("take that sucka!")).is_none());
    assert_eq!(*seen.borrow(), ["take that sucka!"]);
    assert!(g.is_dead());
}

#[test]
fn results_not_retained() {
    let obj = Rc::new(());
    for _ in 0..100 {
        let o = obj.clone();
        let r = Greenlet::new(move |_| Value::new(o)).switch(());
        assert_eq!(Rc::strong_count(&obj), 2, "only the result holds it");
        drop(r);
        let o = obj.clone();
        let r = Greenlet::new(|v| v).switch(o);
        assert_eq!(Rc::strong_count(&obj), 2);
        drop(r);
    }
    assert_eq!(Rc::strong_count(&obj), 1);
}
