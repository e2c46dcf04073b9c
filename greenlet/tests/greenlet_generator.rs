//! Generators built on greenlets: a "genlet" runs a function that yields values by switching to
//! the greenlet iterating it; nested genlets can yield several levels up at once.
//!
//! Ported from python-greenlet (the scenarios, not the code):
//! - `src/greenlet/tests/test_generator.py`: `GeneratorTests.test_generator` -> `generator`
//! - `src/greenlet/tests/test_generator_nested.py`:
//!   - `NestedGeneratorTests.test_genlet_simple`    -> `genlet_simple`
//!   - `NestedGeneratorTests.test_layered_genlets`  -> `layered_genlets`
//!   - `NestedGeneratorTests.test_nested_genlets`   -> `nested_genlets`
//!   - `NestedGeneratorTests.test_permutations`     -> `permutations`
//!   - `NestedGeneratorTests.test_genlet_bad`       -> `yield_outside_a_genlet_is_an_error`
//!
//! Also: a genlet abandoned half-way is unwound when dropped, nested genlets included
//! (`abandoned_genlets_are_unwound`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use greenlet::{getcurrent, Greenlet, Value};

// ---------------------------------------------------------------------------------------------
// The genlet machinery (test_generator_nested.py's `genlet`, `Yield` and `Genlet`).

thread_local! {
    /// The live genlets of this thread, by greenlet id, with their `child` (see `next`).
    static GENLETS: RefCell<HashMap<u64, Option<Greenlet>>> = RefCell::new(HashMap::new());
}

/// Registers a genlet for as long as its `run` closure exists (so an unstarted, finished or
/// killed genlet is forgotten).
struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        // Taken out first: dropping a child handle may switch (kill it).
        let child = GENLETS.with(|g| g.borrow_mut().remove(&self.0));
        drop(child);
    }
}

fn is_genlet(g: &Greenlet) -> bool {
    GENLETS.with(|m| m.borrow().contains_key(&g.id()))
}

fn child_of(g: &Greenlet) -> Option<Greenlet> {
    GENLETS.with(|m| m.borrow().get(&g.id()).cloned().flatten())
}

fn set_child(g: &Greenlet, child: Option<Greenlet>) {
    let old = GENLETS.with(|m| {
        m.borrow_mut()
            .get_mut(&g.id())
            .map(|slot| std::mem::replace(slot, child))
    });
    drop(old);
}

/// An iterator over the values a function yields from its own greenlet.
struct Genlet {
    g: Greenlet,
}

impl Genlet {
    fn new(f: impl FnOnce() + 'static) -> Genlet {
        let g = Greenlet::unbound();
        let reg = Registration(g.id());
        GENLETS.with(|m| m.borrow_mut().insert(g.id(), None));
        g.set_run(move |_| {
            let _reg = reg;
            f();
            Value::none()
        })
        .expect("fresh greenlet");
        Genlet { g }
    }
}

/// Closes an abandoned genlet (like Python's `generator.close()`). Dropping the last handle is
/// not enough here: a genlet's parent is the greenlet iterating it, which holds the genlet on its
/// stack, so nested genlets form reference cycles (see greenlet_dealloc.rs).
impl Drop for Genlet {
    fn drop(&mut self) {
        if self.g.is_active() {
            self.g
                .set_parent(&getcurrent())
                .expect("the dropping greenlet is not inside the genlet");
            assert!(self.g.throw().is::<greenlet::GreenletExit>());
        }
    }
}

impl Iterator for Genlet {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        let result = match child_of(&self.g) {
            Some(mut child) => {
                // A deeper genlet yielded straight to us last time: resume the deepest one.
                while let Some(grandchild) = child_of(&child) {
                    set_child(&child, None);
                    child = grandchild;
                }
                child.switch(())
            }
            None => {
                self.g
                    .set_parent(&getcurrent())
                    .expect("the iterating greenlet is not inside the genlet");
                self.g.switch(())
            }
        };
        self.g.is_active().then_some(result)
    }
}

#[derive(Debug, PartialEq)]
struct YieldOutsideGenlet;

