//! `gevent::sync`: primitives set, sent and released from any thread and hub wake greenlets on any
//! hub and plain OS threads; kills while parked leave nothing behind and lose nothing.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use gevent::sync::{AsyncResult, Channel, Event, Semaphore};

/// Waits (bounded) until `f` holds: for a thread that must act only once others are parked.
fn until(what: &str, f: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn event_and_result_set_from_an_os_thread_wake_greenlets_on_two_hubs() {
    let ev = Event::new();
    let r: AsyncResult<u32> = AsyncResult::new();
    // A second OS thread running its own hub.
    let (ev2, r2, ev3) = (ev.clone(), r.clone(), ev.clone());
    let ticks = Arc::new(AtomicUsize::new(0));
    let t2 = ticks.clone();
    let other_hub = std::thread::spawn(move || {
        let a = gevent::spawn(move || ev2.wait());
        let b = gevent::spawn(move || r2.get());
        // A ticker on this hub shows the hub keeps running while they wait: the setter
        // acts only once it has ticked a few times with both waiters parked.
        let ticker = gevent::spawn(move || {
            while !ev3.is_set() {
                t2.fetch_add(1, Ordering::SeqCst);
                gevent::sleep(Duration::from_millis(2));
            }
        });
        gevent::joinall([&a]);
        let got = (a.get(), b.get());
        ticker.join();
        got
    });
    let (ev4, r4) = (ev.clone(), r.clone());
    let a = gevent::spawn(move || ev4.wait());
    let b = gevent::spawn(move || r4.get());
    // A plain OS thread sets both once all four greenlets wait.
    let (ev5, r5) = (ev.clone(), r.clone());
    let setter = std::thread::spawn(move || {
        until("4 waiters", || {
            ev5.waiter_count() == 2 && r5.waiter_count() == 2
        });
        // The other hub keeps turning while its two greenlets wait.
        let seen = ticks.load(Ordering::SeqCst);
        until("3 more ticks of the other hub", || {
            ticks.load(Ordering::SeqCst) >= seen + 3
        });
        ev5.set();
        r5.set(7);
    });
    assert_eq!(a.get(), Ok(true));
    assert_eq!(b.get(), Ok(Ok(7)));
    setter.join().unwrap();
    let (a2, b2) = other_hub.join().unwrap();
    assert_eq!(a2, Ok(true));
    assert_eq!(b2, Ok(Ok(7)));
    assert!(r.ready() && r.successful());
    assert_eq!(ev.waiter_count(), 0);
}

#[test]
fn an_os_thread_waits_for_a_greenlet() {
    let r: AsyncResult<String> = AsyncResult::new();
    let ev = Event::new();
    let (r2, ev2) = (r.clone(), ev.clone());
    let t = std::thread::spawn(move || {
        // No hub on this thread: these block it.
        let never = Event::new();
        assert!(!never.wait_timeout(Duration::from_millis(20)));
        assert!(ev2.wait());
        r2.get()
    });
    let r3 = r.clone();
    let g = gevent::spawn(move || {
        gevent::sleep(Duration::from_millis(40));
        r3.set_exception("boom");
        ev.set();
    });
    g.join();
    match t.join().unwrap() {
        Err(gevent::GetError::Panicked(f)) => assert_eq!(f.message(), "boom"),
        other => panic!("{other:?}"),
    }
    assert!(r.ready() && !r.successful());
    assert_eq!(r.exception().unwrap().message(), "boom");
}

#[test]
fn a_wake_from_the_same_hub_is_local() {
    let ev = Event::new();
    let ev2 = ev.clone();
    let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let o = order.clone();
    let w = gevent::spawn(move || {
        ev2.wait();
        o.borrow_mut().push("woken");
    });
    gevent::sleep(Duration::ZERO);
    assert_eq!(ev.waiter_count(), 1);
    ev.set();
    order.borrow_mut().push("set");
    // The wake went straight to this hub's ready queue, ahead of this yield (a wake through the
    // hub's remote queue would only be queued after it).
    gevent::sleep(Duration::ZERO);
    assert!(w.ready(), "woken within one yield: the local path");
    assert_eq!(*order.borrow(), ["set", "woken"]);
}

fn channel_across(ch: Channel<u64>) {
    const PER: u64 = 500;
    let got = Arc::new(StdMutex::new(Vec::new()));
    // Producers: a plain OS thread, and two greenlets on another hub's thread.
    let tx = ch.clone();
    let p1 = std::thread::spawn(move || {
        for i in 0..PER {
            tx.send(i).unwrap();
        }
    });
    let tx = ch.clone();
    let p2 = std::thread::spawn(move || {
        let gs: Vec<_> = (1..3u64)
            .map(|k| {
                let tx = tx.clone();
                gevent::spawn(move || {
                    for i in 0..PER {
                        tx.send(k * 1_000_000 + i).unwrap();
                        if i % 50 == 0 {
                            gevent::sleep(Duration::ZERO);
                        }
                    }
                })
            })
            .collect();
        gevent::joinall(&gs);
    });
    // Consumers: a plain OS thread and two greenlets on this hub.
    let (rx, g1) = (ch.clone(), got.clone());
    let c1 = std::thread::spawn(move || {
        for v in rx.iter() {
            g1.lock().unwrap().push(v);
        }
    });
    let cs: Vec<_> = (0..2)
        .map(|_| {
            let (rx, g) = (ch.clone(), got.clone());
            gevent::spawn(move || {
                for v in rx.iter() {
                    g.lock().unwrap().push(v);
                }
            })
        })
        .collect();
    let closer = {
        let ch = ch.clone();
        std::thread::spawn(move || {
            p1.join().unwrap();
            p2.join().unwrap();
            ch.close();
        })
    };
    gevent::joinall(&cs);
    c1.join().unwrap();
    closer.join().unwrap();
    let got = got.lock().unwrap();
    assert_eq!(got.len() as u64, 3 * PER, "every message delivered once");
    let set: HashSet<_> = got.iter().copied().collect();
    assert_eq!(set.len(), got.len(), "no message delivered twice");
    for k in 0..3u64 {
        for i in 0..PER {
            assert!(set.contains(&(k * 1_000_000 + i)));
        }
    }
    assert!(ch.recv().is_err());
    assert!(ch.send(1).is_err());
}

#[test]
fn bounded_channel_across_threads_and_hubs() {
    channel_across(Channel::bounded(4));
}

#[test]
fn rendezvous_channel_across_threads_and_hubs() {
    channel_across(Channel::new());
}

#[test]
fn unbounded_channel_across_threads_and_hubs() {
    channel_across(Channel::unbounded());
}

#[test]
fn rendezvous_send_waits_for_a_receiver() {
    let ch = Channel::new();
    assert!(matches!(
        ch.try_send(1),
        Err(gevent::sync::TrySendError::Full(1))
    ));
    assert!(matches!(
        ch.send_timeout(2, Duration::from_millis(10)),
        Err(gevent::sync::SendTimeoutError::Timeout(2))
    ));
    let rx = ch.clone();
    let r = gevent::spawn(move || rx.recv_timeout(Duration::from_secs(5)));
    ch.send(3).unwrap();
    assert_eq!(r.get(), Ok(Ok(3)));
    assert_eq!(
        ch.recv_timeout(Duration::from_millis(5)),
        Err(gevent::sync::RecvTimeoutError::Timeout)
    );
}

#[test]
fn semaphore_across_threads_and_hubs() {
    let sem = Semaphore::new(2);
    let inside = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for _ in 0..3 {
        let (sem, inside, max) = (sem.clone(), inside.clone(), max.clone());
        threads.push(std::thread::spawn(move || {
            for _ in 0..20 {
                sem.acquire();
                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_micros(200));
                inside.fetch_sub(1, Ordering::SeqCst);
                sem.release();
            }
        }));
    }
    {
        let (sem, inside, max) = (sem.clone(), inside.clone(), max.clone());
        threads.push(std::thread::spawn(move || {
            let gs: Vec<_> = (0..3)
                .map(|_| {
                    let (sem, inside, max) = (sem.clone(), inside.clone(), max.clone());
                    gevent::spawn(move || {
                        for _ in 0..20 {
                            sem.acquire();
                            let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                            max.fetch_max(n, Ordering::SeqCst);
                            gevent::sleep(Duration::from_micros(200));
                            inside.fetch_sub(1, Ordering::SeqCst);
                            sem.release();
                        }
                    })
                })
                .collect();
            gevent::joinall(&gs);
        }));
    }
    let gs: Vec<_> = (0..3)
        .map(|_| {
            let (sem, inside, max) = (sem.clone(), inside.clone(), max.clone());
            gevent::spawn(move || {
                for _ in 0..20 {
                    let n = {
                        let _g = sem.acquire_guard();
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(n, Ordering::SeqCst);
                        gevent::sleep(Duration::from_micros(200));
                        inside.fetch_sub(1, Ordering::SeqCst);
                        n
                    };
                    assert!(n <= 2);
                }
            })
        })
        .collect();
    gevent::joinall(&gs);
    for t in threads {
        t.join().unwrap();
    }
    assert!(max.load(Ordering::SeqCst) <= 2);
    assert_eq!(sem.available(), 2);
    assert_eq!(sem.waiter_count(), 0);
    assert!(!sem.acquire_timeout(Duration::ZERO) || sem.available() == 1);
}

