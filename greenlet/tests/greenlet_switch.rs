//! Basic switching semantics.
//!
//! Ported from python-greenlet `src/greenlet/tests/test_greenlet.py` (the scenarios, not the code):
//! - `TestGreenlet.test_simple`                      -> `simple`
//! - `TestGreenlet.test_two_children`                -> `two_children`
//! - `TestGreenlet.test_two_recursive_children`      -> `two_recursive_children`
//! - `TestGreenlet.test_threads`                     -> `threads_each_have_their_own_greenlets`
//! - `TestGreenlet.test_frame`                       -> `run_return_value_goes_to_parent`
//! - `TestGreenlet.test_switch_no_run_raises_AttributeError` -> `switch_to_greenlet_without_run_panics`
//! - `TestGreenlet.test_parent_return_failure`       -> `finishing_into_parent_without_run_panics_in_caller`
//! - `TestGreenlet.test_parent_equals_None`          -> `default_parent_is_current`
//! - `TestGreenlet.test_run_equals_None`, `TestMainGreenlet.test_greenlet_run`,
//!   `TestGreenlet.test_running_greenlet_has_no_run` -> `run_set_after_creation`,
//!   `set_run_refused_once_started_or_already_set`
//! - `TestGreenlet.test_falling_off_end_switches_to_unstarted_parent_works`
//!   -> `finishing_starts_unstarted_parent`
//! - `TestGreenlet.test_switch_to_dead_greenlet_reparent` -> `switch_to_dead_greenlet_reparented`
//! - `TestGreenletSetParentErrors.test_main_greenlet_parent_is_none` -> `main_greenlet_has_no_parent`
//! - `TestRepr.test_main_while_running`, `test_main_in_background`, `test_initial`, `test_dead`
//!   -> `debug_shows_state`
//! - switch-to-self and switch-to-dead behaviour documented in greenlet's `switch()` docstring
//!   -> `switch_to_self_returns_value`, `switch_to_dead_goes_to_parent`
//! - the seed's eat/play program (`g1.switch("noah")`) -> `interleaved_switching`

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use greenlet::{getcurrent, panic_message, Builder, Error, Greenlet, Value};

/// `greenlet.getcurrent().parent.switch(v)`.
fn parent_switch<V: 'static>(v: V) -> Value {
    // Bound first: a `getcurrent()` temporary would live across the switch and keep this
    // greenlet alive from its own stack (see greenlet_dealloc.rs).
    let parent = getcurrent()
        .parent()
        .expect("called inside a child greenlet");
    parent.switch(v)
}

type Log<T> = Rc<RefCell<Vec<T>>>;

fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

#[test]
fn simple() {
    let lst: Log<i32> = log();
    let l = lst.clone();
    let g = Greenlet::new(move |_| {
        l.borrow_mut().push(1);
        parent_switch(());
        l.borrow_mut().push(3);
        Value::none()
    });
    lst.borrow_mut().push(0);
    g.switch(());
    lst.borrow_mut().push(2);
    g.switch(());
    lst.borrow_mut().push(4);
    assert_eq!(*lst.borrow(), vec![0, 1, 2, 3, 4]);
    assert!(g.is_dead());
}

#[test]
fn two_children() {
    let lst: Log<i32> = log();
    let f = |l: Log<i32>| {
        move |_: Value| {
            l.borrow_mut().push(1);
            parent_switch(());
            l.borrow_mut().extend([1, 1]);
            Value::none()
        }
    };
    let g = Greenlet::new(f(lst.clone()));
    let h = Greenlet::new(f(lst.clone()));
    g.switch(());
    assert_eq!(lst.borrow().len(), 1);
    h.switch(());
    assert_eq!(lst.borrow().len(), 2);
    h.switch(());
    assert_eq!(lst.borrow().len(), 4);
    assert!(h.is_dead());
    assert!(g.is_active());
    g.switch(());
    assert_eq!(lst.borrow().len(), 6);
    assert!(g.is_dead());
}

#[test]
fn two_recursive_children() {
    let lst: Log<&'static str> = log();
    let l = lst.clone();
    let outer = Greenlet::new(move |_| {
        l.borrow_mut().push("a");
        let me = getcurrent();
        let l2 = l.clone();
        let inner = Greenlet::new(move |_| {
            l2.borrow_mut().push("b");
            parent_switch(());
            Value::none()
        });
        // A greenlet created inside a greenlet has it as parent.
        assert_eq!(inner.parent().as_ref(), Some(&me));
        inner.switch(());
        assert!(
            inner.is_active(),
            "inner is suspended, waiting to be resumed"
        );
        l.borrow_mut().push("c");
        Value::new("outer done")
    });
    assert_eq!(outer.switch(()).take::<&str>(), "outer done");
    assert_eq!(*lst.borrow(), vec!["a", "b", "c"]);
    assert!(outer.is_dead());
}

