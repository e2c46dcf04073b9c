//! The project's own measurements: the extension points the table's `ours` column comes from.
//!
//! Every function here measures one row of the table for this project's crates and returns `Some(value)` in
//! the row's unit, or `None` while the API it needs does not exist yet (the `ours` binary then prints a
//! `SKIP ... reason=not_yet` line and the table shows "not yet"). Fill one in by replacing its body; keep
//! its signature and its unit, and measure the same thing as the peers named in its doc (read the peer's
//! source under `bench/src/bin/peer_*.rs`, `bench/peers/go/main.go`, `bench/peers/python/peer.py`).
//!
//! Conventions (see also the crate docs in `lib.rs`):
//! - time per operation: use [`crate::time_per_op`] with `o.duration` and the counts in `o.counts`, wrap
//!   inputs/outputs in [`std::hint::black_box`], keep every loop bounded;
//! - memory: take [`crate::rss_bytes`] before creating the tasks, return the growth divided by the count;
//!   [`crate::map_count`] gives the mapping count;
//! - everything runs on the calling (main) thread: greenlets and the hub are per thread.
//!
//! The greenlet API these will use (issue 2): `greenlet::Greenlet::new(|v: greenlet::Value| -> Value)`,
//! `g.switch(v) -> Value`, `greenlet::getcurrent()`. The gevent API (issue 3): `gevent::spawn`, `join`,
//! `gevent::sleep(Duration::ZERO)`, `gevent::queue::Channel`, `gevent::event::Event`.

use crate::{Opts, Serve};

/// io group: be the project's echo (`s.kind == "echo"`) or HTTP plaintext (`"http"`) server on
/// `127.0.0.1:0`, call `s.announce(port)`, and serve (one hub, one thread) until killed; call
/// [`Serve::exit_after_max`] first. Return `false` while the project cannot serve yet: the `ours` binary
/// then exits with status 3 and `bench/run` reports the rows as "not yet". The peers' servers to match:
/// `serve` in `bench/src/bin/peer_tokio.rs` / `peer_may.rs`, `serveEcho` / `serveHTTP` in
/// `bench/peers/go/main.go`, `serve` in `bench/peers/python/peer.py` (gevent StreamServer / pywsgi).
pub fn serve(_s: &Serve) -> bool {
    false
}

/// One measurement of the project, as the `ours` binary runs them.
pub struct Measurement {
    /// Table group (`switch`, `lifecycle`, `hub`).
    pub group: &'static str,
    /// Row name; counted rows get their count appended by the caller (see [`Measurement::counted`]).
    pub name: &'static str,
    /// The unit, which is the metric key in the `RESULT` line.
    pub metric: &'static str,
    /// The count to append to `name` (e.g. `spawn_join` + 100k), if any.
    pub counted: Option<fn(&Opts) -> usize>,
    /// Runs the measurement with the count (from `counted`, else `o.counts.ops`); `None` means "not yet".
    pub run: fn(&Opts, usize) -> Option<f64>,
}

/// Every measurement of the project, in table order.
pub fn all() -> Vec<Measurement> {
    use crate::names::*;
    vec![
        Measurement {
            group: "switch",
            name: ROUNDTRIP,
            metric: "ns_per_op",
            counted: None,
            run: greenlet_switch_roundtrip,
        },
        Measurement {
            group: "switch",
            name: CREATE_RUN_FINISH,
            metric: "ns_per_op",
            counted: None,
            run: greenlet_create_run_finish,
        },
        Measurement {
            group: "lifecycle",
            name: PARKED_MEM,
            metric: "bytes_per_task",
            counted: Some(|o| o.counts.parked),
            run: greenlet_dense_rss_per_greenlet,
        },
        Measurement {
            group: "lifecycle",
            name: PARKED_MEM,
            metric: "bytes_per_task",
            counted: Some(|o| o.counts.parked_large),
            run: greenlet_dense_rss_per_greenlet,
        },
        Measurement {
            group: "lifecycle",
            name: PARKED_MEM,
            metric: "bytes_per_task",
            counted: Some(|o| o.counts.parked_guarded),
            run: greenlet_guarded_rss_per_greenlet,
        },
        Measurement {
            group: "lifecycle",
            name: SPAWN_JOIN,
            metric: "ns_per_op",
            counted: Some(|o| o.counts.spawn),
            run: gevent_spawn_join,
        },
        Measurement {
            group: "hub",
            name: SLEEP0_X1,
            metric: "ns_per_op",
            counted: None,
            run: gevent_sleep0_x1,
        },
        Measurement {
            group: "hub",
            name: SLEEP0_X100,
            metric: "ns_per_op",
            counted: None,
            run: gevent_sleep0_x100,
        },
        Measurement {
            group: "hub",
            name: CHAN_HANDOFF,
            metric: "ns_per_op",
            counted: None,
            run: gevent_channel_handoff,
        },
        Measurement {
            group: "hub",
            name: EVENT_SET,
            metric: "ns_per_op",
            counted: Some(|o| o.counts.waiters),
            run: gevent_event_set,
        },
    ]
}

