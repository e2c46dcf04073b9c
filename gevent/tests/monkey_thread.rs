//! Issue 16: under `monkey::patch_thread()` (part of `patch_all`), std's locks, condvars, channels,
//! parking and joins wait cooperatively inside greenlets: the waiting greenlet parks, the hub keeps
//! running the others. gevent's counterpart is `patch_thread` making `threading.Lock`,
//! `Condition`, `queue.Queue` and `Thread.join` cooperative (src/gevent/tests/test__monkey*.py,
//! test__threading_vs_settrace.py); here std's types are used as a new user would. Every wait is
//! bounded.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Condvar, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

#[path = "support/bounded.rs"]
mod bounded_support;
use bounded_support::{kill_promptly, QuietMonitor, Ticker};
#[path = "support/locks.rs"]
mod locks;
use locks::{Locks, ParkingLot, Std};

/// A wait that froze the hub fails the test after this long instead of hanging it.
const LIMIT: Duration = Duration::from_secs(30);

fn bounded(body: fn()) {
    bounded_support::bounded(LIMIT, body)
}

fn ticker() -> Ticker {
    Ticker::start(2000)
}

#[test]
fn std_mutex_held_across_a_switch_parks_the_second_locker() {
    bounded(std_mutex_held_across_a_switch_parks_the_second_locker_body);
}

fn std_mutex_held_across_a_switch_parks_the_second_locker_body() {
    mutex_held_across_a_switch_parks_the_second_locker::<Std>();
}

/// A `Mutex` held across `gevent::sleep` by one greenlet and locked by another of the same thread
/// parks the second, the hub keeps running, and the second gets the lock when the first lets go.
/// Nothing blocks the thread (the monitor is quiet).
fn mutex_held_across_a_switch_parks_the_second_locker<L: Locks>() {
    gevent::monkey::patch_all();
    let monitor = QuietMonitor::start();
    let tick = ticker();
    let lock = Arc::new(L::mutex(Vec::new()));
    let l1 = lock.clone();
    let a = gevent::spawn(move || {
        let mut g = L::lock(&l1);
        g.push("a");
        gevent::sleep(Duration::from_millis(200));
        g.push("a done");
    });
    let l2 = lock.clone();
    let b = gevent::spawn(move || {
        gevent::sleep(Duration::from_millis(20)); // let `a` take the lock
        let t = Instant::now();
        L::lock(&l2).push("b");
        t.elapsed()
    });
    a.get().unwrap();
    let waited = b.get().unwrap();
    let ticks = tick.stop();
    monitor.stop();
    assert_eq!(*L::lock(&lock), ["a", "a done", "b"]);
    assert!(waited >= Duration::from_millis(150), "b waited {waited:?}");
    assert!(ticks >= 25, "the hub kept running: {ticks} ticks in 200 ms");
    assert_eq!(gevent::monkey::parked_count(), 0);
}

#[test]
fn condvar_between_greenlets_notify_one_and_all() {
    bounded(condvar_between_greenlets_notify_one_and_all_body);
}

fn condvar_between_greenlets_notify_one_and_all_body() {
    gevent::monkey::patch_all();
    let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    let mut waiters = Vec::new();
    for _ in 0..3 {
        let p = pair.clone();
        waiters.push(gevent::spawn(move || {
            let (m, cv) = &*p;
            let g = cv.wait_while(m.lock().unwrap(), |v| *v == 0).unwrap();
            *g
        }));
    }
    let p = pair.clone();
    let notifier = gevent::spawn(move || {
        gevent::sleep(Duration::from_millis(30));
        let (m, cv) = &*p;
        *m.lock().unwrap() = 7;
        cv.notify_one();
        gevent::sleep(Duration::from_millis(30));
        cv.notify_all();
    });
    notifier.get().unwrap();
    for w in waiters {
        assert_eq!(w.get_timeout(Duration::from_secs(5)).unwrap(), 7);
    }
    assert_eq!(gevent::monkey::parked_count(), 0);
}

#[test]
fn condvar_between_greenlet_and_os_thread_both_ways() {
    bounded(condvar_between_greenlet_and_os_thread_both_ways_body);
}

fn condvar_between_greenlet_and_os_thread_both_ways_body() {
    gevent::monkey::patch_all();
    let tick = ticker();
    let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    // An OS thread notifies a greenlet.
    let p = pair.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        let (m, cv) = &*p;
        *m.lock().unwrap() = 1;
        cv.notify_all();
        // Then waits for the greenlet's answer.
        let g = cv
            .wait_timeout_while(m.lock().unwrap(), Duration::from_secs(5), |v| *v != 2)
            .unwrap();
        *g.0
    });
    let p = pair.clone();
    let g = gevent::spawn(move || {
        let (m, cv) = &*p;
        let mut g = cv.wait_while(m.lock().unwrap(), |v| *v != 1).unwrap();
        *g = 2;
        cv.notify_all();
    });
    let started = Instant::now();
    g.get_timeout(Duration::from_secs(5)).unwrap();
    let waited = started.elapsed();
    let ticks = tick.stop();
    assert_eq!(t.join().unwrap(), 2);
    assert!(
        ticks as u128 * 5 * 3 >= waited.as_millis(),
        "{ticks} ticks in {waited:?}: the hub stopped"
    );
}

#[test]
fn mpsc_recv_from_os_thread_keeps_the_hub_running() {
    bounded(mpsc_recv_from_os_thread_keeps_the_hub_running_body);
}

fn mpsc_recv_from_os_thread_keeps_the_hub_running_body() {
    gevent::monkey::patch_all();
    let tick = ticker();
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        tx.send(42).unwrap();
    });
    let g = gevent::spawn(move || rx.recv().unwrap());
    assert_eq!(g.get_timeout(Duration::from_secs(5)).unwrap(), 42);
    let ticks = tick.stop();
    t.join().unwrap();
    assert!(ticks >= 20, "{ticks} ticks in 200 ms: the hub stopped");
}

#[test]
fn rwlock_barrier_oncelock_between_greenlets() {
    bounded(rwlock_barrier_oncelock_between_greenlets_body);
}

