//! A greenlet that starts to wait while the hub runs its ready queue switches straight to the
//! greenlet whose wake is next, when the hub would do nothing else first (see `gevent::hub`'s
//! module docs, "Hand-off between greenlets"). These check that the hand-off changes no order and
//! starves nothing the hub's turn would have done: the ready queue's FIFO order with callbacks in
//! between (gevent's `src/gevent/tests/test__event.py` `TestEvent_SetThenClear`-style wake order,
//! and `test__hub.py`'s callbacks), fd readiness and cross-thread callbacks during an endless
//! ping-pong, and tracers, which see every switch through the hub.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use gevent::queue::Channel;

/// Two greenlets ping-pong over two channels for up to `max` rounds or until `stop()`; the round
/// counter is shared with the caller. Returns the rounds made.
fn ping_pong(max: u64, round: Arc<AtomicU64>, stop: impl Fn() -> bool + 'static) -> u64 {
    let (to_b, to_a) = (Channel::<u64>::new(), Channel::<u64>::new());
    let (from_a, back) = (to_b.clone(), to_a.clone());
    let b = gevent::spawn(move || {
        while let Ok(v) = from_a.get() {
            if back.put(v + 1).is_err() {
                break;
            }
        }
    });
    let mut v = 0;
    while v < max && !stop() {
        to_b.put(v).expect("ping");
        v = to_a.get().expect("pong");
        round.store(v, Ordering::Relaxed);
    }
    to_b.shutdown();
    b.join();
    v
}

/// Wakes (and a callback queued between them) run in the order they were queued, whether the
/// waking greenlet's wait hands off to the next one or goes through the hub.
#[test]
fn wakes_and_callbacks_keep_their_fifo_order() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let chans: Vec<Channel<&'static str>> = (0..3).map(|_| Channel::new()).collect();
    let gs: Vec<_> = chans
        .iter()
        .enumerate()
        .map(|(i, ch)| {
            let (ch, log) = (ch.clone(), log.clone());
            gevent::spawn(move || {
                for _ in 0..2 {
                    let what = ch.get().expect("item");
                    log.borrow_mut().push(format!("{i}:{what}"));
                }
            })
        })
        .collect();
    gevent::sleep(std::time::Duration::ZERO); // all three wait in `get`
    for round in ["a", "b"] {
        chans[0].put(round).expect("0");
        let l = log.clone();
        gevent::get_hub().run_callback(move || l.borrow_mut().push(format!("cb:{round}")));
        chans[1].put(round).expect("1");
        chans[2].put(round).expect("2");
        log.borrow_mut().push(format!("main:{round}"));
        // Main waits: its wait may hand off to greenlet 0, whose next wait meets the callback.
        let ev = gevent::event::Event::new();
        let e2 = ev.clone();
        gevent::spawn(move || e2.set());
        ev.wait();
    }
    gevent::joinall(&gs);
    let want: Vec<String> = ["a", "b"]
        .iter()
        .flat_map(|r| {
            [
                format!("main:{r}"),
                format!("0:{r}"),
                format!("cb:{r}"),
                format!("1:{r}"),
                format!("2:{r}"),
            ]
        })
        .collect();
    assert_eq!(*log.borrow(), want);
}

/// Data waiting on a socket reaches its reader while two greenlets ping-pong without end: the
/// hand-offs count as turns, so the hub still polls every few of them (a hub that let the
/// greenlets switch among themselves forever would deliver it only after the ping-pong).
#[test]
fn fd_readiness_is_not_starved_by_hand_offs() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut client = std::net::TcpStream::connect(addr).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    let server = gevent::net::TcpStream::from_std(server).expect("adopt");
    let round = Arc::new(AtomicU64::new(0));
    let got_at = Rc::new(Cell::new(None));
    let reader = {
        let (round, got_at) = (round.clone(), got_at.clone());
        gevent::spawn(move || {
            let mut buf = [0u8; 8];
            let n = std::io::Read::read(&mut &server, &mut buf).expect("read");
            assert_eq!(&buf[..n], b"x");
            got_at.set(Some(round.load(Ordering::Relaxed)));
        })
    };
    gevent::sleep(std::time::Duration::ZERO); // the reader parks on its fd
    client.write_all(b"x").expect("write");
    let seen = got_at.clone();
    let rounds = ping_pong(1_000_000, round, move || seen.get().is_some());
    reader.join();
    let at = got_at.get().expect("the reader was woken");
    assert!(
        at < 1_000,
        "the reader got its byte after {at} rounds of the ping-pong ({rounds} in all)"
    );
}

