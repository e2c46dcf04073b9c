//! The benchmark harness: this project beside its peers, same machine, same run.
//!
//! Every measuring program (a Rust binary of this crate, `peers/go`, `peers/python/peer.py`) prints one line
//! per measurement on stdout, and nothing else starting with `RESULT `:
//!
//! ```text
//! RESULT group=switch name=roundtrip peer=corosensei ns_per_op=3.1 n=100000
//! ```
//!
//! - `group`, `name`, `peer` identify the row and column of the table; rows of different peers line up when
//!   their `group` and `name` are equal, so every peer must use the names listed in [`names`] (the groups,
//!   the rows' order and docs, and the columns are the one table in [`rows`]).
//! - exactly one more `key=value` pair is the metric; its key is the unit (`ns_per_op`, `bytes_per_task`,
//!   `maps`, `ns_per_page`, `ghz`). For every metric except `ghz`, lower is better.
//! - `n=` (optional) is the count the measurement used.
//!
//! A measurement that a program knows but cannot make yet prints `SKIP group=.. name=.. peer=.. reason=..`.
//!
//! `bench/run` installs and builds the peers, then `bin/harness.rs` runs every peer of a group once per
//! round, rotating their order each round (peers are interleaved, so a noisy minute hurts all of them
//! alike), starts and loads the io group's servers, collects the lines in `target/bench-raw/*.txt`, and
//! `report` turns them into medians over rounds, a markdown table and an SVG chart of ratios.
//!
//! Each program takes the same options: `--group G` (repeatable; default all its groups), `--quick` (tiny
//! counts), `--duration S` (seconds to repeat each timed measurement; the program reports the median of its
//! batches).

use std::hint::black_box;
use std::time::{Duration, Instant};

pub mod ours;
pub mod rows;

/// The minimal futures the `block_on_*` rows wait on, the same for every executor: a flag and a
/// waker, so the rows measure the executor's park and wake, not a channel's own bookkeeping.
pub mod signal {
    use std::cell::{Cell, RefCell};
    use std::future::Future;
    use std::sync::{Arc, Mutex};
    use std::task::{Poll, Waker};

    /// One thread: `fire` sets the flag and wakes the waiting task.
    #[derive(Default)]
    pub struct LocalSignal {
        set: Cell<bool>,
        waker: RefCell<Option<Waker>>,
    }

    impl LocalSignal {
        /// Sets the flag and wakes the waiter, if any.
        pub fn fire(&self) {
            self.set.set(true);
            let w = self.waker.borrow_mut().take();
            if let Some(w) = w {
                w.wake();
            }
        }

        /// Completes once the flag is set (and clears it).
        pub fn wait(&self) -> impl Future<Output = ()> + '_ {
            std::future::poll_fn(move |cx| {
                if self.set.replace(false) {
                    return Poll::Ready(());
                }
                let mut w = self.waker.borrow_mut();
                match &*w {
                    Some(old) if old.will_wake(cx.waker()) => {}
                    _ => *w = Some(cx.waker().clone()),
                }
                Poll::Pending
            })
        }
    }

    /// Any thread may `fire` it.
    #[derive(Default, Clone)]
    pub struct SharedSignal(Arc<Mutex<(bool, Option<Waker>)>>);

    impl SharedSignal {
        /// Sets the flag and wakes the waiter, if any (outside the lock).
        pub fn fire(&self) {
            let w = {
                let mut g = self.0.lock().expect("signal");
                g.0 = true;
                g.1.take()
            };
            if let Some(w) = w {
                w.wake();
            }
        }

        /// Completes once the flag is set (and clears it).
        pub fn wait(&self) -> impl Future<Output = ()> + '_ {
            std::future::poll_fn(move |cx| {
                let mut g = self.0.lock().expect("signal");
                if std::mem::take(&mut g.0) {
                    return Poll::Ready(());
                }
                match &g.1 {
                    Some(old) if old.will_wake(cx.waker()) => {}
                    _ => g.1 = Some(cx.waker().clone()),
                }
                Poll::Pending
            })
        }
    }
}

