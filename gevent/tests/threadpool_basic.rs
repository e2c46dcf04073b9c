//! `gevent::threadpool::ThreadPool`: results and panics come back, the hub keeps running, the number
//! of threads is bounded.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gevent::threadpool::{default_pool, ThreadPool};

#[test]
fn result_and_panic_come_back() {
    let pool = ThreadPool::new(2);
    assert_eq!(pool.spawn(|| 40 + 2).unwrap(), 42);
    let p = pool.spawn(|| -> u8 { panic!("on a worker") }).unwrap_err();
    assert_eq!(greenlet::panic_message(&*p), "on a worker");
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.apply(|| -> u8 { panic!("again") })
    }));
    assert_eq!(greenlet::panic_message(&*r.unwrap_err()), "again");
    assert_eq!(pool.apply(|| "still works"), "still works");
}

#[test]
fn hub_keeps_running_while_a_thread_blocks() {
    let ticks = Rc::new(Cell::new(0u32));
    let t2 = ticks.clone();
    let ticker = gevent::spawn(move || {
        for _ in 0..10 {
            gevent::sleep(Duration::from_millis(10));
            t2.set(t2.get() + 1);
        }
    });
    let pool = default_pool();
    pool.apply(|| std::thread::sleep(Duration::from_millis(300)));
    assert!(
        ticks.get() >= 5,
        "ticks during the blocking call: {}",
        ticks.get()
    );
    ticker.join();
}

#[test]
fn threads_are_bounded_and_greenlets_wait_concurrently() {
    let pool = ThreadPool::new(3);
    let live = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let gs: Vec<_> = (0..9)
        .map(|i| {
            let pool = pool.clone();
            let live = live.clone();
            let peak = peak.clone();
            gevent::spawn(move || {
                pool.apply(move || {
                    let n = live.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(60));
                    live.fetch_sub(1, Ordering::SeqCst);
                    i * 2
                })
            })
        })
        .collect();
    gevent::joinall(&gs);
    let el = t.elapsed();
    for (i, g) in gs.iter().enumerate() {
        assert_eq!(g.value(), Some(i * 2));
    }
    assert!(peak.load(Ordering::SeqCst) <= 3);
    assert!(pool.size() <= 3);
    // 9 jobs of 60 ms on 3 threads: at least 3 rounds, and far less than 9 in a row.
    assert!(el >= Duration::from_millis(180), "{el:?}");
    assert!(el < Duration::from_millis(500), "{el:?}");
}

#[test]
fn killed_caller_does_not_break_the_pool() {
    let pool = ThreadPool::new(1);
    let p2 = pool.clone();
    let g = gevent::spawn(move || p2.apply(|| std::thread::sleep(Duration::from_millis(100))));
    gevent::sleep(Duration::from_millis(10));
    g.kill();
    assert!(g.ready());
    assert_eq!(pool.apply(|| 5), 5);
}

#[test]
fn the_main_greenlet_waiting_on_the_pool_is_not_loop_exit() {
    // Nothing else is scheduled: the hub must wait for the thread rather than give up.
    let v = ThreadPool::new(1).apply(|| {
        std::thread::sleep(Duration::from_millis(50));
        9
    });
    assert_eq!(v, 9);
}

#[test]
fn thread_pool_is_send_and_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<ThreadPool>();
}
