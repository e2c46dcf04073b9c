//! `settrace`: the exact order of the switch and throw events.
//!
//! Ported from python-greenlet (the scenarios, not the code):
//! - `src/greenlet/tests/test_tracing.py`:
//!   - `TestGreenletTracing.test_a_greenlet_tracing`  -> `switch_and_throw_events`
//!   - `TestGreenletTracing.test_b_exception_disables_tracing` -> `panicking_tracer_is_uninstalled`
//!   - `TestGreenletTracing.test_set_same_tracer_twice` -> `settrace_returns_the_previous_tracer`
//! - `src/greenlet/tests/fail_switch_three_greenlets2.py` (run by
//!   `test_greenlet.py::TestBrokenGreenlets.test_reentrant_switch_three_greenlets2`): a tracer that
//!   switches greenlets -> `tracer_that_switches`. The expected list differs from upstream by
//!   design: here the tracer is uninstalled while it runs, so switches it makes are not traced.
//!
//! Also, for this crate's resume chain: a switch that is forwarded through intermediate greenlets
//! is one event (`ring_switches_are_one_event_each`), and events of a finished greenlet name it as
//! the origin and its parent as the target (`finished_greenlet_reports_to_its_parent`).

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use greenlet::{getcurrent, settrace, Builder, Event, Greenlet, Tracer, Value};

type Actions = Rc<RefCell<Vec<(&'static str, String, String)>>>;

/// Records every event as (kind, origin name, target name).
fn recorder(actions: &Actions) -> Tracer {
    let a = actions.clone();
    Box::new(move |e: &Event| {
        let entry = match e {
            Event::Switch { origin, target } => ("switch", origin.name(), target.name()),
            Event::Throw { origin, target } => ("throw", origin.name(), target.name()),
        };
        a.borrow_mut().push(entry);
    })
}

/// Runs `f` with a recording tracer installed, then restores the previous tracer.
fn traced(f: impl FnOnce()) -> Vec<(&'static str, String, String)> {
    let actions: Actions = Rc::default();
    let old = settrace(Some(recorder(&actions)));
    let r = catch_unwind(AssertUnwindSafe(f));
    settrace(old);
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
    let out = actions.borrow().clone();
    out
}

/// The events `spec` lists, one a line: `switch origin -> target` or `throw origin -> target`,
/// optionally followed by a `# comment`.
fn events(spec: &str) -> Vec<(&'static str, String, String)> {
    spec.lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            ["switch", origin, "->", target] => ("switch", origin.into(), target.into()),
            ["throw", origin, "->", target] => ("throw", origin.into(), target.into()),
            _ => panic!("bad event line {l:?}"),
        })
        .collect()
}

fn named(name: &str, run: impl FnOnce(Value) -> Value + 'static) -> Greenlet {
    Builder::new().name(name).build(run).unwrap()
}

fn parent_switch<V: 'static>(v: V) -> Value {
    let parent = getcurrent()
        .parent()
        .expect("called inside a child greenlet");
    parent.switch(v)
}

/// A greenlet named `name`, started: it switched back to its parent at once and waits there to
/// return nothing when resumed.
fn suspended(name: &str) -> Greenlet {
    let g = named(name, |_| {
        parent_switch(());
        Value::none()
    });
    g.switch(());
    g
}

#[test]
fn switch_and_throw_events() {
    let actions = traced(|| {
        let g1 = named("g1", |_| Value::none());
        g1.switch(());
        let g2 = named("g2", |_| panic!("SomeError"));
        assert!(catch_unwind(AssertUnwindSafe(|| g2.switch(()))).is_err());
    });
    assert_eq!(
        actions,
        events(
            "
            switch main -> g1
            switch g1 -> main
            switch main -> g2
            throw g2 -> main
            "
        )
    );
}

