//! Deep switch chains: switches between greenlets that are blocked resuming one another. The
//! switch engine (`greenlet/src/switch.rs`) makes each of them one direct switch, whatever the
//! greenlets' relation; it once forwarded them through a "resume chain" of every greenlet in between.
//!
//! Ported from / generalising python-greenlet (the scenarios, not the code):
//! - `src/greenlet/tests/test_greenlet.py`:
//!   - `TestGreenlet.test_two_recursive_children` (a child started inside a greenlet), taken to
//!     depth 100 -> `deep_nesting_leaf_to_main_then_unwind_by_returns`
//!   - `TestGreenlet.test_exception` (a panic reaching a parent that is not the resumer)
//!     -> `panic_forwarded_past_blocked_resumers`
//! - `src/greenlet/tests/fail_switch_three_greenlets2.py` (three greenlets switching among
//!   themselves) -> `ring_of_three`, `ring_of_many`
//!
//! The remaining scenarios are specific to the resume chain: `finish_into_parent_in_the_chain`,
//! `switch_one_level_down_and_back`, `throw_into_greenlet_in_the_chain`.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, panic_any, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;

use greenlet::{getcurrent, Greenlet, GreenletExit, Value};

type Log = Rc<RefCell<Vec<(String, u64)>>>;

/// Builds a ring of `n` greenlets: each, `rounds` times, passes `v + 1` to the next one; then
/// returns the last value it received.
fn ring(n: usize, rounds: usize, log: &Log) -> Vec<Greenlet> {
    let gs: Vec<Greenlet> = (0..n).map(|_| Greenlet::unbound()).collect();
    for i in 0..n {
        let next = gs[(i + 1) % n].clone();
        let log = log.clone();
        gs[i]
            .set_run(move |v| {
                let mut v = v.take::<u64>();
                for _ in 0..rounds {
                    log.borrow_mut().push((format!("g{i}"), v));
                    v = next.switch(v + 1).take::<u64>();
                }
                Value::new(v)
            })
            .unwrap();
    }
    gs
}

/// Kills the greenlets of a ring that are still suspended (their runs hold each other).
fn kill_all(gs: &[Greenlet]) {
    for g in gs {
        if g.is_active() {
            assert!(g.throw().is::<GreenletExit>());
        }
        assert!(g.is_dead());
    }
}

#[test]
fn ring_of_three() {
    const ROUNDS: usize = 1000;
    let log: Log = Rc::default();
    let gs = ring(3, ROUNDS, &log);
    // a starts b starts c; c -> a is forwarded through b; a -> b resumes b (suspended), and so on.
    let last = gs[0].switch(0u64).take::<u64>();
    assert_eq!(last, 3 * ROUNDS as u64);
    let log = log.borrow();
    assert_eq!(log.len(), 3 * ROUNDS);
    for (k, (name, v)) in log.iter().enumerate() {
        assert_eq!(*name, format!("g{}", k % 3));
        assert_eq!(*v, k as u64);
    }
    assert!(gs[0].is_dead());
    assert!(gs[1].is_active() && gs[2].is_active());
    kill_all(&gs);
}

#[test]
fn ring_of_many() {
    const N: usize = 200;
    const ROUNDS: usize = 5;
    let log: Log = Rc::default();
    let gs = ring(N, ROUNDS, &log);
    // The first lap builds a chain N deep; g(N-1) -> g0 is forwarded through N-2 greenlets.
    let last = gs[0].switch(0u64).take::<u64>();
    assert_eq!(last, (N * ROUNDS) as u64);
    let log = log.borrow();
    assert_eq!(log.len(), N * ROUNDS);
    assert!(log
        .iter()
        .enumerate()
        .all(|(k, (name, v))| *v == k as u64 && *name == format!("g{}", k % N)));
    kill_all(&gs);
}

