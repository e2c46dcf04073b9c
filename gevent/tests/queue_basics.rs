//! Ported from gevent's `src/gevent/tests/test__queue.py` (gevent 26.x): scenarios, not code.
//! Plus the cancellation cases of the issue: getters killed or timed out while waiting, and while
//! holding an item handed to them — the queue keeps working and loses nothing.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use gevent::event::AsyncResult;
use gevent::queue::{
    Channel, GetTimeoutError, LifoQueue, PriorityQueue, PutTimeoutError, Queue, ShutDown,
    SimpleQueue, TryGetError, TryPutError,
};

/// test_put_nowait_simple: put_nowait from hub callbacks; the second finds the queue full.
#[test]
fn put_nowait_from_hub_callbacks() {
    let q: Queue<i32> = Queue::with_maxsize(Some(1));
    let result = Rc::new(RefCell::new(Vec::new()));
    for v in [2, 3] {
        let (q, r) = (q.clone(), result.clone());
        gevent::get_hub().run_callback(move || r.borrow_mut().push(q.try_put(v)));
    }
    gevent::sleep(Duration::ZERO);
    let r = result.borrow();
    assert_eq!(r[0], Ok(()));
    assert!(matches!(r[1], Err(TryPutError::Full(3))));
    // Channel: no getter waiting, so both are Full.
    let ch: Channel<i32> = Channel::new();
    assert!(matches!(ch.try_put(2), Err(TryPutError::Full(2))));
}

/// test_put_nowait_unlock: put_nowait from the hub hands the item to a waiting getter.
#[test]
fn put_nowait_unlocks_getter() {
    let q: Queue<i32> = Queue::new();
    let q2 = q.clone();
    let p = gevent::spawn(move || q2.get().unwrap());
    assert!(q.is_empty() && !q.is_full());
    gevent::sleep(Duration::from_millis(1));
    let q3 = q.clone();
    let result = Rc::new(RefCell::new(None));
    let r2 = result.clone();
    gevent::get_hub().run_callback(move || *r2.borrow_mut() = Some(q3.try_put(10)));
    assert!(!p.ready());
    gevent::sleep(Duration::from_millis(1));
    assert_eq!(*result.borrow(), Some(Ok(())));
    assert_eq!(p.get(), Ok(10));
    assert!(q.is_empty());
}

/// test_send_last / test_send_first / test_senders_that_die.
#[test]
fn send_last_and_first() {
    let q: Queue<&str> = Queue::new();
    let q2 = q.clone();
    let p = gevent::spawn(move || gevent::with_timeout(Duration::from_millis(500), || q2.get()));
    gevent::sleep(Duration::from_millis(10));
    q.put("hi2").unwrap();
    assert_eq!(p.get(), Ok(Ok(Ok("hi2"))));
    q.put("hi").unwrap();
    assert_eq!(q.peek(), Ok("hi"));
    assert_eq!(q.get(), Ok("hi"));
    let q3 = q.clone();
    gevent::spawn(move || q3.put("sent").unwrap());
    assert_eq!(q.get(), Ok("sent"));
}

/// test_get_nowait_simple / test_get_nowait_unlock: get_nowait from the hub, and it unblocks a putter.
#[test]
fn get_nowait_from_hub_unlocks_putter() {
    let q: Queue<i32> = Queue::with_maxsize(Some(1));
    q.put(4).unwrap();
    let result = Rc::new(RefCell::new(Vec::new()));
    for _ in 0..2 {
        let (q, r) = (q.clone(), result.clone());
        gevent::get_hub().run_callback(move || r.borrow_mut().push(q.try_get()));
    }
    gevent::sleep(Duration::ZERO);
    assert_eq!(*result.borrow(), [Ok(4), Err(TryGetError::Empty)]);

    let q2 = q.clone();
    let p = gevent::spawn(move || q2.put(5).unwrap());
    gevent::sleep(Duration::ZERO);
    assert!(q.is_full());
    let q3 = q.clone();
    let r = Rc::new(RefCell::new(None));
    let r2 = r.clone();
    gevent::get_hub().run_callback(move || *r2.borrow_mut() = Some(q3.try_get()));
    gevent::sleep(Duration::ZERO);
    assert_eq!(*r.borrow(), Some(Ok(5)));
    p.join();
    assert!(p.ready() && q.is_empty());
}