#[test]
fn interleaved_switching() {
    // The seed's program: eat and play hand control to each other three times each.
    let out: Log<String> = log();
    let (g1, g2) = (Greenlet::unbound(), Greenlet::unbound());
    let (o, other) = (out.clone(), g2.clone());
    g1.set_run(move |n: Value| {
        let n = n.take::<&str>();
        for i in 0..3 {
            o.borrow_mut().push(format!("{n} is eat...{i}"));
            other.switch("noah");
        }
        Value::new("eat done")
    })
    .unwrap();
    let (o, other) = (out.clone(), g1.clone());
    g2.set_run(move |n: Value| {
        let n = n.take::<&str>();
        for i in 0..3 {
            o.borrow_mut().push(format!("{n} is paly...{i}"));
            other.switch(());
        }
        Value::new("play done")
    })
    .unwrap();
    // g1 finishes first (its third switch to g2 is answered by g2's third switch back), and its
    // return value reaches its parent: this switch.
    assert_eq!(g1.switch("noah").take::<&str>(), "eat done");
    assert_eq!(
        *out.borrow(),
        [
            "noah is eat...0",
            "noah is paly...0",
            "noah is eat...1",
            "noah is paly...1",
            "noah is eat...2",
            "noah is paly...2",
        ]
    );
    assert!(g1.is_dead());
    assert!(g2.is_active(), "play is still suspended in its last switch");
    // Resuming play: its last switch returns, its loop ends, and its value comes back here.
    assert_eq!(g2.switch(()).take::<&str>(), "play done");
    assert!(g2.is_dead());
}

#[test]
fn switch_to_self_returns_value() {
    let main = getcurrent();
    assert!(main.is_main());
    assert_eq!(main.switch(5).take::<i32>(), 5);
    assert_eq!(getcurrent().switch("self").take::<&str>(), "self");
    let g = Greenlet::new(|v| {
        let me = getcurrent();
        let back = me.switch(v.take::<i32>() * 2);
        Value::new(back.take::<i32>() + 1)
    });
    assert_eq!(g.switch(20).take::<i32>(), 41);
    assert!(g.is_dead());
}

#[test]
fn switch_to_dead_goes_to_parent() {
    let g = Greenlet::new(|v| v);
    assert_eq!(g.switch(1).take::<i32>(), 1);
    assert!(g.is_dead());
    // From main: the parent of the dead g is main, the current greenlet: the value comes straight back.
    assert_eq!(g.switch(2).take::<i32>(), 2);

    // From another greenlet: the value goes to the dead greenlet's parent (main), not back to h.
    let dead = g.clone();
    let h = Greenlet::new(move |_| {
        let back = dead.switch("to main via dead g");
        Value::new(format!("h resumed with {}", back.take::<&str>()))
    });
    assert_eq!(h.switch(()).take::<&str>(), "to main via dead g");
    assert!(h.is_active());
    assert_eq!(h.switch("x").take::<String>(), "h resumed with x");

    // Several dead levels: walk up to the first live ancestor.
    let p = Greenlet::new(|v| {
        let mut v = v;
        loop {
            v = parent_switch(format!("p got {}", v.take::<i32>()));
        }
    });
    p.switch(0);
    let c1 = Greenlet::with_parent(|v| v, &p);
    let c2 = Greenlet::with_parent(|v| v, &c1);
    c1.switch(0);
    assert_eq!(c2.switch(7).take::<String>(), "p got 7"); // c2 dies into dead c1, on to p.
    assert!(c1.is_dead() && c2.is_dead());
    assert_eq!(c2.switch(8).take::<String>(), "p got 8"); // c2 dead -> c1 dead -> p.
    drop(p); // killed (GreenletExit) by dropping the last handle.
}

#[test]
fn run_return_value_goes_to_parent() {
    let g = Greenlet::new(|_| {
        parent_switch("paused");
        Value::new("meaning of life")
    });
    assert!(!g.is_started());
    assert!(!g.is_active());
    assert_eq!(g.switch(()).take::<&str>(), "paused");
    assert!(g.is_started());
    assert!(g.is_active());
    assert!(!g.is_dead());
    assert_eq!(g.switch(()).take::<&str>(), "meaning of life");
    assert!(g.is_started());
    assert!(!g.is_active());
    assert!(g.is_dead());
}

