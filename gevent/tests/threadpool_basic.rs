//! `gevent::threadpool::ThreadPool`: results and panics come back, the hub keeps running, the number
//! of threads is bounded (and can be changed), `spawn` hands back a handle that greenlets on any hub
//! and OS threads can wait for.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gevent::threadpool::{default_pool, ThreadPool};

#[test]
fn result_and_panic_come_back() {
    let pool = ThreadPool::new(2);
    assert_eq!(pool.spawn(|| 40 + 2).join().unwrap(), 42);
    let p = pool
        .spawn(|| -> u8 { panic!("on a worker") })
        .join()
        .unwrap_err();
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

#[test]
fn spawn_returns_at_once_and_the_handle_is_waited_from_a_greenlet_and_a_thread() {
    let pool = ThreadPool::new(2);
    let gate = gevent::sync::Event::new();
    let g2 = gate.clone();
    // The job waits for a gate opened only below: a spawn that waited for it would never return.
    let h = pool.spawn(move || {
        g2.wait(); // a worker thread: blocks it
        "done"
    });
    assert!(!h.ready());
    assert!(!h.wait_timeout(Duration::from_millis(10)));
    // Waited from a greenlet while an OS thread opens the gate.
    let opener = std::thread::spawn(move || gate.set());
    let g = gevent::spawn(move || h.join().unwrap());
    assert_eq!(g.get(), Ok("done"));
    opener.join().unwrap();

    // Joined from a plain OS thread (no hub there: it blocks).
    let h = pool.spawn(|| {
        std::thread::sleep(Duration::from_millis(20));
        7
    });
    let joiner = std::thread::spawn(move || {
        h.wait();
        assert!(h.ready() && h.successful());
        h.join().unwrap()
    });
    assert_eq!(joiner.join().unwrap(), 7);

    // And from a greenlet on another hub.
    let h = pool.spawn(|| 8);
    let other = std::thread::spawn(move || gevent::spawn(move || h.join().unwrap()).get());
    assert_eq!(other.join().unwrap(), Ok(8));
}

#[test]
fn map_and_imap_keep_the_order() {
    let pool = ThreadPool::new(3);
    let v = pool.map(
        |x: u64| {
            std::thread::sleep(Duration::from_millis(10 - x));
            x * x
        },
        0..10,
    );
    assert_eq!(v, (0..10).map(|x| x * x).collect::<Vec<_>>());
    // imap over an endless iterator: only a window is in flight.
    let first: Vec<u64> = pool.imap(|x: u64| x + 1, 0..).take(5).collect();
    assert_eq!(first, [1, 2, 3, 4, 5]);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.map(|x: u32| if x == 2 { panic!("item 2") } else { x }, 0..4)
    }));
    assert_eq!(greenlet::panic_message(&*r.unwrap_err()), "item 2");
}

#[test]
fn maxsize_can_change_at_run_time() {
    let pool = ThreadPool::new(1);
    let live = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let gate = gevent::sync::Event::new();
    let job = |live: Arc<AtomicUsize>, peak: Arc<AtomicUsize>, gate: gevent::sync::Event| {
        move || {
            let n = live.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
            gate.wait();
            live.fetch_sub(1, Ordering::SeqCst);
        }
    };
    let hs: Vec<_> = (0..4)
        .map(|_| pool.spawn(job(live.clone(), peak.clone(), gate.clone())))
        .collect();
    let end = Instant::now() + Duration::from_secs(5);
    while live.load(Ordering::SeqCst) < 1 && Instant::now() < end {
        gevent::sleep(Duration::from_millis(1));
    }
    assert_eq!(pool.size(), 1);
    assert_eq!(pool.queued(), 3);
    pool.set_maxsize(4).unwrap();
    assert_eq!(pool.maxsize(), 4);
    while live.load(Ordering::SeqCst) < 4 && Instant::now() < end {
        gevent::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        live.load(Ordering::SeqCst),
        4,
        "the new threads took the queued jobs"
    );
    gate.set();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(peak.load(Ordering::SeqCst), 4);
    // Smaller again: the idle threads beyond it exit.
    pool.set_maxsize(2).unwrap();
    while pool.size() > 2 && Instant::now() < end {
        gevent::sleep(Duration::from_millis(1));
    }
    assert_eq!(pool.size(), 2);
    assert_eq!(pool.apply(|| 3), 3);
}

#[test]
fn a_killed_joiner_leaves_the_job_running() {
    let pool = ThreadPool::new(1);
    let ran = Arc::new(AtomicUsize::new(0));
    let r2 = ran.clone();
    let h = pool.spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        r2.fetch_add(1, Ordering::SeqCst);
    });
    let g = gevent::spawn(move || h.join());
    gevent::sleep(Duration::from_millis(5));
    g.kill();
    assert!(g.ready());
    pool.apply(|| ()); // queued behind the first job: it has run
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

#[test]
fn job_handle_is_send_and_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<gevent::threadpool::JobHandle<Vec<u8>>>();
}
