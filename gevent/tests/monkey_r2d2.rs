//! Issue 16: an r2d2 pool of 2 redis connections shared by 50 greenlets under `patch_all()`, with a
//! real `redis-server` (Debian's package; `.ci/run` installs it). Code nobody here wrote: `r2d2`
//! and the synchronous `redis` crate, used as a new user would.
//!
//! r2d2 waits for a free connection on a parking_lot `Condvar`. parking_lot keeps its wait state
//! per OS thread; the workspace patches parking_lot_core (`vendor/parking_lot_core`, see the monkey
//! docs, "parking_lot") so that each greenlet has its own, and a plain `pool.get()` parks the
//! greenlet while the hub runs on. Also tested: the recipes that work without the patch (a gevent
//! semaphore sized like the pool in front of `get`, or `get` on a thread pool), and a kill or
//! timeout of a greenlet waiting inside r2d2.
//!
//! Skips, loudly, only when `redis-server` is not installed.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[path = "support/redis.rs"]
mod redis_server;
use redis_server::{start_redis, Server};

/// Blocked commands time out at the server's tick: 100 Hz makes `BLPOP 0.02` take ~20 ms.
const REDIS_ARGS: &[&str] = &["--hz", "100"];

#[path = "support/bounded.rs"]
mod bounded_support;
use bounded_support::{kill_promptly, QuietMonitor, Ticker};

/// A wait that froze the hub fails the test after this long instead of hanging it.
const LIMIT: Duration = Duration::from_secs(60);

fn bounded(body: fn()) {
    bounded_support::bounded(LIMIT, body)
}

fn ticker() -> Ticker {
    Ticker::start(4000)
}

fn pool(server: &Server, size: u32, timeout: Duration) -> r2d2::Pool<redis::Client> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", server.port)).unwrap();
    r2d2::Pool::builder()
        .max_size(size)
        .connection_timeout(timeout)
        .build(client)
        .unwrap()
}

#[test]
fn r2d2_pool_of_two_serves_fifty_greenlets_while_the_hub_runs() {
    bounded(r2d2_pool_of_two_serves_fifty_greenlets_while_the_hub_runs_body);
}

/// The recipe that works without the patched parking_lot_core: each greenlet takes a permit of a
/// gevent semaphore sized like the pool before its `get` (see `fifty_greenlets_over_two_connections`).
fn r2d2_pool_of_two_serves_fifty_greenlets_while_the_hub_runs_body() {
    fifty_greenlets_over_two_connections(Gate::Semaphore);
}

#[test]
fn r2d2_pool_of_two_serves_fifty_greenlets_with_plain_get() {
    bounded(r2d2_pool_of_two_serves_fifty_greenlets_with_plain_get_body);
}

/// The bar, as a new user would write it: no gate, each greenlet calls `pool.get()`. The
/// 48 greenlets that find no free connection wait on r2d2's parking_lot `Condvar`, each on its own
/// wait state (the workspace's patched parking_lot_core), so they park and the hub runs on; no
/// wait blocked the thread and every greenlet freed its wait state.
fn r2d2_pool_of_two_serves_fifty_greenlets_with_plain_get_body() {
    fifty_greenlets_over_two_connections(Gate::Plain);
}

/// What stands in front of `pool.get()` in `fifty_greenlets_over_two_connections`.
#[derive(Clone, Copy, PartialEq)]
enum Gate {
    /// A gevent semaphore of 2 permits (the recipe that needs no patched parking_lot_core).
    Semaphore,
    /// Nothing: a plain `get`, which waits on r2d2's parking_lot `Condvar` (the patched one).
    Plain,
}

