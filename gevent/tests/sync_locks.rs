//! `gevent::sync::{Mutex, RwLock, Condvar}`: guards held across switches never freeze the hub;
//! FIFO hand-off; poisoning like std (kills excepted); usable across threads and hubs.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, TryLockError};
use std::time::{Duration, Instant};

use gevent::sync::{Condvar, Mutex, RwLock};

#[test]
fn a_mutex_held_across_sleep_never_freezes_the_hub() {
    let reports = Arc::new(AtomicUsize::new(0));
    let r = reports.clone();
    let monitor = gevent::monitor::start_with(Duration::from_millis(50), move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    let m = Rc::new(Mutex::new(Vec::new()));
    let ticks = Rc::new(Cell::new(0u32));
    let done = Rc::new(Cell::new(false));
    let (t2, d2) = (ticks.clone(), done.clone());
    let ticker = gevent::spawn(move || {
        while !d2.get() {
            t2.set(t2.get() + 1);
            gevent::sleep(Duration::from_millis(5));
        }
    });
    let m1 = m.clone();
    let holder = gevent::spawn(move || {
        let mut g = m1.lock().unwrap();
        g.push("holder in");
        gevent::sleep(Duration::from_millis(200));
        g.push("holder out");
    });
    let (m2, t3) = (m.clone(), ticks.clone());
    let other = gevent::spawn(move || {
        gevent::sleep(Duration::from_millis(10));
        let before = t3.get();
        let mut g = m2.lock().unwrap();
        g.push("other");
        t3.get() - before
    });
    holder.join();
    let ticks_while_parked = other.get().unwrap();
    done.set(true);
    ticker.join();
    monitor.stop();
    assert_eq!(*m.lock().unwrap(), ["holder in", "holder out", "other"]);
    assert!(
        ticks_while_parked >= 10,
        "the hub kept running while the lock was held: {ticks_while_parked} ticks"
    );
    assert_eq!(
        reports.load(Ordering::SeqCst),
        0,
        "the monitor saw no blocked hub"
    );
}

#[test]
fn mutex_is_fifo_with_hand_off() {
    let m = Rc::new(Mutex::new(()));
    let order = Rc::new(RefCell::new(Vec::new()));
    let g0 = m.lock().unwrap();
    let gs: Vec<_> = (0..5)
        .map(|i| {
            let (m, o) = (m.clone(), order.clone());
            gevent::spawn(move || {
                let _g = m.lock().unwrap();
                o.borrow_mut().push(i);
                gevent::sleep(Duration::ZERO);
            })
        })
        .collect();
    gevent::sleep(Duration::ZERO);
    drop(g0);
    // A latecomer does not barge ahead of the queue even though it runs first.
    assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    gevent::joinall(&gs);
    assert_eq!(*order.borrow(), [0, 1, 2, 3, 4]);
    assert!(m.try_lock().is_ok());
}

#[test]
fn mutex_across_threads_and_hubs() {
    let m = Arc::new(Mutex::new(0u64));
    let mut threads = Vec::new();
    for _ in 0..2 {
        let m1 = m.clone();
        threads.push(std::thread::spawn(move || {
            for _ in 0..500 {
                *m1.lock().unwrap() += 1;
            }
        }));
        let m = m.clone();
        threads.push(std::thread::spawn(move || {
            let gs: Vec<_> = (0..3)
                .map(|_| {
                    let m = m.clone();
                    gevent::spawn(move || {
                        for i in 0..200 {
                            let mut g = m.lock().unwrap();
                            let v = *g;
                            if i % 20 == 0 {
                                gevent::sleep(Duration::ZERO); // a switch while holding it
                            }
                            *g = v + 1;
                        }
                    })
                })
                .collect();
            gevent::joinall(&gs);
        }));
    }
    let gs: Vec<_> = (0..2)
        .map(|_| {
            let m = m.clone();
            gevent::spawn(move || {
                for _ in 0..300 {
                    let mut g = m.lock().unwrap();
                    let v = *g;
                    gevent::sleep(Duration::ZERO);
                    *g = v + 1;
                }
            })
        })
        .collect();
    gevent::joinall(&gs);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*m.lock().unwrap(), 2 * 500 + 2 * 3 * 200 + 2 * 300);
}

#[test]
fn lock_timeout_and_try_lock() {
    let m = Rc::new(Mutex::new(1));
    let m2 = m.clone();
    let holder = gevent::spawn(move || {
        let _g = m2.lock().unwrap();
        gevent::sleep(Duration::from_millis(100));
    });
    gevent::sleep(Duration::ZERO);
    assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    let t = Instant::now();
    assert!(matches!(
        m.lock_timeout(Duration::from_millis(20)),
        Err(TryLockError::WouldBlock)
    ));
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert_eq!(*m.lock_timeout(Duration::from_secs(5)).unwrap(), 1);
    holder.join();
}