/// Canonical measurement names, shared by every peer (the Go and Python peers spell the same strings).
pub mod names {
    /// group `switch`: one A->B->A round trip (resume + suspend, or two `switch` calls), ns.
    pub const ROUNDTRIP: &str = "roundtrip";
    /// group `switch`: one A->B->A round trip between two greenlets that are both not the thread's main
    /// (symmetric switching, which corosensei has no direct equivalent of), ns.
    pub const ROUNDTRIP_AB: &str = "roundtrip_ab";
    /// group `switch`: create + run to completion + drop/finish with a reused (pooled) stack, ns.
    pub const CREATE_RUN_FINISH: &str = "create_run_finish";
    /// group `lifecycle`: spawn N trivial tasks and join them all, ns per task. Suffixed by the count.
    pub const SPAWN_JOIN: &str = "spawn_join";
    /// group `lifecycle`: resident memory per parked task, bytes. Suffixed by the count.
    pub const PARKED_MEM: &str = "parked_mem";
    /// group `lifecycle`: kernel memory mappings of the process with N parked tasks. Suffixed by the count.
    pub const MAPS: &str = "maps";
    /// group `hub`: `sleep(0)` / yield with 1 task, ns per yield.
    pub const SLEEP0_X1: &str = "sleep0_x1";
    /// group `hub`: `sleep(0)` / yield with 100 tasks, ns per yield (per task per round).
    pub const SLEEP0_X100: &str = "sleep0_x100";
    /// group `hub`: channel ping-pong between two tasks, ns per hand-off (half a round trip).
    pub const CHAN_HANDOFF: &str = "chan_handoff";
    /// group `hub`: the wake round trip of a future: two tasks of one thread ping-pong, each
    /// awaiting a [`super::signal::LocalSignal`] the other fires (ours: both in `gevent::block_on`;
    /// tokio: two tasks of a `LocalSet` on current_thread), ns per hand-off (half a round trip).
    pub const BLOCK_ON_LOCAL: &str = "block_on_local";
    /// group `hub`: the same with the waker called from another OS thread: a request goes to the
    /// thread over a std channel, it fires a [`super::signal::SharedSignal`] the task awaits (ours:
    /// the wake crosses the hub's remote channel; tokio: current_thread `block_on`), ns per round trip.
    pub const BLOCK_ON_REMOTE: &str = "block_on_remote";
    /// group `hub`: set an event that N tasks wait on, until all have run, ns per waiter. Suffixed by the count.
    pub const EVENT_SET: &str = "event_set";
    /// group `hub`: N tasks each sleep a distinct duration spread over [`super::Counts::timer_spread_ms`];
    /// `timers_<n>_mean` / `timers_<n>_p99`: lateness (wake - deadline), us; `timers_<n>_cpu`: process CPU
    /// time of the whole run (spawn, sleep, wake, exit) per timer, ns.
    pub const TIMERS: &str = "timers";
    /// group `cross`: a task waits on a one-shot that an OS thread fills (the thread waits on the next
    /// one the task fills): ns per cross-thread hand-off (half a round trip; a fresh one-shot each way).
    pub const ONESHOT_XTHREAD: &str = "oneshot_xthread";
    /// group `cross`: an OS thread sends into a bounded (64) channel, a task receives: ns per message.
    pub const CHAN_XTHREAD: &str = "chan_xthread";
    /// group `cross`: lock + unlock of a lock nobody else wants, ns.
    pub const MUTEX_UNCONTENDED: &str = "mutex_uncontended";
    /// group `cross`: 4 tasks on one thread each lock, yield while holding it, unlock: ns per lock.
    pub const MUTEX_CONTENDED: &str = "mutex_contended";
    /// group `thread` (issue 16, `bin/monkey_thread.rs`): `std::sync::Mutex` lock + unlock nobody else
    /// wants, under `patch_thread` (ours) and before it (`unpatched`), ns.
    pub const STD_MUTEX_UNCONTENDED: &str = "std_mutex_uncontended";
    /// group `thread`: a std `Mutex` handed between two greenlets, each holding it across a yield (ours,
    /// the futex hook parks the other), against tokio's `Mutex` between two tasks; ns per lock.
    pub const MUTEX_HANDOFF: &str = "mutex_handoff";
    /// group `thread`: the futex hook's own hand-off between two greenlets (a raw futex word, no
    /// spin); ns per hand-off, ours only.
    pub const FUTEX_PINGPONG: &str = "futex_pingpong";
    /// group `thread`: a round trip to an OS thread over `std::sync::mpsc`, received in a greenlet's
    /// cooperative `recv()` (ours) or a tokio task's `mpsc` `recv().await`; ns per round trip.
    pub const MPSC_XTHREAD_ROUNDTRIP: &str = "mpsc_xthread_roundtrip";
    /// group `thread`: `syscall(SYS_getrandom)` outside greenlets through the shim (ours) or glibc's
    /// own `syscall` (`unpatched`), ns.
    pub const SYSCALL_GETRANDOM: &str = "syscall_getrandom";
    /// group `io`: HTTP plaintext under wrk, one worker (see [`super::rows::http`]).
    pub const HTTP: &str = "http";
    /// group `io`: HTTPS plaintext under wrk, one worker.
    pub const HTTPS: &str = "https";
    /// group `io`: HTTP plaintext under wrk on N workers, `http_w<N>_c<conns>` (issue 14's bar at N = 2;
    /// see [`super::rows::http_w`]).
    pub const HTTP_W: &str = "http_w";
    /// group `calibration`: a raw `syscall(SYS_getppid)`, ns.
    pub const SYSCALL: &str = "syscall";
    /// group `calibration`: first touch of a fresh anonymous page, ns.
    pub const PAGE_FAULT: &str = "page_fault";
    /// group `calibration`: the effective core clock, GHz.
    pub const CORE_CLOCK: &str = "core_clock";
}

