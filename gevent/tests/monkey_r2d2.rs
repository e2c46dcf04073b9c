//! Issue 16: an r2d2 pool of 2 redis connections shared by 50 greenlets under `patch_all()`, with a
//! real `redis-server` (Debian's package; `.ci/run` installs it). Code nobody here wrote: `r2d2`
//! and the synchronous `redis` crate, used as a new user would.
//!
//! r2d2 waits for a free connection on a parking_lot `Condvar`, whose waits cannot be made
//! cooperative (parking_lot keeps its wait queues' links per OS thread: see the monkey docs,
//! "What stays blocking"). What works is the recipe those docs give: greenlets take a permit of a
//! gevent semaphore sized like the pool before `pool.get()`, so they wait cooperatively there and
//! r2d2 always has a connection to hand out. A greenlet that does wait inside r2d2 blocks its
//! thread, and says so on stderr.
//!
//! Skips, loudly, only when `redis-server` is not installed.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "support/redis.rs"]
mod redis_server;
use redis_server::{start_redis, Server};

/// Blocked commands time out at the server's tick: 100 Hz makes `BLPOP 0.02` take ~20 ms.
const REDIS_ARGS: &[&str] = &["--hz", "100"];

#[path = "support/bounded.rs"]
mod bounded_support;

/// A wait that froze the hub fails the test after this long instead of hanging it.
const LIMIT: Duration = Duration::from_secs(60);

fn bounded(body: fn()) {
    bounded_support::bounded(LIMIT, body)
}

fn ticker(stop: Rc<Cell<bool>>) -> gevent::Greenlet<usize> {
    bounded_support::ticker(stop, 4000)
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

/// Each greenlet takes a permit, gets a connection, counts itself with `INCR`, holds the
/// connection across a 20 ms server-side wait (`BLPOP` on an empty list), and gives both back
/// (the connection first: it is declared after the permit). 50 greenlets x 20 ms over 2
/// connections is at least 500 ms, during which the ticker keeps ticking.
fn r2d2_pool_of_two_serves_fifty_greenlets_while_the_hub_runs_body() {
    let Some(server) = start_redis(REDIS_ARGS) else {
        return;
    };
    gevent::monkey::patch_all();
    let reports = Arc::new(AtomicUsize::new(0));
    let r = reports.clone();
    let monitor = gevent::monitor::start_with(Duration::from_millis(100), move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    let pool = pool(&server, 2, Duration::from_secs(20));
    let gate = gevent::lock::Semaphore::new(2);
    let holding = Rc::new(Cell::new(0usize));
    let most = Rc::new(Cell::new(0usize));
    let stop = Rc::new(Cell::new(false));
    let tick = ticker(stop.clone());
    let t = Instant::now();
    let gs: Vec<_> = (0..50)
        .map(|i| {
            let (pool, gate, holding, most) =
                (pool.clone(), gate.clone(), holding.clone(), most.clone());
            gevent::spawn(move || {
                let _permit = gate.acquire_guard();
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
    stop.set(true);
    let ticks = tick.get().unwrap();
    monitor.stop();
    eprintln!("r2d2: 50 greenlets over 2 connections in {elapsed:?}, {ticks} ticks");
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
    assert_eq!(
        reports.load(Ordering::SeqCst),
        0,
        "the monitor saw a blocked hub"
    );
    assert_eq!(gevent::monkey::parked_count(), 0);
}

#[test]
fn a_greenlet_waiting_inside_r2d2_blocks_its_thread_and_says_so() {
    bounded(a_greenlet_waiting_inside_r2d2_blocks_its_thread_and_says_so_body);
}

/// Without the gate: `a` holds the pool's only connection across a 50 ms sleep; `b` asks the pool
/// for one and waits on r2d2's parking_lot `Condvar`, which blocks the thread, so `a` cannot run
/// to give the connection back: `b` gets r2d2's timeout error (300 ms), the wait is reported
/// (`blocking_waits`, and on stderr), and `a` finishes after it.
fn a_greenlet_waiting_inside_r2d2_blocks_its_thread_and_says_so_body() {
    let Some(server) = start_redis(REDIS_ARGS) else {
        return;
    };
    gevent::monkey::patch_all();
    let pool = pool(&server, 1, Duration::from_millis(300));
    let before = gevent::monkey::blocking_waits();
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
        let r = p.get();
        o.borrow_mut().push("b");
        (r.is_err(), t.elapsed())
    });
    let (failed, waited) = b.get().unwrap();
    a.get().unwrap();
    assert!(failed, "b got a connection: a ran while b waited in r2d2");
    assert!(waited >= Duration::from_millis(290), "b waited {waited:?}");
    assert_eq!(*order.borrow(), ["b", "a"], "b's wait blocked a's sleep");
    assert!(
        gevent::monkey::blocking_waits() > before,
        "the blocking wait was not reported"
    );
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
    let stop = Rc::new(Cell::new(false));
    let tick = ticker(stop.clone());
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
    stop.set(true);
    let ticks = tick.get().unwrap();
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