/// test_peek_empty / test_peek_multi_greenlet.
#[test]
fn peek_empty_and_multi_greenlet() {
    let q: Queue<i32> = Queue::new();
    let err = catch_unwind(AssertUnwindSafe(|| q.peek())).unwrap_err();
    assert!(greenlet::panic_message(&*err).contains("would block forever"));
    assert_eq!(
        q.peek_timeout(Duration::from_millis(10)),
        Err(GetTimeoutError::Timeout)
    );
    let q2 = q.clone();
    let g = gevent::spawn(move || q2.peek());
    gevent::sleep(Duration::ZERO);
    q.put(1).unwrap();
    assert_eq!(g.get(), Ok(Ok(1)));
    assert_eq!(q.peek(), Ok(1));
    assert_eq!(q.len(), 1);
}

/// test_max_size: a putter blocks at maxsize and resumes as items are taken.
#[test]
fn max_size() {
    let q: Queue<char> = Queue::with_maxsize(Some(2));
    let results = Rc::new(RefCell::new(Vec::new()));
    let (q2, r2) = (q.clone(), results.clone());
    let p = gevent::spawn(move || {
        for c in ['a', 'b', 'c'] {
            q2.put(c).unwrap();
            r2.borrow_mut().push(c);
        }
        "OK"
    });
    gevent::sleep(Duration::ZERO);
    assert_eq!(*results.borrow(), ['a', 'b']);
    assert_eq!(q.get(), Ok('a'));
    gevent::sleep(Duration::ZERO);
    assert_eq!(*results.borrow(), ['a', 'b', 'c']);
    assert_eq!(q.get(), Ok('b'));
    assert_eq!(q.get(), Ok('c'));
    assert_eq!(p.get_timeout(Duration::ZERO), Ok("OK"));
}

/// test_multiple_waiters: several getters each get one item, served FIFO.
#[test]
fn multiple_waiters_fifo() {
    let q: Queue<&str> = Queue::new();
    let evts: Vec<AsyncResult<&str>> = (0..4).map(|_| AsyncResult::new()).collect();
    for e in &evts {
        let (q, e) = (q.clone(), e.clone());
        gevent::spawn(move || e.set(q.get().unwrap()));
    }
    gevent::sleep(Duration::from_millis(1));
    assert_eq!(q.getter_count(), 4);
    for s in ["1", "2", "3", "4"] {
        q.put(s).unwrap();
    }
    let got: Vec<_> = evts.iter().map(|e| e.get().unwrap()).collect();
    assert_eq!(got, ["1", "2", "3", "4"]);
}

fn do_receive(q: Queue<&'static str>, evt: AsyncResult<&'static str>) {
    match gevent::with_timeout(Duration::ZERO, || q.get()) {
        Ok(r) => evt.set(r.unwrap()),
        Err(_) => evt.set("timed out"),
    }
}

/// test_waiters_that_cancel / test_two_waiters_one_dies / test_two_bogus_waiters.
#[test]
fn waiters_that_cancel() {
    let q: Queue<&str> = Queue::new();
    let evt = AsyncResult::new();
    let (q2, e2) = (q.clone(), evt.clone());
    gevent::spawn(move || do_receive(q2, e2));
    assert_eq!(evt.get(), Ok("timed out"));
    q.put("hi").unwrap();
    assert_eq!(q.get(), Ok("hi"));

    let dying = AsyncResult::new();
    let waiting = AsyncResult::new();
    let (q2, d2) = (q.clone(), dying.clone());
    gevent::spawn(move || do_receive(q2, d2));
    let (q3, w3) = (q.clone(), waiting.clone());
    gevent::spawn(move || w3.set(q3.get().unwrap()));
    gevent::sleep(Duration::from_millis(20));
    q.put("hi").unwrap();
    assert_eq!(dying.get(), Ok("timed out"));
    assert_eq!(waiting.get(), Ok("hi"));

    let (e1, e2) = (AsyncResult::new(), AsyncResult::new());
    for e in [&e1, &e2] {
        let (q, e) = (q.clone(), e.clone());
        gevent::spawn(move || do_receive(q, e));
    }
    gevent::sleep(Duration::from_millis(20));
    q.put("sent").unwrap();
    assert_eq!(e1.get(), Ok("timed out"));
    assert_eq!(e2.get(), Ok("timed out"));
    assert_eq!(q.get(), Ok("sent"));
    assert_eq!(q.getter_count(), 0);
}

