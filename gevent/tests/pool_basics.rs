//! Ported from gevent's `src/gevent/tests/test__pool.py` (gevent 26.x): scenarios, not code.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use gevent::event::Event;
use gevent::pool::{Group, Pool};
use gevent::GetError;

fn sqr(x: u64, wait: Duration) -> u64 {
    gevent::sleep(wait);
    x * x
}

/// test_apply_async / test_apply / test_apply_raises / test_reentrant.
#[test]
fn apply_variants() {
    let done = Event::new();
    let pool = Pool::new(2);
    let d = done.clone();
    pool.spawn(move || d.set());
    done.wait();
    assert_eq!(pool.apply(|| "return value"), Ok("return value"));
    let p1 = Pool::new(1);
    assert!(
        matches!(p1.apply(|| -> i32 { panic!("ExpectedException") }),
        Err(GetError::Panicked(f)) if f.message() == "ExpectedException")
    );
    let inner = p1.clone();
    assert_eq!(p1.apply(move || inner.apply(|| 5 + 1).unwrap()), Ok(6));
}

/// test_multiple_coros.
#[test]
fn multiple_coros() {
    let evt = Event::new();
    let results = Rc::new(RefCell::new(Vec::new()));
    let pool = Pool::new(2);
    let (e, r) = (evt.clone(), results.clone());
    let done = pool.spawn(move || {
        r.borrow_mut().push("cons1");
        e.wait();
        r.borrow_mut().push("cons2");
    });
    let (e, r) = (evt.clone(), results.clone());
    pool.spawn(move || {
        gevent::sleep(Duration::from_millis(1));
        r.borrow_mut().push("prod");
        e.set();
    });
    done.join();
    assert_eq!(*results.borrow(), ["cons1", "prod", "cons2"]);
}

/// PoolBasicTests.test_execute_async: free_count, and spawn on a full pool waits.
#[test]
fn execute_async_free_count() {
    let p = Pool::new(2);
    assert_eq!(p.free_count(), 2);
    let r = Rc::new(RefCell::new(Vec::new()));
    let r1 = r.clone();
    let first = p.spawn(move || r1.borrow_mut().push(1));
    assert_eq!(p.free_count(), 1);
    first.join();
    assert_eq!(*r.borrow(), [1]);
    gevent::sleep(Duration::ZERO);
    assert_eq!(p.free_count(), 2);
    for i in [2, 3] {
        let r = r.clone();
        p.spawn(move || r.borrow_mut().push(i));
    }
    assert_eq!(p.free_count(), 0);
    assert_eq!(*r.borrow(), [1]);
    let r4 = r.clone();
    p.spawn(move || r4.borrow_mut().push(4)); // waits for a slot: the others ran meanwhile
    assert_eq!(*r.borrow(), [1, 2, 3]);
    p.join();
    assert_eq!(*r.borrow(), [1, 2, 3, 4]);
}

/// test_discard / test_add_method / test_add_method_timeout.
#[test]
fn discard_and_add() {
    let p = Pool::new(1);
    let first = p.spawn(|| gevent::sleep(Duration::from_secs(1000)));
    p.discard(&first);
    first.kill();
    assert_eq!(p.len(), 0);
    gevent::sleep(Duration::ZERO);
    assert_eq!(p.free_count(), 1, "the slot came back exactly once");

    let first = gevent::spawn(|| gevent::sleep(Duration::from_secs(1000)));
    let second = gevent::spawn(|| gevent::sleep(Duration::from_secs(1000)));
    p.add(&first);
    assert_eq!((p.free_count(), p.len()), (0, 1));
    assert!(gevent::with_timeout(Duration::from_millis(20), || p.add(&second)).is_err());
    assert!(!p.add_timeout(&second, Duration::from_millis(20)));
    assert_eq!((p.free_count(), p.len()), (0, 1));
    assert!(p.contains(&first) && !p.contains(&second));
    second.kill();
    first.kill();
    gevent::sleep(Duration::ZERO);
    assert_eq!((p.free_count(), p.len()), (1, 0));
}

/// TestPool{1,2,3,10,Unlimit}: map, imap, imap_unordered and their empty cases.
#[test]
fn map_imap_every_size() {
    for pool in [
        Pool::new(1),
        Pool::new(2),
        Pool::new(3),
        Pool::new(10),
        Pool::unlimited(),
    ] {
        let squares: Vec<u64> = (0..100).map(|x| x * x).collect();
        assert_eq!(
            pool.map(|x| sqr(x, Duration::ZERO), 0..100).unwrap(),
            squares
        );
        let got: Vec<u64> = pool
            .imap(|x| sqr(x, Duration::ZERO), 0..10)
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, squares[..10]);
        let mut got: Vec<u64> = pool
            .imap_unordered(|x| sqr(x, Duration::ZERO), 0..1000)
            .map(Result::unwrap)
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..1000).map(|x| x * x).collect::<Vec<_>>());
        assert_eq!(pool.imap(|x: u64| x, Vec::new()).count(), 0);
        assert_eq!(pool.imap_unordered(|x: u64| x, Vec::new()).count(), 0);
        assert!(pool.map(|x: u64| x, Vec::new()).unwrap().is_empty());
        pool.join();
    }
}

