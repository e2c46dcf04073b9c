//! Killed and timed-out timed waits leave nothing behind (issue 10, item 3): the timer a timed wait
//! arms is cancelled on every way out, a kill or a `Timeout` unwinding out of the wait included. A
//! timer left armed costs memory until its deadline and keeps the hub from declaring `LoopExit`.

use std::io::Read;
use std::rc::Rc;
use std::time::{Duration, Instant};

use gevent::event::{AsyncResult, Event};
use gevent::net::{TcpListener, TcpStream};
use gevent::queue::Queue;
use gevent::{GetError, Greenlet};

const HOUR: Duration = Duration::from_secs(3600);

fn timers() -> usize {
    gevent::get_hub().timer_count()
}

/// Spawns `n` greenlets running `f`, lets them all park, kills them all, and checks that no timer
/// of theirs is left armed.
fn kill_parked(n: usize, f: impl Fn() + Clone + 'static) {
    let before = timers();
    let gs: Vec<Greenlet<()>> = (0..n).map(|_| gevent::spawn(f.clone())).collect();
    gevent::sleep(Duration::ZERO); // every one starts and parks in its timed wait
    assert!(gs.iter().all(|g| g.started() && !g.ready()));
    assert_eq!(timers(), before + n, "each parked greenlet arms one timer");
    gevent::killall(&gs);
    assert!(gs.iter().all(|g| g.get() == Err(GetError::Killed)));
    assert_eq!(timers(), before, "a killed timed wait left its timer armed");
}

/// 100k kills of `sleep(1 h)` (in batches of 1,000 live greenlets): the hub ends with no timer.
/// Before the fix each kill left ~360 B armed for the hour (a million: +91 MB RSS).
#[test]
fn killed_sleeps_leave_no_timer() {
    for _ in 0..100 {
        kill_parked(1000, || gevent::sleep(HOUR));
    }
    assert_eq!(timers(), 0);
}

#[test]
fn killed_event_wait_timeout_leaves_no_timer() {
    let ev = Event::new();
    let ev2 = ev.clone();
    kill_parked(100, move || {
        ev2.wait_timeout(HOUR);
    });
    assert_eq!(ev.waiter_count(), 0);
}

#[test]
fn killed_async_result_wait_timeout_leaves_no_timer() {
    let r: AsyncResult<u8> = AsyncResult::new();
    kill_parked(100, move || {
        r.wait_timeout(HOUR);
    });
}

#[test]
fn killed_queue_get_timeout_leaves_no_timer() {
    let q: Queue<u8> = Queue::new();
    let q2 = q.clone();
    kill_parked(100, move || {
        let _ = q2.get_timeout(HOUR);
    });
    assert_eq!(q.getter_count(), 0);
}

#[test]
fn killed_join_timeout_leaves_no_timer_nor_joiner() {
    let target = gevent::spawn(|| gevent::sleep(HOUR));
    gevent::sleep(Duration::ZERO); // its own timer is armed before the count starts
    let t2 = target.clone();
    kill_parked(100, move || {
        t2.join_timeout(HOUR);
    });
    // The killed joiners are not woken (nor kept) when the target ends.
    target.kill();
    assert_eq!(timers(), 0);
}

#[test]
fn killed_socket_read_with_timeout_leaves_no_timer() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = Rc::new(TcpStream::connect(addr).unwrap());
    let (_server, _) = listener.accept().unwrap();
    client.set_read_timeout(Some(HOUR)).unwrap();
    let c = client.clone();
    kill_parked(1, move || {
        let mut buf = [0u8; 16];
        let _ = (&*c).read(&mut buf);
    });
}

#[test]
fn killed_wait_timeout_leaves_no_timer() {
    let ev = Event::new();
    let ev2 = ev.clone();
    kill_parked(10, move || {
        gevent::wait([&ev2], Some(HOUR), None);
    });
    assert_eq!(
        ev.waiter_count(),
        0,
        "a killed gevent::wait left its subscription"
    );
}

/// A `Timeout` that fires inside an inner timed wait: the inner wait's timer goes too.
#[test]
fn timed_out_sleep_leaves_no_timer() {
    let r = gevent::with_timeout(Duration::from_millis(10), || gevent::sleep(HOUR));
    assert!(r.is_err());
    assert_eq!(timers(), 0);
    let ev = Event::new();
    let r = gevent::with_timeout(Duration::from_millis(10), || ev.wait_timeout(HOUR));
    assert!(r.is_err());
    assert_eq!((timers(), ev.waiter_count()), (0, 0));
}

/// A killed `sleep` no longer delays `LoopExit`: the main greenlet waiting on what nothing can set
/// learns it at once, not when the dead sleeper's deadline passes (5.1 s before the fix, in the
/// issue's scenario).
#[test]
fn killed_sleep_does_not_delay_loop_exit() {
    let g = gevent::spawn(|| gevent::sleep(Duration::from_secs(5)));
    gevent::sleep(Duration::ZERO);
    g.kill();
    let never: AsyncResult<()> = AsyncResult::new();
    let t = Instant::now();
    assert_eq!(never.get(), Err(GetError::LoopExit));
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "LoopExit took {:?}: the killed sleep's timer was still armed",
        t.elapsed()
    );
}

/// The same with a `Timeout` that cut a timed wait short.
#[test]
fn timed_out_wait_does_not_delay_loop_exit() {
    let q: Queue<u8> = Queue::new();
    let r = gevent::with_timeout(Duration::from_millis(5), || {
        q.get_timeout(Duration::from_secs(5))
    });
    assert!(r.is_err());
    let never: AsyncResult<()> = AsyncResult::new();
    let t = Instant::now();
    assert_eq!(never.get(), Err(GetError::LoopExit));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}