fn rwlock_barrier_oncelock_between_greenlets_body() {
    gevent::monkey::patch_all();
    // RwLock: a writer holds it across a switch; readers park, then all read the new value.
    let rw = Arc::new(RwLock::new(0));
    let w = {
        let rw = rw.clone();
        gevent::spawn(move || {
            let mut g = rw.write().unwrap();
            gevent::sleep(Duration::from_millis(50));
            *g = 5;
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let rw = rw.clone();
            gevent::spawn(move || {
                gevent::sleep(Duration::from_millis(5));
                *rw.read().unwrap()
            })
        })
        .collect();
    w.get().unwrap();
    for r in readers {
        assert_eq!(r.get_timeout(Duration::from_secs(5)).unwrap(), 5);
    }

    // Barrier: 4 greenlets meet.
    let b = Arc::new(Barrier::new(4));
    let gs: Vec<_> = (0..4)
        .map(|i| {
            let b = b.clone();
            gevent::spawn(move || {
                gevent::sleep(Duration::from_millis(10 * i));
                b.wait().is_leader()
            })
        })
        .collect();
    let leaders = gs
        .into_iter()
        .filter(|g| g.get_timeout(Duration::from_secs(5)).unwrap())
        .count();
    assert_eq!(leaders, 1);

    // OnceLock: the initialiser switches; the racing greenlets wait for its value.
    let cell = Arc::new(OnceLock::new());
    let inits = Arc::new(AtomicUsize::new(0));
    let gs: Vec<_> = (0..5)
        .map(|i| {
            let cell = cell.clone();
            let inits = inits.clone();
            gevent::spawn(move || {
                *cell.get_or_init(|| {
                    inits.fetch_add(1, Ordering::SeqCst);
                    gevent::sleep(Duration::from_millis(50));
                    i
                })
            })
        })
        .collect();
    let vals: Vec<_> = gs
        .into_iter()
        .map(|g| g.get_timeout(Duration::from_secs(5)).unwrap())
        .collect();
    assert_eq!(inits.load(Ordering::SeqCst), 1);
    assert!(vals.iter().all(|v| *v == vals[0]), "{vals:?}");
    assert_eq!(gevent::monkey::parked_count(), 0);
}

#[test]
fn thread_park_unpark_from_os_thread() {
    bounded(thread_park_unpark_from_os_thread_body);
}

fn thread_park_unpark_from_os_thread_body() {
    gevent::monkey::patch_all();
    let tick = ticker();
    let me = std::thread::current();
    let flag = Arc::new(AtomicBool::new(false));
    let f2 = flag.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        f2.store(true, Ordering::SeqCst);
        me.unpark();
    });
    let f3 = flag.clone();
    let g = gevent::spawn(move || {
        let end = Instant::now() + Duration::from_secs(5);
        while !f3.load(Ordering::SeqCst) && Instant::now() < end {
            std::thread::park();
        }
        f3.load(Ordering::SeqCst)
    });
    assert!(g.get_timeout(Duration::from_secs(6)).unwrap());
    let ticks = tick.stop();
    t.join().unwrap();
    assert!(ticks >= 15, "{ticks} ticks in 150 ms: the hub stopped");
}

#[test]
fn join_of_an_os_thread_keeps_the_hub_running() {
    bounded(join_of_an_os_thread_keeps_the_hub_running_body);
}

fn join_of_an_os_thread_keeps_the_hub_running_body() {
    gevent::monkey::patch_all();
    let tick = ticker();
    let g = gevent::spawn(|| {
        let t = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            "finished"
        });
        t.join().unwrap()
    });
    assert_eq!(g.get_timeout(Duration::from_secs(5)).unwrap(), "finished");
    let ticks = tick.stop();
    assert!(ticks >= 20, "{ticks} ticks in 200 ms: the hub stopped");
}

#[test]
fn timeout_in_condvar_wait_reaches_the_caller_and_leaves_nothing_parked() {
    bounded(timeout_in_condvar_wait_reaches_the_caller_and_leaves_nothing_parked_body);
}

fn timeout_in_condvar_wait_reaches_the_caller_and_leaves_nothing_parked_body() {
    timeout_in_condvar_wait_for_reaches_the_caller::<Std>();
}

/// A gevent `Timeout` of 50 ms landing in a `Condvar` wait of 5 s ends it early and reaches the
/// caller at `with_timeout`'s boundary; nothing is left parked. Returns the mutex and condvar.
fn timeout_in_condvar_wait_for_reaches_the_caller<L: Locks>() -> Arc<(L::Mutex<u32>, L::Condvar)> {
    gevent::monkey::patch_all();
    let pair = Arc::new((L::mutex(0u32), L::condvar()));
    let p = pair.clone();
    let g = gevent::spawn(move || {
        let t = Instant::now();
        let (m, cv) = &*p;
        let r = gevent::with_timeout(Duration::from_millis(50), || {
            L::wait_for(cv, L::lock(m), Duration::from_secs(5)).1
        });
        (r.map_err(|e| e.duration()), t.elapsed())
    });
    let (r, elapsed) = g.get_timeout(Duration::from_secs(6)).unwrap();
    assert_eq!(r, Err(Duration::from_millis(50)));
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(gevent::monkey::parked_count(), 0);
    pair
}

#[test]
fn timeout_in_mutex_lock_is_raised_once_the_lock_is_taken() {
    bounded(timeout_in_mutex_lock_is_raised_once_the_lock_is_taken_body);
}

fn timeout_in_mutex_lock_is_raised_once_the_lock_is_taken_body() {
    timeout_in_lock_is_raised_once_the_lock_is_taken::<Std>();
}

/// `lock()` has no error path (parking_lot's untimed wait, too, treats any return as an unpark): a
/// gevent `Timeout` landing there is kept, the greenlet takes the lock when its holder lets go,
/// and the timeout, which fired meanwhile, reaches the caller at `with_timeout`'s boundary.
fn timeout_in_lock_is_raised_once_the_lock_is_taken<L: Locks>() {
    gevent::monkey::patch_all();
    let lock = Arc::new(L::mutex(0i32));
    let l1 = lock.clone();
    let a = gevent::spawn(move || {
        let mut g = L::lock(&l1);
        gevent::sleep(Duration::from_millis(150));
        *g += 1;
    });
    let l2 = lock.clone();
    let b = gevent::spawn(move || {
        gevent::sleep(Duration::from_millis(10));
        let t = Instant::now();
        let r = gevent::with_timeout(Duration::from_millis(30), || {
            *L::lock(&l2) += 10;
        });
        (r.is_err(), t.elapsed())
    });
    a.get().unwrap();
    let (timed_out, elapsed) = b.get_timeout(Duration::from_secs(5)).unwrap();
    assert!(timed_out);
    assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
    assert_eq!(*L::lock(&lock), 11);
    assert_eq!(gevent::monkey::parked_count(), 0);
}