/// TestChannel.test_zero_max_size: the sender waits until a receiver takes the item.
#[test]
fn channel_zero_max_size() {
    let q: Channel<&str> = Channel::new();
    let (e1, e2) = (AsyncResult::new(), AsyncResult::new());
    let (q1, a) = (q.clone(), e1.clone());
    let p1 = gevent::spawn(move || {
        q1.put("hi").unwrap();
        a.set("done");
    });
    gevent::sleep(Duration::from_millis(1));
    assert!(!e1.ready());
    let (q2, b) = (q.clone(), e2.clone());
    let p2 = gevent::spawn(move || b.set(q2.get().unwrap()));
    assert_eq!(e2.get(), Ok("hi"));
    assert_eq!(e1.get(), Ok("done"));
    assert!(gevent::with_timeout(Duration::ZERO, || gevent::joinall([&p1, &p2])).is_ok());
}

/// TestChannel.test_send: order of events with a putter in the main greenlet. (gevent's put also
/// waits for a getter that is already waiting to run; here it hands over and returns, as a Go
/// channel does, so "sent world" comes before the receiver's "world".)
#[test]
fn channel_send() {
    let ch: Channel<&'static str> = Channel::new();
    let events = Rc::new(RefCell::new(Vec::new()));
    let (c2, ev) = (ch.clone(), events.clone());
    let g = gevent::spawn(move || {
        let a = c2.get().unwrap();
        ev.borrow_mut().push(a);
        let b = c2.get().unwrap();
        ev.borrow_mut().push(b);
    });
    events.borrow_mut().push("sending");
    ch.put("hello").unwrap();
    events.borrow_mut().push("sent hello");
    ch.put("world").unwrap();
    events.borrow_mut().push("sent world");
    g.join();
    assert_eq!(
        *events.borrow(),
        ["sending", "hello", "sent hello", "sent world", "world"]
    );
}

/// TestChannel.test_wait: the receiver in the main greenlet.
#[test]
fn channel_wait() {
    let ch: Channel<&'static str> = Channel::new();
    let events = Rc::new(RefCell::new(Vec::new()));
    let (c2, ev) = (ch.clone(), events.clone());
    let g = gevent::spawn(move || {
        ev.borrow_mut().push("sending hello");
        c2.put("hello").unwrap();
        ev.borrow_mut().push("sending world");
        c2.put("world").unwrap();
        ev.borrow_mut().push("sent world");
    });
    events.borrow_mut().push("waiting");
    let a = ch.get().unwrap();
    events.borrow_mut().push(a);
    let b = ch.get().unwrap();
    events.borrow_mut().push(b);
    gevent::sleep(Duration::ZERO);
    assert_eq!(
        *events.borrow(),
        [
            "waiting",
            "sending hello",
            "sending world",
            "hello",
            "world",
            "sent world"
        ]
    );
    g.join();
}

/// TestChannel.test_iterable (StopIteration becomes shutdown) and get_nowait_unlock_channel.
#[test]
fn channel_iter_and_get_nowait() {
    let ch: Channel<i32> = Channel::new();
    let c2 = ch.clone();
    gevent::spawn(move || c2.shutdown());
    assert_eq!(ch.iter().count(), 0);

    let ch: Channel<i32> = Channel::new();
    let c2 = ch.clone();
    let p = gevent::spawn(move || c2.put(5).unwrap());
    assert!(ch.is_empty() && ch.is_full());
    gevent::sleep(Duration::from_millis(1));
    assert_eq!(ch.putter_count(), 1);
    assert_eq!(ch.try_get(), Ok(5));
    p.join();
    assert!(ch.is_empty() && ch.is_full());
}

