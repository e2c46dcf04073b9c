//! The project's own measurements: the table's `ours` column.
//!
//! Every measurement here measures one row of the table for this project's crates, doing what the peers
//! named in its doc do (their sources: `bench/src/bin/peer_*.rs`, `bench/peers/go/main.go`,
//! `bench/peers/python/peer.py`). The `ours` binary (`bench/src/bin/ours.rs`) runs them in table order.
//!
//! Conventions (see also the crate docs in `lib.rs`):
//! - time per operation: [`crate::time_per_op`] with `o.duration` and the counts in `o.counts`, inputs and
//!   outputs through [`std::hint::black_box`], every loop bounded;
//! - memory: a fresh child process (`--mem N --stack KIND`, see [`crate::parked_in_child_with`]) takes
//!   [`crate::rss_bytes`] before creating the greenlets and reports the growth per greenlet and the mapping
//!   count ([`crate::report_parked`]), as every peer does;
//! - everything runs on the calling (main) thread: greenlets and the hub are per thread.
//!
//! Stacks: greenlets get the default guarded stack (256 KiB of address space, a guard page, two kernel
//! mappings each) except where a row needs more live greenlets than `vm.max_map_count` (65530) allows with
//! two mappings each: `parked_mem_100k`/`_1m` and `event_set_100k` use dense stacks
//! ([`greenlet::StackConfig::dense`], 32 KiB slots in shared arenas, no guard page), which is what a user
//! holding that many greenlets must choose too.

use std::cell::Cell;
use std::hint::black_box as bb;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use greenlet::{Builder, Greenlet, StackConfig, Value};

use crate::{report_parked, rss_bytes, time_per_op, Opts, Serve};

const PEER: &str = "ours";

/// Which kind of stack a parked-memory child measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackKind {
    /// The default: guarded stacks from the per-thread pool.
    Guarded,
    /// Dense stacks ([`greenlet::StackConfig::dense`] with the default dense size).
    Dense,
}

impl StackKind {
    /// The `--stack` argument that names it.
    pub fn arg(self) -> &'static str {
        match self {
            StackKind::Guarded => "guarded",
            StackKind::Dense => "dense",
        }
    }

    /// Parses a `--stack` argument.
    pub fn from_arg(s: &str) -> Option<StackKind> {
        match s {
            "guarded" => Some(StackKind::Guarded),
            "dense" => Some(StackKind::Dense),
            _ => None,
        }
    }
}

/// How a measurement is made.
#[derive(Clone, Copy)]
pub enum Run {
    /// In this process; returns the value in the row's unit (`None`: cannot be measured, reported as skipped).
    Here(fn(&Opts, usize) -> Option<f64>),
    /// Parked memory and mapping count, in a fresh child process with this kind of stack (the child prints
    /// its own `RESULT` lines; see [`parked`]).
    Parked(StackKind),
}

/// One measurement of the project, as the `ours` binary runs them.
pub struct Measurement {
    /// Table group (`switch`, `lifecycle`, `hub`, `cross`).
    pub group: &'static str,
    /// Row name; counted rows get their count appended by the caller (see [`Measurement::counted`]).
    pub name: &'static str,
    /// The unit, which is the metric key in the `RESULT` line.
    pub metric: &'static str,
    /// The count to append to `name` (e.g. `spawn_join` + 100k), if any.
    pub counted: Option<fn(&Opts) -> usize>,
    /// How to measure it, with the count (from `counted`, else `o.counts.ops`).
    pub run: Run,
}