#[test]
fn panicking_tracer_is_uninstalled() {
    let main = getcurrent();
    let g = named("g", move |_| {
        main.switch(());
        Value::none()
    });
    g.switch(());
    let actions: Actions = Rc::default();
    let mut rec = recorder(&actions);
    let old = settrace(Some(Box::new(move |e: &Event| {
        rec(e);
        panic!("SomeError from the tracer");
    })));
    assert!(old.is_none());
    // The tracer runs in g (the target) and panics there: g dies of it and the panic reaches us.
    let err = catch_unwind(AssertUnwindSafe(|| g.switch(()))).unwrap_err();
    assert_eq!(greenlet::panic_message(&*err), "SomeError from the tracer");
    assert!(g.is_dead());
    // The tracer was uninstalled (gettrace() is None) and saw only the first switch.
    assert!(settrace(None).is_none());
    assert_eq!(*actions.borrow(), events("switch main -> g"));
}

#[test]
fn settrace_returns_the_previous_tracer() {
    let first: Actions = Rc::default();
    let second: Actions = Rc::default();
    assert!(settrace(Some(recorder(&first))).is_none());
    let g = named("g", |v| v);
    g.switch(());
    let prev = settrace(Some(recorder(&second)));
    assert!(prev.is_some());
    named("h", |v| v).switch(());
    // Put the first one back: it continues to record into the same list.
    let second_back = settrace(prev);
    assert!(second_back.is_some());
    named("k", |v| v).switch(());
    assert!(settrace(None).is_some());
    assert!(settrace(None).is_none());
    named("untraced", |v| v).switch(());
    assert_eq!(
        *first.borrow(),
        events(
            "
            switch main -> g
            switch g -> main
            switch main -> k
            switch k -> main
            "
        )
    );
    assert_eq!(
        *second.borrow(),
        events(
            "
            switch main -> h
            switch h -> main
            "
        )
    );
}

#[test]
fn throw_events() {
    let actions = traced(|| {
        // Into a suspended greenlet that lets GreenletExit end it: the exit comes back as a value.
        let g = suspended("g");
        g.throw();
        // Into an unstarted greenlet.
        let u = named("u", |v| v);
        u.throw();
        // A custom payload the greenlet does not catch: it dies and the payload goes on to main.
        let c = suspended("c");
        assert!(catch_unwind(AssertUnwindSafe(|| c.throw_with("boom"))).is_err());
    });
    assert_eq!(
        actions,
        events(
            "
            switch main -> g
            switch g -> main
            throw main -> g
            switch g -> main
            throw main -> u
            switch u -> main
            switch main -> c
            switch c -> main
            throw main -> c
            throw c -> main
            "
        )
    );
}

#[test]
fn switch_to_self_and_to_dead_are_traced() {
    let actions = traced(|| {
        getcurrent().switch(1);
        let d = named("d", |v| v);
        d.switch(());
        d.switch(()); // dead: goes to its parent, main, which is current
    });
    assert_eq!(
        actions,
        events(
            "
            switch main -> main
            switch main -> d
            switch d -> main
            switch main -> main
            "
        )
    );
}

#[test]
fn finished_greenlet_reports_to_its_parent() {
    // p starts c (c's parent is main, not p): when c finishes, the event goes c -> main.
    let actions = traced(|| {
        let c = named("c", |v| v);
        let c2 = c.clone();
        let p = named("p", move |_| {
            c2.switch(());
            Value::none()
        });
        p.switch(());
        assert!(p.is_active());
        p.switch(());
    });
    assert_eq!(
        actions,
        events(
            "
            switch main -> p
            switch p -> c
            switch c -> main
            switch main -> p
            switch p -> main
            "
        )
    );
}

#[test]
fn ring_switches_are_one_event_each() {
    // a -> b -> c -> a: c's switch to a is forwarded through b (both a and b are blocked resuming
    // the next one), but it is a single switch c -> a.
    let actions = traced(|| {
        let (a, b, c) = (
            Builder::new().name("a").build_unbound().unwrap(),
            Builder::new().name("b").build_unbound().unwrap(),
            Builder::new().name("c").build_unbound().unwrap(),
        );
        for (me, next) in [(&a, &b), (&b, &c), (&c, &a)] {
            let next = next.clone();
            me.set_run(move |v| {
                let mut v = v.take::<u32>();
                for _ in 0..2 {
                    v = next.switch(v + 1).take::<u32>();
                }
                Value::new(v)
            })
            .unwrap();
        }
        assert_eq!(a.switch(0u32).take::<u32>(), 6);
        // b and c are left suspended; break the cycles (their runs hold each other).
        b.throw();
        c.throw();
    });
    assert_eq!(
        actions,
        events(
            "
            switch main -> a
            switch a -> b
            switch b -> c
            switch c -> a
            switch a -> b
            switch b -> c
            switch c -> a
            switch a -> main  # a finished: to its parent
            throw main -> b
            switch b -> main
            throw main -> c
            switch c -> main
            "
        )
    );
}