#[test]
fn kill_in_condvar_wait_ends_the_greenlet_and_leaves_nothing_parked() {
    bounded(kill_in_condvar_wait_ends_the_greenlet_and_leaves_nothing_parked_body);
}

fn kill_in_condvar_wait_ends_the_greenlet_and_leaves_nothing_parked_body() {
    // An untimed wait; the guard is dropped before the kill lands (an unwind would poison it).
    kill_in_condvar_wait::<Std>(false, false, || {});
}

/// A greenlet waits on a `Condvar` nobody notifies (untimed, or for 5 s if `timed`), then sleeps,
/// holding the guard or not (`hold_guard`). A kill landing in the wait ends the wait at once and
/// the greenlet at its sleep: the kill takes under a second, nothing after the sleep runs,
/// nothing is left parked, and the mutex is free again (released by the unwind if held).
/// `while_parked` runs while the greenlet waits. Returns the mutex and condvar.
fn kill_in_condvar_wait<L: Locks>(
    timed: bool,
    hold_guard: bool,
    while_parked: impl FnOnce(),
) -> Arc<(L::Mutex<u32>, L::Condvar)> {
    gevent::monkey::patch_all();
    let pair = Arc::new((L::mutex(0u32), L::condvar()));
    let p = pair.clone();
    let after = Rc::new(Cell::new(false));
    let a2 = after.clone();
    let g = gevent::spawn(move || {
        let (m, cv) = &*p;
        let g = L::lock(m);
        // Nobody notifies.
        let g = if timed {
            L::wait_for(cv, g, Duration::from_secs(5)).0
        } else {
            L::wait(cv, g)
        };
        let held = if hold_guard {
            Some(g)
        } else {
            drop(g);
            None
        };
        gevent::sleep(Duration::from_secs(5)); // the kill is raised here
        drop(held);
        a2.set(true);
    });
    gevent::sleep(Duration::from_millis(30));
    assert_eq!(gevent::monkey::parked_count(), 1, "parked in the condvar");
    while_parked();
    kill_promptly(&g);
    assert!(!after.get());
    assert_eq!(gevent::monkey::parked_count(), 0);
    assert!(L::is_free(&pair.0), "the guard was released");
    pair
}

#[test]
fn kill_in_mutex_lock_takes_effect_once_the_lock_is_taken() {
    bounded(kill_in_mutex_lock_takes_effect_once_the_lock_is_taken_body);
}

fn kill_in_mutex_lock_takes_effect_once_the_lock_is_taken_body() {
    gevent::monkey::patch_all();
    let lock = Arc::new(Mutex::new(Vec::new()));
    let l1 = lock.clone();
    let a = gevent::spawn(move || {
        let mut g = l1.lock().unwrap();
        gevent::sleep(Duration::from_millis(100));
        g.push("a");
    });
    let l2 = lock.clone();
    let b = gevent::spawn(move || {
        gevent::sleep(Duration::from_millis(5));
        l2.lock().unwrap().push("b");
        gevent::sleep(Duration::from_secs(5)); // the kill is raised here
        l2.lock().unwrap().push("b after");
    });
    gevent::sleep(Duration::from_millis(30));
    assert!(b.kill_timeout(Duration::from_secs(2)));
    a.get().unwrap();
    assert_eq!(b.get(), Err(gevent::GetError::Killed));
    assert_eq!(*lock.lock().unwrap(), ["a", "b"]);
    assert_eq!(gevent::monkey::parked_count(), 0);
}

#[test]
fn parking_lot_mutex_shared_by_greenlets_and_threads_stays_consistent() {
    bounded(parking_lot_mutex_shared_by_greenlets_and_threads_stays_consistent_body);
}

/// Greenlets (each with its own parking_lot wait state, through the workspace's patched
/// parking_lot_core) and OS threads hammering one parking_lot `Mutex` and `Condvar` under
/// `patch_all` finish with a consistent count.
fn parking_lot_mutex_shared_by_greenlets_and_threads_stays_consistent_body() {
    gevent::monkey::patch_all();
    let state = Arc::new((parking_lot::Mutex::new(0u64), parking_lot::Condvar::new()));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let s = state.clone();
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    *s.0.lock() += 1;
                    s.1.notify_all();
                }
            })
        })
        .collect();
    let gs: Vec<_> = (0..4)
        .map(|_| {
            let s = state.clone();
            gevent::spawn(move || {
                for i in 0..200 {
                    *s.0.lock() += 1;
                    if i % 10 == 0 {
                        gevent::sleep(Duration::ZERO);
                    }
                }
            })
        })
        .collect();
    for g in gs {
        g.get_timeout(Duration::from_secs(20)).unwrap();
    }
    // A greenlet waits on the Condvar for the threads' last increments.
    let s = state.clone();
    let waiter = gevent::spawn(move || {
        let mut g = s.0.lock();
        while *g < 4800 {
            s.1.wait_for(&mut g, Duration::from_millis(100));
        }
        *g
    });
    assert_eq!(waiter.get_timeout(Duration::from_secs(20)).unwrap(), 4800);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(gevent::monkey::parked_count(), 0);
}

#[test]
fn parking_lot_mutex_held_across_a_switch_parks_the_second_locker() {
    bounded(parking_lot_mutex_held_across_a_switch_parks_the_second_locker_body);
}

/// With the workspace's patched parking_lot_core, each greenlet has its own parking_lot wait
/// state, so a parking_lot `Mutex` behaves as std's here.
fn parking_lot_mutex_held_across_a_switch_parks_the_second_locker_body() {
    mutex_held_across_a_switch_parks_the_second_locker::<ParkingLot>();
}