#[test]
fn killed_waiters_leave_no_trace() {
    let ev = Event::new();
    let r: AsyncResult<i32> = AsyncResult::new();
    let sem = Semaphore::new(0);
    let ch: Channel<i32> = Channel::bounded(1);
    let gs = vec![
        {
            let ev = ev.clone();
            gevent::spawn(move || {
                ev.wait();
            })
        },
        {
            let r = r.clone();
            gevent::spawn(move || {
                let _ = r.get();
            })
        },
        {
            let sem = sem.clone();
            gevent::spawn(move || sem.acquire())
        },
        {
            let ch = ch.clone();
            gevent::spawn(move || {
                let _ = ch.recv();
            })
        },
    ];
    gevent::sleep(Duration::ZERO);
    assert_eq!(ev.waiter_count() + r.waiter_count() + sem.waiter_count(), 3);
    for g in &gs {
        g.kill();
    }
    assert_eq!(ev.waiter_count() + r.waiter_count() + sem.waiter_count(), 0);
    // Nothing left parked: releases and sends land in the primitives, not in dead waiters.
    sem.release();
    assert_eq!(sem.available(), 1);
    ch.send(5).unwrap();
    assert_eq!(ch.try_recv(), Ok(5));
}

#[test]
fn a_permit_or_value_handed_to_a_killed_waiter_passes_on() {
    // Semaphore: the permit is granted to `a` after its kill was requested, before it runs.
    let sem = Semaphore::new(0);
    let s2 = sem.clone();
    let a = gevent::spawn(move || s2.acquire());
    let s3 = sem.clone();
    let b = gevent::spawn(move || s3.acquire());
    gevent::sleep(Duration::ZERO);
    a.kill_nowait();
    sem.release(); // handed to `a`, which dies: `b` gets it
    b.join();
    assert!(b.successful());
    assert_eq!(sem.available(), 0);
    assert_eq!(sem.waiter_count(), 0);

    // Channel: a value handed to a killed receiver goes to the next one, or back to the buffer.
    let ch: Channel<i32> = Channel::bounded(1);
    let c2 = ch.clone();
    let a = gevent::spawn(move || c2.recv());
    gevent::sleep(Duration::ZERO);
    a.kill_nowait();
    ch.send(9).unwrap();
    a.join();
    assert_eq!(ch.try_recv(), Ok(9));

    let c3 = ch.clone();
    let a = gevent::spawn(move || c3.recv());
    let c4 = ch.clone();
    let b = gevent::spawn(move || c4.recv());
    gevent::sleep(Duration::ZERO);
    a.kill_nowait();
    ch.send(10).unwrap();
    assert_eq!(b.get(), Ok(Ok(10)));
}