/// `switch/roundtrip`, ns: greenlet A switches to B, B switches back to A, passing a `Value` each way
/// (peers: corosensei `resume`+`suspend`, Python greenlet's two `switch` calls). Bar: <= 2.0x corosensei.
pub fn greenlet_switch_roundtrip(_o: &Opts, _n: usize) -> Option<f64> {
    None
}

/// `switch/create_run_finish`, ns: `Greenlet::new` + first `switch` + `run` returns, with the stack from the
/// per-thread pool (peer: corosensei `with_stack` + `resume` + `into_stack`). Bar: <= 5x corosensei.
pub fn greenlet_create_run_finish(_o: &Opts, _n: usize) -> Option<f64> {
    None
}

/// `lifecycle/parked_mem_<n>`, bytes per greenlet: `n` greenlets alive and suspended at once in dense mode
/// (called with `o.counts.parked` = 100k, peers gevent, Python greenlet, Go, tokio; and with
/// `o.counts.parked_large` = 1m, peer Go); RSS growth / n. Measure in a fresh process (see
/// [`crate::parked_in_child`]: pools left by earlier measurements hide the cost) and report `maps_<n>` too
/// ([`crate::report_parked`]). Bar (issue 2): <= 5 KiB at 1m.
pub fn greenlet_dense_rss_per_greenlet(_o: &Opts, _n: usize) -> Option<f64> {
    None
}

/// `lifecycle/parked_mem_30k`, bytes per greenlet: `n` = `o.counts.parked_guarded` greenlets in the default
/// (guard page) mode (peers: corosensei `DefaultStack`, may). Fresh process, as above.
pub fn greenlet_guarded_rss_per_greenlet(_o: &Opts, _n: usize) -> Option<f64> {
    None
}

/// `lifecycle/spawn_join_100k`, ns per task: `gevent::spawn` `o.counts.spawn` trivial greenlets, then join
/// them all (peers: Python gevent spawn+joinall, Go `go`+WaitGroup, may spawn+join, tokio current_thread
/// spawn+await). Bar: <= 0.5x Go.
pub fn gevent_spawn_join(_o: &Opts, _n: usize) -> Option<f64> {
    None
}

/// `hub/sleep0_x1`, ns per `sleep(Duration::ZERO)` with one greenlet looping on it (peers: gevent.sleep(0),
/// Go runtime.Gosched, may yield_now). Bar: <= 0.1x gevent.
pub fn gevent_sleep0_x1(_o: &Opts, _n: usize) -> Option<f64> {
    None
}

/// `hub/sleep0_x100`, ns per `sleep(Duration::ZERO)` with 100 greenlets each looping on it; total time /
/// (100 x iterations each).
pub fn gevent_sleep0_x100(_o: &Opts, _n: usize) -> Option<f64> {
    None
}

/// `hub/chan_handoff`, ns per hand-off: two greenlets ping-pong an integer over two `gevent::queue::Channel`s;
/// round trip / 2 (peers: Go unbuffered chan, may mpsc, gevent Channel). Bar: <= 0.5x Go.
pub fn gevent_channel_handoff(_o: &Opts, _n: usize) -> Option<f64> {
    None
}

/// `hub/event_set_100k`, ns per waiter: `o.counts.waiters` greenlets wait on one `gevent::event::Event`;
/// time from `set()` until every waiter has run, / waiters (peers: gevent Event, Go close(chan)).
pub fn gevent_event_set(_o: &Opts, _n: usize) -> Option<f64> {
    None
}
