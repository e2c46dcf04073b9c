//! The one table of the benchmark's rows, columns and groups: what `harness` runs (the groups, the
//! programs of each, the io row names it builds) and what `report` prints (row and column order, the
//! legend under the tables). A row, column or group is added here and nowhere else in Rust (the Go and
//! Python peers spell the same strings; [`crate::names`] holds the constants the Rust peers use).

use crate::names;

/// One row of the report (a measurement base name; counted and suffixed variants such as
/// `spawn_join_100k` or `echo_64b_c50_cpu` sort under it).
#[derive(Clone, Copy, Debug)]
pub struct Row {
    /// The group whose table it is in.
    pub group: &'static str,
    /// The base name: the row sorts by the longest base its name starts with.
    pub base: &'static str,
    /// How the legend names the rows of this base (`""`: no legend line of its own, e.g. `echo_4k`
    /// shares `echo_64b`'s).
    pub legend: &'static str,
    /// What the rows measure, and what each peer does for it (the same work on every side).
    pub doc: &'static str,
}

const fn row(
    group: &'static str,
    base: &'static str,
    legend: &'static str,
    doc: &'static str,
) -> Row {
    Row {
        group,
        base,
        legend,
        doc,
    }
}

/// Every row in table order.
pub const ROWS: &[Row] = &[
    row(
        "switch",
        names::ROUNDTRIP,
        "roundtrip",
        "switch A->B->A passing a value each way (corosensei: resume + suspend)",
    ),
    row(
        "switch",
        names::ROUNDTRIP_AB,
        "roundtrip_ab",
        "switch A->B->A between two greenlets that are both not the thread's main one (symmetric switch)",
    ),
    row(
        "switch",
        names::CREATE_RUN_FINISH,
        "create_run_finish",
        "create a task on a reused/pooled stack, run it to completion, finish/drop it",
    ),
    row(
        "lifecycle",
        names::SPAWN_JOIN,
        "spawn_join",
        "spawn N trivial tasks and join them all, per task",
    ),
    row(
        "lifecycle",
        names::PARKED_MEM,
        "parked_mem",
        "RSS growth per task with N tasks alive and parked (fresh process)",
    ),
    row(
        "lifecycle",
        names::MAPS,
        "maps",
        "kernel memory mappings of the process with N parked tasks (vm.max_map_count is 65530)",
    ),
    row(
        "hub",
        names::SLEEP0_X1,
        "sleep0_x1",
        "sleep(0) / yield in a loop with 1 task, per yield",
    ),
    row(
        "hub",
        names::SLEEP0_X100,
        "sleep0_x100",
        "sleep(0) / yield in a loop with 100 tasks, per yield",
    ),
    row(
        "hub",
        names::CHAN_HANDOFF,
        "chan_handoff",
        "ping-pong between two tasks over channels, per hand-off (round trip / 2)",
    ),
    row(
        "hub",
        names::EVENT_SET,
        "event_set",
        "N tasks wait on one event; from set() until all ran, per waiter",
    ),
    row(
        "hub",
        names::TIMERS,
        "timers_<n>",
        "N tasks each sleep a distinct duration spread evenly over 0.5 s (quick: 1k over 50 ms); `_mean` / `_p99`: lateness (wake - deadline), us; `_cpu`: process CPU time of the whole run (spawn, sleep, wake, join) per timer",
    ),
    row(
        "hub",
        names::BLOCK_ON_LOCAL,
        "block_on_local",
        "the wake round trip of a future: two tasks of one thread ping-pong, each awaiting a flag-and-waker future the other fires (ours: gevent::block_on in two greenlets; tokio: two tasks of a LocalSet on current_thread), per hand-off; issue 12's bar: <= 1.5x `chan_handoff`",
    ),
    row(
        "hub",
        names::BLOCK_ON_REMOTE,
        "block_on_remote",
        "the same future fired by another OS thread (asked over a std channel), per round trip (ours: the wake crosses the hub's remote channel; tokio: current_thread block_on)",
    ),
    row(
        "io",
        "echo_64b",
        "echo_<size>_c<conns>",
        "echo server on loopback (server on core 0, bench/src/bin/loadgen.rs on core 1): wall time per round trip, i.e. latency at c1 and inverse throughput above; `_cpu`: the server's CPU time per round trip; `_p50`/`_p99`: percentiles of the single round trips' latency",
    ),
    row("io", "echo_4k", "", ""),
    row(
        "io",
        "echo_64b_w",
        "echo_64b_w<workers>_c<conns>",
        "the same echo (64 B messages, a task per connection reading up to 64 KiB and writing back what it read, TCP_NODELAY) on N workers (harness `--workers`; default 2, and the core count on machines with more than 2), server and bench/src/bin/loadgen.rs NOT pinned (the server needs the cores, the load generator shares them, so compare ratios; loadgen runs min(N, cores / 2) threads, at least 1); ours: gevent::server::StreamServer::bind_workers_with on N hubs, each with its own SO_REUSEPORT listener (what `upper_server --workers N` runs; bench/src/ours.rs: serve); tokio: a multi_thread runtime with N workers (accepting in block_on on the main thread, as #[tokio::main] does); may: N may workers (pinned to cores by may itself, its default); go: GOMAXPROCS=N; `_cpu`: the server process's CPU time (all its threads) per round trip",
    ),
    row(
        "io",
        names::HTTP,
        "http_c<conns>",
        "HTTP plaintext (Hello, World!, content-type text/plain, content-length, date) under wrk -t1, keep-alive (Go net/http, gevent.pywsgi, both with TCP_NODELAY; tokio: hyper 1 http1 on a current_thread runtime; may: may_minihttp on one may worker; ours: the project's HTTP/1.1 server gevent::http::Server on one hub, bench/src/ours.rs: serve_http); per request, and `_cpu` as above; issue 13's bar: ours' CPU per request <= 1.0x tokio's at c50",
    ),
    row(
        "io",
        names::HTTP_W,
        "http_w<workers>_c<conns>",
        "HTTP plaintext on N workers (harness `--workers`; default 2, and the core count on machines with more than 2; issue 14's bar at N = 2: ours >= 1.0x hyper's requests per second, i.e. ours / tokio <= 1.00x here): the same GET / keep-alive service, body and headers as `http_c<conns>` (200, `Hello, World!`, content-type text/plain, content-length, date; may_minihttp adds `Server: M`), wrk -t<min(N, cores / 2), at least 1>, server and wrk NOT pinned (the server needs the cores, wrk shares them, so compare ratios); ours: gevent::http::Server::bind_workers_with on N hubs, each with its own SO_REUSEPORT listener (what `http_server --workers N` runs; bench/src/ours.rs: serve_http); tokio: the same hyper 1 service on a multi_thread runtime with N workers; may: may_minihttp on N may workers (pinned to cores by may itself, its default); go: net/http with GOMAXPROCS=N (all: one listener, a task per connection)",
    ),
    row(
        "io",
        names::HTTPS,
        "https_c<conns>",
        "HTTPS plaintext, the same service over TLS (rustls with ring both, a self-signed ECDSA P-256 certificate, ALPN http/1.1; wrk's OpenSSL picks TLS 1.3): ours gevent::http + gevent::ssl on one hub; tokio: hyper 1 + tokio-rustls on a current_thread runtime; issue 13's bar: ours within 1.1x",
    ),
    row(
        "io",
        "work50us",
        "work50us_w<workers>",
        "GET /work?us=50 (the handler spins 50 us of CPU without yielding), wrk -c50 with threads as `http_w<workers>`, server and wrk NOT pinned (they share the cores, so compare ratios); for every N of harness `--workers` (default 1 and 2, and the core count on machines with more than 2); w1: ours on one hub, tokio current_thread; wN: ours http::Server::bind_workers_with on N hubs (SO_REUSEPORT), tokio multi_thread with N workers; issue 14's bar: ours w2 >= 1.6x the requests per second of ours w1",
    ),
    row(
        "cross",
        names::ONESHOT_XTHREAD,
        "oneshot_xthread",
        "(cross) a task waits on a one-shot an OS thread fills, the thread blocks on the next one the task fills; per hand-off (round trip / 2; crossbeam: two threads; tokio's cross rows run with its I/O driver enabled, as a hub has its poller). Issue 14's bar: ours <= tokio",
    ),
    row(
        "cross",
        names::CHAN_XTHREAD,
        "chan_xthread",
        "(cross) an OS thread sends into a bounded (64) channel, a task receives (crossbeam: a thread); per message",
    ),
    row(
        "cross",
        names::MUTEX_UNCONTENDED,
        "mutex_uncontended",
        "(cross) lock + unlock of a lock nobody else wants",
    ),
    row(
        "cross",
        names::MUTEX_CONTENDED,
        "mutex_contended",
        "(cross) 4 tasks on one thread each lock, yield while holding it, unlock; per lock (thread locks cannot be held across a yield: tokio's Mutex only)",
    ),
    row(
        "thread",
        names::STD_MUTEX_UNCONTENDED,
        "std_mutex_uncontended",
        "(thread, issue 16) std::sync::Mutex lock + unlock nobody else wants: ours under gevent::monkey::patch_thread(), `unpatched` the same before it, same process (no system call: the bar is unchanged within noise)",
    ),
    row(
        "thread",
        names::MUTEX_HANDOFF,
        "mutex_handoff",
        "(thread) a std::sync::Mutex handed between two greenlets under patch_thread, each holding it across sleep(0) while the other is parked in lock() by the futex hook, against tokio::sync::Mutex between two tasks of a current_thread runtime each holding it across yield_now; per lock",
    ),
    row(
        "thread",
        names::FUTEX_PINGPONG,
        "futex_pingpong",
        "(thread) the futex hook alone: two greenlets under patch_thread take turns through a raw futex word (FUTEX_WAIT until it is their turn, then FUTEX_WAKE of 1), without std's spin; per hand-off (ours only: no peer parks a green thread on a futex word)",
    ),
    row(
        "thread",
        names::MPSC_XTHREAD_ROUNDTRIP,
        "mpsc_xthread_roundtrip",
        "(thread) a u32 to an OS thread over std::sync::mpsc and back: ours received in a greenlet's cooperative std mpsc recv() under patch_thread, tokio in a task's tokio::sync::mpsc recv().await (blocking_send on the thread); per round trip",
    ),
    row(
        "thread",
        names::SYSCALL_GETRANDOM,
        "syscall_getrandom",
        "(thread) syscall(SYS_getrandom, 16 bytes) outside greenlets: ours through the project's interposed syscall() shim, `unpatched` glibc's own syscall() (dlsym in libc.so.6); issue 16's bar: the difference <= 5 ns",
    ),
    row(
        "calibration",
        names::SYSCALL,
        "syscall",
        "raw syscall(SYS_getppid)",
    ),
    row(
        "calibration",
        names::PAGE_FAULT,
        "page_fault",
        "first touch of a fresh anonymous 4 KiB page",
    ),
    row(
        "calibration",
        names::CORE_CLOCK,
        "core_clock",
        "effective core clock from a chain of dependent adds",
    ),
];