/// TestQueue.test_task_done / test_issue_45.
#[test]
fn task_done_and_join() {
    let q: Queue<i32> = Queue::new();
    q.join(); // nothing put: returns at once
    let q2 = q.clone();
    gevent::spawn(move || q2.put(7).unwrap());
    assert_eq!(q.get(), Ok(7));
    assert_eq!(q.unfinished_tasks(), 1);
    let q3 = q.clone();
    let joiner = gevent::spawn(move || q3.join());
    gevent::sleep(Duration::ZERO);
    assert!(!joiner.ready());
    q.task_done().unwrap();
    assert_eq!(q.unfinished_tasks(), 0);
    joiner.join();
    assert!(q.task_done().is_err());
}

/// _shutdown_all_methods_in_one_thread(immediate=False).
#[test]
fn shutdown_graceful() {
    let q: Queue<&str> = Queue::new();
    q.put("L").unwrap();
    q.try_put("O").unwrap();
    q.shutdown();
    assert_eq!(q.put("E").map_err(|e| e.into_inner()), Err("E"));
    assert!(matches!(q.try_put("W"), Err(TryPutError::ShutDown("W"))));
    assert_eq!(q.get(), Ok("L"));
    q.task_done().unwrap();
    assert_eq!(q.get(), Ok("O"));
    q.task_done().unwrap();
    q.join();
    assert_eq!(q.get(), Err(ShutDown));
    assert_eq!(q.try_get(), Err(TryGetError::ShutDown));
    assert_eq!(
        q.get_timeout(Duration::from_secs(1)),
        Err(GetTimeoutError::ShutDown)
    );
}

/// _shutdown_all_methods_in_one_thread(immediate=True); the drained items come back.
#[test]
fn shutdown_immediate() {
    let q: Queue<&str> = Queue::new();
    q.put("L").unwrap();
    q.try_put("O").unwrap();
    assert_eq!(q.shutdown_immediate(), ["L", "O"]);
    assert!(q.put("E").is_err());
    assert_eq!(q.get(), Err(ShutDown));
    assert_eq!(q.try_get(), Err(TryGetError::ShutDown));
    assert!(q.task_done().is_err());
    q.join();
}

/// Shutdown wakes blocked getters and putters.
#[test]
fn shutdown_wakes_waiters() {
    let q: Queue<i32> = Queue::with_maxsize(Some(1));
    let (a, b) = (q.clone(), q.clone());
    let getter = gevent::spawn(move || a.get());
    gevent::sleep(Duration::ZERO);
    q.shutdown();
    assert_eq!(getter.get(), Ok(Err(ShutDown)));

    let q: Queue<i32> = Queue::with_maxsize(Some(1));
    q.put(1).unwrap();
    let b2 = q.clone();
    let putter = gevent::spawn(move || b2.put(2).map_err(|e| e.into_inner()));
    gevent::sleep(Duration::ZERO);
    q.shutdown();
    assert_eq!(putter.get(), Ok(Err(2)));
    drop(b);
}

/// gevent's exception names (`Empty`, `Full`, `ShutDown`) match what the Rust-named calls return,
/// and each error converts into that of a shorter wait (crossbeam-style `From`), so `?` works.
#[test]
fn gevent_error_names_and_conversions() {
    use gevent::queue::{Empty, Full, PutError, ShutDownError};
    let q: Queue<i32> = Queue::with_maxsize(Some(1));
    assert_eq!(q.try_get(), Err(Empty));
    assert!(q.try_get().unwrap_err().is_empty());
    q.put(1).unwrap();
    assert!(matches!(q.try_put(2), Err(Full(2))));
    // Not waiting is waiting zero: Full and Empty become Timeout.
    let e: PutTimeoutError<i32> = q.try_put(3).unwrap_err().into();
    assert!(matches!(e, PutTimeoutError::Timeout(3)));
    assert_eq!(GetTimeoutError::from(Empty), GetTimeoutError::Timeout);

    q.shutdown();
    let e = q.put(4).unwrap_err();
    assert!(matches!(e, PutError(4)));
    assert!(matches!(TryPutError::from(e), TryPutError::ShutDown(4)));
    assert!(PutTimeoutError::from(e).is_shutdown());
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.get(), Err(ShutDownError));
    assert_eq!(q.get(), Err(ShutDown)); // the same type under gevent's name
    assert_eq!(TryGetError::from(ShutDown), TryGetError::ShutDown);
    assert!(GetTimeoutError::from(ShutDown).is_shutdown());
    fn next_or_timeout(q: &Queue<i32>) -> Result<i32, GetTimeoutError> {
        Ok(q.try_get()?)
    }
    assert_eq!(next_or_timeout(&q), Err(GetTimeoutError::ShutDown));
    assert_eq!(ShutDown.to_string(), "the queue is shut down");
    assert_eq!(e.to_string(), "the queue is shut down");
}