/// Every measurement of the project, in table order.
pub fn all() -> Vec<Measurement> {
    use crate::names::*;
    let here = |group, name, counted, f| Measurement {
        group,
        name,
        metric: "ns_per_op",
        counted,
        run: Run::Here(f),
    };
    let parked = |counted, kind| Measurement {
        group: "lifecycle",
        name: PARKED_MEM,
        metric: "bytes_per_task",
        counted: Some(counted),
        run: Run::Parked(kind),
    };
    vec![
        here("switch", ROUNDTRIP, None, greenlet_switch_roundtrip),
        here("switch", ROUNDTRIP_AB, None, greenlet_switch_roundtrip_ab),
        here(
            "switch",
            CREATE_RUN_FINISH,
            None,
            greenlet_create_run_finish,
        ),
        parked(|o| o.counts.parked, StackKind::Dense),
        parked(|o| o.counts.parked_large, StackKind::Dense),
        parked(|o| o.counts.parked_guarded, StackKind::Guarded),
        here(
            "lifecycle",
            SPAWN_JOIN,
            Some(|o| o.counts.spawn),
            gevent_spawn_join,
        ),
        // Also at the guarded count, the count may can hold (its row has no 100k).
        here(
            "lifecycle",
            SPAWN_JOIN,
            Some(|o| o.counts.parked_guarded),
            gevent_spawn_join,
        ),
        here("hub", SLEEP0_X1, None, gevent_sleep0_x1),
        here("hub", SLEEP0_X100, None, gevent_sleep0_x100),
        here("hub", CHAN_HANDOFF, None, gevent_channel_handoff),
        here("hub", BLOCK_ON_LOCAL, None, gevent_block_on_local),
        here("hub", BLOCK_ON_REMOTE, None, gevent_block_on_remote),
        here(
            "hub",
            EVENT_SET,
            Some(|o| o.counts.waiters),
            gevent_event_set,
        ),
        here("cross", ONESHOT_XTHREAD, None, sync_oneshot_xthread),
        here("cross", CHAN_XTHREAD, None, sync_chan_xthread),
        here("cross", MUTEX_UNCONTENDED, None, sync_mutex_uncontended),
        here("cross", MUTEX_CONTENDED, None, sync_mutex_contended),
    ]
}

/// `cross/oneshot_xthread`, ns per hand-off: the main greenlet (parked on its hub) waits on a
/// `gevent::sync::AsyncResult` that an OS thread fills; the thread (blocked, no hub) waits on the next one
/// the greenlet fills (peers: tokio `oneshot` with `blocking_recv` on the thread; crossbeam between two
/// threads). Bar (issue 14): <= tokio.
pub fn sync_oneshot_xthread(o: &Opts, ops: usize) -> Option<f64> {
    use gevent::sync::AsyncResult;
    let _ = gevent::get_hub(); // waits park the main greenlet on the hub
    let ops = ops.min(20_000);
    let setup = || {
        let pairs: Vec<(AsyncResult<u64>, AsyncResult<u64>)> = (0..ops)
            .map(|_| (AsyncResult::new(), AsyncResult::new()))
            .collect();
        let theirs = pairs.clone();
        let t = std::thread::spawn(move || {
            for (req, resp) in theirs {
                let v = req.get().expect("request");
                resp.set(v + 1);
            }
        });
        (pairs, t)
    };
    let ns = crate::time_per_op_setup(o.duration, 2 * ops, setup, |(pairs, t)| {
        let mut v = 0u64;
        for (req, resp) in &pairs {
            req.set(bb(v));
            v = resp.get().expect("response");
        }
        bb(v);
        t.join().expect("the helper thread");
    });
    Some(ns)
}

/// `cross/chan_xthread`, ns per message: an OS thread sends `ops` values into a bounded(64)
/// `gevent::sync::Channel`; the main greenlet receives them (peers: tokio `mpsc` with `blocking_send`;
/// crossbeam between two threads).
pub fn sync_chan_xthread(o: &Opts, ops: usize) -> Option<f64> {
    use gevent::sync::Channel;
    let _ = gevent::get_hub();
    let setup = || {
        let ch: Channel<u64> = Channel::bounded(64);
        let tx = ch.clone();
        let gate = gevent::sync::Event::new();
        let g2 = gate.clone();
        let t = std::thread::spawn(move || {
            g2.wait();
            for i in 0..ops as u64 {
                tx.send(i).expect("send");
            }
        });
        (ch, gate, t)
    };
    let ns = crate::time_per_op_setup(o.duration, ops, setup, |(ch, gate, t)| {
        gate.set();
        let mut sum = 0u64;
        for _ in 0..ops {
            sum += ch.recv().expect("recv");
        }
        bb(sum);
        t.join().expect("the producer thread");
    });
    Some(ns)
}

