//! Peer: may, stackful coroutines for Rust (Xudong-Huang/may), on one worker thread.
//!
//! Run: `cargo run -p bench --release --bin peer_may -- [--group lifecycle,hub] [--quick] [--duration S]`
//!
//! may is configured with one worker (`config().set_workers(1)`), so it schedules like a single hub; its
//! default stack (0x1000 words = 32 KiB, guard page) and coroutine pool are kept as users get them.
//! Every measurement runs inside one driver coroutine (`go!(..).join()`), so waits park coroutines, not the
//! main thread.
//!
//! - `lifecycle/spawn_join_<n>`: `go!` n trivial coroutines, then `join` each handle; ns per coroutine.
//!   n is the guarded count (30k in a full run), for the same mapping limit as below.
//! - `lifecycle/parked_mem_<n>`, `maps_<n>`: n coroutines waiting on one `Semphore`; RSS growth per
//!   coroutine and mapping count. n is the guarded count (30k in a full run): may's stacks carry a guard page,
//!   two mappings each, so 100k would exceed `vm.max_map_count` (65530).
//! - `hub/sleep0_x1`, `hub/sleep0_x100`: `coroutine::yield_now()` in 1 or 100 coroutines; ns per yield.
//! - `hub/chan_handoff`: ping-pong over two `may::sync::mpsc` channels; ns per hand-off (round trip / 2).
//! - `hub/timers_<n>_{mean,p99,cpu}`: n coroutines each `coroutine::sleep` a distinct duration; lateness,
//!   CPU (skipped above the guarded count: may's stacks carry guard pages).
//! - io (`--serve echo|http --port-file F [--workers N]`): a coroutine-per-connection echo server, or
//!   may_minihttp's `HttpServer` (`Hello, World!`, `Content-Type: text/plain`) for wrk; both on the one
//!   worker, or on N may workers with `--workers N` (which may pins to cores itself, its default, kept).

use std::sync::Arc;
use std::time::Instant;

use bench::{bb, counted, names, report, report_parked, rss_bytes, time_per_op, Opts};
use may::coroutine::yield_now;
use may::go;
use may::sync::{mpsc, Semphore};

const PEER: &str = "may";

fn spawn_join(o: &Opts) {
    // Every live may coroutine holds a guarded stack (2 mappings): 100k at once exceeds vm.max_map_count
    // (65530) and may does not return an error there (it hung in a trial run). Measure at the guarded count.
    report_skip_spawn(o);
    let n = o.counts.parked_guarded;
    let ns = time_per_op(o.duration, n, || {
        let hs: Vec<_> = (0..n).map(|i| go!(move || bb(i))).collect();
        for h in hs {
            bb(h.join().expect("trivial coroutine"));
        }
    });
    report(
        "lifecycle",
        &counted(names::SPAWN_JOIN, n),
        PEER,
        "ns_per_op",
        ns,
        n,
    );
}

fn report_skip_spawn(o: &Opts) {
    bench::skip(
        "lifecycle",
        &counted(names::SPAWN_JOIN, o.counts.spawn),
        PEER,
        "2 mappings per live coroutine exceed vm.max_map_count; see spawn_join at the guarded count",
    );
}

fn parked(n: usize) {
    let sem = Arc::new(Semphore::new(0));
    let started = Arc::new(Semphore::new(0));
    let before = rss_bytes();
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let sem = sem.clone();
            let started = started.clone();
            go!(move || {
                started.post();
                sem.wait();
            })
        })
        .collect();
    for _ in 0..n {
        started.wait();
    }
    // One more round so the last coroutine has reached `sem.wait()` and parked.
    yield_now();
    report_parked("lifecycle", PEER, n, before);
    for _ in 0..n {
        sem.post();
    }
    for h in hs {
        let _ = h.join();
    }
}

