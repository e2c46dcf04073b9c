//! Peer: tokio's current_thread runtime, the stackless reference (a task is a state machine, no stack).
//!
//! Run: `cargo run -p bench --release --bin peer_tokio -- [--group lifecycle,hub] [--quick] [--duration S]`
//!
//! - `lifecycle/spawn_join_<n>`: `tokio::spawn` n trivial tasks, then await each handle; ns per task.
//! - `lifecycle/parked_mem_<n>`, `maps_<n>`: n tasks awaiting one `Notify`; RSS growth per task.
//! - `hub/sleep0_x1`, `hub/sleep0_x100`: `tokio::task::yield_now()` in 1 or 100 tasks; ns per yield.
//! - `hub/chan_handoff`: ping-pong over two `tokio::sync::mpsc` channels of capacity 1; ns per hand-off.
//! - `hub/event_set_<n>`: n tasks await one `Notify`; `notify_waiters()` until all have run; ns per waiter.
//! - `hub/timers_<n>_{mean,p99,cpu}`: n tasks each `tokio::time::sleep` a distinct duration; lateness, CPU.
//! - `cross/oneshot_xthread`: a task awaits a `oneshot` an OS thread fills (the thread `blocking_recv`s the
//!   next one the task fills); `cross/chan_xthread`: an OS thread `blocking_send`s into an `mpsc` of 64, a
//!   task receives; `cross/mutex_uncontended`, `cross/mutex_contended`: tokio's `Mutex` (4 tasks, a
//!   `yield_now` while holding it). See `bench::names`. These run on a current_thread runtime with its
//!   I/O driver enabled (`enable_all`), as a runtime serving sockets has it and as every hub has its
//!   poller: an idle task then parks in epoll, as a hub does (without it, tokio parks on a futex).
//! - io (`--serve echo|http|https --port-file F [--workers N]`): a task-per-connection echo server, or
//!   hyper 1's HTTP/1.1 server (keep-alive, `Hello, World!`, `/work?us=N`) for wrk, plain or over
//!   tokio-rustls; on a current_thread runtime (`--workers N` above 1: multi_thread with N workers).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bench::{bb, counted, names, report, report_parked, rss_bytes, time_per_op, Opts};
use tokio::sync::{mpsc, Notify};

const PEER: &str = "tokio";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio current_thread runtime")
}