/// `cross/mutex_uncontended`, ns per lock + unlock of a `gevent::sync::Mutex` (peers: parking_lot's
/// `Mutex`; tokio's `Mutex` awaited in a task).
pub fn sync_mutex_uncontended(o: &Opts, ops: usize) -> Option<f64> {
    let m = gevent::sync::Mutex::new(0u64);
    let ns = time_per_op(o.duration, ops, || {
        for _ in 0..ops {
            *bb(&m).lock().expect("not poisoned") += 1;
        }
    });
    bb(m);
    Some(ns)
}

/// `cross/mutex_contended`, ns per lock: 4 greenlets each lock a `gevent::sync::Mutex`, `sleep(0)` while
/// holding it, unlock, `ops / 4` times (peer: 4 tokio tasks on a current_thread runtime with tokio's
/// `Mutex` and `yield_now`).
pub fn sync_mutex_contended(o: &Opts, ops: usize) -> Option<f64> {
    let per = ops / 4;
    let ns = time_per_op(o.duration, 4 * per, || {
        let m = Rc::new(gevent::sync::Mutex::new(0u64));
        let gs: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                gevent::spawn(move || {
                    for _ in 0..per {
                        let mut g = m.lock().expect("not poisoned");
                        gevent::sleep(Duration::ZERO);
                        *g += 1;
                    }
                })
            })
            .collect();
        gevent::joinall(&gs);
        assert_eq!(*m.lock().expect("not poisoned"), 4 * per as u64);
    });
    Some(ns)
}

/// The dense stack configuration the rows with 100k+ live greenlets use.
fn dense() -> StackConfig {
    // SAFETY: every greenlet given this stack in this file runs a closure of a few frames (a switch, a
    // wait on an Event, a counter update): far below the 32 KiB slot, with room for a signal handler.
    unsafe { StackConfig::dense(StackConfig::DEFAULT_DENSE_SIZE) }
}

/// `switch/roundtrip`, ns: the main greenlet switches to `g`, `g` switches back to main, passing `()` each
/// way (`g.switch(())` / `main.switch(())`); `g` loops until a stop flag (a `Cell<bool>`) is set.
/// Peers: corosensei `resume(())` + `suspend(())`, the same `()` each way and the same stop flag, and
/// Python greenlet's `g.switch(i)` / `main.switch(x)`. Bar (issues 2 and 11): <= 2.0x corosensei.
pub fn greenlet_switch_roundtrip(o: &Opts, ops: usize) -> Option<f64> {
    let main = greenlet::getcurrent();
    // Bounded: runs until `stop` is set, after timing.
    let stop = std::rc::Rc::new(std::cell::Cell::new(false));
    let stop_in = stop.clone();
    let g = Greenlet::new(move |_: Value| {
        while !stop_in.get() {
            main.switch(());
        }
        Value::none()
    });
    let ns = time_per_op(o.duration, ops, || {
        for _ in 0..ops {
            bb(g.switch(()));
        }
    });
    stop.set(true);
    g.switch(());
    assert!(g.is_dead(), "roundtrip greenlet did not finish");
    Some(ns)
}

/// `switch/roundtrip_ab`, ns: two greenlets A and B, neither the main one, switch A->B->A passing `()`
/// (symmetric switching: on corosensei every such switch goes through the thread's driver; peer: Python
/// greenlet doing the same). Main switches into A once per batch, which then does `ops` round trips.
pub fn greenlet_switch_roundtrip_ab(o: &Opts, ops: usize) -> Option<f64> {
    let main = greenlet::getcurrent();
    let a = Greenlet::unbound();
    let b = Greenlet::unbound();
    {
        let b = b.clone();
        // A: do `n` round trips with B, report back to main; return when given 0.
        a.set_run(move |v: Value| {
            let mut n = v.take::<usize>();
            while n != 0 {
                for _ in 0..n {
                    bb(b.switch(()));
                }
                n = main.switch(()).take::<usize>();
            }
            Value::none()
        })
        .expect("a fresh greenlet takes a run");
    }
    {
        let a = a.clone();
        // B: bounce back to A until main switches in a `bool` (the stop marker).
        b.set_run(move |mut v: Value| {
            while !v.is::<bool>() {
                v = a.switch(());
            }
            Value::none()
        })
        .expect("a fresh greenlet takes a run");
    }
    let ns = time_per_op(o.duration, ops, || {
        a.switch(ops);
    });
    a.switch(0usize);
    b.switch(false);
    assert!(a.is_dead() && b.is_dead(), "A/B greenlets did not finish");
    Some(ns)
}