/// The counts every peer uses, so that rows line up. Peers in other languages copy these numbers.
#[derive(Clone, Copy, Debug)]
pub struct Counts {
    /// Tasks spawned and joined per batch in `spawn_join_*`.
    pub spawn: usize,
    /// Tasks parked for `parked_mem_*` / `maps_*` (every stackful peer that can hold this many).
    pub parked: usize,
    /// The large parked count (`1m` in a full run) for peers that can hold it without guard pages
    /// (Go, the project's dense mode).
    pub parked_large: usize,
    /// Parked count for peers whose stacks carry guard pages (2 mappings each, `vm.max_map_count` = 65530).
    pub parked_guarded: usize,
    /// Operations per timed batch (switches, yields, hand-offs).
    pub ops: usize,
    /// Waiters on one event in `event_set_*`.
    pub waiters: usize,
    /// Sleeping tasks in `timers_*`.
    pub timers: usize,
    /// The sleeps of `timers_*` are spread evenly over (0, this many ms]: task i sleeps
    /// `timer_spread_ms * (i + 1) / timers`.
    pub timer_spread_ms: u64,
}

impl Counts {
    /// Full-run counts, or the `--quick` ones (tiny, for CI).
    pub fn new(quick: bool) -> Self {
        if quick {
            Counts {
                spawn: 10_000,
                parked: 10_000,
                parked_large: 100_000,
                parked_guarded: 3_000,
                ops: 20_000,
                waiters: 10_000,
                timers: 1_000,
                timer_spread_ms: 50,
            }
        } else {
            Counts {
                spawn: 100_000,
                parked: 100_000,
                parked_large: 1_000_000,
                parked_guarded: 30_000,
                ops: 200_000,
                waiters: 100_000,
                timers: 100_000,
                timer_spread_ms: 500,
            }
        }
    }
}

/// `100000` -> `100k`, `1000000` -> `1m`: the suffix of counted measurement names.
pub fn count_label(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}m", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

/// `spawn_join` + 100000 -> `spawn_join_100k`.
pub fn counted(name: &str, n: usize) -> String {
    format!("{name}_{}", count_label(n))
}

