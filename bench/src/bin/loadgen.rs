//! Echo load generator for the io group: C connections on loopback, each writing S bytes and reading them
//! back in a loop for D seconds, on one thread (tokio current_thread; `bench/run` pins it to the core the
//! server is not on), or on T threads (`--threads T`: a tokio multi_thread runtime with T workers).
//!
//! Run: `loadgen --port P --conns C --size S --duration D --peer NAME [--server-pid PID] [--workers N]
//! [--threads T]` (`--workers`: how many workers the server runs, for the row name only).
//!
//! Prints `RESULT group=io name=echo_<S>b_c<C> peer=NAME us_per_req=..` (wall time / round trips: the
//! latency with one connection, the inverse throughput with many; the name is `echo_<S>b_w<N>_c<C>` with
//! `--workers N` above 1, see `bench::rows::echo`) and, with `--server-pid`,
//! `name=echo_<S>b_c<C>_cpu .. cpu_us_per_req=..` (the server's user+system CPU time from
//! `/proc/PID/stat` / round trips), and `name=echo_<S>b_c<C>_p50` / `_p99` (`us_p50=` / `us_p99=`: the
//! median and 99th percentile of the individual round trips' latencies, write start to read end, over all
//! connections). A server that stops answering fails the run after D + 10 s.

use std::time::{Duration, Instant};

use bench::report;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// CPU time (user + system) of process `pid` in microseconds, from `/proc/PID/stat`.
fn cpu_us(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (1-based).
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz * 1e6)
}

fn main() {
    let (mut port, mut conns, mut size, mut secs, mut peer, mut pid) = (
        0u16,
        1usize,
        64usize,
        1.0f64,
        String::from("?"),
        None::<u32>,
    );
    let (mut workers, mut threads) = (1usize, 1usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--port" => port = v.parse().expect("--port"),
            "--conns" => conns = v.parse().expect("--conns"),
            "--size" => size = v.parse().expect("--size"),
            "--duration" => secs = v.parse().expect("--duration"),
            "--peer" => peer = v,
            "--server-pid" => pid = Some(v.parse().expect("--server-pid")),
            "--workers" => workers = v.parse().expect("--workers"),
            "--threads" => threads = v.parse::<usize>().expect("--threads").max(1),
            other => panic!("unknown option {other:?}"),
        }
    }
    let name = bench::rows::echo(size, workers, conns);
    let dur = Duration::from_secs_f64(secs.max(0.05));
    let rt = if threads > 1 {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    let limit = dur + Duration::from_secs(10);
    let res = rt.block_on(async {
        tokio::time::timeout(limit, async {
            let mut streams = Vec::with_capacity(conns);
            for _ in 0..conns {
                let s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
                s.set_nodelay(true)?;
                streams.push(s);
            }
            let cpu0 = pid.and_then(cpu_us);
            let t0 = Instant::now();
            let deadline = t0 + dur;
            let hs: Vec<_> = streams
                .into_iter()
                .map(|mut s| {
                    tokio::spawn(async move {
                        let out = vec![b'x'; size];
                        let mut back = vec![0u8; size];
                        // Round-trip latencies in ns, for the percentiles.
                        let mut lat: Vec<u32> = Vec::with_capacity(1 << 16);
                        let mut now = Instant::now();
                        while now < deadline {
                            s.write_all(&out).await?;
                            s.read_exact(&mut back).await?;
                            let t = Instant::now();
                            lat.push((t - now).as_nanos().min(u32::MAX as u128) as u32);
                            now = t;
                        }
                        Ok::<Vec<u32>, std::io::Error>(lat)
                    })
                })
                .collect();
            let mut lat: Vec<u32> = Vec::new();
            for h in hs {
                lat.extend(h.await.map_err(std::io::Error::other)??);
            }
            let total = lat.len() as u64;
            let wall = t0.elapsed();
            let cpu = match (cpu0, pid.and_then(cpu_us)) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            };
            Ok::<_, std::io::Error>((total, wall, cpu, lat))
        })
        .await
    });
    let res = res.unwrap_or_else(|_| Err(std::io::Error::other("server stopped answering")));
    match res {
        Ok((total, wall, cpu, mut lat)) if total > 0 => {
            let t = total as usize;
            lat.sort_unstable();
            for (label, q) in [("p50", 0.50), ("p99", 0.99)] {
                let i = ((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1;
                report(
                    "io",
                    &format!("{name}_{label}"),
                    &peer,
                    &format!("us_{label}"),
                    f64::from(lat[i]) / 1e3,
                    t,
                );
            }
            report(
                "io",
                &name,
                &peer,
                "us_per_req",
                wall.as_secs_f64() * 1e6 / total as f64,
                t,
            );
            if let Some(cpu) = cpu {
                report(
                    "io",
                    &format!("{name}_cpu"),
                    &peer,
                    "cpu_us_per_req",
                    cpu / total as f64,
                    t,
                );
            }
        }
        Ok(_) => bench::skip("io", &name, &peer, "no round trip completed"),
        Err(e) => {
            bench::skip("io", &name, &peer, &format!("load failed: {e}"));
            std::process::exit(1);
        }
    }
}