/// test_imap_unordered_sleep: completion order (size 1 keeps input order).
#[test]
fn imap_unordered_completion_order() {
    let sleep = |x: u64| {
        gevent::sleep(Duration::from_millis(x * 5));
        x
    };
    let got: Vec<u64> = Pool::new(1)
        .imap_unordered(sleep, [10, 1, 2])
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, [10, 1, 2]);
    let got: Vec<u64> = Pool::new(3)
        .imap_unordered(sleep, [10, 1, 2])
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, [1, 2, 10]);
}

/// test_terminate: kill returns quickly and kills everything running.
#[test]
fn terminate() {
    let pool = Pool::new(10);
    for _ in 0..10 {
        pool.spawn(|| gevent::sleep(Duration::from_secs(100)));
    }
    let t = Instant::now();
    pool.kill();
    assert!(t.elapsed() < Duration::from_secs(1));
    gevent::sleep(Duration::ZERO);
    assert!(pool.is_empty());
    assert_eq!(pool.free_count(), 10);
}

/// TestPool0.test_wait_full / TestJoinEmpty / TestSpawn.testSpawnAndWait.
#[test]
fn zero_size_and_join() {
    let p = Pool::new(0);
    assert_eq!(p.free_count(), 0);
    assert!(p.is_full());
    assert_eq!(p.wait_available_timeout(Duration::from_millis(10)), 0);
    let p = Pool::new(1);
    p.join();
    p.spawn(|| gevent::sleep(Duration::from_millis(50)));
    assert_eq!(p.len(), 1);
    assert!(
        !p.join_timeout(Duration::from_millis(5)),
        "waiting on a full pool"
    );
    assert!(p.join_timeout(Duration::from_secs(5)));
    gevent::sleep(Duration::ZERO);
    assert_eq!(p.len(), 0);
}

/// TestSpawn.test: spawn on a full pool blocks until the old one finishes.
#[test]
fn spawn_blocks_while_full() {
    let p = Pool::new(1);
    let a = p.spawn(|| gevent::sleep(Duration::from_millis(30)));
    assert_eq!(p.len(), 1);
    let b = p.spawn(|| gevent::sleep(Duration::from_millis(30)));
    assert!(a.ready(), "the second spawn waited for the first");
    assert_eq!(p.len(), 1);
    b.join();
}

/// TestErrorInIterator / TestErrorInHandler: failures come back per item; iteration goes on.
#[test]
fn errors_in_handler_and_iterator() {
    let divide = |x: i32| {
        assert!(x != 0, "division by zero");
        100 / x
    };
    let p = Pool::new(3);
    assert!(matches!(
        p.map(divide, [1, 0, 2]),
        Err(GetError::Panicked(_))
    ));
    for it in [
        Pool::new(1).imap(divide, [1, 0, 2]),
        Pool::new(1).imap_unordered(divide, [1, 0, 2]),
    ] {
        let got: Vec<_> = it.collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], Ok(100));
        assert!(matches!(&got[1], Err(GetError::Panicked(f)) if f.message() == "division by zero"));
        assert_eq!(got[2], Ok(50));
    }
    let error_iter = (1..=3).map(|i| {
        if i == 3 {
            panic!("ExpectedException")
        } else {
            i
        }
    });
    let got: Vec<_> = Pool::new(3)
        .imap_unordered(|x: i32| x, error_iter)
        .collect();
    assert_eq!(got.len(), 3);
    assert!(matches!(&got[2], Err(GetError::Panicked(f)) if f.message() == "ExpectedException"));
}

/// test_imap_no_stop (gevent issue 423): the input is a queue iterated until shut down.
#[test]
fn imap_over_queue() {
    let q: gevent::queue::Queue<i32> = gevent::queue::Queue::new();
    q.put(123).unwrap();
    let q2 = q.clone();
    gevent::spawn_later(Duration::from_millis(20), move || q2.shutdown());
    let q3 = q.clone();
    let items = std::iter::from_fn(move || q3.get().ok());
    let got: Vec<_> = Pool::new(2)
        .imap(|x| x, items)
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, [123]);
}

/// Group: tracks greenlets of any type, join, join_timeout, kill, contains.
#[test]
fn group_basics() {
    let g = Group::new();
    let a = g.spawn(|| 1);
    let b = g.spawn(|| gevent::sleep(Duration::from_secs(100)));
    assert_eq!(g.len(), 2);
    assert!(g.contains(&a) && g.contains(&b));
    assert!(!g.join_timeout(Duration::from_millis(10)));
    gevent::sleep(Duration::ZERO);
    assert!(!g.contains(&a), "finished greenlets leave the group");
    g.kill();
    assert!(b.ready());
    g.join();
    gevent::sleep(Duration::ZERO);
    assert!(g.is_empty());
    let c = gevent::spawn(|| "x");
    g.add(&c);
    g.join();
    assert_eq!(c.value(), Some("x"));
}