/// Options shared by every Rust measuring program.
#[derive(Clone, Debug)]
pub struct Opts {
    /// Groups asked for; empty means all.
    pub groups: Vec<String>,
    /// Tiny counts.
    pub quick: bool,
    /// How long to repeat each timed measurement.
    pub duration: Duration,
    /// The counts derived from `quick`.
    pub counts: Counts,
    /// `--mem N`: measure only the parked memory of N tasks, then exit (see [`parked_in_child`]).
    pub mem: Option<usize>,
    /// `--serve echo|http --port-file F [--workers N]`: be a loopback server for the io group (see
    /// [`Serve`]).
    pub serve: Option<Serve>,
    /// `--stack KIND`: which kind of stack a `--mem` child measures (peers with one kind ignore it).
    pub stack: Option<String>,
}

/// A server the io group asks a peer to be: bind `127.0.0.1:0`, write the port to `port_file` (atomically,
/// via a rename), serve until killed or until [`SERVE_MAX`] has passed.
#[derive(Clone, Debug)]
pub struct Serve {
    /// `echo` (write back every byte read) or `http` (answer every request with `Hello, World!`).
    pub kind: String,
    /// Where to write the bound port.
    pub port_file: std::path::PathBuf,
    /// `--workers N` (default 1): how many threads serve (the project: hubs, each with its own
    /// `SO_REUSEPORT` listener; tokio: a multi_thread runtime with N workers, current_thread for 1; may:
    /// N may workers). Servers that only come in one width ignore it.
    pub workers: usize,
}

/// A self-signed certificate for `localhost` / `127.0.0.1` (ECDSA P-256, rcgen's default) and its key,
/// DER (the key PKCS#8), made afresh: the HTTPS rows' servers each make one at start.
///
/// # Panics
/// If rcgen fails (it does not for these names).
pub fn self_signed() -> (Vec<u8>, Vec<u8>) {
    let c =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("a self-signed certificate");
    (c.cert.der().to_vec(), c.signing_key.serialize_der())
}

/// The CPU-bound handler of the `work50us_w<n>` rows (`GET /work?us=N`): spins N microseconds without
/// yielding. `None` when the path is not `/work`.
pub fn work_route(path: &str, query: Option<&str>) -> Option<&'static [u8]> {
    if path != "/work" {
        return None;
    }
    let us: u64 = query
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("us=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let d = Duration::from_micros(us);
    let t = std::time::Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
    Some(b"done")
}

/// Longest a benchmark server lives, whoever forgets to stop it.
pub const SERVE_MAX: Duration = Duration::from_secs(900);

impl Serve {
    /// Writes the bound port where `bench/run` waits for it.
    ///
    /// # Panics
    /// If the file cannot be written (the run cannot go on without it).
    pub fn announce(&self, port: u16) {
        let tmp = self.port_file.with_extension("tmp");
        std::fs::write(&tmp, port.to_string()).expect("writing the port file");
        std::fs::rename(&tmp, &self.port_file).expect("renaming the port file");
    }

    /// Starts a thread that ends the process after [`SERVE_MAX`]: every server is bounded in time.
    pub fn exit_after_max() {
        std::thread::spawn(|| {
            std::thread::sleep(SERVE_MAX);
            std::process::exit(0);
        });
    }
}