fn yields(o: &Opts, tasks: usize, name: &str) {
    let per = (o.counts.ops / tasks).max(1);
    let total = per * tasks;
    let ns = time_per_op(o.duration, total, || {
        let hs: Vec<_> = (0..tasks)
            .map(|_| {
                go!(move || {
                    for _ in 0..per {
                        yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            let _ = h.join();
        }
    });
    report("hub", name, PEER, "ns_per_op", ns, total);
}

fn handoff(o: &Opts) {
    let ops = o.counts.ops;
    let ns = time_per_op(o.duration, 2 * ops, || {
        let (to_b, from_a) = mpsc::channel::<u64>();
        let (to_a, from_b) = mpsc::channel::<u64>();
        let b = go!(move || {
            for _ in 0..ops {
                let v = from_a.recv().expect("ping");
                to_a.send(v + 1).expect("pong");
            }
        });
        let mut v = 0u64;
        for _ in 0..ops {
            to_b.send(bb(v)).expect("ping");
            v = from_b.recv().expect("pong");
        }
        bb(v);
        let _ = b.join();
    });
    report("hub", names::CHAN_HANDOFF, PEER, "ns_per_op", ns, 2 * ops);
}

/// io group: echo server (`s.kind == "echo"`) or may_minihttp (`"http"`, see [`serve_http`]) on
/// `127.0.0.1:0`, one worker (`--workers N`: N, set by `main` before may starts), a coroutine per
/// connection.
fn serve(s: &bench::Serve) {
    use std::io::{Read, Write};
    bench::Serve::exit_after_max();
    match s.kind.as_str() {
        "echo" => {}
        "http" => return serve_http(s),
        k => {
            eprintln!("{PEER}: --serve takes echo or http, not {k:?}");
            std::process::exit(2);
        }
    }
    let l = may::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    s.announce(l.local_addr().expect("local addr").port());
    let acceptor = go!(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let _ = c.set_nodelay(true);
            go!(move || {
                let mut buf = vec![0u8; 65536];
                loop {
                    let n = match c.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if c.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let _ = acceptor.join();
}

/// io group, HTTP plaintext: may_minihttp's `HttpServer` (the may workers, a coroutine per connection,
/// keep-alive, pipelining) answering every request `200 Hello, World!` with `Content-Type: text/plain`
/// (may_minihttp adds `Server: M`, `Date` and `Content-Length`). It binds by address and does not tell
/// the port it got, so the port is found first by binding (and closing) a std listener on port 0.
fn serve_http(s: &bench::Serve) {
    use may_minihttp::{HttpServer, HttpService, Request, Response};
    #[derive(Clone)]
    struct Hello;
    impl HttpService for Hello {
        fn call(&mut self, _req: Request, rsp: &mut Response) -> std::io::Result<()> {
            rsp.header("Content-Type: text/plain").body("Hello, World!");
            Ok(())
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let server = HttpServer(Hello)
        .start(("127.0.0.1", port))
        .expect("may_minihttp start");
    s.announce(port);
    let _ = server.join();
}

/// `hub/timers_<n>_*`: n coroutines each `coroutine::sleep` a distinct duration; lateness and CPU per timer.
/// may's stacks carry guard pages (2 mappings each): above the guarded count the row is skipped.
fn timers(o: &Opts) {
    let n = o.counts.timers;
    if n > o.counts.parked_guarded {
        bench::skip(
            "hub",
            &bench::counted(names::TIMERS, n),
            PEER,
            "guard pages: 2 mappings per coroutine, over vm.max_map_count",
        );
        return;
    }
    let counts = o.counts;
    let cpu0 = bench::process_cpu();
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let d = bench::timer_duration(&counts, i);
            go!(move || {
                let deadline = std::time::Instant::now() + d;
                may::coroutine::sleep(d);
                std::time::Instant::now()
                    .saturating_duration_since(deadline)
                    .as_nanos() as u64
            })
        })
        .collect();
    let mut late: Vec<u64> = hs
        .into_iter()
        .map(|h| h.join().expect("timer coroutine"))
        .collect();
    let cpu = bench::process_cpu() - cpu0;
    bench::report_timers(PEER, &mut late, cpu);
}

fn main() {
    let o = Opts::from_args();
    may::config().set_workers(o.serve.as_ref().map_or(1, |s| s.workers));
    if let Some(s) = &o.serve {
        serve(s);
        return;
    }
    let t = Instant::now();
    if o.wants("lifecycle") && o.mem.is_none() {
        bench::parked_in_child(&o, "lifecycle", PEER, o.counts.parked_guarded);
    }
    let driver = go!(move || {
        if let Some(n) = o.mem {
            parked(n);
            return;
        }
        if o.wants("lifecycle") {
            spawn_join(&o);
        }
        if o.wants("hub") {
            yields(&o, 1, names::SLEEP0_X1);
            yields(&o, 100, names::SLEEP0_X100);
            handoff(&o);
            timers(&o);
        }
    });
    driver.join().expect("may driver coroutine");
    eprintln!("peer_may: {:.2?}", t.elapsed());
}
