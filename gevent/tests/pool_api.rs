//! gevent's Pool API (issue 15.4). Follows gevent's `src/gevent/tests/test__pool.py`:
//! `PoolBasicTests.test_add_method_non_blocking` (`PoolFull`), `test_start_method_timeout`
//! (`Pool.start`), `TestCoroutinePool.test_apply_async` and `TestPool.test_async_callback`
//! (`apply_async` with a callback), `TestPool.test_imap_unordered_bounded_queue` (`maxsize`),
//! and `Group.killone`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use gevent::pool::{Pool, PoolFull};
use gevent::Greenlet;

#[test]
fn non_blocking_add_reports_a_full_pool() {
    let p = Pool::new(1);
    let first = gevent::spawn(|| gevent::sleep(Duration::from_secs(1000)));
    let second = gevent::spawn(|| gevent::sleep(Duration::from_secs(1000)));
    assert_eq!(p.free_count(), 1);
    p.try_add(&first).unwrap();
    assert_eq!((p.free_count(), p.len()), (0, 1));
    assert_eq!(p.try_add(&second), Err(PoolFull));
    assert_eq!((p.free_count(), p.len()), (0, 1));
    assert!(!p.add_timeout(&second, Duration::from_millis(10)));
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    assert_eq!(p.try_spawn(move || r.set(true)).unwrap_err(), PoolFull);
    second.kill();
    first.kill();
    gevent::sleep(Duration::ZERO);
    assert!(!ran.get());
    assert_eq!(p.free_count(), 1);
    assert!(p.try_spawn(|| ()).is_ok());
    p.join();
}

#[test]
fn start_adds_and_starts() {
    let p = Pool::new(1);
    let g = Greenlet::new(|| 5);
    p.start(&g);
    assert!(p.contains(&g));
    assert_eq!(g.get(), Ok(5));
    // test_start_method_timeout: a full pool keeps `start` waiting.
    let first = p.spawn(|| gevent::sleep(Duration::from_secs(1000)));
    let second = Greenlet::new(|| 6);
    let r = gevent::with_timeout(Duration::from_millis(10), || p.start(&second));
    assert!(r.is_err());
    assert!(!second.started() && !p.contains(&second));
    first.kill();
    p.start(&second);
    assert_eq!(second.get(), Ok(6));
}

#[test]
fn apply_async_calls_back_with_the_value() {
    let p = Pool::new(2);
    let result = Rc::new(RefCell::new(Vec::new()));
    let r = result.clone();
    let g = p.apply_async(
        || {
            gevent::sleep(Duration::from_millis(5));
            7 * 7
        },
        move |v: &i32| r.borrow_mut().push(*v),
    );
    assert_eq!(g.get(), Ok(49));
    gevent::sleep(Duration::ZERO); // lets the callback run
    assert_eq!(*result.borrow(), [49]);
    // Not called when it panics.
    let r = result.clone();
    let g = p.apply_async(
        || -> i32 { panic!("no") },
        move |v: &i32| r.borrow_mut().push(*v),
    );
    g.join();
    gevent::sleep(Duration::ZERO);
    assert_eq!(*result.borrow(), [49]);
}

#[test]
fn map_async_calls_back_with_all_results() {
    let p = Pool::new(2);
    let got = Rc::new(RefCell::new(None));
    let g2 = got.clone();
    let g = p.map_async(
        |x: u32| x * x,
        vec![1, 2, 3],
        move |v: &Vec<u32>| *g2.borrow_mut() = Some(v.clone()),
    );
    assert!(!g.ready(), "returns at once");
    assert_eq!(g.get().unwrap(), Ok(vec![1, 4, 9]));
    gevent::sleep(Duration::ZERO);
    assert_eq!(*got.borrow(), Some(vec![1, 4, 9]));
}

#[test]
fn imap_bounded_limits_what_is_pending() {
    // test_imap_unordered_bounded_queue, maxsize=1: however many workers, at most one result
    // waits for the (slow) reader.
    for ordered in [true, false] {
        let p = Pool::new(10);
        let running = Rc::new(Cell::new(0usize));
        let r = running.clone();
        let f = move |i: usize| {
            r.set(r.get() + 1);
            i
        };
        let it = if ordered {
            p.imap_bounded(f, 0..100, 1)
        } else {
            p.imap_unordered_bounded(f, 0..100, 1)
        };
        let mut got = Vec::new();
        for (i, x) in it.enumerate() {
            assert!(
                running.get() <= i + 2,
                "{} items started by item {i}",
                running.get()
            );
            got.push(x.unwrap());
            gevent::sleep(Duration::from_micros(100));
        }
        got.sort();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }
}

#[test]
fn killone_kills_a_member_only() {
    let p = Pool::new(2);
    let a = p.spawn(|| gevent::sleep(Duration::from_secs(1000)));
    let outsider = gevent::spawn(|| gevent::sleep(Duration::from_secs(1000)));
    gevent::sleep(Duration::ZERO);
    assert!(p.killone(&a));
    assert!(a.ready() && !p.contains(&a));
    assert_eq!(p.free_count(), 2);
    assert!(!p.killone(&outsider));
    assert!(!outsider.ready());
    outsider.kill();
    let g = gevent::pool::Group::new();
    let b = g.spawn(|| gevent::sleep(Duration::from_secs(1000)));
    assert!(g.killone(&b));
    assert!(b.ready() && g.is_empty());
}