#[test]
fn close_returns_waiting_senders_values_and_lets_receivers_drain() {
    let ch: Channel<String> = Channel::bounded(1);
    ch.send("buffered".into()).unwrap();
    let tx = ch.clone();
    // A plain OS thread waiting to send on the full channel gets its value back at close.
    let t = std::thread::spawn(move || tx.send("waiting".into()));
    let end = Instant::now() + Duration::from_secs(10);
    while ch.waiting_senders() == 0 {
        assert!(Instant::now() < end, "the sender never waited");
        std::thread::sleep(Duration::from_millis(1));
    }
    ch.close();
    assert_eq!(t.join().unwrap().unwrap_err().into_inner(), "waiting");
    assert_eq!(ch.recv().as_deref(), Ok("buffered"));
    assert_eq!(ch.recv(), Err(gevent::sync::RecvError));
    assert_eq!(ch.try_recv(), Err(gevent::sync::TryRecvError::Closed));
    assert!(matches!(
        ch.try_send("late".into()),
        Err(gevent::sync::TrySendError::Closed(_))
    ));
    // A receiver waiting when it closes is woken with the error.
    let ch: Channel<u8> = Channel::unbounded();
    let rx = ch.clone();
    let g = gevent::spawn(move || rx.recv());
    gevent::sleep(Duration::ZERO);
    assert_eq!(ch.waiting_receivers(), 1);
    ch.close();
    assert_eq!(g.get(), Ok(Err(gevent::sync::RecvError)));
}

