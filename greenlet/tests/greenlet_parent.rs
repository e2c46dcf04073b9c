//! Parents: where a greenlet's value or panic goes, reparenting, and cycles.
//!
//! Ported from python-greenlet `src/greenlet/tests/test_greenlet.py` (the scenarios, not the code):
//! - `TestGreenlet.test_exception` (error propagation to a reassigned parent)
//!   -> `panic_propagates_to_reassigned_parent`
//! - `TestGreenlet.test_send_exception`              -> `panic_of_child_reaches_its_parent`
//! - `TestGreenletSetParentErrors.test_trivial_cycle` -> `parent_cycle_with_self_rejected`
//! - `TestGreenletSetParentErrors.test_deeper_cycle`  -> `deeper_parent_cycle_rejected`
//! - `TestGreenletSetParentErrors.test_trivial_cycle_main` -> `main_greenlet_cannot_get_a_parent`
//! - `TestGreenletSetParentErrors.test_main_greenlet_parent_is_none`,
//!   `TestGreenlet.test_parent_equals_None`          -> `parents_by_construction`
//!
//! and from `src/greenlet/tests/test_extension_interface.py`:
//! - `CAPITests.test_setparent` (reparent a suspended greenlet, then its next switch to its parent
//!   goes to the new one)                           -> `reparented_suspended_greenlet_switches_to_new_parent`
//!
//! Also: a panic with a message reaches the parent's `switch` as the very same payload
//! (greenlet: "the exception is raised in the parent"), `panic_payload_reaches_parent_unchanged`.

use std::cell::RefCell;
use std::panic::{catch_unwind, panic_any, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;

use greenlet::{getcurrent, panic_message, Builder, Error, Greenlet, Value};

fn parent_switch<V: 'static>(v: V) -> Value {
    // Bound first: a `getcurrent()` temporary would live across the switch and keep this
    // greenlet alive from its own stack (see greenlet_dealloc.rs).
    let parent = getcurrent()
        .parent()
        .expect("called inside a child greenlet");
    parent.switch(v)
}

#[derive(Debug, PartialEq)]
struct SomeError;

/// What a greenlet's pending switch raised: its panic message.
type Seen = Rc<RefCell<Vec<String>>>;

/// `fmain` of test_greenlet.py: wait in a switch to the parent; record whatever is raised there and
/// re-raise it; if resumed normally, raise SomeError.
fn fmain(seen: Seen) -> impl FnOnce(Value) -> Value {
    move |_| {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| parent_switch(()))) {
            let name = if p.is::<SomeError>() {
                "SomeError".to_string()
            } else {
                panic_message(&*p)
            };
            seen.borrow_mut().push(name);
            resume_unwind(p);
        }
        panic_any(SomeError)
    }
}

#[test]
fn panic_propagates_to_reassigned_parent() {
    let seen: Seen = Rc::default();
    let g1 = Greenlet::new(fmain(seen.clone()));
    let g2 = Greenlet::new(fmain(seen.clone()));
    g1.switch(());
    g2.switch(());
    g2.set_parent(&g1).unwrap();
    assert_eq!(g2.parent(), Some(g1.clone()));
    assert!(seen.borrow().is_empty());

    // g2 raises SomeError; it goes to g1 (its new parent), which records it at its pending switch
    // and re-raises it; from g1 it reaches main.
    let err = catch_unwind(AssertUnwindSafe(|| g2.switch(()))).unwrap_err();
    assert!(err.is::<SomeError>());
    assert_eq!(*seen.borrow(), vec!["SomeError".to_string()]);
    assert!(g1.is_dead() && g2.is_dead());

    // Both dead: switching to g2 goes to g2 -> g1 -> main, which is us.
    assert!(g2.switch(()).is_none());
    assert_eq!(g2.switch(25).take::<i32>(), 25);
    assert_eq!(seen.borrow().len(), 1);
}

#[test]
fn panic_of_child_reaches_its_parent() {
    let seen: Seen = Rc::default();
    let g1 = Greenlet::new(fmain(seen.clone()));
    g1.switch(());
    // send_exception(g1, KeyError): a crasher whose parent is g1.
    let crasher = Greenlet::with_parent(|_| panic_any(String::from("KeyError")), &g1);
    let err = catch_unwind(AssertUnwindSafe(|| crasher.switch(()))).unwrap_err();
    assert_eq!(panic_message(&*err), "KeyError");
    assert_eq!(*seen.borrow(), vec!["KeyError".to_string()]);
}