/// 50 greenlets share a pool of 2 connections: each gets a connection (behind `gate`), counts
/// itself with `INCR`, holds the connection across a 20 ms server-side wait (`BLPOP` on an empty
/// list) and gives it back (before its permit, if any: declared after it). 50 x 20 ms over 2
/// connections is at least 500 ms, during which the ticker keeps ticking and the monitor reports
/// nothing. Without a gate, also: no wait blocked the thread, and every greenlet freed its
/// parking_lot wait state.
fn fifty_greenlets_over_two_connections(gate: Gate) {
    let Some(server) = start_redis(REDIS_ARGS) else {
        return;
    };
    gevent::monkey::patch_all();
    let blocked_before = gevent::monkey::blocking_waits();
    let states = gevent::monkey::parking_lot_wait_states();
    let monitor = QuietMonitor::start();
    let pool = pool(&server, 2, Duration::from_secs(20));
    let permits = gevent::lock::Semaphore::new(2);
    let holding = Rc::new(Cell::new(0usize));
    let most = Rc::new(Cell::new(0usize));
    let tick = ticker();
    let t = Instant::now();
    let gs: Vec<_> = (0..50)
        .map(|i| {
            let (pool, permits, holding, most) =
                (pool.clone(), permits.clone(), holding.clone(), most.clone());
            gevent::spawn(move || {
                let _permit = (gate == Gate::Semaphore).then(|| permits.acquire_guard());
                let mut con = pool.get().expect("a connection");
                holding.set(holding.get() + 1);
                most.set(most.get().max(holding.get()));
                let n: u64 = redis::cmd("INCR").arg("served").query(&mut *con).unwrap();
                let r: Option<(String, String)> = redis::cmd("BLPOP")
                    .arg(format!("empty-{i}"))
                    .arg(0.02)
                    .query(&mut *con)
                    .unwrap();
                assert_eq!(r, None);
                holding.set(holding.get() - 1);
                n
            })
        })
        .collect();
    let mut served: Vec<u64> = gs.iter().map(|g| g.get().unwrap()).collect();
    let elapsed = t.elapsed();
    let ticks = tick.stop();
    monitor.stop();
    let how = match gate {
        Gate::Semaphore => "r2d2",
        Gate::Plain => "r2d2, plain get",
    };
    eprintln!("{how}: 50 greenlets over 2 connections in {elapsed:?}, {ticks} ticks");
    served.sort_unstable();
    assert_eq!(
        served,
        (1..=50).collect::<Vec<u64>>(),
        "every greenlet served once"
    );
    let mut con = pool.get().unwrap();
    let total: u64 = redis::cmd("GET").arg("served").query(&mut *con).unwrap();
    assert_eq!(total, 50);
    assert_eq!(most.get(), 2, "the two connections were in use at once");
    assert_eq!(pool.state().connections, 2);
    assert!(
        elapsed >= Duration::from_millis(450),
        "25 rounds of 20 ms took {elapsed:?}"
    );
    // 5 ms ticks over >= 450 ms: 90 if nothing ever held the hub; a frozen hub makes a handful.
    assert!(
        ticks >= 30,
        "the hub kept running: {ticks} ticks in {elapsed:?}"
    );
    if gate == Gate::Plain {
        assert_eq!(
            gevent::monkey::blocking_waits(),
            blocked_before,
            "a wait blocked the thread"
        );
    }
    assert_eq!(gevent::monkey::parked_count(), 0);
    if gate == Gate::Plain {
        assert_eq!(
            gevent::monkey::parking_lot_wait_states(),
            states,
            "every greenlet freed its parking_lot wait state"
        );
    }
}

#[test]
fn a_greenlet_waiting_inside_r2d2_parks_until_the_connection_comes_back() {
    bounded(a_greenlet_waiting_inside_r2d2_parks_until_the_connection_comes_back_body);
}

/// `a` holds the pool's only connection across a 50 ms sleep; `b` asks the pool for one and
/// waits on r2d2's parking_lot `Condvar`: it parks, `a` runs, gives the connection back, and `b`
/// gets it, well before r2d2's timeout.
fn a_greenlet_waiting_inside_r2d2_parks_until_the_connection_comes_back_body() {
    let Some(server) = start_redis(REDIS_ARGS) else {
        return;
    };
    gevent::monkey::patch_all();
    let pool = pool(&server, 1, Duration::from_secs(10));
    let order = Rc::new(std::cell::RefCell::new(Vec::new()));
    let (p, o) = (pool.clone(), order.clone());
    let a = gevent::spawn(move || {
        let mut con = p.get().unwrap();
        gevent::sleep(Duration::from_millis(50));
        let _: () = redis::cmd("SET")
            .arg("k")
            .arg("a")
            .query(&mut *con)
            .unwrap();
        o.borrow_mut().push("a");
    });
    let (p, o) = (pool.clone(), order.clone());
    let b = gevent::spawn(move || {
        let t = Instant::now();
        let mut con = p.get().expect("the connection, once a gave it back");
        let v: String = redis::cmd("GET").arg("k").query(&mut *con).unwrap();
        o.borrow_mut().push("b");
        (v, t.elapsed())
    });
    let (v, waited) = b.get().unwrap();
    a.get().unwrap();
    assert_eq!(v, "a", "b ran after a's SET");
    assert_eq!(*order.borrow(), ["a", "b"]);
    assert!(waited >= Duration::from_millis(40), "b waited {waited:?}");
    assert!(waited < Duration::from_secs(5), "b waited {waited:?}");
    assert_eq!(gevent::monkey::parked_count(), 0);
}

