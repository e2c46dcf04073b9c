//! `gevent::block_on`: local and cross-thread wakes, yields, nested calls, LoopExit, stale wakers.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures::channel::oneshot;

#[test]
fn ready_future_returns_at_once() {
    assert_eq!(gevent::block_on(async { 7 }), 7);
    assert_eq!(gevent::block_on(std::future::ready("x")), "x");
}

#[test]
fn local_wake_from_another_greenlet() {
    let (tx, rx) = oneshot::channel::<u32>();
    let polls = Rc::new(Cell::new(0));
    let p2 = polls.clone();
    let mut rx = rx;
    let waiting = gevent::spawn(move || {
        gevent::block_on(std::future::poll_fn(move |cx| {
            p2.set(p2.get() + 1);
            Pin::new(&mut rx).poll(cx)
        }))
    });
    let sender = gevent::spawn(move || {
        gevent::sleep(Duration::from_millis(10));
        tx.send(5).unwrap();
    });
    gevent::joinall([&waiting]);
    sender.join();
    assert_eq!(waiting.value(), Some(Ok(5)));
    // Parked once, polled again once after the wake: no busy polling.
    assert_eq!(polls.get(), 2);
}

#[test]
fn cross_thread_wake_keeps_the_hub_serving() {
    // A ticker whose count the other thread can read: the thread answers only once the hub has
    // ticked 5 times with the main greenlet parked (bounded: it answers anyway after 10 s, and then
    // the count below tells).
    let ticks = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let stop = Rc::new(Cell::new(false));
    let (t2, stop2) = (ticks.clone(), stop.clone());
    let t = gevent::spawn(move || {
        while !stop2.get() {
            gevent::sleep(Duration::from_millis(2));
            t2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let (tx, rx) = oneshot::channel::<&'static str>();
    let seen = ticks.load(std::sync::atomic::Ordering::SeqCst);
    let t3 = ticks.clone();
    let th = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(10);
        while t3.load(std::sync::atomic::Ordering::SeqCst) < seen + 5 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
        tx.send("from a thread").unwrap();
    });
    // The main greenlet parks: nothing local can wake it, the waker went to another thread.
    let v = gevent::block_on(rx).unwrap();
    assert_eq!(v, "from a thread");
    let n = ticks.load(std::sync::atomic::Ordering::SeqCst) - seen;
    assert!(n >= 5, "the ticker ran only {n} times meanwhile");
    stop.set(true);
    t.join();
    th.join().unwrap();
}

#[test]
fn many_cross_thread_wakes_fold_and_none_is_lost() {
    // A counter future that completes after 1000 increments made by another thread, each
    // followed by a wake: the greenlet must see the final count (no lost wake-up).
    struct Shared {
        n: std::sync::atomic::AtomicUsize,
        waker: std::sync::Mutex<Option<Waker>>,
    }
    let sh = Arc::new(Shared {
        n: 0.into(),
        waker: std::sync::Mutex::new(None),
    });
    let sh2 = sh.clone();
    let fut = std::future::poll_fn(move |cx| {
        *sh2.waker.lock().unwrap() = Some(cx.waker().clone());
        if sh2.n.load(std::sync::atomic::Ordering::Acquire) >= 1000 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    });
    let sh3 = sh.clone();
    let th = std::thread::spawn(move || {
        for _ in 0..1000 {
            sh3.n.fetch_add(1, std::sync::atomic::Ordering::Release);
            if let Some(w) = sh3.waker.lock().unwrap().clone() {
                w.wake();
            }
        }
    });
    gevent::block_on(fut);
    th.join().unwrap();
}

#[test]
fn self_waking_future_yields_to_others() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l2 = log.clone();
    let other = gevent::spawn(move || {
        for i in 0..3 {
            l2.borrow_mut().push(format!("other {i}"));
            gevent::sleep(Duration::ZERO);
        }
    });
    let l3 = log.clone();
    let mut n = 0;
    gevent::block_on(std::future::poll_fn(move |cx| {
        l3.borrow_mut().push(format!("poll {n}"));
        n += 1;
        if n == 3 {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }));
    other.join();
    let log = log.borrow();
    assert_eq!(log[0], "poll 0");
    // The other greenlet ran between the polls.
    assert!(
        log.iter().position(|s| s == "other 0").unwrap()
            < log.iter().position(|s| s == "poll 2").unwrap()
    );
}

#[test]
fn nested_block_on_in_two_greenlets() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = (0..2)
        .map(|i| {
            let log = log.clone();
            gevent::spawn(move || {
                gevent::block_on(async move {
                    let (tx, rx) = oneshot::channel();
                    let inner = gevent::block_on(async move {
                        gevent::sleep(Duration::from_millis(10 + 10 * i));
                        log.borrow_mut().push(i);
                        tx.send(i * 10).unwrap();
                        i
                    });
                    inner + rx.await.unwrap()
                })
            })
        })
        .collect();
    let start = Instant::now();
    gevent::joinall(&gs);
    assert_eq!(gs[0].value(), Some(0));
    assert_eq!(gs[1].value(), Some(11));
    assert_eq!(*log.borrow(), vec![0, 1]);
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[test]
fn nested_block_on_waits_on_an_outer_wake() {
    // The outer future's waker fires while the inner block_on is parked: neither wake is lost.
    let (tx1, rx1) = oneshot::channel::<u32>();
    let (tx2, rx2) = oneshot::channel::<u32>();
    let waker_holder = gevent::spawn(move || {
        gevent::sleep(Duration::from_millis(5));
        tx1.send(1).unwrap(); // wakes the outer one while the inner parks
        gevent::sleep(Duration::from_millis(10));
        tx2.send(2).unwrap();
    });
    let mut rx1 = rx1;
    let v = gevent::block_on(async move {
        // Register the outer waker with rx1, then park in an inner block_on.
        let first = std::future::poll_fn(|cx| match Pin::new(&mut rx1).poll(cx) {
            Poll::Ready(v) => Poll::Ready(Some(v.unwrap())),
            Poll::Pending => Poll::Ready(None),
        })
        .await;
        assert_eq!(first, None);
        let b = gevent::block_on(rx2).unwrap();
        let a = rx1.await.unwrap();
        a + b
    });
    assert_eq!(v, 3);
    waker_holder.join();
}

#[test]
fn nothing_can_wake_it_in_main_is_loop_exit() {
    let r = std::panic::catch_unwind(|| gevent::block_on(std::future::pending::<()>()));
    let msg = greenlet::panic_message(&*r.unwrap_err());
    assert!(msg.contains("LoopExit"), "{msg}");
}

#[test]
fn stale_wakers_do_nothing() {
    let mut kept: Option<Waker> = None;
    gevent::block_on(std::future::poll_fn(|cx| {
        kept = Some(cx.waker().clone());
        Poll::Ready(())
    }));
    let w = kept.unwrap();
    w.wake_by_ref(); // local, after the block_on ended
    let w2 = w.clone();
    std::thread::spawn(move || w2.wake()).join().unwrap(); // remote
                                                           // A later block_on (which may reuse the slot) is not disturbed by them.
    let (tx, rx) = oneshot::channel();
    let g = gevent::spawn(move || {
        gevent::sleep(Duration::from_millis(5));
        tx.send(1).unwrap();
    });
    assert_eq!(gevent::block_on(rx), Ok(1));
    g.join();
    gevent::sleep(Duration::from_millis(5));
    w.wake();
}

#[test]
fn waker_is_send_and_sync() {
    fn check<T: Send + Sync>(_: &T) {}
    gevent::block_on(std::future::poll_fn(|cx: &mut Context<'_>| {
        check(cx.waker());
        Poll::Ready(())
    }));
}