/// `switch/create_run_finish`, ns: `Greenlet::new(|v| v).switch(())`, the stack coming from the per-thread
/// pool (peer: corosensei `with_stack` on a reused stack + `resume` + `into_stack`; Python greenlet's
/// `greenlet(f).switch(i)`). Bar (issue 2): <= 5x corosensei.
pub fn greenlet_create_run_finish(o: &Opts, ops: usize) -> Option<f64> {
    let ns = time_per_op(o.duration, ops, || {
        for _ in 0..ops {
            bb(Greenlet::new(|v| v).switch(()));
        }
    });
    Some(ns)
}

/// `lifecycle/parked_mem_<n>` and `maps_<n>`, bytes per greenlet: `n` greenlets alive at once, each suspended
/// inside its `run` (switched back to main), in a fresh process (the `--mem n --stack kind` child).
///
/// Dense at `o.counts.parked` (100k: peers Python greenlet and gevent, Go, tokio) and `o.counts.parked_large`
/// (1m: peer Go); guarded at `o.counts.parked_guarded` (30k: peers corosensei, may). The RSS growth includes
/// the `Vec` of handles, as the peers' does. Bar (issue 2): <= 5 KiB at 1m (dense).
///
/// # Panics
/// If a greenlet cannot be created (the child then fails and the parent reports the row as skipped).
pub fn parked(kind: StackKind, n: usize) {
    let cfg = match kind {
        StackKind::Dense => dense(),
        StackKind::Guarded => StackConfig::guarded(StackConfig::DEFAULT_SIZE),
    };
    let main = greenlet::getcurrent();
    let before = rss_bytes();
    let mut all: Vec<Greenlet> = Vec::with_capacity(n);
    for _ in 0..n {
        let main = main.clone();
        let g = Builder::new()
            .stack(cfg)
            .build(move |_| {
                main.switch(());
                Value::none()
            })
            .unwrap_or_else(|e| panic!("greenlet {} of {n}: {e}", all.len()));
        g.switch(());
        all.push(g);
    }
    report_parked("lifecycle", PEER, n, before);
    // Finish them all (each returns from `run`), as the peers release theirs.
    for g in &all {
        g.switch(());
    }
    assert!(all.iter().all(Greenlet::is_dead));
}

/// `lifecycle/spawn_join_100k` (and `_30k`, may's count), ns per task: `gevent::spawn` `n` trivial
/// greenlets, then `gevent::joinall` (peers: Python gevent spawn+joinall, Go `go`+WaitGroup, may
/// spawn+join, tokio current_thread spawn+await). A spawned greenlet gets its stack when it starts and
/// gives it back to the pool when it ends, so the default guarded stacks serve any `n`.
/// Bar (issue 3): <= 0.5x Go.
pub fn gevent_spawn_join(o: &Opts, n: usize) -> Option<f64> {
    let ns = time_per_op(o.duration, n, || {
        let gs: Vec<_> = (0..n).map(|i| gevent::spawn(move || bb(i))).collect();
        gevent::joinall(&gs);
        bb(gs);
    });
    Some(ns)
}

/// `sleep(Duration::ZERO)` `per` times in each of `tasks` spawned greenlets, joined; ns per sleep.
fn sleep0(o: &Opts, tasks: usize) -> f64 {
    let per = (o.counts.ops / tasks).max(1);
    let total = per * tasks;
    time_per_op(o.duration, total, || {
        let gs: Vec<_> = (0..tasks)
            .map(|_| {
                gevent::spawn(move || {
                    for _ in 0..per {
                        gevent::sleep(bb(Duration::ZERO));
                    }
                })
            })
            .collect();
        gevent::joinall(&gs);
    })
}