#[test]
fn timeouts_from_a_plain_thread() {
    let sem = Semaphore::new(0);
    let ch: Channel<u8> = Channel::new();
    let t = std::thread::spawn(move || {
        let start = Instant::now();
        assert!(!sem.acquire_timeout(Duration::from_millis(20)));
        assert_eq!(
            ch.recv_timeout(Duration::from_millis(20)),
            Err(gevent::sync::RecvTimeoutError::Timeout)
        );
        assert!(start.elapsed() >= Duration::from_millis(40));
        assert_eq!(sem.waiter_count(), 0);
    });
    t.join().unwrap();
}

#[test]
fn sync_primitives_work_with_gevent_wait_and_iwait() {
    use gevent::Waitable;
    let ev = Event::new();
    let r: AsyncResult<u8> = AsyncResult::new();
    let pool = gevent::threadpool::ThreadPool::new(1);
    let (ev2, r2) = (ev.clone(), r.clone());
    let gate = Event::new();
    let g2 = gate.clone();
    let job = pool.spawn(move || {
        // On the pool's thread, once the main greenlet waits: fill the result first, set the
        // event a while later.
        g2.wait();
        r2.set(1);
        std::thread::sleep(Duration::from_millis(100));
        ev2.set();
    });
    // Runs once the main greenlet is parked in iwait.
    gevent::spawn(move || gate.set());
    let items: [&dyn Waitable; 3] = [&ev, &r, &job];
    let order: Vec<usize> = gevent::iwait(&items, Some(Duration::from_secs(10))).collect();
    assert_eq!(order.len(), 3);
    assert_eq!(order[0], 1, "the result was filled first: {order:?}");
    assert!(ev.is_set() && job.ready());
    assert_eq!(ev.waiter_count() + r.waiter_count(), 0, "unsubscribed");
    // Timed out: nothing left subscribed either.
    let never = Event::new();
    let done = gevent::wait([&never], Some(Duration::from_millis(10)), None);
    assert!(done.is_empty());
    assert_eq!(never.waiter_count(), 0);
    gevent::joinall([&ev]);
}

/// Timeouts and kills racing hand-offs from other threads lose no permit and no message.
#[test]
fn timeouts_and_kills_racing_hand_offs_lose_nothing() {
    let sem = Semaphore::new(2);
    let ch: Channel<u64> = Channel::bounded(2);
    let received = Arc::new(AtomicUsize::new(0));
    let hub_thread = |seed: u64| {
        let (sem, ch, received) = (sem.clone(), ch.clone(), received.clone());
        std::thread::spawn(move || {
            let gs: Vec<_> = (0..10u64)
                .map(|k| {
                    let (sem, ch, received) = (sem.clone(), ch.clone(), received.clone());
                    gevent::spawn(move || {
                        for i in 0..40u64 {
                            let t = Duration::from_micros(50 + (seed * 7 + k * 13 + i * 31) % 400);
                            if sem.acquire_timeout(t) {
                                // Released however this ends (a kill lands in the sleep too).
                                struct Permit<'a>(&'a Semaphore);
                                impl Drop for Permit<'_> {
                                    fn drop(&mut self) {
                                        self.0.release();
                                    }
                                }
                                let _p = Permit(&sem);
                                gevent::sleep(Duration::from_micros(50));
                            }
                            if let Ok(_v) = ch.recv_timeout(t) {
                                received.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    })
                })
                .collect();
            // Kill some of them midway: whatever they were handed passes on.
            gevent::sleep(Duration::from_millis(5));
            for g in gs.iter().step_by(3) {
                g.kill();
            }
            gevent::joinall(&gs);
        })
    };
    let a = hub_thread(1);
    let b = hub_thread(2);
    let (tx, s2) = (ch.clone(), sem.clone());
    let producer = std::thread::spawn(move || {
        let mut sent = 0usize;
        for i in 0..300u64 {
            if tx.send_timeout(i, Duration::from_millis(1)).is_ok() {
                sent += 1;
            }
            if s2.acquire_timeout(Duration::from_micros(200)) {
                s2.release();
            }
        }
        sent
    });
    let sent = producer.join().unwrap();
    a.join().unwrap();
    b.join().unwrap();
    let left = std::iter::from_fn(|| ch.try_recv().ok()).count();
    assert_eq!(
        received.load(Ordering::SeqCst) + left,
        sent,
        "every message sent was received once or is still there"
    );
    assert_eq!(sem.available(), 2, "no permit lost or duplicated");
    assert_eq!(sem.waiter_count(), 0);
    assert_eq!(ch.waiting_receivers() + ch.waiting_senders(), 0);
}