/// A callback another thread queues runs within a round or two of the ping-pong: a queued remote
/// callback sends the next wait to the hub (a hand-off that did not look would delay it until
/// the next poll, up to 64 hand-offs later).
#[test]
fn cross_thread_callbacks_are_not_delayed_by_hand_offs() {
    const CALLBACKS: usize = 5;
    let round = Arc::new(AtomicU64::new(0));
    let handle = gevent::get_hub().handle();
    // (the round when the thread had queued it, the round when it ran), per callback.
    let marks: Arc<Vec<(AtomicU64, AtomicU64)>> = Arc::new(
        (0..CALLBACKS)
            .map(|_| (AtomicU64::new(u64::MAX), AtomicU64::new(u64::MAX)))
            .collect(),
    );
    let t = {
        let (round, marks) = (round.clone(), marks.clone());
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            let wait_until = |done: &dyn Fn() -> bool| {
                while !done() {
                    assert!(start.elapsed() < std::time::Duration::from_secs(20));
                    std::hint::spin_loop();
                }
            };
            wait_until(&|| round.load(Ordering::Relaxed) >= 1_000);
            for i in 0..CALLBACKS {
                let (r2, m2) = (round.clone(), marks.clone());
                handle.run_callback(move || {
                    m2[i].1.store(r2.load(Ordering::Relaxed), Ordering::SeqCst)
                });
                // Read after queueing: a preemption in between can only make the delay look
                // shorter, never longer.
                marks[i]
                    .0
                    .store(round.load(Ordering::SeqCst), Ordering::SeqCst);
                wait_until(&|| marks[i].1.load(Ordering::SeqCst) != u64::MAX);
            }
        })
    };
    let m = marks.clone();
    let rounds = ping_pong(500_000_000, round, move || {
        m[CALLBACKS - 1].1.load(Ordering::SeqCst) != u64::MAX
    });
    t.join().expect("thread");
    for (i, (queued, ran)) in marks.iter().enumerate() {
        let (queued, ran) = (queued.load(Ordering::SeqCst), ran.load(Ordering::SeqCst));
        assert_ne!(ran, u64::MAX, "callback {i} ran during the ping-pong");
        assert!(
            ran.saturating_sub(queued) <= 4,
            "callback {i} queued at round {queued}, ran at {ran} ({rounds} rounds in all)"
        );
    }
}

/// A tracer sees the switches of a hand-off through the hub, as without hand-offs.
#[test]
fn a_tracer_sees_every_switch_through_the_hub() {
    let hub = gevent::get_hub().greenlet().clone();
    let events = Rc::new(RefCell::new(Vec::new()));
    let ev = events.clone();
    let (to_b, to_a) = (Channel::<u32>::new(), Channel::<u32>::new());
    let (from_a, back) = (to_b.clone(), to_a.clone());
    let b = gevent::spawn(move || {
        for _ in 0..3 {
            let v = from_a.get().expect("ping");
            back.put(v + 1).expect("pong");
        }
    });
    gevent::sleep(std::time::Duration::ZERO); // b waits in `get`
    greenlet::settrace(Some(Box::new(move |e: &greenlet::Event| {
        if let greenlet::Event::Switch { origin, target } = e {
            ev.borrow_mut().push((origin.id(), target.id()));
        }
    })));
    for i in 0..3 {
        to_b.put(i).expect("ping");
        assert_eq!(to_a.get(), Ok(i + 1));
    }
    greenlet::settrace(None);
    b.join();
    let events = events.borrow();
    assert!(events.len() >= 6, "{events:?}");
    for (origin, target) in events.iter() {
        assert!(
            *origin == hub.id() || *target == hub.id(),
            "a switch that bypassed the hub: {origin} -> {target} in {events:?}"
        );
    }
}