/// `hub/sleep0_x1`, ns per `sleep(Duration::ZERO)` with one greenlet looping on it (peers: gevent.sleep(0),
/// Go runtime.Gosched, may yield_now, tokio yield_now). Bar (issue 3): <= 0.1x gevent.
pub fn gevent_sleep0_x1(o: &Opts, _n: usize) -> Option<f64> {
    Some(sleep0(o, 1))
}

/// `hub/sleep0_x100`, ns per `sleep(Duration::ZERO)` with 100 greenlets each looping on it; total time /
/// (100 x iterations each).
pub fn gevent_sleep0_x100(o: &Opts, _n: usize) -> Option<f64> {
    Some(sleep0(o, 100))
}

/// `hub/chan_handoff`, ns per hand-off: main and a spawned greenlet ping-pong an integer over two
/// `gevent::queue::Channel`s; round trip / 2 (peers: Go unbuffered chan, may mpsc, tokio mpsc(1), gevent
/// Channel). Bar (issue 3): <= 0.5x Go.
pub fn gevent_channel_handoff(o: &Opts, ops: usize) -> Option<f64> {
    use gevent::queue::Channel;
    let ns = time_per_op(o.duration, 2 * ops, || {
        let to_b: Channel<u64> = Channel::new();
        let to_a: Channel<u64> = Channel::new();
        let (from_a, back) = (to_b.clone(), to_a.clone());
        let b = gevent::spawn(move || {
            for _ in 0..ops {
                let v = from_a.get().expect("ping");
                back.put(v + 1).expect("pong");
            }
        });
        let mut v = 0u64;
        for _ in 0..ops {
            to_b.put(bb(v)).expect("ping");
            v = to_a.get().expect("pong");
        }
        bb(v);
        b.join();
    });
    Some(ns)
}

/// `hub/block_on_local`, ns per hand-off: main and a spawned greenlet ping-pong, each waiting in
/// `gevent::block_on` on a [`crate::signal::LocalSignal`] the other fires (peer: two tokio tasks
/// of a `LocalSet` on current_thread). Bar (issue 12): <= 1.5x `chan_handoff`.
pub fn gevent_block_on_local(o: &Opts, ops: usize) -> Option<f64> {
    use crate::signal::LocalSignal;
    use std::rc::Rc;
    let ns = time_per_op(o.duration, 2 * ops, || {
        let (to_a, to_b) = (
            Rc::new(LocalSignal::default()),
            Rc::new(LocalSignal::default()),
        );
        let (a2, b2) = (to_a.clone(), to_b.clone());
        let b = gevent::spawn(move || {
            for _ in 0..ops {
                gevent::block_on(b2.wait());
                a2.fire();
            }
        });
        for _ in 0..ops {
            to_b.fire();
            gevent::block_on(to_a.wait());
        }
        b.join();
    });
    Some(ns)
}

/// `hub/block_on_remote`, ns per round trip: main asks another OS thread (std channel) to fire a
/// [`crate::signal::SharedSignal`] and waits on it in `gevent::block_on`; the wake crosses the
/// hub's remote channel (peer: tokio's current_thread `block_on` on the same signal).
pub fn gevent_block_on_remote(o: &Opts, ops: usize) -> Option<f64> {
    use crate::signal::SharedSignal;
    let sig = SharedSignal::default();
    let (req_tx, req_rx) = std::sync::mpsc::channel::<()>();
    let s2 = sig.clone();
    let th = std::thread::spawn(move || {
        while req_rx.recv().is_ok() {
            s2.fire();
        }
    });
    let ns = time_per_op(o.duration, ops, || {
        for _ in 0..ops {
            req_tx.send(()).expect("thread");
            gevent::block_on(sig.wait());
        }
    });
    drop(req_tx);
    th.join().expect("thread");
    Some(ns)
}