#[test]
fn a_panic_poisons_a_kill_does_not() {
    let m = Rc::new(Mutex::new(0));
    let m2 = m.clone();
    let g = gevent::spawn(move || {
        let _g = m2.lock().unwrap();
        panic!("inside");
    });
    g.join();
    assert!(m.is_poisoned());
    let e = m.lock().unwrap_err();
    assert_eq!(*e.into_inner(), 0);
    m.clear_poison();

    let m3 = m.clone();
    let g = gevent::spawn(move || {
        let mut guard = m3.lock().unwrap();
        *guard = 1;
        gevent::sleep(Duration::from_secs(60));
    });
    gevent::sleep(Duration::ZERO);
    g.kill();
    assert!(
        !m.is_poisoned(),
        "a kill unwinding through the guard does not poison"
    );
    assert_eq!(*m.lock().unwrap(), 1);

    let m4 = m.clone();
    let g = gevent::spawn(move || {
        let _guard = m4.lock().unwrap();
        let _t = gevent::Timeout::start_new(Duration::from_millis(5));
        gevent::sleep(Duration::from_secs(60));
    });
    g.join();
    assert!(!g.successful(), "the Timeout ended it");
    assert!(!m.is_poisoned(), "nor does a Timeout");
}

#[test]
fn a_killed_lock_waiter_leaves_the_queue_and_passes_a_handed_lock_on() {
    let m = Rc::new(Mutex::new(Vec::new()));
    let g0 = m.lock().unwrap();
    let (ma, mb) = (m.clone(), m.clone());
    let a = gevent::spawn(move || ma.lock().unwrap().push("a"));
    let b = gevent::spawn(move || mb.lock().unwrap().push("b"));
    gevent::sleep(Duration::ZERO);
    a.kill_nowait();
    drop(g0); // handed to `a`, whose kill runs first: it passes the lock to `b`
    b.join();
    a.join();
    assert_eq!(*m.lock().unwrap(), ["b"]);

    // A waiter killed while still queued.
    let g0 = m.lock().unwrap();
    let mc = m.clone();
    let c = gevent::spawn(move || mc.lock().unwrap().push("c"));
    gevent::sleep(Duration::ZERO);
    c.kill();
    drop(g0);
    assert!(m.try_lock().is_ok(), "unlocked, nobody queued");
}

#[test]
fn condvar_between_a_greenlet_and_an_os_thread() {
    let pair = Arc::new((Mutex::new(Vec::<u32>::new()), Condvar::new()));
    let p2 = pair.clone();
    let t = std::thread::spawn(move || {
        let (m, cv) = &*p2;
        for i in 0..50 {
            m.lock().unwrap().push(i);
            cv.notify_all();
        }
    });
    let p3 = pair.clone();
    let g = gevent::spawn(move || {
        let (m, cv) = &*p3;
        let mut seen = 0;
        let mut g = m.lock().unwrap();
        loop {
            g = cv.wait_while(g, |v| v.len() == seen).unwrap();
            seen = g.len();
            if seen == 50 {
                return g.iter().sum::<u32>();
            }
        }
    });
    assert_eq!(g.get(), Ok((0..50).sum()));
    t.join().unwrap();
    let (m, cv) = &*pair;
    let (g, timed_out) = cv
        .wait_timeout(m.lock().unwrap(), Duration::from_millis(10))
        .unwrap();
    assert!(timed_out);
    drop(g);
}

#[test]
fn condvar_notify_one_to_a_killed_waiter_passes_on() {
    let pair = Rc::new((Mutex::new(0), Condvar::new()));
    let (pa, pb) = (pair.clone(), pair.clone());
    let a = gevent::spawn(move || {
        let g = pa.0.lock().unwrap();
        drop(pa.1.wait(g).unwrap());
    });
    let b = gevent::spawn(move || {
        let g = pb.0.lock().unwrap();
        drop(pb.1.wait(g).unwrap());
        "b woke"
    });
    gevent::sleep(Duration::ZERO);
    a.kill_nowait();
    pair.1.notify_one(); // reaches `a`, which is being killed: `b` gets it
    assert_eq!(b.get(), Ok("b woke"));
    a.join();
}