/// A column of the report: a peer label as the `peer=` of `RESULT` lines.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    /// The label.
    pub name: &'static str,
    /// Its legend line (`""`: none; the row docs say what each peer does).
    pub doc: &'static str,
}

/// Columns in order, the project first; labels not listed sort after them.
pub const COLUMNS: &[Column] = &[
    Column {
        name: "ours",
        doc: "",
    },
    Column {
        name: "ours-raw",
        doc: "(io column) a minimal hand-written HTTP/1.1 keep-alive responder (httparse, the same response bytes) on gevent::server::StreamServer: the hub and sockets under an HTTP load without an HTTP stack (bench/src/ours.rs: http_conn)",
    },
    Column {
        name: "ours-monkey",
        doc: "(io column) the project's plain std::net echo server, no gevent type, a greenlet per connection (gevent::spawn_raw), made cooperative by gevent::monkey::patch_all() (bench/src/bin/ours_monkey.rs); issue 5's bar: its CPU per request within 1.3x of `ours` (the `ours / ours-monkey` column is the inverse: >= 0.77x)",
    },
    Column {
        name: "ours-hyper",
        doc: "(io column) hyper 1's HTTP/1 server on the project's sockets through the async bridge (gevent::block_on, a greenlet per connection, no tokio; bench/src/ours.rs: serve_hyper), the same service as the tokio column's hyper; issue 12's bar: its CPU per request <= 1.0x hyper on tokio current_thread",
    },
    Column {
        name: "unpatched",
        doc: "(thread column) the same work without the project's hook, in the same process: std's Mutex before patch_thread(), glibc's syscall() instead of the shim",
    },
    Column {
        name: "corosensei",
        doc: "",
    },
    Column {
        name: "py-greenlet",
        doc: "",
    },
    Column {
        name: "py-gevent",
        doc: "",
    },
    Column {
        name: "go",
        doc: "",
    },
    Column {
        name: "may",
        doc: "",
    },
    Column {
        name: "tokio",
        doc: "",
    },
    Column {
        name: "machine",
        doc: "",
    },
];