/// `hub/event_set_100k`, ns per waiter: `n` spawned greenlets wait on one `gevent::event::Event`; time from
/// `set()` until every waiter has run (the last one sets a second Event main waits on), / n; median of 3
/// (peers: gevent Event + AsyncResult, Go close(chan) + WaitGroup, tokio Notify). The waiters have dense
/// stacks: 100k guarded ones would need 200k mappings.
pub fn gevent_event_set(_o: &Opts, n: usize) -> Option<f64> {
    use gevent::event::Event;
    // The hub's own greenlet keeps its guarded stack: make it exist before the default changes.
    gevent::sleep(Duration::ZERO);
    let old = greenlet::stack::thread_default();
    greenlet::stack::set_thread_default(dense());
    let mut samples = Vec::new();
    for _ in 0..3 {
        let ev = Event::new();
        let all_done = Event::new();
        let left = Rc::new(Cell::new(n));
        let gs: Vec<_> = (0..n)
            .map(|_| {
                let (ev, all_done, left) = (ev.clone(), all_done.clone(), left.clone());
                gevent::spawn(move || {
                    ev.wait();
                    left.set(left.get() - 1);
                    if left.get() == 0 {
                        all_done.set();
                    }
                })
            })
            .collect();
        gevent::sleep(Duration::ZERO); // every waiter starts and parks in ev.wait()
        assert_eq!(ev.waiter_count(), n, "every waiter parked before set()");
        let t = Instant::now();
        ev.set();
        all_done.wait();
        samples.push(t.elapsed().as_nanos() as f64 / n as f64);
        gevent::joinall(&gs);
    }
    greenlet::stack::set_thread_default(old);
    Some(crate::median(&mut samples))
}

/// `hub/timers_<n>_{mean,p99,cpu}`: `n` spawned greenlets each `gevent::sleep` a distinct duration (spread
/// over `o.counts.timer_spread_ms`) and record how late they woke (now - (start of the sleep + duration));
/// CPU time of the whole run / n (peers: Go time.Sleep in goroutines, gevent.sleep in greenlets, tokio
/// `time::sleep` in current_thread tasks, may `coroutine::sleep`). Dense stacks, as in `event_set`: the
/// sleepers are all alive at once.
pub fn gevent_timers(o: &Opts) {
    use std::cell::RefCell;
    let n = o.counts.timers;
    gevent::sleep(Duration::ZERO);
    let old = greenlet::stack::thread_default();
    greenlet::stack::set_thread_default(dense());
    let late = Rc::new(RefCell::new(vec![0u64; n]));
    let cpu0 = crate::process_cpu();
    let gs: Vec<_> = (0..n)
        .map(|i| {
            let late = late.clone();
            let d = crate::timer_duration(&o.counts, i);
            gevent::spawn(move || {
                let deadline = Instant::now() + d;
                gevent::sleep(d);
                late.borrow_mut()[i] = Instant::now()
                    .saturating_duration_since(deadline)
                    .as_nanos() as u64;
            })
        })
        .collect();
    gevent::joinall(&gs);
    let cpu = crate::process_cpu() - cpu0;
    drop(gs);
    greenlet::stack::set_thread_default(old);
    let mut late = late.take();
    crate::report_timers("ours", &mut late, cpu);
}

