//! Cancellation on queues (from the issue; the scenarios of gevent's `test__queue.py`
//! `test_two_waiters_one_dies` pushed further): killed and timed-out getters leave no trace, and an
//! item handed to a getter that dies before it runs passes on — nothing is lost.

use std::time::Duration;

use gevent::queue::{Channel, Queue};
use gevent::GetError;

/// A getter killed while waiting: unlisted; the next put goes to the next getter.
#[test]
fn killed_getter_leaves_no_trace() {
    let q: Queue<i32> = Queue::new();
    let (a, b) = (q.clone(), q.clone());
    let victim = gevent::spawn(move || a.get().unwrap());
    let survivor = gevent::spawn(move || b.get().unwrap());
    gevent::sleep(Duration::ZERO);
    assert_eq!(q.getter_count(), 2);
    victim.kill();
    assert_eq!(victim.get(), Err(GetError::Killed));
    assert_eq!(q.getter_count(), 1);
    q.put(1).unwrap();
    assert_eq!(survivor.get(), Ok(1));
    assert_eq!((q.getter_count(), q.len()), (0, 0));
}

/// A getter handed an item, then killed before it runs: the item goes to the next getter.
#[test]
fn item_of_killed_woken_getter_passes_on() {
    let q: Queue<i32> = Queue::new();
    let (a, b) = (q.clone(), q.clone());
    let victim = gevent::spawn(move || a.get().unwrap());
    let survivor = gevent::spawn(move || b.get().unwrap());
    gevent::sleep(Duration::ZERO);
    victim.kill_nowait(); // the kill is queued before the wake that `put` queues
    q.put(42).unwrap();
    assert_eq!(survivor.get(), Ok(42));
    assert_eq!(victim.get(), Err(GetError::Killed));
    assert_eq!((q.getter_count(), q.len()), (0, 0));
}

/// The same with no other getter: the item goes back to the front of the queue.
#[test]
fn item_of_killed_woken_getter_goes_back_to_front() {
    let q: Queue<i32> = Queue::new();
    let a = q.clone();
    let victim = gevent::spawn(move || a.get().unwrap());
    gevent::sleep(Duration::ZERO);
    victim.kill_nowait();
    q.put(1).unwrap();
    q.put(2).unwrap();
    victim.join();
    assert_eq!(q.len(), 2);
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.get(), Ok(2));
}

/// A getter whose Timeout fires after it was handed an item but before it ran: the item passes on.
#[test]
fn item_of_timed_out_woken_getter_passes_on() {
    let q: Queue<i32> = Queue::new();
    let (a, b) = (q.clone(), q.clone());
    let victim = gevent::spawn(move || gevent::with_timeout(Duration::ZERO, || a.get().unwrap()));
    let survivor = gevent::spawn(move || b.get().unwrap());
    // Same hub turn: the victim starts (arming a timeout due now) and waits; then we run and hand
    // it an item; then the turn's timers fire the timeout into it before its wake is served.
    gevent::sleep(Duration::ZERO);
    q.put(7).unwrap();
    assert!(victim.get().unwrap().is_err(), "the timeout won");
    assert_eq!(survivor.get(), Ok(7));
    assert_eq!((q.getter_count(), q.len()), (0, 0));
}

/// A putter killed while waiting on a full queue: unlisted, its item not put; the queue goes on.
#[test]
fn killed_putter_leaves_no_trace() {
    let q: Queue<i32> = Queue::with_maxsize(Some(1));
    q.put(1).unwrap();
    let a = q.clone();
    let victim = gevent::spawn(move || a.put(2).unwrap());
    gevent::sleep(Duration::ZERO);
    assert_eq!(q.putter_count(), 1);
    victim.kill();
    assert_eq!(q.putter_count(), 0);
    assert_eq!(q.get(), Ok(1));
    assert!(q.get_timeout(Duration::from_millis(1)).is_err());
    assert_eq!(q.unfinished_tasks(), 1);
}

/// A channel getter killed while holding a handed item: the putter already returned; the item is
/// kept for the next getter.
#[test]
fn channel_item_of_killed_getter_kept() {
    let ch: Channel<&str> = Channel::new();
    let a = ch.clone();
    let victim = gevent::spawn(move || a.get().unwrap());
    gevent::sleep(Duration::ZERO);
    victim.kill_nowait();
    ch.put("x").unwrap();
    victim.join();
    assert_eq!(ch.get(), Ok("x"));
}

/// Many greenlets, random-ish kills: every item put is got exactly once.
#[test]
fn nothing_lost_under_kills() {
    let q: Queue<u32> = Queue::new();
    let got = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let mut consumers = Vec::new();
    for _ in 0..20 {
        let (q, got) = (q.clone(), got.clone());
        consumers.push(gevent::spawn(move || {
            while let Ok(v) = q.get() {
                got.borrow_mut().push(v);
            }
        }));
    }
    gevent::sleep(Duration::ZERO);
    for i in 0..200u32 {
        if i % 10 == 3 {
            consumers[(i / 10) as usize].kill_nowait();
        }
        q.put(i).unwrap();
        if i % 7 == 0 {
            gevent::sleep(Duration::ZERO);
        }
    }
    gevent::sleep(Duration::ZERO);
    q.shutdown();
    gevent::joinall(&consumers);
    let mut rest: Vec<u32> = std::iter::from_fn(|| q.try_get().ok()).collect();
    let mut all = got.borrow().clone();
    all.append(&mut rest);
    all.sort_unstable();
    assert_eq!(all, (0..200).collect::<Vec<_>>());
}

/// Channel ping-pong: many round trips, each value handed over exactly once, in order.
#[test]
fn channel_ping_pong() {
    let (ping, pong) = (Channel::new(), Channel::new());
    let (p2, q2) = (ping.clone(), pong.clone());
    let echo = gevent::spawn(move || {
        let mut n = 0u64;
        while let Ok(v) = p2.get() {
            q2.put(v + 1).unwrap();
            n += 1;
        }
        n
    });
    for i in 0..10_000u64 {
        ping.put(i).unwrap();
        assert_eq!(pong.get(), Ok(i + 1));
    }
    ping.shutdown();
    assert_eq!(echo.get(), Ok(10_000));
}