/// A group of rows and the programs `harness` runs for it, once per round, their order rotating.
#[derive(Clone, Copy, Debug)]
pub struct Group {
    /// Its name (`--groups` and `group=`).
    pub name: &'static str,
    /// The programs: `ours`, `calibrate`, `monkey_thread` (this crate's binaries), `corosensei`, `may`,
    /// `tokio`, `sync` (`peer_*` binaries), `python` (`peers/python/peer.py`), `go` (`peers/go`); in the
    /// io group also the servers `ours-raw`, `ours-hyper`, `ours-monkey`.
    pub programs: &'static [&'static str],
    /// Whether the project has a column here (`--check` fails when it has no number in the group).
    pub ours: bool,
}

/// Every group in report order (also `harness`'s default `--groups`).
pub const GROUPS: &[Group] = &[
    Group {
        name: "switch",
        programs: &["ours", "corosensei", "python"],
        ours: true,
    },
    Group {
        name: "lifecycle",
        programs: &["ours", "corosensei", "python", "go", "may", "tokio"],
        ours: true,
    },
    Group {
        name: "hub",
        programs: &["ours", "python", "go", "may", "tokio"],
        ours: true,
    },
    Group {
        name: "io",
        programs: &[
            "ours",
            "ours-raw",
            "ours-monkey",
            "ours-hyper",
            "go",
            "python",
            "may",
            "tokio",
        ],
        ours: true,
    },
    // Primitives that cross threads (issue 14); `sync` is parking_lot + crossbeam (bin/peer_sync.rs).
    Group {
        name: "cross",
        programs: &["ours", "tokio", "sync"],
        ours: true,
    },
    // monkey::patch_thread (issue 16): ours, tokio and the unpatched work in one process, interleaved
    // (bin/monkey_thread.rs).
    Group {
        name: "thread",
        programs: &["monkey_thread"],
        ours: true,
    },
    Group {
        name: "calibration",
        programs: &["calibrate"],
        ours: false,
    },
];