/// io group: the project's echo (`s.kind == "echo"`) server on `127.0.0.1:0` on one hub, one thread, with
/// [`gevent::server::StreamServer`] (a greenlet per connection, as the Python gevent peer's StreamServer; Go
/// and tokio/may spawn a task per connection the same way); with `--workers N` above 1, the same server on
/// N hubs with [`gevent::server::StreamServer::bind_workers_with`] (a thread and `SO_REUSEPORT` listener
/// each, what `upper_server --workers N` runs). Accepted sockets get TCP_NODELAY, as every peer's do.
/// Serves until killed or [`crate::SERVE_MAX`] has passed.
///
/// HTTP: `http` is the project's HTTP/1.1 server, [`gevent::http::Server`] (see `serve_http`), on
/// `--workers` hubs; `https` the same over TLS; `raw-http` (the `ours-raw` column) a minimal
/// hand-written keep-alive responder on `StreamServer` (requests parsed with `httparse`, pipelining
/// honoured, one fixed `Hello, World!` response with `Content-Type`, `Content-Length` and `Date`, the
/// headers Go's net/http sends): the hub and sockets under an HTTP load without an HTTP stack.
pub fn serve(s: &Serve) -> bool {
    Serve::exit_after_max();
    let http = match s.kind.as_str() {
        "echo" => false,
        "raw-http" => true,
        "http" => return serve_http(s, s.workers, false),
        "https" => return serve_http(s, 1, true),
        "hyper-http" => return serve_hyper(s),
        other => {
            eprintln!(
                "ours: unknown --serve kind {other:?} (echo, http, https, raw-http or hyper-http)"
            );
            std::process::exit(2);
        }
    };
    let handler = move |mut conn: gevent::net::TcpStream, _addr: std::net::SocketAddr| {
        let _ = conn.set_nodelay(true);
        let r = if http {
            http_conn(&mut conn)
        } else {
            echo_conn(&mut conn)
        };
        // Resets and the like are the clients' business (wrk closes without reading the last answer).
        drop(r);
    };
    if s.workers > 1 && !http {
        let servers = gevent::server::StreamServer::bind_workers("127.0.0.1:0", s.workers, handler)
            .expect("bind 127.0.0.1:0");
        s.announce(servers.local_addr().port());
        loop {
            std::thread::park();
        }
    }
    let server =
        gevent::server::StreamServer::bind("127.0.0.1:0", handler).expect("bind 127.0.0.1:0");
    s.announce(server.local_addr().port());
    server.serve_forever();
    true
}