/// A hub whose greenlet waits on a socket that stays silent sleeps in its poller: the yield it
/// makes before sleeping while fds have waiters (see `gevent::hub`, `yield_for_io`) happens once
/// per sleep and backs off when it finds nothing, it never turns into a spin.
#[test]
fn a_hub_waiting_on_a_silent_socket_does_not_spin() {
    fn thread_cpu() -> std::time::Duration {
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid rusage to fill.
        assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) }, 0);
        let tv = |t: libc::timeval| {
            std::time::Duration::from_secs(t.tv_sec as u64)
                + std::time::Duration::from_micros(t.tv_usec as u64)
        };
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let client =
        std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    let server = gevent::net::TcpStream::from_std(server).expect("adopt");
    let reader = gevent::spawn(move || {
        let mut buf = [0u8; 8];
        std::io::Read::read(&mut &server, &mut buf).expect("read")
    });
    // Wake the hub now and then meanwhile (a timer), so that it goes back to sleep many times.
    let cpu0 = thread_cpu();
    let start = std::time::Instant::now();
    for _ in 0..100 {
        gevent::sleep(std::time::Duration::from_millis(3));
    }
    let (wall, cpu) = (start.elapsed(), thread_cpu() - cpu0);
    drop(client); // the reader sees the end of the stream
    assert_eq!(reader.get(), Ok(0));
    assert!(
        cpu < wall / 4,
        "the hub's thread used {cpu:?} of CPU in {wall:?} while waiting"
    );
}

/// A greenlet killed while it is suspended in a hand-off (it switched straight to the greenlet it
/// had woken, and holds that one's wake; its own wake is queued) unwinds cleanly: the channels
/// keep no trace of it, its queued wake is skipped, and the ping-pong goes on with another
/// greenlet. Modelled on gevent's
/// `src/gevent/tests/test__greenlet.py` `TestBasic.test_kill_*` applied to a hand-off.
#[test]
fn a_greenlet_killed_after_its_hand_off_unwinds_cleanly() {
    let (to_b, to_a) = (Channel::<u32>::new(), Channel::<u32>::new());
    let serve = |from_a: Channel<u32>, back: Channel<u32>| {
        move || {
            while let Ok(v) = from_a.get() {
                back.put(v + 1).expect("pong");
            }
        }
    };
    let b = gevent::spawn(serve(to_b.clone(), to_a.clone()));
    for i in 0..10 {
        to_b.put(i).expect("ping");
        assert_eq!(to_a.get(), Ok(i + 1));
        // `b` switched straight to us from its `put` of the answer, with our wake in its frame;
        // our `get` took the answer, so `b`'s own wake is queued now.
    }
    assert!(!b.is_dead());
    b.kill();
    assert!(b.is_dead());
    assert_eq!(
        (to_b.getter_count(), to_a.putter_count()),
        (0, 0),
        "the killed greenlet left the channels"
    );
    let c = gevent::spawn(serve(to_b.clone(), to_a.clone()));
    for i in 0..10 {
        to_b.put(i).expect("ping");
        assert_eq!(to_a.get(), Ok(i + 1));
    }
    to_b.shutdown();
    c.join();
    assert!(c.is_dead());
}

/// A greenlet handed the turn directly that then finishes goes back to the hub (its parent), which
/// goes on with its queue: the greenlet that handed off is resumed when its own wake comes.
#[test]
fn a_greenlet_that_finishes_after_a_hand_off_returns_to_the_hub() {
    let (to_b, done) = (Channel::<u32>::new(), gevent::event::Event::new());
    let from_main = to_b.clone();
    let b = gevent::spawn(move || from_main.get().expect("item") * 2);
    let d = done.clone();
    let waker = gevent::spawn(move || d.set());
    gevent::sleep(std::time::Duration::ZERO); // b waits in `get`; waker has run
    to_b.put(21).expect("put"); // b is woken; our wait below hands off to it
    let got = b.get();
    assert_eq!(got, Ok(42));
    assert!(b.is_dead());
    done.wait();
    waker.join();
}