impl Opts {
    /// Parses `--group G` (repeatable, comma lists allowed), `--quick`, `--duration S` from the command line.
    ///
    /// # Panics
    /// On an unknown option or a malformed value, with a message naming it (these are internal tools).
    pub fn from_args() -> Self {
        let mut groups = Vec::new();
        let mut quick = false;
        let mut duration = None;
        let mut mem = None;
        let mut stack = None;
        let (mut serve_kind, mut port_file, mut workers) = (None, None, 1);
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => quick = true,
                "--group" | "--groups" => {
                    let v = args.next().expect("--group needs a value");
                    groups.extend(v.split(',').filter(|s| !s.is_empty()).map(str::to_owned));
                }
                "--duration" => {
                    let v = args.next().expect("--duration needs a value");
                    let s: f64 = v.parse().expect("--duration takes seconds, e.g. 0.5");
                    duration = Some(Duration::from_secs_f64(s.max(0.0)));
                }
                "--mem" => {
                    let v = args.next().expect("--mem needs a count");
                    mem = Some(v.parse().expect("--mem takes a task count"));
                }
                "--stack" => stack = Some(args.next().expect("--stack needs a kind")),
                "--serve" => serve_kind = Some(args.next().expect("--serve needs echo or http")),
                "--port-file" => {
                    port_file = Some(args.next().expect("--port-file needs a path").into())
                }
                "--workers" => {
                    let v = args.next().expect("--workers needs a count");
                    workers = match v.parse::<usize>() {
                        Ok(n) if n >= 1 => n,
                        _ => panic!("--workers takes a count of at least 1, not {v:?}"),
                    };
                }
                other => panic!(
                    "unknown option {other:?} (known: --group G, --quick, --duration S, --mem N, \
                     --stack KIND, --serve K --port-file F [--workers N])"
                ),
            }
        }
        let duration = duration.unwrap_or(if quick {
            Duration::from_millis(50)
        } else {
            Duration::from_millis(500)
        });
        Opts {
            groups,
            quick,
            duration,
            counts: Counts::new(quick),
            mem,
            stack,
            serve: serve_kind.map(|kind| Serve {
                kind,
                port_file: port_file.expect("--serve needs --port-file"),
                workers,
            }),
        }
    }

    /// Whether group `g` was asked for.
    pub fn wants(&self, g: &str) -> bool {
        self.groups.is_empty() || self.groups.iter().any(|x| x == g)
    }
}

/// Prints one `RESULT` line (see the crate docs for the format) and flushes stdout.
pub fn report(group: &str, name: &str, peer: &str, metric: &str, value: f64, n: usize) {
    use std::io::Write;
    println!("RESULT group={group} name={name} peer={peer} {metric}={value:.3} n={n}");
    let _ = std::io::stdout().flush();
}

/// Prints one `SKIP` line: a measurement this peer knows but cannot make (yet).
pub fn skip(group: &str, name: &str, peer: &str, reason: &str) {
    println!(
        "SKIP group={group} name={name} peer={peer} reason={}",
        reason.replace(' ', "_")
    );
}

/// The sleep of timer task `i` of `n` (see [`Counts::timer_spread_ms`]).
pub fn timer_duration(c: &Counts, i: usize) -> Duration {
    Duration::from_nanos(c.timer_spread_ms * 1_000_000 * (i as u64 + 1) / c.timers.max(1) as u64)
}

/// CPU time this process has used (user + system, every thread), from `CLOCK_PROCESS_CPUTIME_ID`.
pub fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Reports the `timers_<n>` rows from every task's lateness (ns, wake - deadline) and the CPU time the run
/// took.
pub fn report_timers(peer: &str, late_ns: &mut [u64], cpu: Duration) {
    let n = late_ns.len();
    if n == 0 {
        skip("hub", &counted(names::TIMERS, 0), peer, "no timers");
        return;
    }
    late_ns.sort_unstable();
    let mean = late_ns.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    let p99 = late_ns[((n * 99).div_ceil(100)).min(n) - 1] as f64;
    let base = counted(names::TIMERS, n);
    report(
        "hub",
        &format!("{base}_mean"),
        peer,
        "us_late",
        mean / 1e3,
        n,
    );
    report("hub", &format!("{base}_p99"), peer, "us_late", p99 / 1e3, n);
    report(
        "hub",
        &format!("{base}_cpu"),
        peer,
        "cpu_ns_per_timer",
        cpu.as_nanos() as f64 / n as f64,
        n,
    );
}

/// Upper bound on batches per timed measurement, whatever `--duration` says.
pub const MAX_BATCHES: usize = 1_000;