#[test]
fn kill_or_timeout_of_a_greenlet_waiting_inside_r2d2_leaves_the_pool_working() {
    bounded(kill_or_timeout_of_a_greenlet_waiting_inside_r2d2_leaves_the_pool_working_body);
}

/// `a` holds the pool's only connection; `b`, waiting in `pool.get()` (r2d2's timeout 20 s), is
/// killed, and `c`'s `pool.get()` runs under a 50 ms gevent timeout: both waits end at once
/// (r2d2 sees a timed-out `Condvar` wait), `b` ends killed and `c` gets `Err`. Then `a` gives
/// the connection back and `d` gets it: nothing of `b` or `c` was left in r2d2's queue.
fn kill_or_timeout_of_a_greenlet_waiting_inside_r2d2_leaves_the_pool_working_body() {
    let Some(server) = start_redis(REDIS_ARGS) else {
        return;
    };
    gevent::monkey::patch_all();
    let pool = pool(&server, 1, Duration::from_secs(20));
    let a_go = gevent::event::Event::new();
    let (p, go) = (pool.clone(), a_go.clone());
    let a = gevent::spawn(move || {
        let con = p.get().unwrap();
        go.wait();
        drop(con);
    });
    let p = pool.clone();
    let b = gevent::spawn(move || {
        let r = p.get();
        r.is_ok()
    });
    let p = pool.clone();
    let c = gevent::spawn(move || {
        let t = Instant::now();
        let r = gevent::with_timeout(Duration::from_millis(50), || p.get().is_ok());
        (r.is_err(), t.elapsed())
    });
    gevent::sleep(Duration::from_millis(20));
    assert_eq!(gevent::monkey::parked_count(), 2, "b and c wait in r2d2");
    kill_promptly(&b);
    let (timed_out, waited) = c.get_timeout(Duration::from_secs(5)).unwrap();
    assert!(timed_out, "c's timeout reached it");
    assert!(waited < Duration::from_secs(2), "c waited {waited:?}");
    assert_eq!(gevent::monkey::parked_count(), 0);
    let p = pool.clone();
    let d = gevent::spawn(move || {
        let mut con = p.get().expect("the connection a gives back");
        let pong: String = redis::cmd("PING").query(&mut *con).unwrap();
        pong
    });
    gevent::sleep(Duration::from_millis(10));
    a_go.set();
    a.get().unwrap();
    assert_eq!(d.get_timeout(Duration::from_secs(5)).unwrap(), "PONG");
    assert_eq!(pool.state().connections, 1);
}

#[test]
fn r2d2_get_on_a_thread_pool_serves_greenlets_while_the_hub_runs() {
    bounded(r2d2_get_on_a_thread_pool_serves_greenlets_while_the_hub_runs_body);
}

/// The other recipe: `pool.get()` runs on a gevent `ThreadPool` (its worker waits on r2d2's
/// `Condvar`, the greenlet waits cooperatively for the worker); the greenlet uses the connection
/// and drops it, which wakes a waiting worker. 20 greenlets, 2 connections, 4 workers.
fn r2d2_get_on_a_thread_pool_serves_greenlets_while_the_hub_runs_body() {
    let Some(server) = start_redis(REDIS_ARGS) else {
        return;
    };
    gevent::monkey::patch_all();
    let pool = pool(&server, 2, Duration::from_secs(20));
    let workers = gevent::threadpool::ThreadPool::new(4);
    let tick = ticker();
    let t = Instant::now();
    let gs: Vec<_> = (0..20)
        .map(|i| {
            let (pool, workers) = (pool.clone(), workers.clone());
            gevent::spawn(move || {
                let mut con = workers.apply(move || pool.get()).expect("a connection");
                let n: u64 = redis::cmd("INCR").arg("served").query(&mut *con).unwrap();
                let r: Option<(String, String)> = redis::cmd("BLPOP")
                    .arg(format!("empty-{i}"))
                    .arg(0.02)
                    .query(&mut *con)
                    .unwrap();
                assert_eq!(r, None);
                n
            })
        })
        .collect();
    let mut served: Vec<u64> = gs.iter().map(|g| g.get().unwrap()).collect();
    let elapsed = t.elapsed();
    let ticks = tick.stop();
    served.sort_unstable();
    assert_eq!(
        served,
        (1..=20).collect::<Vec<u64>>(),
        "every greenlet served once"
    );
    assert_eq!(pool.state().connections, 2);
    assert!(
        elapsed >= Duration::from_millis(180),
        "10 rounds of 20 ms took {elapsed:?}"
    );
    assert!(
        ticks >= 12,
        "the hub kept running: {ticks} ticks in {elapsed:?}"
    );
}