#[test]
fn panic_payload_reaches_parent_unchanged() {
    // A formatted message.
    let g = Greenlet::new(|v| panic!("boom {}", v.take::<i32>()));
    let err = catch_unwind(AssertUnwindSafe(|| g.switch(42))).unwrap_err();
    assert_eq!(
        err.downcast::<String>().ok().map(|b| *b).as_deref(),
        Some("boom 42")
    );
    assert!(g.is_dead());

    // A static message.
    let g = Greenlet::new(|_| panic!("static boom"));
    let err = catch_unwind(AssertUnwindSafe(|| g.switch(()))).unwrap_err();
    assert_eq!(err.downcast::<&str>().ok().map(|b| *b), Some("static boom"));

    // A custom payload, after the greenlet was suspended once; the parent gets the very same box.
    #[derive(Debug, PartialEq)]
    struct Custom(u32, &'static str);
    let g = Greenlet::new(|_| {
        parent_switch(());
        panic_any(Custom(7, "seven"))
    });
    g.switch(());
    let err = catch_unwind(AssertUnwindSafe(|| g.switch(()))).unwrap_err();
    assert_eq!(
        err.downcast::<Custom>().ok().map(|b| *b),
        Some(Custom(7, "seven"))
    );

    // The panic unwinds the parent from its pending switch, whatever greenlet the parent is.
    let outer = Greenlet::new(|_| {
        let child = Greenlet::new(|_| panic!("from the child"));
        match catch_unwind(AssertUnwindSafe(|| child.switch(()))) {
            Ok(_) => Value::new("no panic?"),
            Err(p) => Value::new(format!("outer caught: {}", panic_message(&*p))),
        }
    });
    assert_eq!(
        outer.switch(()).take::<String>(),
        "outer caught: from the child"
    );
}

#[test]
fn parent_cycle_with_self_rejected() {
    let g = Greenlet::new(|v| v);
    assert_eq!(g.set_parent(&g), Err(Error::CyclicParent));
    assert_eq!(Error::CyclicParent.to_string(), "cyclic parent chain");
    // Unchanged.
    assert_eq!(g.parent(), Some(getcurrent()));
}

#[test]
fn deeper_parent_cycle_rejected() {
    let g1 = Greenlet::new(|v| v);
    let g2 = Greenlet::new(|v| v);
    let g3 = Greenlet::new(|v| v);
    g1.set_parent(&g2).unwrap();
    g2.set_parent(&g3).unwrap();
    assert_eq!(g3.set_parent(&g1), Err(Error::CyclicParent));
    assert_eq!(g3.set_parent(&g2), Err(Error::CyclicParent));
    assert_eq!(g3.parent(), Some(getcurrent()));
    // Reparenting along the chain (no cycle) is fine.
    g1.set_parent(&g3).unwrap();
    assert_eq!(g1.parent(), Some(g3.clone()));
    // A running greenlet cannot become the parent of one of its ancestors either.
    let (a, b) = (g1.clone(), g2.clone());
    let inner = Greenlet::new(move |_| {
        let me = getcurrent();
        let main = me.parent().unwrap();
        let r1 = main.set_parent(&me);
        let r2 = b.set_parent(&a); // g1's parent is g3, not g2: fine
        Value::new((r1, r2))
    });
    assert_eq!(
        inner
            .switch(())
            .take::<(Result<(), Error>, Result<(), Error>)>(),
        (Err(Error::MainHasNoParent), Ok(()))
    );
}

#[test]
fn main_greenlet_cannot_get_a_parent() {
    let main = getcurrent();
    assert_eq!(main.set_parent(&main), Err(Error::MainHasNoParent));
    let g = Greenlet::new(|v| v);
    assert_eq!(main.set_parent(&g), Err(Error::MainHasNoParent));
    assert_eq!(main.parent(), None);
}

#[test]
fn parents_by_construction() {
    let main = getcurrent();
    assert_eq!(main.parent(), None);
    let p = Greenlet::new(|v| v);
    assert_eq!(p.parent(), Some(main.clone()));
    let c = Greenlet::with_parent(|v| v, &p);
    assert_eq!(c.parent(), Some(p.clone()));
    let b = Builder::new().parent(&c).build(|v| v).unwrap();
    assert_eq!(b.parent(), Some(c.clone()));
    // The value of a finished grandchild climbs to the first live ancestor that takes it:
    // b finishes into c (unstarted: it starts with b's value, and returns it) into p, then main.
    assert_eq!(b.switch("up").take::<&str>(), "up");
    assert!(b.is_dead() && c.is_dead() && p.is_dead());
}

#[test]
fn reparented_suspended_greenlet_switches_to_new_parent() {
    // foo starts bar (so bar's parent is foo) and hands bar to main; main makes itself bar's
    // parent and switches to it: bar's next switch to its parent comes to main.
    let foo = Greenlet::new(|_| {
        let bar = Greenlet::new(|_| {
            parent_switch("bar paused");
            // Must now go to main, not foo.
            parent_switch("bar to its new parent");
            unreachable!("never resumed again");
        });
        assert_eq!(bar.switch(()).take::<&str>(), "bar paused");
        parent_switch(bar.clone());
        unreachable!("foo is never resumed");
    });
    let bar = foo.switch(()).take::<Greenlet>();
    assert!(bar.is_active() && foo.is_active());
    bar.set_parent(&getcurrent()).unwrap();
    assert_eq!(bar.switch(()).take::<&str>(), "bar to its new parent");
    // foo's and bar's pending switches never return: both are killed when dropped.
    drop(foo);
    assert!(bar.is_active());
    drop(bar);
}