/// The `gevent::http` handler of the HTTP rows: `GET /work?us=N` spins (see [`crate::work_route`]),
/// anything else is `200 Hello, World!` with `content-type: text/plain` (the server adds
/// `content-length` and `date`; no `server` header: the bytes of Go's and the raw responder's answer).
fn hello(
    req: gevent::http::Request<gevent::http::Body>,
) -> gevent::http::Response<gevent::http::ResponseBody> {
    use gevent::http::{header, HeaderValue, Response, ResponseBody};
    let body = crate::work_route(req.uri().path(), req.uri().query()).unwrap_or(HELLO);
    let mut r = Response::new(ResponseBody::from(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

fn http_config() -> gevent::http::Config {
    gevent::http::Config {
        server_name: None,
        ..gevent::http::Config::default()
    }
}

/// `--serve http|https`: [`gevent::http::Server`] with [`hello`] on `workers` hubs (one: this
/// thread; more: [`gevent::http::Server::bind_workers_with`], a thread and `SO_REUSEPORT` listener
/// each), over TLS (a fresh self-signed ECDSA P-256 certificate, ALPN `http/1.1`) when `tls`.
fn serve_http(s: &Serve, workers: usize, tls: bool) -> bool {
    use gevent::http::Server;
    let acceptor = tls.then(|| {
        use gevent::ssl::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let (cert, key) = crate::self_signed();
        gevent::ssl::TlsAcceptor::from_der(
            vec![CertificateDer::from(cert)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .expect("TLS acceptor")
        .with_alpn(&[b"http/1.1"])
    });
    if workers > 1 {
        let servers = Server::bind_workers_with("127.0.0.1:0", workers, move |_, l| {
            let server = Server::new(l, hello)?.with_config(http_config());
            Ok(match &acceptor {
                Some(a) => server.with_tls(a.clone()),
                None => server,
            })
        })
        .expect("bind 127.0.0.1:0");
        s.announce(servers.local_addr().port());
        loop {
            std::thread::park();
        }
    }
    let mut server = Server::bind("127.0.0.1:0", hello)
        .expect("bind 127.0.0.1:0")
        .with_config(http_config());
    if let Some(a) = acceptor {
        server = server.with_tls(a);
    }
    s.announce(server.local_addr().port());
    server.serve_forever();
    true
}

/// `--serve hyper-http` (the io group's `ours-hyper` column): hyper 1's HTTP/1 server
/// (`server::conn::http1`, keep-alive, TCP_NODELAY) on gevent sockets through the async bridge, no
/// tokio: a greenlet per connection (`StreamServer`), its connection future polled by
/// `gevent::block_on`, every request answered `200 Hello, World!` (hyper adds content-length and
/// date), the same service as the tokio peer's hyper server.
fn serve_hyper(s: &Serve) -> bool {
    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    use hyper::{Request, Response};
    let server = gevent::server::StreamServer::bind("127.0.0.1:0", move |conn, _addr| {
        let _ = conn.set_nodelay(true);
        let svc = hyper::service::service_fn(|_req: Request<Incoming>| async {
            let mut r = Response::new(Full::new(Bytes::from_static(b"Hello, World!")));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain"),
            );
            Ok::<_, std::convert::Infallible>(r)
        });
        let _ = gevent::block_on(
            hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(conn, svc),
        );
    })
    .expect("bind 127.0.0.1:0");
    s.announce(server.local_addr().port());
    server.serve_forever();
    true
}

/// Writes back every byte read, until EOF.
fn echo_conn(c: &mut gevent::net::TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = c.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        c.write_all(&buf[..n])?;
    }
}

/// The one response body of the io group's HTTP servers (TechEmpower plaintext style).
const HELLO: &[u8] = b"Hello, World!";

/// Answers every request on the connection with [`HELLO`], until EOF, `Connection: close`, or a request it
/// cannot parse (answered with 400 and closed).
fn http_conn(c: &mut gevent::net::TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut have = 0usize;
    let mut out = Vec::with_capacity(4096);
    loop {
        // Answer every complete request in the buffer (pipelining), then write them all at once.
        let mut start = 0usize;
        let mut close = false;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf[start..have]) {
                Ok(httparse::Status::Complete(len)) => {
                    let mut body = 0usize;
                    for h in req.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            body = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse().ok())
                                .unwrap_or(0);
                        } else if h.name.eq_ignore_ascii_case("connection")
                            && h.value.eq_ignore_ascii_case(b"close")
                        {
                            close = true;
                        }
                    }
                    if req.version == Some(0) {
                        close = true; // HTTP/1.0 without keep-alive support here
                    }
                    if start + len + body > have {
                        break; // the body is not all here yet: read more, parse again
                    }
                    respond(&mut out);
                    start += len + body;
                    if close {
                        break;
                    }
                }
                Ok(httparse::Status::Partial) => break,
                Err(_) => {
                    c.write_all(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )?;
                    return Ok(());
                }
            }
        }
        if !out.is_empty() {
            c.write_all(&out)?;
            out.clear();
        }
        if close {
            return Ok(());
        }
        buf.copy_within(start..have, 0);
        have -= start;
        if have == buf.len() {
            // A request head larger than the buffer: grow (bounded).
            if buf.len() >= 1 << 20 {
                return Ok(());
            }
            buf.resize(buf.len() * 2, 0);
        }
        let n = c.read(&mut buf[have..])?;
        if n == 0 {
            return Ok(());
        }
        have += n;
    }
}

/// Appends one `200 OK` response with [`HELLO`].
fn respond(out: &mut Vec<u8>) {
    out.extend_from_slice(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nDate: ",
    );
    http_date(out);
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(HELLO);
}

thread_local! {
    /// The `Date` header value and the second it was formatted for.
    static DATE: Cell<(u64, [u8; 29])> = const { Cell::new((u64::MAX, [0; 29])) };
}

/// Appends the current time as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), formatted once a second.
fn http_date(out: &mut Vec<u8>) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (secs, mut text) = DATE.with(Cell::get);
    if secs != now {
        text = format_date(now);
        DATE.with(|d| d.set((now, text)));
    }
    out.extend_from_slice(&text);
}

/// `secs` since the Unix epoch as an IMF-fixdate.
fn format_date(secs: u64) -> [u8; 29] {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's days_from_civil, inverted).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let s = format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    let mut b = [b' '; 29];
    let n = s.len().min(29);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(&format_date(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&format_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&format_date(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn every_row_has_a_unit_and_a_group() {
        for m in all() {
            assert!(["switch", "lifecycle", "hub", "cross"].contains(&m.group));
            assert!(!m.metric.is_empty());
        }
    }
}