#[test]
fn run_return_goes_to_parent_not_to_resumer() {
    // g's parent is main, but it is started by h: its return value reaches main, and h stays
    // suspended in its switch to g.
    let g = Greenlet::new(|v| Value::new(v.take::<i32>() + 100));
    let g2 = g.clone();
    let h = Greenlet::new(move |_| {
        let got = g2.switch(1);
        Value::new(format!("h got {}", got.take::<&str>()))
    });
    assert_eq!(h.switch(()).take::<i32>(), 101);
    assert!(g.is_dead());
    assert!(h.is_active());
    assert_eq!(h.switch("later").take::<String>(), "h got later");
}

#[test]
fn finishing_starts_unstarted_parent() {
    let parent_never_started = Greenlet::new(|x| Value::new((x.take::<i32>(), 24)));
    let child = Greenlet::with_parent(|_| Value::new(42), &parent_never_started);
    assert_eq!(child.switch(()).take::<(i32, i32)>(), (42, 24));
    assert!(child.is_dead());
    assert!(parent_never_started.is_dead());
}

#[test]
fn switch_to_dead_greenlet_reparented() {
    let seen: Log<i32> = log();
    let s = seen.clone();
    let parent_never_started = Greenlet::new(move |_| {
        s.borrow_mut().push(24);
        Value::none()
    });
    let s = seen.clone();
    let child = Greenlet::new(move |_| {
        s.borrow_mut().push(42);
        Value::none()
    });
    child.switch(());
    assert_eq!(*seen.borrow(), vec![42]);
    child.set_parent(&parent_never_started).unwrap();
    // Switching to the dead child is switching to its (new, unstarted) parent.
    assert!(child.switch(()).is_none());
    assert_eq!(*seen.borrow(), vec![42, 24]);
    assert!(parent_never_started.is_dead());
}

/// Sets its flag when dropped.
struct Flag(Rc<Cell<bool>>);
impl Drop for Flag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// Issue 15.1: as in greenlet, the failed switch leaves the greenlet unstarted (not dead), every
/// later switch fails the same way, and once given a `run` it starts normally.
#[test]
fn switch_to_greenlet_without_run_panics() {
    let g = Greenlet::unbound();
    for _ in 0..3 {
        let err = catch_unwind(AssertUnwindSafe(|| g.switch(()))).expect_err("no run");
        let msg = panic_message(&*err);
        assert!(
            msg.contains("has no run"),
            "message should mention run: {msg}"
        );
        assert!(!g.is_started() && !g.is_dead() && !g.is_active());
    }
    // What the failed switch carried was dropped, in the caller.
    let dropped = Rc::new(Cell::new(false));
    let sent = Flag(dropped.clone());
    catch_unwind(AssertUnwindSafe(|| g.switch(sent))).expect_err("no run");
    assert!(dropped.get());
    g.set_run(|v| Value::new(v.take::<i32>() + 1)).unwrap();
    assert_eq!(g.switch(41).take::<i32>(), 42);
    assert!(g.is_dead());
}

/// greenlet's `test_parent_return_failure`: the child finishes into a parent with no `run`; the
/// failure reaches the next parent up (here the caller), and the parent stays unstarted.
#[test]
fn finishing_into_parent_without_run_panics_in_caller() {
    let g1 = Greenlet::unbound();
    let dropped = Rc::new(Cell::new(false));
    let result = Flag(dropped.clone());
    let g2 = Greenlet::with_parent(move |_| Value::new(result), &g1);
    let err = catch_unwind(AssertUnwindSafe(|| g2.switch(()))).expect_err("g1 has no run");
    assert!(panic_message(&*err).contains("has no run"));
    assert!(g2.is_dead());
    // The result it could not deliver was dropped (by the greenlet the failure reached).
    assert!(dropped.get());
    assert!(!g1.is_started() && !g1.is_dead());
    // Switching to the dead child goes to its parent: the same failure.
    let err = catch_unwind(AssertUnwindSafe(|| g2.switch(()))).expect_err("g1 has no run");
    assert!(panic_message(&*err).contains("has no run"));
    g1.set_run(|v| v).unwrap();
    assert_eq!(g1.switch(7).take::<i32>(), 7);
}

#[test]
fn run_set_after_creation() {
    let g = Greenlet::unbound();
    assert!(!g.is_started());
    g.set_run(|v| Value::new(v.take::<i32>() * 3)).unwrap();
    assert_eq!(g.switch(14).take::<i32>(), 42);
}

