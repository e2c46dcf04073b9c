//! Per-greenlet context inherited at spawn (issue 15.4): follows gevent's
//! `src/gevent/tests/test__greenlet.py` `TestBasic.test_tree_locals` (a child shares its
//! spawner's `spawn_tree_locals`; creating greenlets gives the main greenlet nothing), with
//! `contextvars`' copy-on-set (greenlet's `gr_context`).

use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
struct RequestId(u64);
#[derive(Clone, Debug, PartialEq)]
struct Span(&'static str);

#[test]
fn children_inherit_the_spawners_context() {
    assert_eq!(gevent::context::get::<RequestId>(), None);
    // Before any value is set, spawning carries nothing.
    let g = gevent::spawn(gevent::context::get::<RequestId>);
    assert_eq!(g.get().unwrap(), None);

    gevent::context::set(RequestId(1));
    gevent::context::set(Span("main"));
    let parent = gevent::spawn(|| {
        let inherited = gevent::context::get::<RequestId>();
        gevent::context::set(RequestId(2)); // its own from here on
                                            // A grandchild sees its spawner's values at its spawn.
        let grandchild = gevent::spawn(|| {
            (
                gevent::context::get::<RequestId>(),
                gevent::context::get::<Span>(),
            )
        });
        gevent::context::set(RequestId(3)); // after the spawn: the grandchild keeps 2
        (inherited, grandchild.get().unwrap())
    });
    let (inherited, (gc_id, gc_span)) = parent.get().unwrap();
    assert_eq!(inherited, Some(RequestId(1)));
    assert_eq!(gc_id, Some(RequestId(2)));
    assert_eq!(gc_span, Some(Span("main")));
    // Nothing a child set leaked back into the main greenlet.
    assert_eq!(gevent::context::get::<RequestId>(), Some(RequestId(1)));

    // A child spawned before a set does not see it (the spawn took the context as it was).
    let early = gevent::spawn(|| {
        gevent::sleep(Duration::from_millis(5));
        gevent::context::get::<Span>()
    });
    gevent::context::set(Span("later"));
    assert_eq!(early.get().unwrap(), Some(Span("main")));

    assert!(gevent::context::remove::<Span>());
    assert!(!gevent::context::remove::<Span>());
    assert_eq!(
        gevent::context::with(|r: Option<&RequestId>| r.map(|r| r.0)),
        Some(1)
    );
    gevent::context::clear();
    assert_eq!(gevent::context::get::<RequestId>(), None);
}

#[test]
fn a_greenlets_context_is_dropped_with_it() {
    use std::rc::Rc;
    let marker = Rc::new(());
    let weak = Rc::downgrade(&marker);
    let g = gevent::spawn(move || {
        gevent::context::set(marker);
    });
    g.join();
    drop(g);
    assert!(
        weak.upgrade().is_none(),
        "the context went with the greenlet"
    );
}