/// Runs `batch` (which performs `ops` operations and returns nothing useful) once to warm up, then repeatedly
/// until `duration` has passed (at least 3 times, at most [`MAX_BATCHES`]), and returns the median
/// nanoseconds per operation over the batches.
pub fn time_per_op(duration: Duration, ops: usize, mut batch: impl FnMut()) -> f64 {
    batch();
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < MAX_BATCHES && (samples.len() < 3 || start.elapsed() < duration) {
        let t = Instant::now();
        batch();
        samples.push(t.elapsed().as_nanos() as f64 / ops.max(1) as f64);
    }
    median(&mut samples)
}

/// Like [`time_per_op`], but each batch gets fresh state from `setup`, which is not timed.
pub fn time_per_op_setup<S>(
    duration: Duration,
    ops: usize,
    mut setup: impl FnMut() -> S,
    mut batch: impl FnMut(S),
) -> f64 {
    batch(setup());
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < MAX_BATCHES && (samples.len() < 3 || start.elapsed() < duration) {
        let s = setup();
        let t = Instant::now();
        batch(s);
        samples.push(t.elapsed().as_nanos() as f64 / ops.max(1) as f64);
    }
    median(&mut samples)
}

/// Median of `v` (mean of the middle two for even lengths); NaN when empty.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Resident set size of this process in bytes, from `/proc/self/statm`; 0 if unreadable.
pub fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(1) as u64
}

/// Number of memory mappings of this process (lines of `/proc/self/maps`); 0 if unreadable.
pub fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Reports `parked_mem_<n>` (RSS growth per task since `rss_before`) and `maps_<n>` for `n` parked tasks.
pub fn report_parked(group: &str, peer: &str, n: usize, rss_before: u64) {
    let rss = rss_bytes();
    let per = rss.saturating_sub(rss_before) as f64 / n.max(1) as f64;
    report(
        group,
        &counted(names::PARKED_MEM, n),
        peer,
        "bytes_per_task",
        per,
        n,
    );
    report(
        group,
        &counted(names::MAPS, n),
        peer,
        "maps",
        map_count() as f64,
        n,
    );
}

/// Runs this same program again as `--mem n` (plus `--quick` when set), its stdout passed through.
///
/// Parked memory is measured in a fresh process: a runtime that already ran other measurements keeps freed
/// stacks and task records in its pools, and the RSS growth would hide them. Returns whether the child
/// succeeded; on failure it prints a `SKIP` line naming the exit status.
pub fn parked_in_child(o: &Opts, group: &str, peer: &str, n: usize) -> bool {
    parked_in_child_with(o, group, peer, n, &[])
}

/// [`parked_in_child`] with more arguments for the child (e.g. `--stack dense`).
pub fn parked_in_child_with(o: &Opts, group: &str, peer: &str, n: usize, extra: &[&str]) -> bool {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            skip(
                group,
                &counted(names::PARKED_MEM, n),
                peer,
                &format!("no current_exe: {e}"),
            );
            return false;
        }
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--mem").arg(n.to_string()).args(extra);
    if o.quick {
        cmd.arg("--quick");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    match cmd.status() {
        Ok(s) if s.success() => true,
        Ok(s) => {
            skip(
                group,
                &counted(names::PARKED_MEM, n),
                peer,
                &format!("child failed: {s}"),
            );
            false
        }
        Err(e) => {
            skip(
                group,
                &counted(names::PARKED_MEM, n),
                peer,
                &format!("spawn failed: {e}"),
            );
            false
        }
    }
}

/// Keeps `x` opaque to the optimiser (re-export of [`std::hint::black_box`] for the peers).
pub fn bb<T>(x: T) -> T {
    black_box(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(count_label(100_000), "100k");
        assert_eq!(count_label(1_000_000), "1m");
        assert_eq!(count_label(3_000), "3k");
        assert_eq!(count_label(123), "123");
        assert_eq!(counted("spawn_join", 10_000), "spawn_join_10k");
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn timing_is_bounded() {
        let mut calls = 0;
        let ns = time_per_op(Duration::ZERO, 10, || calls += 1);
        assert!(ns >= 0.0);
        assert_eq!(calls, 4); // warm-up + the 3-batch minimum
    }
}