#[test]
fn parking_lot_condvar_between_greenlets_notify_one_and_all() {
    bounded(parking_lot_condvar_between_greenlets_notify_one_and_all_body);
}

/// Three greenlets wait on one parking_lot `Condvar`: `notify_one` wakes exactly one, and
/// `notify_all` the other two; the main greenlet, meanwhile, waits on a second `Condvar` for
/// them (its own wait state, kept for the thread's lifetime).
fn parking_lot_condvar_between_greenlets_notify_one_and_all_body() {
    gevent::monkey::patch_all();
    let monitor = QuietMonitor::start();
    let tick = ticker();
    // (generation, woken), the condvar the waiters wait on, the one the main greenlet waits on.
    let state = Arc::new((
        parking_lot::Mutex::new((0u32, 0u32)),
        parking_lot::Condvar::new(),
        parking_lot::Condvar::new(),
    ));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let s = state.clone();
            gevent::spawn(move || {
                let mut g = s.0.lock();
                let seen = g.0;
                while g.0 == seen {
                    s.1.wait(&mut g);
                }
                g.1 += 1;
                s.2.notify_all();
            })
        })
        .collect();
    gevent::sleep(Duration::from_millis(20)); // all three wait
    let woken_by = |n: u32| {
        let mut g = state.0.lock();
        g.0 += 1;
        if n == 1 {
            assert!(state.1.notify_one(), "a waiter was parked");
        } else {
            assert_eq!(state.1.notify_all(), 2, "two waiters left");
        }
        while g.1 < n {
            assert!(
                !state.2.wait_for(&mut g, Duration::from_secs(5)).timed_out(),
                "the woken greenlets did not report"
            );
        }
        g.1
    };
    assert_eq!(woken_by(1), 1);
    gevent::sleep(Duration::from_millis(20));
    assert_eq!(state.0.lock().1, 1, "notify_one woke one greenlet only");
    assert_eq!(woken_by(3), 3);
    for w in waiters {
        w.get_timeout(Duration::from_secs(5)).unwrap();
    }
    assert!(tick.stop() >= 5, "the hub kept running");
    monitor.stop();
    assert_eq!(gevent::monkey::parked_count(), 0);
}

#[test]
fn parking_lot_condvar_between_greenlets_and_an_os_thread_both_ways() {
    bounded(parking_lot_condvar_between_greenlets_and_an_os_thread_both_ways_body);
}

/// An OS thread wakes two greenlets waiting on a parking_lot `Condvar` (`notify_all`), then
/// waits on it itself until both answered; the hub kept ticking throughout.
fn parking_lot_condvar_between_greenlets_and_an_os_thread_both_ways_body() {
    gevent::monkey::patch_all();
    let monitor = QuietMonitor::start();
    let tick = ticker();
    let pair = Arc::new((parking_lot::Mutex::new(0u32), parking_lot::Condvar::new()));
    let p = pair.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        let (m, cv) = &*p;
        let mut g = m.lock();
        *g = 1;
        cv.notify_all();
        let deadline = Instant::now() + Duration::from_secs(5);
        while *g != 3 && !cv.wait_until(&mut g, deadline).timed_out() {}
        *g
    });
    let gs: Vec<_> = (0..2)
        .map(|_| {
            let p = pair.clone();
            gevent::spawn(move || {
                let (m, cv) = &*p;
                let mut g = m.lock();
                while *g == 0 {
                    cv.wait(&mut g);
                }
                *g += 1;
                cv.notify_all();
            })
        })
        .collect();
    let started = Instant::now();
    for g in gs {
        g.get_timeout(Duration::from_secs(5)).unwrap();
    }
    let waited = started.elapsed();
    let ticks = tick.stop();
    assert_eq!(t.join().unwrap(), 3);
    assert!(waited >= Duration::from_millis(90), "{waited:?}");
    assert!(
        ticks as u128 * 5 * 3 >= waited.as_millis(),
        "{ticks} ticks in {waited:?}: the hub stopped"
    );
    monitor.stop();
    assert_eq!(gevent::monkey::parked_count(), 0);
}

#[test]
fn parking_lot_mutex_contended_by_200_greenlets_switching_inside() {
    bounded(parking_lot_mutex_contended_by_200_greenlets_switching_inside_body);
}

/// 200 greenlets each take a parking_lot `Mutex` 20 times and yield to the hub while holding it,
/// so most of them are parked in parking_lot's queue at once, each with its own wait state: the
/// count is exact, no two held the lock at once, and everything finishes.
fn parking_lot_mutex_contended_by_200_greenlets_switching_inside_body() {
    gevent::monkey::patch_all();
    let states = gevent::monkey::parking_lot_wait_states();
    let monitor = QuietMonitor::start();
    let lock = Arc::new(parking_lot::Mutex::new(0u64));
    let inside = Rc::new(Cell::new(0u32));
    let most = Rc::new(Cell::new(0u32));
    let gs: Vec<_> = (0..200)
        .map(|_| {
            let (lock, inside, most) = (lock.clone(), inside.clone(), most.clone());
            gevent::spawn(move || {
                for _ in 0..20 {
                    let mut g = lock.lock();
                    inside.set(inside.get() + 1);
                    most.set(most.get().max(inside.get()));
                    let v = *g;
                    gevent::sleep(Duration::ZERO);
                    *g = v + 1;
                    inside.set(inside.get() - 1);
                }
            })
        })
        .collect();
    for g in gs {
        g.get_timeout(Duration::from_secs(20)).unwrap();
    }
    assert_eq!(*lock.lock(), 4000);
    assert_eq!(
        gevent::monkey::parking_lot_wait_states(),
        states,
        "every finished greenlet freed its parking_lot wait state"
    );
    assert_eq!(most.get(), 1, "two greenlets held the lock at once");
    monitor.stop();
    assert_eq!(gevent::monkey::parked_count(), 0);
}

#[test]
fn timeout_in_parking_lot_condvar_wait_for_ends_it_early() {
    bounded(timeout_in_parking_lot_condvar_wait_for_ends_it_early_body);
}