/// Yields until `counter` reaches `n` (bounded: at most `n + 16` yields).
async fn until(counter: &AtomicUsize, n: usize) {
    for _ in 0..n + 16 {
        if counter.load(Ordering::Relaxed) >= n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("tasks did not start");
}

fn spawn_join(rt: &tokio::runtime::Runtime, o: &Opts) {
    let n = o.counts.spawn;
    let ns = time_per_op(o.duration, n, || {
        rt.block_on(async {
            let hs: Vec<_> = (0..n).map(|i| tokio::spawn(async move { bb(i) })).collect();
            for h in hs {
                bb(h.await.expect("trivial task"));
            }
        })
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

fn parked(rt: &tokio::runtime::Runtime, n: usize) {
    rt.block_on(async {
        let notify = Arc::new(Notify::new());
        let started = Arc::new(AtomicUsize::new(0));
        let before = rss_bytes();
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let notify = notify.clone();
                let started = started.clone();
                tokio::spawn(async move {
                    let w = notify.notified();
                    started.fetch_add(1, Ordering::Relaxed);
                    w.await;
                })
            })
            .collect();
        until(&started, n).await;
        report_parked("lifecycle", PEER, n, before);
        notify.notify_waiters();
        for h in hs {
            let _ = h.await;
        }
    });
}

fn event_set(rt: &tokio::runtime::Runtime, o: &Opts) {
    let n = o.counts.waiters;
    let mut samples = Vec::new();
    for _ in 0..3 {
        let ns = rt.block_on(async {
            let notify = Arc::new(Notify::new());
            let started = Arc::new(AtomicUsize::new(0));
            let done = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..n)
                .map(|_| {
                    let (notify, started, done) = (notify.clone(), started.clone(), done.clone());
                    tokio::spawn(async move {
                        let w = notify.notified();
                        tokio::pin!(w);
                        w.as_mut().enable();
                        started.fetch_add(1, Ordering::Relaxed);
                        w.await;
                        done.fetch_add(1, Ordering::Relaxed);
                    })
                })
                .collect();
            until(&started, n).await;
            let t = Instant::now();
            notify.notify_waiters();
            until(&done, n).await;
            let ns = t.elapsed().as_nanos() as f64 / n as f64;
            for h in hs {
                let _ = h.await;
            }
            ns
        });
        samples.push(ns);
    }
    let ns = bench::median(&mut samples);
    report(
        "hub",
        &counted(names::EVENT_SET, n),
        PEER,
        "ns_per_op",
        ns,
        n,
    );
}

fn yields(rt: &tokio::runtime::Runtime, o: &Opts, tasks: usize, name: &str) {
    let per = (o.counts.ops / tasks).max(1);
    let total = per * tasks;
    let ns = time_per_op(o.duration, total, || {
        rt.block_on(async {
            let hs: Vec<_> = (0..tasks)
                .map(|_| {
                    tokio::spawn(async move {
                        for _ in 0..per {
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            for h in hs {
                let _ = h.await;
            }
        })
    });
    report("hub", name, PEER, "ns_per_op", ns, total);
}

fn handoff(rt: &tokio::runtime::Runtime, o: &Opts) {
    let ops = o.counts.ops;
    let ns = time_per_op(o.duration, 2 * ops, || {
        rt.block_on(async {
            let (to_b, mut from_a) = mpsc::channel::<u64>(1);
            let (to_a, mut from_b) = mpsc::channel::<u64>(1);
            let b = tokio::spawn(async move {
                for _ in 0..ops {
                    let v = from_a.recv().await.expect("ping");
                    to_a.send(v + 1).await.expect("pong");
                }
            });
            let mut v = 0u64;
            for _ in 0..ops {
                to_b.send(bb(v)).await.expect("ping");
                v = from_b.recv().await.expect("pong");
            }
            bb(v);
            let _ = b.await;
        })
    });
    report("hub", names::CHAN_HANDOFF, PEER, "ns_per_op", ns, 2 * ops);
}

fn cross(rt: &tokio::runtime::Runtime, o: &Opts) {
    use tokio::sync::oneshot;
    let ops = o.counts.ops.min(20_000);
    let setup = || {
        let mut mine = Vec::with_capacity(ops);
        let mut theirs = Vec::with_capacity(ops);
        for _ in 0..ops {
            let (req_tx, req_rx) = oneshot::channel::<u64>();
            let (resp_tx, resp_rx) = oneshot::channel::<u64>();
            mine.push((req_tx, resp_rx));
            theirs.push((req_rx, resp_tx));
        }
        let t = std::thread::spawn(move || {
            for (req, resp) in theirs {
                let v = req.blocking_recv().expect("request");
                let _ = resp.send(v + 1);
            }
        });
        (mine, t)
    };
    let ns = bench::time_per_op_setup(o.duration, 2 * ops, setup, |(mine, t)| {
        rt.block_on(async move {
            let mut v = 0u64;
            for (req, resp) in mine {
                let _ = req.send(bb(v));
                v = resp.await.expect("response");
            }
            bb(v);
        });
        t.join().expect("the helper thread");
    });
    report(
        "cross",
        names::ONESHOT_XTHREAD,
        PEER,
        "ns_per_op",
        ns,
        2 * ops,
    );

    let ops = o.counts.ops;
    let setup = || {
        let (tx, rx) = mpsc::channel::<u64>(64);
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let _ = go_rx.recv();
            for i in 0..ops as u64 {
                tx.blocking_send(i).expect("send");
            }
        });
        (rx, go_tx, t)
    };
    let ns = bench::time_per_op_setup(o.duration, ops, setup, |(mut rx, go, t)| {
        let _ = go.send(());
        rt.block_on(async {
            let mut sum = 0u64;
            for _ in 0..ops {
                sum += rx.recv().await.expect("recv");
            }
            bb(sum);
        });
        t.join().expect("the producer thread");
    });
    report("cross", names::CHAN_XTHREAD, PEER, "ns_per_op", ns, ops);

    let m = tokio::sync::Mutex::new(0u64);
    let ns = time_per_op(o.duration, ops, || {
        rt.block_on(async {
            for _ in 0..ops {
                *bb(&m).lock().await += 1;
            }
        })
    });
    report(
        "cross",
        names::MUTEX_UNCONTENDED,
        PEER,
        "ns_per_op",
        ns,
        ops,
    );

    let per = ops / 4;
    let ns = time_per_op(o.duration, 4 * per, || {
        rt.block_on(async {
            let m = Arc::new(tokio::sync::Mutex::new(0u64));
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let m = m.clone();
                    tokio::spawn(async move {
                        for _ in 0..per {
                            let mut g = m.lock().await;
                            tokio::task::yield_now().await;
                            *g += 1;
                        }
                    })
                })
                .collect();
            for h in hs {
                h.await.expect("task");
            }
            assert_eq!(*m.lock().await, 4 * per as u64);
        })
    });
    report(
        "cross",
        names::MUTEX_CONTENDED,
        PEER,
        "ns_per_op",
        ns,
        4 * per,
    );
}

/// `hub/block_on_local`: two tasks of a `LocalSet` on current_thread ping-pong, each awaiting a
/// `bench::signal::LocalSignal` the other fires; ns per hand-off.
fn block_on_local(rt: &tokio::runtime::Runtime, o: &Opts) {
    use bench::signal::LocalSignal;
    use std::rc::Rc;
    let ops = o.counts.ops;
    let ns = time_per_op(o.duration, 2 * ops, || {
        let local = tokio::task::LocalSet::new();
        local.block_on(rt, async {
            let (to_a, to_b) = (
                Rc::new(LocalSignal::default()),
                Rc::new(LocalSignal::default()),
            );
            let (a2, b2) = (to_a.clone(), to_b.clone());
            let b = tokio::task::spawn_local(async move {
                for _ in 0..ops {
                    b2.wait().await;
                    a2.fire();
                }
            });
            for _ in 0..ops {
                to_b.fire();
                to_a.wait().await;
            }
            let _ = b.await;
        })
    });
    report("hub", names::BLOCK_ON_LOCAL, PEER, "ns_per_op", ns, 2 * ops);
}

/// `hub/block_on_remote`: a plain thread, asked over a std channel, fires a
/// `bench::signal::SharedSignal` that the runtime's `block_on` awaits; ns per round trip.
fn block_on_remote(rt: &tokio::runtime::Runtime, o: &Opts) {
    use bench::signal::SharedSignal;
    let ops = o.counts.ops;
    let sig = SharedSignal::default();
    let (req_tx, req_rx) = std::sync::mpsc::channel::<()>();
    let s2 = sig.clone();
    let th = std::thread::spawn(move || {
        while req_rx.recv().is_ok() {
            s2.fire();
        }
    });
    let ns = time_per_op(o.duration, ops, || {
        rt.block_on(async {
            for _ in 0..ops {
                req_tx.send(()).expect("thread");
                sig.wait().await;
            }
        })
    });
    drop(req_tx);
    th.join().expect("thread");
    report("hub", names::BLOCK_ON_REMOTE, PEER, "ns_per_op", ns, ops);
}

/// A runtime with I/O and time for the io servers: current_thread for one worker, multi_thread with
/// `workers` workers above.
fn server_rt(workers: usize) -> tokio::runtime::Runtime {
    if workers > 1 {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .expect("tokio runtime with I/O")
}

/// io group: echo server (`s.kind == "echo"`) or hyper's HTTP/1.1 server (`"http"`, see [`serve_http`]) on
/// `127.0.0.1:0`, one thread (current_thread runtime), or a multi_thread runtime with `--workers N`
/// workers (one listener accepting in `block_on` on the main thread, as `#[tokio::main]` does; a task
/// per connection, on the workers).
fn serve(s: &bench::Serve) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    bench::Serve::exit_after_max();
    match s.kind.as_str() {
        "echo" => {}
        "http" => return serve_http(s, s.workers, false),
        "https" => return serve_http(s, 1, true),
        k => {
            eprintln!("{PEER}: --serve takes echo, http or https, not {k:?}");
            std::process::exit(2);
        }
    }
    // The measuring runtime has no I/O driver (it would tax every yield); the server needs one.
    let rt = server_rt(s.workers);
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        s.announce(l.local_addr().expect("local addr").port());
        loop {
            let Ok((mut c, _)) = l.accept().await else {
                continue;
            };
            let _ = c.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    let n = match c.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if c.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// io group, HTTP plaintext: hyper 1 (`server::conn::http1`, keep-alive, TCP_NODELAY), a task per
/// connection, every request answered `200 Hello, World!` with `content-type: text/plain` (hyper adds
/// content-length and date), `GET /work?us=N` spinning N us first ([`bench::work_route`]). `workers` 1: a
/// current_thread runtime; more: a multi_thread runtime with that many workers. `tls`: over
/// tokio-rustls (ring, a fresh self-signed ECDSA P-256 certificate, ALPN `http/1.1`), the handshake in
/// the connection's task.
fn serve_http(s: &bench::Serve, workers: usize, tls: bool) {
    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    use hyper::{Request, Response};
    let rt = server_rt(workers);
    let acceptor = tls.then(|| {
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        use tokio_rustls::rustls::ServerConfig;
        let (cert, key) = bench::self_signed();
        // The very provider (ring, same suites and key exchanges) the project's TLS uses.
        let mut config = ServerConfig::builder_with_provider(gevent::ssl::crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert)],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            )
            .expect("certificate and key");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        s.announce(l.local_addr().expect("local addr").port());
        loop {
            let Ok((c, _)) = l.accept().await else {
                continue;
            };
            let _ = c.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let body = bench::work_route(req.uri().path(), req.uri().query())
                        .unwrap_or(b"Hello, World!");
                    let mut r = Response::new(Full::new(Bytes::from_static(body)));
                    r.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("text/plain"),
                    );
                    Ok::<_, std::convert::Infallible>(r)
                });
                let http = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .clone();
                let _ = match acceptor {
                    None => {
                        http.serve_connection(hyper_util::rt::TokioIo::new(c), svc)
                            .await
                    }
                    Some(a) => {
                        let Ok(tls) = a.accept(c).await else {
                            return;
                        };
                        http.serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                            .await
                    }
                };
            });
        }
    });
}