#[test]
fn deep_nesting_leaf_to_main_then_unwind_by_returns() {
    // g0 starts g1 starts ... g(D-1); each g(i+1) is created inside g(i), so its parent is g(i).
    // The leaf switches straight to main (forwarded through every level). Then main resumes the
    // middle one directly; it returns, and its value goes to its parent, which is suspended, not
    // the resumer; and so on down to main.
    const D: usize = 100;
    const MID: usize = D / 2;
    let handles: Rc<RefCell<Vec<Option<Greenlet>>>> = Rc::new(RefCell::new(vec![None; D]));
    let killed = Rc::new(Cell::new(0usize));
    struct OnUnwind(Rc<Cell<usize>>);
    impl Drop for OnUnwind {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.set(self.0.get() + 1);
            }
        }
    }
    fn level(
        i: usize,
        main: Greenlet,
        handles: Rc<RefCell<Vec<Option<Greenlet>>>>,
        killed: Rc<Cell<usize>>,
    ) -> Greenlet {
        Greenlet::new(move |_| {
            let _unwind = OnUnwind(killed.clone());
            handles.borrow_mut()[i] = Some(getcurrent());
            if i + 1 == D {
                main.switch(i as u64);
                unreachable!("the leaf is only resumed by its kill");
            }
            let child = level(i + 1, main, handles.clone(), killed);
            let got = child.switch(()).take::<u64>();
            Value::new(got + 1)
        })
    }
    let main = getcurrent();
    let g0 = level(0, main, handles.clone(), killed.clone());
    assert_eq!(g0.switch(()).take::<u64>(), (D - 1) as u64);
    let all: Vec<Greenlet> = handles.borrow_mut().drain(..).map(Option::unwrap).collect();
    assert!(all.iter().all(Greenlet::is_active));
    // mid's pending `child.switch(())` returns 1000; mid returns 1001 to its parent g(MID-1),
    // which returns 1002, ... g0 returns 1000 + MID + 1 to main.
    let result = all[MID].switch(1000u64).take::<u64>();
    assert_eq!(result, 1000 + MID as u64 + 1);
    assert!(all[..=MID].iter().all(Greenlet::is_dead));
    // The levels below mid are still suspended (each is also held by its child's parent link).
    assert!(all[MID + 1..].iter().all(Greenlet::is_active));
    assert_eq!(killed.get(), 0);
    // Kill them shallowest first: each one's GreenletExit goes up its (dead) parents to main.
    for g in &all[MID + 1..] {
        assert!(g.throw().is::<GreenletExit>());
    }
    assert_eq!(killed.get(), D - 1 - MID);
    assert!(all.iter().all(Greenlet::is_dead));
}

#[test]
fn finish_into_parent_in_the_chain() {
    // a starts b; b starts c, whose parent is a (not b, which resumed it). c finishes: its value
    // goes to a's pending switch, forwarded through b; b stays suspended.
    let b_got: Rc<RefCell<Option<String>>> = Rc::default();
    let a = Greenlet::unbound();
    let a2 = a.clone();
    let bg = b_got.clone();
    let b = Greenlet::new(move |_| {
        let c = Greenlet::with_parent(
            |v| Value::new(format!("c returns {}", v.take::<&str>())),
            &a2,
        );
        let got = c.switch("from b");
        *bg.borrow_mut() = Some(got.take::<&str>().to_string());
        Value::new("b done")
    });
    let b2 = b.clone();
    a.set_run(move |_| {
        let from_c = b2.switch(()).take::<String>();
        Value::new(format!("a got: {from_c}"))
    })
    .unwrap();
    assert_eq!(a.switch(()).take::<String>(), "a got: c returns from b");
    assert!(b.is_active(), "b's switch to c never returned");
    assert!(b_got.borrow().is_none());
    // Resume b: its pending switch to c returns; b returns to its parent, main.
    assert_eq!(b.switch("late").take::<&str>(), "b done");
    assert_eq!(b_got.borrow().as_deref(), Some("late"));
}