/// A gevent `Timeout` landing in a parking_lot `Condvar::wait_for` ends that wait as a timeout
/// (parking_lot takes the greenlet out of its queue, as for its own timeout) and reaches the
/// caller at the boundary; the `Mutex` and `Condvar` keep working for the next greenlets.
fn timeout_in_parking_lot_condvar_wait_for_ends_it_early_body() {
    let pair = timeout_in_condvar_wait_for_reaches_the_caller::<ParkingLot>();
    later_users_of_the_pair_still_work(&pair);
}

/// A greenlet waits on `pair`'s condvar and another wakes it: what a kill or timeout left behind
/// would break (a dead waiter still queued would take the `notify_one`).
fn later_users_of_the_pair_still_work(pair: &Arc<(parking_lot::Mutex<u32>, parking_lot::Condvar)>) {
    let p = pair.clone();
    let waiter = gevent::spawn(move || {
        let (m, cv) = &*p;
        let mut g = m.lock();
        while *g != 42 {
            assert!(!cv.wait_for(&mut g, Duration::from_secs(5)).timed_out());
        }
    });
    gevent::sleep(Duration::from_millis(10));
    *pair.0.lock() = 42;
    assert!(pair.1.notify_one(), "the new waiter is parked");
    waiter.get_timeout(Duration::from_secs(6)).unwrap();
    assert_eq!(gevent::monkey::parked_count(), 0);
}

#[test]
fn kill_in_parking_lot_condvar_wait_for_ends_the_greenlet() {
    bounded(kill_in_parking_lot_condvar_wait_for_ends_the_greenlet_body);
}

/// A kill landing in a timed parking_lot `Condvar` wait ends the wait at once (as a timeout), and
/// the greenlet at its next gevent wait; its `MutexGuard` is released by the unwind. The greenlet
/// had a wait state of its own, and freed it.
fn kill_in_parking_lot_condvar_wait_for_ends_the_greenlet_body() {
    gevent::monkey::patch_all();
    let states = gevent::monkey::parking_lot_wait_states();
    let pair = kill_in_condvar_wait::<ParkingLot>(true, true, || {
        assert_eq!(
            gevent::monkey::parking_lot_wait_states(),
            states + 1,
            "its own wait state"
        );
    });
    assert_eq!(
        gevent::monkey::parking_lot_wait_states(),
        states,
        "the killed greenlet freed its wait state"
    );
    later_users_of_the_pair_still_work(&pair);
}

#[test]
fn kill_in_parking_lot_condvar_wait_takes_effect_once_notified() {
    bounded(kill_in_parking_lot_condvar_wait_takes_effect_once_notified_body);
}

/// An untimed parking_lot wait has no way out but an unpark (parking_lot would take a return for
/// one): a kill landing there is kept, the greenlet waits on (parked, the hub running), and the
/// kill is raised at its next gevent wait once a `notify_one` woke it.
fn kill_in_parking_lot_condvar_wait_takes_effect_once_notified_body() {
    gevent::monkey::patch_all();
    let states = gevent::monkey::parking_lot_wait_states();
    let pair = Arc::new((parking_lot::Mutex::new(0u32), parking_lot::Condvar::new()));
    let p = pair.clone();
    let steps = Rc::new(std::cell::RefCell::new(Vec::new()));
    let s2 = steps.clone();
    let g = gevent::spawn(move || {
        let (m, cv) = &*p;
        let mut g = m.lock();
        cv.wait(&mut g);
        s2.borrow_mut().push("woken");
        drop(g);
        gevent::sleep(Duration::from_secs(5)); // the kill is raised here
        s2.borrow_mut().push("after");
    });
    gevent::sleep(Duration::from_millis(30));
    assert!(!g.kill_timeout(Duration::from_millis(50)), "still parked");
    assert!(steps.borrow().is_empty());
    assert_eq!(gevent::monkey::parked_count(), 1, "waiting on");
    assert!(pair.1.notify_one(), "the killed greenlet is still queued");
    assert_eq!(g.get(), Err(gevent::GetError::Killed));
    assert_eq!(*steps.borrow(), ["woken"]);
    assert_eq!(
        gevent::monkey::parking_lot_wait_states(),
        states,
        "the killed greenlet freed its wait state"
    );
    assert_eq!(gevent::monkey::parked_count(), 0);
    later_users_of_the_pair_still_work(&pair);
}

#[test]
fn timeout_in_parking_lot_mutex_lock_is_raised_once_the_lock_is_taken() {
    bounded(timeout_in_parking_lot_mutex_lock_is_raised_once_the_lock_is_taken_body);
}

fn timeout_in_parking_lot_mutex_lock_is_raised_once_the_lock_is_taken_body() {
    timeout_in_lock_is_raised_once_the_lock_is_taken::<ParkingLot>();
}

#[test]
fn parking_lot_rwlock_writer_across_a_switch_parks_readers_and_writers() {
    bounded(parking_lot_rwlock_writer_across_a_switch_parks_readers_and_writers_body);
}

/// A parking_lot `RwLock` write-locked across `gevent::sleep`: three readers and a second writer
/// park (the hub keeps ticking), then all get in, the readers together.
fn parking_lot_rwlock_writer_across_a_switch_parks_readers_and_writers_body() {
    gevent::monkey::patch_all();
    let monitor = QuietMonitor::start();
    let tick = ticker();
    let rw = Arc::new(parking_lot::RwLock::new(0u32));
    let w = rw.clone();
    let writer = gevent::spawn(move || {
        let mut g = w.write();
        gevent::sleep(Duration::from_millis(100));
        *g = 1;
    });
    let readers_in = Rc::new(Cell::new(0u32));
    let most = Rc::new(Cell::new(0u32));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (r, inside, most) = (rw.clone(), readers_in.clone(), most.clone());
            gevent::spawn(move || {
                gevent::sleep(Duration::from_millis(10));
                let g = r.read();
                inside.set(inside.get() + 1);
                most.set(most.get().max(inside.get()));
                gevent::sleep(Duration::from_millis(20));
                inside.set(inside.get() - 1);
                *g
            })
        })
        .collect();
    let w2 = rw.clone();
    let second = gevent::spawn(move || {
        gevent::sleep(Duration::from_millis(10));
        *w2.write() += 10;
    });
    writer.get().unwrap();
    for r in readers {
        let seen = r.get_timeout(Duration::from_secs(5)).unwrap();
        assert!(seen == 1 || seen == 11, "a reader saw {seen}");
    }
    second.get_timeout(Duration::from_secs(5)).unwrap();
    let ticks = tick.stop();
    monitor.stop();
    assert_eq!(*rw.read(), 11);
    assert!(
        most.get() >= 2,
        "readers shared the lock: at most {}",
        most.get()
    );
    assert!(ticks >= 12, "the hub kept running: {ticks} ticks");
    assert_eq!(gevent::monkey::parked_count(), 0);
}