/// The group called `name`.
pub fn group(name: &str) -> Option<&'static Group> {
    GROUPS.iter().find(|g| g.name == name)
}

/// Position of `x` in `list` (`list.len()` when absent): the sort key of groups, rows, columns.
pub fn rank(list: impl IntoIterator<Item = &'static str>, x: &str) -> usize {
    let mut n = 0;
    for (i, y) in list.into_iter().enumerate() {
        if y == x {
            return i;
        }
        n = i + 1;
    }
    n
}

/// The row a measurement called `name` belongs to: the longest base that `name` is, or starts with
/// followed by `_` (`echo_64b` for `echo_64b_c50_cpu`), or, for a base ending in `_w`, followed by a
/// worker count (`http_w` for `http_w2_c50`, `echo_64b_w` for `echo_64b_w16_c1000_cpu`).
pub fn row_of(name: &str) -> Option<&'static Row> {
    ROWS.iter()
        .filter(|r| {
            let Some(rest) = name.strip_prefix(r.base) else {
                return false;
            };
            if rest.is_empty() || rest.starts_with('_') {
                return true;
            }
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            r.base.ends_with("_w")
                && digits > 0
                && (rest.len() == digits || rest[digits..].starts_with('_'))
        })
        .max_by_key(|r| r.base.len())
}

