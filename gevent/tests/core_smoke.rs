//! Smoke tests of the hub, spawn/join, kill, Timeout and LoopExit (the full ports live in the
//! `greenlet_*`, `joinall_*`, `timeout_*` files).

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

#[test]
fn three_sleeps_overlap() {
    let t = Instant::now();
    let gs: Vec<_> = (0..3)
        .map(|_| gevent::spawn(|| gevent::sleep(Duration::from_millis(200))))
        .collect();
    gevent::joinall(&gs);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert!(t.elapsed() >= Duration::from_millis(200));
}

#[test]
fn join_on_greenlet_waiting_forever_is_loop_exit() {
    let g = gevent::spawn(|| gevent::Waiter::new().wait());
    let r = catch_unwind(AssertUnwindSafe(|| g.join()));
    let msg = greenlet::panic_message(&*r.unwrap_err());
    assert!(msg.contains("would block forever"), "{msg}");
    assert_eq!(
        g.get_timeout(Duration::ZERO),
        Err(gevent::GetError::NotReady)
    );
}

#[test]
fn kill_runs_destructors_and_links() {
    struct Flag(Rc<RefCell<Vec<&'static str>>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.borrow_mut().push("dropped");
        }
    }
    let log = Rc::new(RefCell::new(Vec::new()));
    let l2 = log.clone();
    let g = gevent::spawn(move || {
        let _f = Flag(l2);
        gevent::sleep(Duration::from_secs(100));
    });
    let l3 = log.clone();
    g.link(move |_| l3.borrow_mut().push("linked"));
    gevent::sleep(Duration::ZERO); // let it start and park
    assert!(g.started() && !g.ready());
    g.kill();
    assert!(g.ready() && g.successful());
    assert_eq!(g.get(), Err(gevent::GetError::Killed));
    gevent::sleep(Duration::ZERO); // links run in the hub
    assert_eq!(*log.borrow(), ["dropped", "linked"]);
}

#[test]
fn kill_before_start_never_runs() {
    let ran = Rc::new(RefCell::new(false));
    let r2 = ran.clone();
    let g = gevent::spawn(move || *r2.borrow_mut() = true);
    g.kill();
    gevent::sleep(Duration::from_millis(1));
    assert!(!*ran.borrow());
    assert!(g.ready());
}

#[test]
fn panic_is_kept_and_others_go_on() {
    let bad = gevent::spawn(|| -> i32 { panic!("boom") });
    let good = gevent::spawn(|| 7);
    gevent::joinall([&bad, &good]);
    assert_eq!(good.get(), Ok(7));
    match bad.get() {
        Err(gevent::GetError::Panicked(f)) => assert_eq!(f.message(), "boom"),
        other => panic!("{other:?}"),
    }
    assert!(!bad.successful());
}

#[test]
fn nested_timeouts_each_catch_their_own() {
    let t = Instant::now();
    let outer = gevent::with_timeout(Duration::from_millis(300), || {
        let inner = gevent::with_timeout(Duration::from_millis(30), || {
            gevent::sleep(Duration::from_secs(10));
        });
        assert!(inner.is_err());
        gevent::sleep(Duration::from_secs(10));
    });
    assert_eq!(outer.unwrap_err().duration(), Duration::from_millis(300));
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn sleep_zero_round_robin() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = (0..3)
        .map(|i| {
            let log = log.clone();
            gevent::spawn(move || {
                for r in 0..2 {
                    log.borrow_mut().push((r, i));
                    gevent::sleep(Duration::ZERO);
                }
            })
        })
        .collect();
    gevent::joinall(&gs);
    assert_eq!(
        *log.borrow(),
        [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    );
}