#[test]
fn parking_lot_shared_by_greenlets_of_two_hubs() {
    bounded(parking_lot_shared_by_greenlets_of_two_hubs_body);
}

/// Two threads, each with its own hub and 20 greenlets, share one parking_lot `Mutex`, each
/// greenlet yielding to its hub while holding it (so greenlets of both threads queue in
/// parking_lot at once, and unparks cross threads through the hubs' handles); then a `Condvar`
/// ping-pong between one greenlet on each hub. Counts exact, hubs never frozen, wait states freed.
fn parking_lot_shared_by_greenlets_of_two_hubs_body() {
    gevent::monkey::patch_all();
    const ROUNDS: u32 = 200;
    let state = Arc::new((parking_lot::Mutex::new(0u32), parking_lot::Condvar::new()));
    let side = |me: u32, state: Arc<(parking_lot::Mutex<u32>, parking_lot::Condvar)>| {
        move || {
            let states = gevent::monkey::parking_lot_wait_states();
            let tick = ticker();
            let t = Instant::now();
            let gs: Vec<_> = (0..20)
                .map(|_| {
                    let s = state.clone();
                    gevent::spawn(move || {
                        for _ in 0..50 {
                            let mut g = s.0.lock();
                            let v = *g;
                            gevent::sleep(Duration::ZERO);
                            *g = v + 1;
                            if *g == 2000 {
                                s.1.notify_all(); // a player may wait for the last one
                            }
                        }
                    })
                })
                .collect();
            for g in gs {
                g.get_timeout(Duration::from_secs(20)).unwrap();
            }
            // Both sides are done with the counter (2000) before the ping-pong starts at it.
            let s = state.clone();
            let player =
                gevent::spawn(move || take_turns::<ParkingLot>(&s, me, 2000, 2000 + 2 * ROUNDS));
            let r = player.get_timeout(Duration::from_secs(20)).unwrap();
            let elapsed = t.elapsed();
            let ticks = tick.stop();
            assert!(
                ticks as u128 * 5 * 3 >= elapsed.as_millis(),
                "{ticks} ticks in {elapsed:?}: the hub stopped"
            );
            assert_eq!(gevent::monkey::parked_count(), 0);
            assert_eq!(gevent::monkey::parking_lot_wait_states(), states);
            r
        }
    };
    let s = state.clone();
    let other = std::thread::spawn(side(1, s));
    let mine = side(0, state.clone())();
    assert_eq!(mine, 2000 + 2 * ROUNDS);
    assert_eq!(other.join().unwrap(), 2000 + 2 * ROUNDS);
}

#[test]
fn unpatched_parking_lot_lock_held_across_a_switch_blocks_the_thread_and_says_so() {
    bounded(unpatched_parking_lot_lock_held_across_a_switch_blocks_the_thread_and_says_so_body);
}

/// parking_lot 0.13 (parking_lot_core 0.10, which the workspace does not patch) keeps its wait
/// state per OS thread, as does 0.12 without the patch: a lock held across `gevent::sleep` by one
/// greenlet and locked by another of the same thread cannot park the second (see the monkey
/// docs): its wait blocks the thread, so the first cannot run to unlock. With `try_lock_for` the
/// wait ends at its timeout; the block is reported (`blocking_waits`, and on stderr).
fn unpatched_parking_lot_lock_held_across_a_switch_blocks_the_thread_and_says_so_body() {
    gevent::monkey::patch_all();
    let before = gevent::monkey::blocking_waits();
    let lock = Arc::new(parking_lot_unpatched::Mutex::new(0));
    let l1 = lock.clone();
    let a = gevent::spawn(move || {
        let mut g = l1.lock();
        gevent::sleep(Duration::from_millis(20));
        *g += 1;
    });
    let l2 = lock.clone();
    let b = gevent::spawn(move || {
        let t = Instant::now();
        let got = l2.try_lock_for(Duration::from_millis(300)).is_some();
        (got, t.elapsed())
    });
    let (got, waited) = b.get().unwrap();
    a.get().unwrap();
    assert!(!got, "the lock was released while b waited: a ran");
    assert!(waited >= Duration::from_millis(290), "b waited {waited:?}");
    assert_eq!(*lock.lock(), 1);
    assert!(
        gevent::monkey::blocking_waits() > before,
        "the blocking wait was not reported"
    );
}

#[test]
fn mpsc_recv_in_many_greenlets_of_one_thread() {
    bounded(mpsc_recv_in_many_greenlets_of_one_thread_body);
}

/// Several greenlets of one thread in `recv()` at once share the thread's parker (std parks the
/// thread, not the greenlet): each still gets its own message, and the hub keeps running.
fn mpsc_recv_in_many_greenlets_of_one_thread_body() {
    gevent::monkey::patch_all();
    let tick = ticker();
    let t0 = Instant::now();
    let mut threads = Vec::new();
    let gs: Vec<_> = (0..10u64)
        .map(|i| {
            let (tx, rx) = mpsc::channel();
            threads.push(std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20 + 15 * i));
                tx.send(i).unwrap();
            }));
            gevent::spawn(move || (rx.recv().unwrap(), t0.elapsed()))
        })
        .collect();
    for (i, g) in gs.into_iter().enumerate() {
        let (v, at) = g.get_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(v, i as u64);
        // Sent at 20 + 15 i ms: a greenlet left waiting after its message came would be late.
        let sent = Duration::from_millis(20 + 15 * i as u64);
        assert!(
            at < sent + Duration::from_millis(300),
            "greenlet {i}: {at:?}"
        );
    }
    let waited = t0.elapsed();
    let ticks = tick.stop();
    for t in threads {
        t.join().unwrap();
    }
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    assert!(
        ticks as u128 * 5 * 3 >= waited.as_millis(),
        "{ticks} ticks in {waited:?}: the hub stopped"
    );
}