/// TestLifoQueue / TestPriorityQueue: their order.
#[test]
fn lifo_and_priority_order() {
    let q: LifoQueue<i32> = LifoQueue::default();
    for i in 1..=3 {
        q.put(i).unwrap();
    }
    assert_eq!([q.get(), q.get(), q.get()], [Ok(3), Ok(2), Ok(1)]);
    let q: PriorityQueue<(u8, &str)> = PriorityQueue::default();
    q.put((3, "c")).unwrap();
    q.put((1, "a")).unwrap();
    q.put((2, "b")).unwrap();
    assert_eq!(q.peek(), Ok((1, "a")));
    let got: Vec<_> = (0..3).map(|_| q.get().unwrap().1).collect();
    assert_eq!(got, ["a", "b", "c"]);
    let s: SimpleQueue<i32> = SimpleQueue::new();
    s.put(1).unwrap();
    assert_eq!(s.get(), Ok(1));
}

/// TestGetInterrupt* / TestPutInterrupt*: timed get and put on every kind give up after (not
/// before) the timeout, handing the item back.
#[test]
fn get_and_put_interrupt_every_kind() {
    let d = Duration::from_millis(10);
    let t = Instant::now();
    assert_eq!(
        Queue::<i32>::new().get_timeout(d),
        Err(GetTimeoutError::Timeout)
    );
    assert_eq!(
        LifoQueue::<i32>::default().get_timeout(d),
        Err(GetTimeoutError::Timeout)
    );
    assert_eq!(
        PriorityQueue::<i32>::default().get_timeout(d),
        Err(GetTimeoutError::Timeout)
    );
    assert_eq!(
        Channel::<i32>::new().get_timeout(d),
        Err(GetTimeoutError::Timeout)
    );
    assert!(t.elapsed() >= d * 4);

    let q: Queue<i32> = Queue::with_maxsize(Some(1));
    q.put(1).unwrap();
    assert!(matches!(
        q.put_timeout(2, d),
        Err(PutTimeoutError::Timeout(2))
    ));
    let lq: LifoQueue<i32> = LifoQueue::with_store(Some(1));
    lq.put(1).unwrap();
    assert!(matches!(
        lq.put_timeout(2, d),
        Err(PutTimeoutError::Timeout(2))
    ));
    let ch: Channel<i32> = Channel::new();
    assert!(matches!(
        ch.put_timeout(2, d),
        Err(PutTimeoutError::Timeout(2))
    ));
    assert_eq!((q.putter_count(), ch.putter_count()), (0, 0));
    // An outer Timeout is not lost inside a timed get.
    let r = gevent::with_timeout(Duration::from_millis(5), || {
        Queue::<i32>::new().get_timeout(Duration::from_secs(10))
    });
    assert!(r.is_err());
}

/// Main greenlet getting from an empty queue no one else holds: LoopExit.
#[test]
fn get_forever_is_loop_exit() {
    let q: Queue<i32> = Queue::new();
    let err = catch_unwind(AssertUnwindSafe(|| q.get())).unwrap_err();
    assert!(greenlet::panic_message(&*err).contains("would block forever"));
    assert_eq!(q.getter_count(), 0);
    q.put(1).unwrap();
    assert_eq!(q.get(), Ok(1));
}