/// `Yield(value, level)`: hands `value` to whoever iterates the genlet `level` levels up.
fn try_yield<V: 'static>(value: V, level: usize) -> Result<Value, YieldOutsideGenlet> {
    let mut g = getcurrent();
    for remaining in (1..=level).rev() {
        if !is_genlet(&g) {
            return Err(YieldOutsideGenlet);
        }
        let parent = g.parent().expect("a genlet has a parent");
        if remaining > 1 {
            set_child(&parent, Some(g.clone()));
        }
        g = parent;
    }
    Ok(g.switch(value))
}

fn yield_<V: 'static>(value: V) -> Value {
    try_yield(value, 1).expect("yield inside a genlet")
}

// ---------------------------------------------------------------------------------------------

#[test]
fn generator() {
    let seen: Rc<RefCell<Vec<i32>>> = Rc::default();
    let g = |n: i32, seen: Rc<RefCell<Vec<i32>>>| {
        Genlet::new(move || {
            for i in 0..n {
                seen.borrow_mut().push(i);
                yield_(i);
            }
        })
    };
    for _ in 0..3 {
        for j in g(5, seen.clone()) {
            seen.borrow_mut().push(j.take::<i32>());
        }
    }
    assert_eq!(*seen.borrow(), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4].repeat(3));
}

type Seen = Rc<RefCell<Vec<i32>>>;

/// g2 of test_generator_nested.py: yields directly.
fn g2(n: i32, seen: Seen) -> Genlet {
    Genlet::new(move || {
        for i in 0..n {
            seen.borrow_mut().push(i + 1);
            yield_(i);
        }
    })
}

/// g3 of test_generator_nested.py: yields from a nested function call.
fn g3(n: i32, seen: Seen) -> Genlet {
    fn nested(i: i32) {
        yield_(i);
    }
    Genlet::new(move || {
        for i in 0..n {
            seen.borrow_mut().push(i + 1);
            nested(i);
        }
    })
}

#[test]
fn genlet_simple() {
    // g1 of the upstream test is a plain Python generator; a plain Rust iterator is the baseline.
    fn g1(n: i32, seen: Seen) -> Box<dyn Iterator<Item = i32>> {
        Box::new((0..n).inspect(move |i| seen.borrow_mut().push(i + 1)))
    }
    fn boxed(g: Genlet) -> Box<dyn Iterator<Item = i32>> {
        Box::new(g.map(|v| v.take::<i32>()))
    }
    let makers: [&dyn Fn(i32, Seen) -> Box<dyn Iterator<Item = i32>>; 3] =
        [&g1, &|n, s| boxed(g2(n, s)), &|n, s| boxed(g3(n, s))];
    for make in makers {
        let seen: Seen = Rc::default();
        for _ in 0..3 {
            for j in make(5, seen.clone()) {
                seen.borrow_mut().push(j);
            }
        }
        assert_eq!(*seen.borrow(), [1, 0, 2, 1, 3, 2, 4, 3, 5, 4].repeat(3));
    }
}

#[test]
fn layered_genlets() {
    // gr1 yields ii to its iterator (gr2) and ii*ii two levels up (to gr2's iterator, main).
    fn gr1(n: i32) -> Genlet {
        Genlet::new(move || {
            for ii in 1..n {
                yield_(ii);
                try_yield(ii * ii, 2).unwrap();
            }
        })
    }
    fn gr2(n: i32, seen: Seen) -> Genlet {
        Genlet::new(move || {
            for ii in gr1(n) {
                seen.borrow_mut().push(ii.take::<i32>());
            }
        })
    }
    let seen: Seen = Rc::default();
    for ii in gr2(5, seen.clone()) {
        seen.borrow_mut().push(ii.take::<i32>());
    }
    assert_eq!(*seen.borrow(), [1, 1, 2, 4, 3, 9, 4, 16]);
}