/// The io group's echo rows: `echo_64b_c50` on one worker (pinned), `echo_64b_w2_c50` on more (sizes
/// that are whole KiB: `echo_4k_c50`); the `bin/loadgen.rs` load generator reports under this name.
pub fn echo(size: usize, workers: usize, conns: usize) -> String {
    let size = if size.is_multiple_of(1024) {
        format!("{}k", size / 1024)
    } else {
        format!("{size}b")
    };
    if workers > 1 {
        format!("echo_{size}_w{workers}_c{conns}")
    } else {
        format!("echo_{size}_c{conns}")
    }
}

/// The io group's one-worker HTTP rows under wrk: `base` is [`names::HTTP`] or [`names::HTTPS`];
/// `http_c50`.
pub fn http(base: &str, conns: usize) -> String {
    format!("{base}_c{conns}")
}

/// The io group's HTTP rows on `workers` workers: `http_w2_c50` ([`names::HTTP_W`]).
pub fn http_w(workers: usize, conns: usize) -> String {
    format!("{}{workers}_c{conns}", names::HTTP_W)
}

/// The io group's CPU-bound route rows: `work50us_w2` (`GET /work?us=50` on 2 workers).
pub fn work(us: u64, workers: usize) -> String {
    format!("work{us}us_w{workers}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(name: &str) -> &'static str {
        row_of(name)
            .unwrap_or_else(|| panic!("{name} has no row"))
            .base
    }

    #[test]
    fn io_names_are_rows_of_the_io_group() {
        for name in [
            echo(64, 1, 1),
            echo(4096, 1, 1000),
            echo(64, 2, 50),
            echo(64, 16, 1000),
            http(names::HTTP, 50),
            http(names::HTTPS, 1000),
            http_w(2, 50),
            http_w(64, 1000),
            work(50, 1),
            work(50, 2),
        ] {
            assert_eq!(row_of(&name).map(|r| r.group), Some("io"), "{name}");
        }
        assert_eq!(echo(64, 1, 50), "echo_64b_c50");
        assert_eq!(echo(4096, 1, 1), "echo_4k_c1");
        assert_eq!(echo(64, 2, 50), "echo_64b_w2_c50");
        assert_eq!(http_w(2, 50), "http_w2_c50");
        assert_eq!(base("http_w2_c50"), "http_w");
        assert_eq!(base("http_w16_c1000_cpu"), "http_w");
        assert_eq!(base("http_c50_cpu"), "http");
        assert_eq!(base("https_c50"), "https");
        assert_eq!(base("echo_64b_w2_c50_cpu"), "echo_64b_w");
        assert_eq!(base("echo_64b_c50_p99"), "echo_64b");
        assert_eq!(base("work50us_w2"), "work50us");
        // A worker count is digits: `http_wx` is no `http_w` row, and names with no row have none.
        assert_eq!(row_of("http_wx_c1").map(|r| r.base), Some("http"));
        assert!(row_of("nothing_here").is_none());
        assert_eq!(base("spawn_join_100k"), "spawn_join");
    }

    #[test]
    fn rows_belong_to_known_groups_and_are_unique() {
        for (i, r) in ROWS.iter().enumerate() {
            assert!(group(r.group).is_some(), "{}", r.base);
            assert!(ROWS[..i].iter().all(|o| o.base != r.base), "{}", r.base);
        }
        assert_eq!(rank(GROUPS.iter().map(|g| g.name), "io"), 3);
        assert_eq!(rank(GROUPS.iter().map(|g| g.name), "nope"), GROUPS.len());
    }
}