#[test]
fn switch_one_level_down_and_back() {
    // a starts b; b switches to a (just below it in the chain) several times; a switches back to
    // b (suspended); values alternate.
    let a = Greenlet::unbound();
    let a2 = a.clone();
    let b = Greenlet::new(move |v| {
        let mut v = v.take::<i32>();
        for _ in 0..10 {
            v = a2.switch(v * 2).take::<i32>();
        }
        Value::new(-v)
    });
    let b2 = b.clone();
    a.set_run(move |_| {
        let mut v = b2.switch(1).take::<i32>();
        let mut seen = vec![v];
        while b2.is_active() {
            v = b2.switch(v + 1).take::<i32>();
            seen.push(v);
        }
        Value::new(seen)
    })
    .unwrap();
    // b's return goes to its parent, main, not to a.
    assert_eq!(a.switch(()).take::<i32>(), -2047);
    assert!(a.is_active(), "a still waits in its switch to b");
    assert!(b.is_dead());
    // Resume a: b is dead, so a's loop ends.
    assert_eq!(
        a.switch(-1).take::<Vec<i32>>(),
        vec![2, 6, 14, 30, 62, 126, 254, 510, 1022, 2046, -1]
    );
}

#[test]
fn throw_into_greenlet_in_the_chain() {
    // main -> a -> b -> c; c throws a payload into a (two levels down): a catches it at its
    // pending switch to b.
    #[derive(Debug, PartialEq)]
    struct Payload(&'static str);
    let c_slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let a = Greenlet::unbound();
    let a2 = a.clone();
    let cs = c_slot.clone();
    let b = Greenlet::new(move |_| {
        let a3 = a2.clone();
        let c = Greenlet::new(move |_| {
            a3.throw_with(Payload("from c"));
            Value::new("c resumed")
        });
        *cs.borrow_mut() = Some(c.clone());
        c.switch(());
        Value::new("b resumed")
    });
    let b2 = b.clone();
    a.set_run(
        move |_| match catch_unwind(AssertUnwindSafe(|| b2.switch(()))) {
            Ok(_) => Value::new("no throw?"),
            Err(p) => match p.downcast::<Payload>() {
                Ok(p) => Value::new(format!("a caught {}", p.0)),
                Err(p) => resume_unwind(p),
            },
        },
    )
    .unwrap();
    assert_eq!(a.switch(()).take::<String>(), "a caught from c");
    let c = c_slot.borrow_mut().take().unwrap();
    assert!(b.is_active() && c.is_active());
    // c's throw_with returns when c is switched to; c then returns "c resumed" to its parent b
    // (created inside it), whose pending switch to c returns; b returns to main.
    assert_eq!(c.switch(()).take::<&str>(), "b resumed");
    assert!(c.is_dead() && b.is_dead());
}

#[test]
fn panic_forwarded_past_blocked_resumers() {
    // main -> a -> b -> c, all with parent main. c panics: the payload goes to main, forwarded
    // past a and b, which stay suspended and are not unwound.
    let unwound = Rc::new(Cell::new(0));
    struct OnUnwind(Rc<Cell<u32>>);
    impl Drop for OnUnwind {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.set(self.0.get() + 1);
            }
        }
    }
    let main = getcurrent();
    let c = Greenlet::with_parent(|_| panic_any(42u8), &main);
    let c2 = c.clone();
    let u = unwound.clone();
    let b = Greenlet::with_parent(
        move |_| {
            let _g = OnUnwind(u);
            let v = c2.switch(());
            Value::new(format!("b resumed with {}", v.take::<&str>()))
        },
        &main,
    );
    let b2 = b.clone();
    let u = unwound.clone();
    let a = Greenlet::with_parent(
        move |_| {
            let _g = OnUnwind(u);
            let v = b2.switch(());
            Value::new(format!("a resumed with {}", v.take::<&str>()))
        },
        &main,
    );
    let err = catch_unwind(AssertUnwindSafe(|| a.switch(()))).unwrap_err();
    assert_eq!(err.downcast::<u8>().ok().map(|b| *b), Some(42));
    assert!(c.is_dead());
    assert!(a.is_active() && b.is_active());
    assert_eq!(unwound.get(), 0);
    // b's pending switch to c returns normally when main switches to b.
    assert_eq!(b.switch("x").take::<String>(), "b resumed with x");
    assert_eq!(a.switch("y").take::<String>(), "a resumed with y");
    assert_eq!(unwound.get(), 0);
}