#[test]
fn condvar_ping_pong_between_greenlets_of_two_hubs() {
    bounded(condvar_ping_pong_between_greenlets_of_two_hubs_body);
}

/// Greenlets of two hubs (two threads) hand a turn back and forth through a `Mutex` and a
/// `Condvar`: every wake crosses threads (through the other hub's handle), and each hub keeps
/// running a ticker meanwhile.
fn condvar_ping_pong_between_greenlets_of_two_hubs_body() {
    gevent::monkey::patch_all();
    const ROUNDS: u32 = 200;
    let state = Arc::new((Mutex::new(0u32), Condvar::new()));
    let player = |me: u32, state: Arc<(Mutex<u32>, Condvar)>| {
        move || {
            let tick = ticker();
            let g = gevent::spawn(move || take_turns::<Std>(&state, me, 0, 2 * ROUNDS));
            let r = g.get_timeout(Duration::from_secs(20)).unwrap();
            tick.stop();
            assert_eq!(gevent::monkey::parked_count(), 0);
            r
        }
    };
    let other = std::thread::spawn(player(1, state.clone()));
    let mine = player(0, state.clone())();
    assert_eq!(mine, 2 * ROUNDS);
    assert_eq!(other.join().unwrap(), 2 * ROUNDS);
}

/// One player of a ping-pong through `state` (a counter and a condvar): waits until the counter
/// reaches `from`, then increments it when it is `me`'s turn (its parity) and waits otherwise,
/// until it reaches `to`; returns the count it ended at.
fn take_turns<L: Locks>(state: &(L::Mutex<u32>, L::Condvar), me: u32, from: u32, to: u32) -> u32 {
    let (m, cv) = state;
    let mut turn = L::lock(m);
    while *turn < from {
        turn = L::wait(cv, turn);
    }
    while *turn < to {
        if *turn % 2 == me {
            *turn += 1;
            L::notify_all(cv);
        } else {
            turn = L::wait(cv, turn);
        }
    }
    *turn
}

#[test]
fn std_timeouts_expire_cooperatively() {
    bounded(std_timeouts_expire_cooperatively_body);
}

/// `Condvar::wait_timeout` (an absolute `FUTEX_WAIT_BITSET` deadline) and
/// `Receiver::recv_timeout` (`park_timeout` on the thread's parker) in greenlets time out on
/// time, at once, while the hub keeps running.
fn std_timeouts_expire_cooperatively_body() {
    gevent::monkey::patch_all();
    let tick = ticker();
    let t0 = Instant::now();
    let cv = gevent::spawn(|| {
        let (m, cv) = (Mutex::new(()), Condvar::new());
        let (_g, r) = cv
            .wait_timeout(m.lock().unwrap(), Duration::from_millis(150))
            .unwrap();
        (r.timed_out(), Instant::now())
    });
    let rx = gevent::spawn(|| {
        let (_tx, rx) = mpsc::channel::<()>();
        let r = rx.recv_timeout(Duration::from_millis(150));
        (r == Err(mpsc::RecvTimeoutError::Timeout), Instant::now())
    });
    let (cv_timed_out, cv_at) = cv.get_timeout(Duration::from_secs(5)).unwrap();
    let (rx_timed_out, rx_at) = rx.get_timeout(Duration::from_secs(5)).unwrap();
    let ticks = tick.stop();
    assert!(cv_timed_out && rx_timed_out);
    for at in [cv_at, rx_at] {
        let d = at - t0;
        assert!(
            d >= Duration::from_millis(150) && d < Duration::from_secs(2),
            "{d:?}"
        );
    }
    assert!(ticks >= 15, "{ticks} ticks in 150 ms: the hub stopped");
    assert_eq!(gevent::monkey::parked_count(), 0);
}

#[test]
fn futex_wake_wakes_as_many_greenlets_as_asked() {
    bounded(futex_wake_wakes_as_many_greenlets_as_asked_body);
}

fn futex(word: &std::sync::atomic::AtomicU32, op: i32, val: u32) -> i64 {
    // SAFETY: a futex call on a live, aligned word; waits have no timeout.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word as *const std::sync::atomic::AtomicU32,
            op | libc::FUTEX_PRIVATE_FLAG,
            val,
            std::ptr::null::<libc::timespec>(),
        )
    }
}

/// Three greenlets wait on one futex word (the value never changes, so only wakes end their
/// waits): a wake of 1 ends exactly one wait and returns 1, a wake of 2 ends the other two; the
/// hub keeps running throughout.
fn futex_wake_wakes_as_many_greenlets_as_asked_body() {
    use std::sync::atomic::AtomicU32;
    gevent::monkey::patch_all();
    let word = Arc::new(AtomicU32::new(7));
    let done = Rc::new(Cell::new(0));
    let gs: Vec<_> = (0..3)
        .map(|_| {
            let (w, d) = (word.clone(), done.clone());
            gevent::spawn(move || {
                let r = futex(&w, libc::FUTEX_WAIT, 7);
                d.set(d.get() + 1);
                r
            })
        })
        .collect();
    let settle = || {
        for _ in 0..5 {
            gevent::sleep(Duration::from_millis(2));
        }
    };
    settle();
    assert_eq!(gevent::monkey::parked_count(), 3);
    assert_eq!(futex(&word, libc::FUTEX_WAKE, 1), 1);
    settle();
    assert_eq!(done.get(), 1, "a wake of 1 ended one wait");
    assert_eq!(gevent::monkey::parked_count(), 2);
    assert_eq!(futex(&word, libc::FUTEX_WAKE, 2), 2);
    for g in gs {
        assert_eq!(g.get_timeout(Duration::from_secs(5)).unwrap(), 0);
    }
    assert_eq!(done.get(), 3);
    assert_eq!(gevent::monkey::parked_count(), 0);
}

#[test]
fn std_mutex_contended_by_greenlets_and_os_threads_starves_no_one() {
    bounded(std_mutex_contended_by_greenlets_and_os_threads_starves_no_one_body);
}