/// `hub/timers_<n>_*`: n tasks each `tokio::time::sleep` a distinct duration; lateness and CPU per timer
/// (a runtime of its own with the time driver, which the measuring runtime leaves out).
fn timers(o: &Opts) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime with timers");
    let n = o.counts.timers;
    let counts = o.counts;
    let (mut late, cpu) = rt.block_on(async move {
        let cpu0 = bench::process_cpu();
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let d = bench::timer_duration(&counts, i);
                tokio::spawn(async move {
                    let deadline = std::time::Instant::now() + d;
                    tokio::time::sleep(d).await;
                    std::time::Instant::now()
                        .saturating_duration_since(deadline)
                        .as_nanos() as u64
                })
            })
            .collect();
        let mut late = Vec::with_capacity(n);
        for h in hs {
            late.push(h.await.expect("timer task"));
        }
        (late, bench::process_cpu() - cpu0)
    });
    bench::report_timers(PEER, &mut late, cpu);
}

fn main() {
    let o = Opts::from_args();
    if let Some(s) = &o.serve {
        serve(s);
        return;
    }
    let rt = rt();
    if let Some(n) = o.mem {
        parked(&rt, n);
        return;
    }
    if o.wants("lifecycle") {
        spawn_join(&rt, &o);
        bench::parked_in_child(&o, "lifecycle", PEER, o.counts.parked);
    }
    if o.wants("hub") {
        yields(&rt, &o, 1, names::SLEEP0_X1);
        yields(&rt, &o, 100, names::SLEEP0_X100);
        handoff(&rt, &o);
        block_on_local(&rt, &o);
        block_on_remote(&rt, &o);
        event_set(&rt, &o);
        timers(&o);
    }
    if o.wants("cross") {
        // With its I/O driver, as a runtime that serves sockets has it (and as every hub has its
        // poller): a task waiting with nothing else to do parks in epoll, as a hub does.
        let io_rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio current_thread runtime with I/O");
        cross(&io_rt, &o);
    }
}