#[test]
fn set_run_refused_once_started_or_already_set() {
    // Already has a run.
    let g = Greenlet::new(|v| v);
    assert_eq!(
        g.set_run(|_| Value::new("other")),
        Err(Error::RunAlreadySet)
    );
    // The original run is kept.
    assert_eq!(g.switch(1).take::<i32>(), 1);

    // Given one after creation: a second is refused.
    let g = Greenlet::unbound();
    g.set_run(|_| Value::new("first")).unwrap();
    assert_eq!(
        g.set_run(|_| Value::new("second")),
        Err(Error::RunAlreadySet)
    );
    assert_eq!(g.switch(()).take::<&str>(), "first");

    // Started (suspended): refused; from inside the running greenlet too.
    let g = Greenlet::new(|_| {
        let me = getcurrent();
        let inside = me.set_run(|v| v);
        parent_switch(inside);
        Value::none()
    });
    assert_eq!(
        g.switch(()).take::<Result<(), Error>>(),
        Err(Error::RunAlreadySet)
    );
    assert_eq!(g.set_run(|v| v), Err(Error::RunAlreadySet));
    g.switch(());
    // Dead: refused.
    assert!(g.is_dead());
    assert_eq!(g.set_run(|v| v), Err(Error::RunAlreadySet));
    // Main: refused.
    assert_eq!(getcurrent().set_run(|v| v), Err(Error::RunAlreadySet));
    assert_eq!(
        Error::RunAlreadySet.to_string(),
        "run cannot be set after the greenlet has started or been given a run"
    );
}

#[test]
fn default_parent_is_current() {
    let main = getcurrent();
    let g = Greenlet::new(|v| v);
    assert_eq!(g.parent(), Some(main.clone()));
    let g = Builder::new().build(|v| v).unwrap();
    assert_eq!(g.parent(), Some(main.clone()));
    let inner_parent = Greenlet::new(|_| {
        let me = getcurrent();
        let child = Greenlet::new(|v| v);
        Value::new(child.parent() == Some(me))
    });
    assert!(inner_parent.switch(()).take::<bool>());
}

#[test]
fn main_greenlet_has_no_parent() {
    let main = getcurrent();
    assert!(main.is_main());
    assert_eq!(main.parent(), None);
    assert!(main.is_started());
    assert!(main.is_active());
    assert!(!main.is_dead());
    assert!(main.is_current());
    assert_eq!(main.id(), 0);
    // getcurrent() inside a greenlet is that greenlet; main is not current there.
    let m = main.clone();
    let g = Greenlet::new(move |_| {
        let me = getcurrent();
        Value::new((me.is_main(), me.is_current(), m.is_current(), m.is_active()))
    });
    assert_eq!(
        g.switch(()).take::<(bool, bool, bool, bool)>(),
        (false, true, false, true)
    );
    assert_eq!(getcurrent(), main);
}

#[test]
fn debug_shows_state() {
    let main = getcurrent();
    assert_eq!(format!("{main:?}"), "<greenlet main (current)>");
    let m = main.clone();
    let g = Builder::new()
        .name("worker")
        .build(move |_| {
            let inside = (format!("{m:?}"), format!("{:?}", getcurrent()));
            parent_switch(inside);
            Value::none()
        })
        .unwrap();
    assert_eq!(format!("{g:?}"), "<greenlet worker (unstarted)>");
    let (m_inside, g_inside) = g.switch(()).take::<(String, String)>();
    assert_eq!(m_inside, "<greenlet main (suspended)>");
    assert_eq!(g_inside, "<greenlet worker (current)>");
    assert_eq!(format!("{g:?}"), "<greenlet worker (suspended)>");
    g.switch(());
    assert_eq!(format!("{g:?}"), "<greenlet worker (dead)>");
    // Unnamed greenlets are called greenlet-<id>.
    let anon = Greenlet::new(|v| v);
    assert_eq!(anon.name(), format!("greenlet-{}", anon.id()));
    assert_ne!(anon.id(), g.id());
}

#[test]
fn threads_each_have_their_own_greenlets() {
    let handles: Vec<_> = (0..10)
        .map(|i| {
            std::thread::spawn(move || {
                let main = getcurrent();
                assert!(main.is_main());
                let lst: Log<i32> = log();
                let l = lst.clone();
                let g = Greenlet::new(move |v| {
                    l.borrow_mut().push(1);
                    parent_switch(());
                    l.borrow_mut().push(3);
                    v
                });
                lst.borrow_mut().push(0);
                g.switch(i);
                lst.borrow_mut().push(2);
                let r = g.switch(()).take::<i32>();
                lst.borrow_mut().push(4);
                assert_eq!(*lst.borrow(), vec![0, 1, 2, 3, 4]);
                r
            })
        })
        .collect();
    let results: Vec<i32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results, (0..10).collect::<Vec<_>>());
}