#[test]
fn nested_genlets() {
    // a(n) re-yields everything a(n - 1) yields, then n.
    fn ax(n: i32) -> Genlet {
        Genlet::new(move || {
            if n == 0 {
                return;
            }
            for ii in ax(n - 1) {
                yield_(ii);
            }
            yield_(n);
        })
    }
    let seen: Vec<i32> = ax(5).map(|v| v.take::<i32>()).collect();
    assert_eq!(seen, [1, 2, 3, 4, 5]);
}

fn perms(l: Vec<i32>) -> Genlet {
    Genlet::new(move || {
        if l.len() > 1 {
            for &e in &l {
                let rest: Vec<i32> = l.iter().copied().filter(|&x| x != e).collect();
                let mut yielded = 0;
                for p in perms(rest) {
                    let mut item = vec![e];
                    item.extend(p.take::<Vec<i32>>());
                    yield_(item);
                    yielded += 1;
                }
                assert!(yielded > 0);
            }
        } else {
            yield_(l);
        }
    })
}

fn as_vecs(g: Genlet) -> impl Iterator<Item = Vec<i32>> {
    g.map(|v| v.take::<Vec<i32>>())
}

#[test]
fn permutations() {
    let all: Vec<Vec<i32>> = as_vecs(perms((0..4).collect())).collect();
    assert_eq!(all.len(), 4 * 3 * 2);
    assert!(all.contains(&vec![0, 1, 2, 3]));
    assert!(all.contains(&vec![3, 2, 1, 0]));
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 24, "all distinct");

    // Two genlet trees iterated in lockstep; the longer one is abandoned when the shorter ends.
    let res: Vec<(Vec<i32>, Vec<i32>)> = as_vecs(perms((0..4).collect()))
        .zip(as_vecs(perms((0..3).collect())))
        .collect();
    let v = |s: &[i32]| s.to_vec();
    assert_eq!(
        res,
        [
            (v(&[0, 1, 2, 3]), v(&[0, 1, 2])),
            (v(&[0, 1, 3, 2]), v(&[0, 2, 1])),
            (v(&[0, 2, 1, 3]), v(&[1, 0, 2])),
            (v(&[0, 2, 3, 1]), v(&[1, 2, 0])),
            (v(&[0, 3, 1, 2]), v(&[2, 0, 1])),
            (v(&[0, 3, 2, 1]), v(&[2, 1, 0])),
        ]
    );
    // Every genlet, finished or abandoned, has been forgotten (their run closures are gone).
    assert_eq!(GENLETS.with(|m| m.borrow().len()), 0);
}

#[test]
fn yield_outside_a_genlet_is_an_error() {
    assert_eq!(try_yield(10, 1).unwrap_err(), YieldOutsideGenlet);
    // Inside a plain greenlet too.
    let g = Greenlet::new(|_| Value::new(try_yield(10, 1).unwrap_err()));
    assert_eq!(
        g.switch(()).take::<YieldOutsideGenlet>(),
        YieldOutsideGenlet
    );
    // Too many levels up.
    let mut deep = Genlet::new(|| {
        let err = try_yield(1, 2).unwrap_err();
        yield_(err);
    });
    assert_eq!(
        deep.next().unwrap().take::<YieldOutsideGenlet>(),
        YieldOutsideGenlet
    );
    assert!(deep.next().is_none());
    assert!(deep.next().is_none(), "an exhausted genlet stays exhausted");
}

#[test]
fn abandoned_genlets_are_unwound() {
    struct Guard(Rc<Cell<u32>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let inner = move || {
        let d = d.clone();
        Genlet::new(move || {
            let _g = Guard(d);
            for i in 0.. {
                yield_(i);
            }
        })
    };
    let d = drops.clone();
    let mut outer = Genlet::new(move || {
        let _g = Guard(d);
        for v in inner() {
            yield_(v.take::<i32>() * 10);
        }
    });
    assert_eq!(outer.next().unwrap().take::<i32>(), 0);
    assert_eq!(outer.next().unwrap().take::<i32>(), 10);
    assert_eq!(drops.get(), 0);
    drop(outer);
    assert_eq!(
        drops.get(),
        2,
        "both the outer and the inner genlet were unwound"
    );
    assert_eq!(GENLETS.with(|m| m.borrow().len()), 0);
}