/// Greenlets that hold a std `Mutex` across a switch keep it contended all the time; two OS
/// threads lock it too. A wake that a greenlet takes does not keep the kernel's waiters (the OS
/// threads) from theirs: everyone finishes, every increment counted.
fn std_mutex_contended_by_greenlets_and_os_threads_starves_no_one_body() {
    gevent::monkey::patch_all();
    let m = Arc::new(Mutex::new(0u64));
    let greenlets_done = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                for _ in 0..200 {
                    *m.lock().unwrap() += 1;
                    std::thread::sleep(Duration::from_micros(100));
                }
                t.elapsed()
            })
        })
        .collect();
    let gs: Vec<_> = (0..4)
        .map(|_| {
            let (m, done) = (m.clone(), greenlets_done.clone());
            gevent::spawn(move || {
                let mut n = 0u64;
                // Until the threads are through (bounded: 10 s), hold the lock across a yield.
                let t = Instant::now();
                while !done.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(10) {
                    let mut g = m.lock().unwrap();
                    *g += 1;
                    n += 1;
                    gevent::sleep(Duration::ZERO);
                }
                n
            })
        })
        .collect();
    let watcher = {
        let done = greenlets_done.clone();
        gevent::spawn(move || {
            let ts: Vec<Duration> = threads
                .into_iter()
                .map(|t| t.join().unwrap()) // cooperative: the greenlets keep running
                .collect();
            done.store(true, Ordering::SeqCst);
            ts
        })
    };
    let times = watcher.get_timeout(Duration::from_secs(25)).unwrap();
    let by_greenlets: u64 = gs.into_iter().map(|g| g.get().unwrap()).sum();
    assert_eq!(*m.lock().unwrap(), 400 + by_greenlets);
    assert!(by_greenlets > 0);
    for t in times {
        // About 40 ms (200 x 100 us sleeps); starved, until the greenlets stop at 10 s.
        assert!(t < Duration::from_secs(8), "an OS thread took {t:?}");
    }
    assert_eq!(gevent::monkey::parked_count(), 0);
}

#[test]
fn futex_wait_notices_a_change_that_came_without_a_wake() {
    bounded(futex_wait_notices_a_change_that_came_without_a_wake_body);
}

/// A wake that bypasses `syscall()` (a raw `syscall` instruction, another library's own futex)
/// does not reach the hook: here the word changes with no wake at all. Two greenlets parked on
/// words that change 20 ms and 300 ms later (the second after its re-check interval has grown)
/// still return, and the hub runs meanwhile.
fn futex_wait_notices_a_change_that_came_without_a_wake_body() {
    use std::sync::atomic::AtomicU32;
    gevent::monkey::patch_all();
    let tick = ticker();
    let words: Vec<Arc<AtomicU32>> = (0..2).map(|_| Arc::new(AtomicU32::new(0))).collect();
    let gs: Vec<_> = words
        .iter()
        .map(|w| {
            let w = w.clone();
            gevent::spawn(move || {
                let t = Instant::now();
                while w.load(Ordering::SeqCst) == 0 {
                    futex(&w, libc::FUTEX_WAIT, 0);
                }
                t.elapsed()
            })
        })
        .collect();
    let ws = words.clone();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        ws[0].store(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(280));
        ws[1].store(1, Ordering::SeqCst);
    });
    let waited: Vec<Duration> = gs
        .into_iter()
        .map(|g| g.get_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    let ticks = tick.stop();
    setter.join().unwrap();
    assert!(waited[0] < Duration::from_secs(2), "{waited:?}");
    assert!(waited[1] >= Duration::from_millis(290), "{waited:?}");
    assert!(waited[1] < Duration::from_secs(2), "{waited:?}");
    assert!(ticks >= 30, "the hub kept running: {ticks} ticks");
    assert_eq!(gevent::monkey::parked_count(), 0);
}

#[test]
fn os_thread_in_the_kernel_before_any_greenlet_parked_is_not_starved() {
    bounded(os_thread_in_the_kernel_before_any_greenlet_parked_is_not_starved_body);
}

/// Whether thread `tid` of this process is asleep (`S` in its `/proc` stat line).
fn sleeping(tid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('S'))
        })
        .unwrap_or(false)
}

/// An OS thread goes to the kernel to wait for a std `Mutex` held by a greenlet while no greenlet
/// is parked anywhere (so its wait is not counted), then three greenlets park on it too and,
/// once it is unlocked, keep handing it around among themselves, each wake taken by a greenlet:
/// the thread still gets the lock.
fn os_thread_in_the_kernel_before_any_greenlet_parked_is_not_starved_body() {
    gevent::monkey::patch_all();
    assert_eq!(gevent::monkey::parked_count(), 0);
    let m = Arc::new(Mutex::new(0u64));
    let got = Arc::new(AtomicBool::new(false));
    let guard = m.lock().unwrap(); // held by the main greenlet
    let (tx, rx) = mpsc::channel();
    let (m2, got2) = (m.clone(), got.clone());
    let t = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tx.send(unsafe { libc::syscall(libc::SYS_gettid) }).unwrap();
        let t = Instant::now();
        *m2.lock().unwrap() += 1;
        got2.store(true, Ordering::SeqCst);
        t.elapsed()
    });
    let tid = rx.recv().unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while !sleeping(tid) && Instant::now() < until {
        std::thread::yield_now();
    }
    assert!(sleeping(tid), "the thread never waited for the lock");
    let gs: Vec<_> = (0..3)
        .map(|_| {
            let (m, got) = (m.clone(), got.clone());
            gevent::spawn(move || {
                let t = Instant::now();
                while !got.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(10) {
                    let mut g = m.lock().unwrap();
                    *g += 1;
                    gevent::sleep(Duration::ZERO);
                }
            })
        })
        .collect();
    while gevent::monkey::parked_count() < 3 && Instant::now() < until {
        gevent::sleep(Duration::from_millis(1));
    }
    assert_eq!(gevent::monkey::parked_count(), 3);
    // The wake of this unlock goes to a parked greenlet, and so do the next ones.
    drop(guard);
    gevent::joinall(&gs);
    let waited = t.join().unwrap();
    assert!(got.load(Ordering::SeqCst));
    // Starved, it waits until the greenlets give up at 10 s.
    assert!(
        waited < Duration::from_secs(8),
        "the thread waited {waited:?}"
    );
    assert_eq!(gevent::monkey::parked_count(), 0);
}