#[test]
fn killed_on_drop_is_traced_as_throw() {
    let actions = traced(|| {
        let g = suspended("g");
        drop(g);
    });
    assert_eq!(
        actions,
        events(
            "
            switch main -> g
            switch g -> main
            throw main -> g
            switch g -> main
            "
        )
    );
}

#[test]
fn tracing_is_per_thread() {
    let actions = traced(|| {
        std::thread::spawn(|| {
            let g = Greenlet::new(|v| v);
            g.switch(());
        })
        .join()
        .unwrap();
        named("here", |v| v).switch(());
    });
    assert_eq!(
        actions,
        events(
            "
            switch main -> here
            switch here -> main
            "
        )
    );
}

#[test]
fn tracer_that_switches() {
    // fail_switch_three_greenlets2.py: on its first call the tracer switches to g2.
    type Results = Rc<RefCell<Vec<(&'static str, String)>>>;
    let results: Results = Rc::default();
    let g1 = Greenlet::unbound();
    let g2 = Greenlet::unbound();
    let r = results.clone();
    g1.set_run(move |arg| {
        r.borrow_mut().push(("g1 arg", arg.take::<&str>().into()));
        let from_parent = parent_switch("from g1_run");
        r.borrow_mut()
            .push(("g1 from parent", from_parent.take::<&str>().into()));
        Value::new("g1 done")
    })
    .unwrap();
    let r = results.clone();
    g2.set_run(move |arg| {
        r.borrow_mut().push(("g2 arg", arg.take::<&str>().into()));
        let parent = parent_switch("from g2_run");
        r.borrow_mut()
            .push(("g2 from parent", format!("{parent:?}")));
        Value::new("g2 done")
    })
    .unwrap();

    let (r, target) = (results.clone(), g2.clone());
    let mut switch_to_g2 = true;
    let old = settrace(Some(Box::new(move |_: &Event| {
        r.borrow_mut().push(("trace", "switch".into()));
        if switch_to_g2 {
            switch_to_g2 = false;
            target.switch("g2 from tracefunc");
        }
    })));
    let main_got = |label: &'static str, v: Value| {
        results.borrow_mut().push((label, v.take::<&str>().into()));
    };
    // The tracer runs in g1 as g1 starts and switches to g2, which switches to main: main gets
    // g2's value while g1 is still inside the (uninstalled) tracer.
    main_got("main g1", g1.switch("g1 from main"));
    // Back into g1, inside the tracer: the tracer returns (and is reinstalled), and g1's run
    // starts with the value of the switch that started it.
    main_got("main g2", g1.switch("g2 from main"));
    main_got("main g1.2", g1.switch("g1 from main 2"));
    main_got("main g2.2", g2.switch(()));
    settrace(old);
    let expected: Vec<(&str, String)> = [
        ("trace", "switch"),
        ("g2 arg", "g2 from tracefunc"),
        ("main g1", "from g2_run"),
        ("g1 arg", "g1 from main"),
        ("trace", "switch"),
        ("main g2", "from g1_run"),
        ("trace", "switch"),
        ("g1 from parent", "g1 from main 2"),
        ("trace", "switch"),
        ("main g1.2", "g1 done"),
        ("trace", "switch"),
        ("g2 from parent", "Value(())"),
        ("trace", "switch"),
        ("main g2.2", "g2 done"),
    ]
    .into_iter()
    .map(|(a, b)| (a, b.to_string()))
    .collect();
    assert_eq!(*results.borrow(), expected);
}