#[test]
fn rwlock_readers_share_writers_exclude() {
    let l = Rc::new(RwLock::new(0));
    let inside = Rc::new(Cell::new(0usize));
    let max_readers = Rc::new(Cell::new(0usize));
    let t = Instant::now();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (l, inside, max) = (l.clone(), inside.clone(), max_readers.clone());
            gevent::spawn(move || {
                let g = l.read().unwrap();
                inside.set(inside.get() + 1);
                max.set(max.get().max(inside.get()));
                gevent::sleep(Duration::from_millis(300));
                inside.set(inside.get() - 1);
                *g
            })
        })
        .collect();
    gevent::sleep(Duration::ZERO);
    let (lw, iw) = (l.clone(), inside.clone());
    let writer = gevent::spawn(move || {
        let mut g = lw.write().unwrap();
        assert_eq!(iw.get(), 0, "no reader inside while writing");
        *g += 1;
    });
    gevent::sleep(Duration::ZERO);
    // A reader arriving while the writer waits queues behind it.
    assert!(matches!(l.try_read(), Err(TryLockError::WouldBlock)));
    let (lr, il) = (l.clone(), inside.clone());
    let late = gevent::spawn(move || {
        let g = lr.read().unwrap();
        assert_eq!(il.get(), 0);
        *g
    });
    gevent::joinall(&readers);
    writer.join();
    assert!(writer.successful());
    assert_eq!(late.get(), Ok(1));
    assert_eq!(max_readers.get(), 3);
    assert!(
        t.elapsed() < Duration::from_millis(800),
        "readers held it together (one after the other: 900 ms)"
    );
    assert!(l.write_timeout(Duration::ZERO).is_ok());
}

#[test]
fn rwlock_across_threads() {
    let l = Arc::new(RwLock::new(Vec::<u32>::new()));
    let threads: Vec<_> = (0..3u32)
        .map(|k| {
            let l = l.clone();
            std::thread::spawn(move || {
                let g = gevent::spawn(move || {
                    for i in 0..100 {
                        if i % 10 == 0 {
                            l.write().unwrap().push(k);
                        } else {
                            let r = l.read().unwrap();
                            let n = r.len();
                            gevent::sleep(Duration::ZERO);
                            assert_eq!(r.len(), n, "no write while reading");
                        }
                    }
                });
                g.join();
                assert!(g.successful());
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(l.read().unwrap().len(), 30);
}

#[test]
fn a_killed_writer_in_the_queue_lets_the_readers_behind_it_in() {
    let l = Rc::new(RwLock::new(0));
    let r0 = l.read().unwrap();
    let lw = l.clone();
    let w = gevent::spawn(move || *lw.write().unwrap() += 1);
    gevent::sleep(Duration::ZERO);
    let lr = l.clone();
    let r = gevent::spawn(move || *lr.read().unwrap());
    gevent::sleep(Duration::ZERO);
    assert!(!r.ready(), "the reader queues behind the waiting writer");
    w.kill();
    assert_eq!(r.get(), Ok(0), "the writer left: the reader is let in");
    drop(r0);
    assert!(l.try_write().is_ok());
}

/// Timed-out and killed lockers racing unlocks from other threads never lose the lock nor let two in.
#[test]
fn lock_timeouts_and_kills_across_threads_keep_the_lock_consistent() {
    let m = Arc::new(Mutex::new(0u64));
    let inside = Arc::new(AtomicUsize::new(0));
    let hub_thread = |seed: u64| {
        let (m, inside) = (m.clone(), inside.clone());
        std::thread::spawn(move || {
            let gs: Vec<_> = (0..8u64)
                .map(|k| {
                    let (m, inside) = (m.clone(), inside.clone());
                    gevent::spawn(move || {
                        for i in 0..40u64 {
                            let t = Duration::from_micros(30 + (seed * 7 + k * 13 + i * 31) % 300);
                            if let Ok(mut g) = m.lock_timeout(t) {
                                // Left however this ends (a kill lands in the sleep too), before
                                // the guard unlocks (declared after it).
                                struct Inside<'a>(&'a AtomicUsize);
                                impl Drop for Inside<'_> {
                                    fn drop(&mut self) {
                                        self.0.fetch_sub(1, Ordering::SeqCst);
                                    }
                                }
                                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                                let _in = Inside(&inside);
                                *g += 1;
                                gevent::sleep(Duration::from_micros(20));
                            }
                        }
                    })
                })
                .collect();
            gevent::sleep(Duration::from_millis(3));
            for g in gs.iter().step_by(3) {
                g.kill();
            }
            gevent::joinall(&gs);
            gs.iter().filter(|g| g.successful()).count()
        })
    };
    let a = hub_thread(1);
    let b = hub_thread(2);
    let m2 = m.clone();
    let os = std::thread::spawn(move || {
        for _ in 0..100 {
            if let Ok(mut g) = m2.lock_timeout(Duration::from_micros(300)) {
                *g += 1;
            }
        }
    });
    os.join().unwrap();
    let done = a.join().unwrap() + b.join().unwrap();
    assert!(done > 0);
    assert!(!m.is_poisoned(), "kills do not poison");
    assert!(m.try_lock().is_ok(), "unlocked, nobody queued");
}
