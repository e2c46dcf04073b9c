//! The benchmark harness: runs every group's programs for N rounds, peers interleaved, and writes the
//! report. `bench/run` installs and builds the peers, then runs this with the same flags.
//!
//! Run: `harness [--quick] [--groups a,b] [--rounds N] [--duration S] [--workers N,M] [--check] [--out DIR]
//! [--python VENV_PYTHON] [--go GO_PEER_BINARY] [--bench-dir DIR]` (`--python` / `--go`: the installed
//! peers; without them those peers' rows are reported as skipped, "not installed"; `--workers`: the
//! worker counts of the io group's multi-worker rows, see [`default_workers`]; `--bench-dir`: the
//! `bench/` folder, by default the one this binary was built from; `--no-install` is `bench/run`'s and
//! ignored here).
//!
//! What it does, per round and group, in the order of [`bench::rows::GROUPS`] rotated by the round:
//! - a measuring program (`ours`, `peer_*`, `calibrate`, `monkey_thread`, the Python and Go peers) runs
//!   once with `--group G --duration S [--quick]`, bounded in time; its `RESULT`/`SKIP` stdout lines go to
//!   the terminal and to the raw file `target/bench-raw/<stamp>.txt`; an exit status other than 0 becomes
//!   a `SKIP .. reason=exit_status_<n>` (124: timed out);
//! - the io group starts each peer's server (`--serve KIND --port-file F [--workers N]`, Go: `-procs N`,
//!   waiting up to 15 s for the port), puts load on it and reports wall time per request (loadgen's own
//!   clock; wrk's `Requests/sec`) and the server's CPU time per request (the ticks of `/proc/PID/stat`,
//!   all its threads, around the run); a server that cannot start skips every row it would have filled.
//!   One-worker rows (`echo_*_c*`, `http_c*`, `https_c*`): the server pinned to core 0 with `taskset`
//!   when there are 2 cores or more, the load generator (`bin/loadgen.rs`, `wrk -t1`) to core 1. Rows on
//!   N workers (`echo_64b_w<N>_c*`, `http_w<N>_c*`, `work50us_w<N>`, for every N of `--workers`; the
//!   project, tokio, may and Go): nothing pinned (the server needs the cores, the load generator shares
//!   them, so compare ratios), the load generator on min(N, cores / 2) threads (at least 1);
//! - then `report` turns the raw file into `<out>/<date>[-quick].md` and `.svg`, and `--check` lists every
//!   `SKIP` and fails (exit 1) on any that is an error (not a peer that could not be installed), or when
//!   the project has no number in a group it takes part in.
//!
//! Plain std, no async; every child is bounded in time and dies with the harness (`PR_SET_PDEATHSIG`).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bench::names;
use bench::rows::{self, Group, GROUPS};

/// Longest any one measuring program may run (every loop inside is bounded too; this is the backstop).
const PEER_TIMEOUT: Duration = Duration::from_secs(300);
/// The same with `--quick`.
const PEER_TIMEOUT_QUICK: Duration = Duration::from_secs(240);
/// Longest one load generator run (loadgen, wrk) may take.
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a server has to write its port file.
const PORT_WAIT: Duration = Duration::from_secs(15);
/// Message sizes of the echo rows.
const ECHO_SIZES: [usize; 2] = [64, 4096];
/// Message size of the multi-worker echo rows (`echo_64b_w<N>_c<conns>`).
const ECHO_W_SIZE: usize = 64;
/// The CPU-bound route of the work rows: `/work?us=WORK_US`, 50 connections.
const WORK_US: u64 = 50;
/// The most workers `--workers` takes.
const MAX_WORKERS: usize = 1024;

/// The worker counts of the io group's multi-worker rows when `--workers` is not given: 1 and 2 (issue
/// 14: 1 and 2 hubs against peers on 2 workers; on a 1-core machine the 2 workers share the core), and
/// on a machine with more than 2 cores also the core count, so the scaling curve is taken where there
/// are cores for it. The echo and HTTP `_w<N>` rows run for the counts above 1 (their one-worker rows
/// are the pinned `echo_*_c*` and `http_c*`); the CPU-bound `work50us_w<N>` rows for every count.
fn default_workers(cores: usize) -> Vec<usize> {
    let mut w = vec![1, 2];
    if cores > 2 {
        w.push(cores);
    }
    w
}

/// Parses `--workers`: a comma list of counts in 1..=[`MAX_WORKERS`], sorted, without duplicates.
fn parse_workers(v: &str) -> Result<Vec<usize>, String> {
    let mut w = Vec::new();
    for x in v.split(',') {
        match x.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_WORKERS).contains(&n) => w.push(n),
            _ => {
                return Err(format!(
                    "--workers takes a comma list of counts in 1..{MAX_WORKERS}, not {x:?}"
                ))
            }
        }
    }
    w.sort_unstable();
    w.dedup();
    Ok(w)
}

/// Threads of the load generator against a server on `workers` workers: as many as the server has,
/// up to half the cores (the other half is the server's), at least 1 (`wrk -t1` on 2 cores).
fn load_threads(workers: usize, cores: usize) -> usize {
    workers.min(cores / 2).max(1)
}

fn die(msg: &str) -> ! {
    eprintln!("bench/run: {msg}");
    std::process::exit(2);
}

fn log(msg: &str) {
    eprintln!("bench/run: {msg}");
}

/// The command line.
struct Args {
    quick: bool,
    groups: Vec<&'static Group>,
    /// `--groups` as given (or the default list), for the report's command line.
    groups_arg: String,
    rounds: usize,
    /// `--duration` as given (seconds), passed on to the programs.
    duration: String,
    /// `--workers` (or [`default_workers`]): the worker counts of the multi-worker io rows.
    workers: Vec<usize>,
    check: bool,
    out: Option<PathBuf>,
    python: Option<PathBuf>,
    go: Option<PathBuf>,
    /// `bench/` (the Python peer's script, the default `--out`).
    bench_dir: PathBuf,
}

fn parse_args() -> Args {
    let mut a = Args {
        quick: false,
        groups: Vec::new(),
        groups_arg: GROUPS.iter().map(|g| g.name).collect::<Vec<_>>().join(","),
        rounds: 0,
        duration: String::new(),
        workers: Vec::new(),
        check: false,
        out: None,
        python: None,
        go: None,
        bench_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    };
    let (mut rounds, mut duration, mut workers) = (None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| die(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--quick" => a.quick = true,
            "--groups" | "--group" => a.groups_arg = value(),
            "--rounds" => rounds = Some(value()),
            "--duration" => duration = Some(value()),
            "--workers" => workers = Some(value()),
            "--no-install" => {}
            "--check" => a.check = true,
            "--out" => a.out = Some(value().into()),
            "--python" => a.python = Some(value().into()),
            "--go" => a.go = Some(value().into()),
            "--bench-dir" => a.bench_dir = value().into(),
            "-h" | "--help" => {
                println!(
                    "harness [--quick] [--groups a,b] [--rounds N] [--duration S] [--workers N,M] \
                     [--check] [--out DIR] [--python PY] [--go BIN] (see bench/run --help)"
                );
                std::process::exit(0);
            }
            other => die(&format!("unknown option {other} (see --help)")),
        }
    }
    a.rounds = match rounds {
        None => {
            if a.quick {
                1
            } else {
                3
            }
        }
        Some(r) => match r.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            Ok(_) => die("--rounds must be 1..100"),
            Err(_) => die("--rounds takes a positive integer"),
        },
    };
    a.duration = match duration {
        None => (if a.quick { "0.05" } else { "0.5" }).to_owned(),
        Some(d) => {
            if d.is_empty()
                || !d.chars().all(|c| c.is_ascii_digit() || c == '.')
                || d.parse::<f64>().is_err()
            {
                die("--duration takes seconds, e.g. 0.5");
            }
            d
        }
    };
    a.workers = match workers {
        None => default_workers(cores()),
        Some(v) => parse_workers(&v).unwrap_or_else(|e| die(&e)),
    };
    for g in a.groups_arg.split(',') {
        match rows::group(g) {
            Some(g) => a.groups.push(g),
            None => {
                let known: Vec<&str> = GROUPS.iter().map(|g| g.name).collect();
                die(&format!("unknown group {g} (known: {})", known.join(",")));
            }
        }
    }
    a
}

/// The raw file: every `RESULT`/`SKIP` line of the run, also echoed to the terminal.
struct Raw {
    path: PathBuf,
    file: Mutex<File>,
}

impl Raw {
    fn line(&self, l: &str) {
        println!("{l}");
        let _ = std::io::stdout().flush();
        let mut f = self.file.lock().expect("raw file");
        if let Err(e) = writeln!(f, "{l}") {
            die(&format!("writing {}: {e}", self.path.display()));
        }
    }

    fn skip(&self, group: &str, name: &str, peer: &str, reason: &str) {
        self.line(&format!(
            "SKIP group={group} name={name} peer={peer} reason={reason}"
        ));
    }
}

fn is_row(line: &str) -> bool {
    line.starts_with("RESULT ") || line.starts_with("SKIP ")
}

/// An exit status as a shell reports it: the code, or 128 + the signal.
fn status_code(s: ExitStatus) -> i32 {
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

/// Every child gets SIGTERM when the harness dies, so no server outlives an interrupted run.
fn dies_with_us(cmd: &mut Command) -> &mut Command {
    // SAFETY: the closure runs in the child between fork and exec and only calls prctl, which is
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// `argv` as a command, prefixed by `taskset -c CORE` when `core` is given.
fn command(argv: &[String], core: Option<usize>) -> Command {
    let mut cmd = match core {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c.to_string()).args(argv);
            cmd
        }
        None => {
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            cmd
        }
    };
    dies_with_us(&mut cmd);
    cmd
}

/// Runs `cmd` to its end or for at most `limit` (then SIGTERM, SIGKILL 5 s later; status 124, as
/// `timeout(1)` reports), passing each stdout line to `on_line`. With `capture_stderr`, returns stderr's
/// text too (otherwise it goes to the terminal). A program that cannot start is status 127.
fn run(
    cmd: &mut Command,
    limit: Duration,
    capture_stderr: bool,
    mut on_line: impl FnMut(&str),
) -> (i32, String) {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    cmd.stderr(if capture_stderr {
        Stdio::piped()
    } else {
        Stdio::inherit()
    });
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            log(&format!("cannot start {:?}: {e}", cmd.get_program()));
            return (127, String::new());
        }
    };
    let pid = child.id() as libc::pid_t;
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take();
    let fired = AtomicBool::new(false);
    let (cancel, cancelled) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let fired = &fired;
        s.spawn(move || {
            if cancelled.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
                fired.store(true, Ordering::SeqCst);
                // SAFETY: kill has no memory preconditions; pid is our child, not yet reaped (the main
                // thread reaps it only after it stops reading, which the kill causes).
                unsafe { libc::kill(pid, libc::SIGTERM) };
                if cancelled.recv_timeout(Duration::from_secs(5))
                    == Err(mpsc::RecvTimeoutError::Timeout)
                {
                    // SAFETY: as above.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        });
        let err = stderr.map(|mut e| {
            s.spawn(move || {
                let mut t = String::new();
                let _ = e.read_to_string(&mut t);
                t
            })
        });
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            on_line(&line);
        }
        let status = child.wait();
        drop(cancel);
        let err = err
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        let rc = if fired.load(Ordering::SeqCst) {
            124
        } else {
            status.map(status_code).unwrap_or(127)
        };
        (rc, err)
    })
}

/// User + system CPU ticks of process `pid` (fields 14 and 15 of `/proc/PID/stat`); 0 if unreadable.
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(rest) = s.rfind(')').map(|i| &s[i + 1..]) else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // After the command name: field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    tick(11) + tick(12)
}

/// `wrk`'s summary: (requests, requests per second), or `None` when it has no such lines or saw
/// non-2xx answers.
fn parse_wrk(out: &str) -> Option<(u64, f64)> {
    if out.contains("Non-2xx") {
        return None;
    }
    let reqs = out
        .lines()
        .find(|l| l.contains("requests in"))?
        .split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()?;
    let rps = out
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))?
        .trim()
        .parse::<f64>()
        .ok()?;
    (reqs > 0 && rps > 0.0).then_some((reqs, rps))
}

/// A started io server; stopped (SIGTERM, reaped) when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill has no memory preconditions; the child is not reaped before this wait.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// A name as the report's columns spell it.
fn label_of(program: &str) -> &str {
    match program {
        "python" => "py-gevent",
        p => p,
    }
}

/// Whether `program` serves the multi-worker echo and HTTP rows (`echo_64b_w<N>`, `http_w<N>`): the
/// project on N hubs, tokio multi_thread, may and Go on N threads.
fn multi_worker(program: &str) -> bool {
    matches!(program, "ours" | "tokio" | "may" | "go")
}

/// The rows a server fills, for [`Harness::server_skip`].
#[derive(Clone, Copy)]
enum Rows {
    /// `echo_<size>_c<conns>`, or `echo_64b_w<N>_c<conns>` on N > 1 workers.
    Echo(usize),
    /// `http_c<conns>`, or `http_w<N>_c<conns>` on N > 1 workers.
    Http(usize),
    /// `https_c<conns>`.
    Https,
    /// `work50us_w<N>`.
    Work(usize),
}

struct Harness {
    args: Args,
    raw: Raw,
    /// This crate's binaries (`target/release`).
    bin: PathBuf,
    /// `bench/`.
    bench: PathBuf,
    raw_dir: PathBuf,
    /// `Some((server core, load core))` when `taskset` exists and there are 2 cores or more.
    pins: Option<(usize, usize)>,
    /// Available parallelism (the cores this process may run on).
    cores: usize,
    have_wrk: bool,
    clk_tck: f64,
    echo_conns: &'static [usize],
    http_conns: &'static [usize],
    /// loadgen's seconds per point (at least 0.2) and wrk's (whole seconds, at least 1).
    load_secs: String,
    wrk_secs: u64,
}

fn in_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            let f = d.join(name);
            f.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Harness {
    fn io_skip(&self, label: &str, name: &str, reason: &str) {
        self.raw.skip("io", name, label, reason);
    }

    /// Starts `program`'s server of `kind` on `workers` workers (pinned to the server core when
    /// `pinned`), or returns the status to report: its exit status, 127 (not installed), 124 (no port
    /// in time).
    fn start_server(
        &self,
        program: &str,
        kind: &str,
        workers: usize,
        pinned: bool,
    ) -> Result<Server, i32> {
        let pf = self.raw_dir.join(format!("port.{}", std::process::id()));
        let _ = std::fs::remove_file(&pf);
        let pfs = pf.display().to_string();
        let bin = |b: &str| self.bin.join(b).display().to_string();
        let argv: Vec<String> = match program {
            "ours" => vec![bin("ours"), "--serve".into(), kind.into()],
            // The hand-written keep-alive responder on StreamServer (HTTP only): no HTTP stack.
            "ours-raw" => vec![bin("ours"), "--serve".into(), format!("raw-{kind}")],
            // hyper 1 on gevent sockets through the async bridge, no tokio (HTTP only).
            "ours-hyper" => vec![bin("ours"), "--serve".into(), format!("hyper-{kind}")],
            // The project's std::net echo server under monkey::patch_all() (bin/ours_monkey.rs).
            "ours-monkey" => vec![bin("ours_monkey"), "--serve".into(), kind.into()],
            "may" | "tokio" => vec![
                bin(&format!("peer_{program}")),
                "--serve".into(),
                kind.into(),
            ],
            "go" => match &self.args.go {
                Some(go) => {
                    let mut v = vec![go.display().to_string(), "-serve".into(), kind.into()];
                    v.extend(["-port-file".into(), pfs.clone()]);
                    // GOMAXPROCS (the peer's default is 1).
                    v.extend(["-procs".into(), workers.to_string()]);
                    v
                }
                None => return Err(127),
            },
            "python" => match &self.args.python {
                Some(py) => vec![
                    py.display().to_string(),
                    self.bench
                        .join("peers/python/peer.py")
                        .display()
                        .to_string(),
                    "--serve".into(),
                    kind.into(),
                ],
                None => return Err(127),
            },
            other => die(&format!("no io server for {other}")),
        };
        let mut argv = argv;
        if program != "go" {
            argv.extend(["--port-file".into(), pfs]);
            if workers > 1 {
                assert!(multi_worker(program), "{program} serves on one worker only");
                argv.extend(["--workers".into(), workers.to_string()]);
            }
        }
        let core = if pinned { self.pins.map(|p| p.0) } else { None };
        let mut cmd = command(&argv, core);
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                log(&format!("cannot start {}: {e}", argv[0]));
                return Err(127);
            }
        };
        let mut server = Server { child, port: 0 };
        let t = Instant::now();
        while t.elapsed() < PORT_WAIT {
            if let Some(port) = std::fs::read_to_string(&pf)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                server.port = port;
                let _ = std::fs::remove_file(&pf);
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                let rc = status_code(status);
                std::mem::forget(server); // reaped already
                return Err(rc);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(124) // dropping the server stops it
    }

    /// One SKIP line per row a server that could not start would have filled.
    fn server_skip(&self, rows: Rows, label: &str, rc: i32) {
        let reason = match rc {
            3 => "not_yet".to_owned(),
            127 => "peer_not_installed".to_owned(),
            124 => "no_port_in_15_s".to_owned(),
            n => format!("exit_status_{n}"),
        };
        let names: Vec<String> = match rows {
            Rows::Echo(1) => ECHO_SIZES
                .iter()
                .flat_map(|&size| self.echo_conns.iter().map(move |&c| rows::echo(size, 1, c)))
                .collect(),
            Rows::Echo(w) => self
                .echo_w_conns()
                .map(|c| rows::echo(ECHO_W_SIZE, w, c))
                .collect(),
            Rows::Http(1) => self
                .http_conns
                .iter()
                .map(|&c| rows::http(names::HTTP, c))
                .collect(),
            Rows::Http(w) => self
                .http_conns
                .iter()
                .map(|&c| rows::http_w(w, c))
                .collect(),
            Rows::Https => self
                .http_conns
                .iter()
                .map(|&c| rows::http(names::HTTPS, c))
                .collect(),
            Rows::Work(w) => vec![rows::work(WORK_US, w)],
        };
        for name in names {
            self.io_skip(label, &name, &reason);
        }
    }

    /// Connection counts of the multi-worker echo rows: the echo rows' counts above 1 (one connection
    /// is served by one worker).
    fn echo_w_conns(&self) -> impl Iterator<Item = usize> + '_ {
        self.echo_conns.iter().copied().filter(|&c| c > 1)
    }

    /// One wrk run against `srv` with `threads` threads (pinned to the load core when `pin`): rows NAME
    /// (wall time per request) and NAME_cpu (the server's CPU time per request), or a SKIP.
    #[allow(clippy::too_many_arguments)]
    fn wrk_row(
        &self,
        srv: &Server,
        name: &str,
        label: &str,
        url: &str,
        conns: usize,
        threads: usize,
        pin: bool,
    ) {
        let argv: Vec<String> = vec![
            "wrk".into(),
            format!("-t{threads}"),
            format!("-c{conns}"),
            format!("-d{}s", self.wrk_secs),
            url.into(),
        ];
        let core = if pin { self.pins.map(|p| p.1) } else { None };
        let pid = srv.child.id();
        let t0 = cpu_ticks(pid);
        let mut out = String::new();
        let (_, err) = run(&mut command(&argv, core), LOAD_TIMEOUT, true, |l| {
            out.push_str(l);
            out.push('\n');
        });
        let t1 = cpu_ticks(pid);
        out.push_str(&err);
        match parse_wrk(&out) {
            Some((reqs, rps)) => {
                let cpu_us = t1.saturating_sub(t0) as f64 / self.clk_tck * 1e6 / reqs as f64;
                self.raw.line(&format!(
                    "RESULT group=io name={name} peer={label} us_per_req={:.3} n={reqs}",
                    1e6 / rps
                ));
                self.raw.line(&format!(
                    "RESULT group=io name={name}_cpu peer={label} cpu_us_per_req={cpu_us:.3} n={reqs}"
                ));
            }
            None => self.io_skip(label, name, "wrk_failed"),
        }
    }

    /// One loadgen run against the echo server `srv` (on `workers` workers): rows `echo_*` of `size`
    /// and `conns`, `_cpu`, `_p50`, `_p99`. Pinned to the load core for one worker; unpinned on
    /// [`load_threads`] threads for more.
    fn echo_row(&self, srv: &Server, label: &str, size: usize, conns: usize, workers: usize) {
        let mut argv: Vec<String> = vec![
            self.bin.join("loadgen").display().to_string(),
            "--port".into(),
            srv.port.to_string(),
            "--conns".into(),
            conns.to_string(),
            "--size".into(),
            size.to_string(),
            "--duration".into(),
            self.load_secs.clone(),
            "--peer".into(),
            label.into(),
            "--server-pid".into(),
            srv.child.id().to_string(),
        ];
        let core = if workers > 1 {
            argv.extend(["--workers".into(), workers.to_string()]);
            let threads = load_threads(workers, self.cores);
            argv.extend(["--threads".into(), threads.to_string()]);
            None
        } else {
            self.pins.map(|p| p.1)
        };
        let mut cmd = command(&argv, core);
        let (rc, _) = run(&mut cmd, LOAD_TIMEOUT, false, |l| {
            if is_row(l) {
                self.raw.line(l);
            }
        });
        if rc != 0 {
            log(&format!(
                "loadgen failed against {label} (echo, {size} B, {conns} connections, {workers} workers)"
            ));
        }
    }

    fn run_io(&self, program: &str) {
        let label = label_of(program);
        let multi: Vec<usize> = if multi_worker(program) {
            self.args
                .workers
                .iter()
                .copied()
                .filter(|&w| w > 1)
                .collect()
        } else {
            Vec::new()
        };
        if program != "ours-hyper" && program != "ours-raw" {
            match self.start_server(program, "echo", 1, true) {
                Ok(srv) => {
                    for size in ECHO_SIZES {
                        for &c in self.echo_conns {
                            self.echo_row(&srv, label, size, c, 1);
                        }
                    }
                }
                Err(rc) => self.server_skip(Rows::Echo(1), label, rc),
            }
        }
        // Echo on N workers (issue 14): the same echo server and 64 B messages, nothing pinned.
        for &w in &multi {
            match self.start_server(program, "echo", w, false) {
                Ok(srv) => {
                    for c in self.echo_w_conns() {
                        self.echo_row(&srv, label, ECHO_W_SIZE, c, w);
                    }
                }
                Err(rc) => self.server_skip(Rows::Echo(w), label, rc),
            }
        }
        // HTTP plaintext with wrk: only servers users would deploy (Go net/http, gevent.pywsgi, hyper on
        // tokio, may_minihttp on may, the project's).
        if program == "ours-monkey" {
            return;
        }
        if !self.have_wrk {
            self.io_skip(label, "http", "wrk_not_installed");
            return;
        }
        let url = |port: u16, path: &str| format!("http://127.0.0.1:{port}{path}");
        match self.start_server(program, "http", 1, true) {
            Ok(srv) => {
                for &c in self.http_conns {
                    let name = rows::http(names::HTTP, c);
                    self.wrk_row(&srv, &name, label, &url(srv.port, "/"), c, 1, true);
                }
            }
            Err(rc) => self.server_skip(Rows::Http(1), label, rc),
        }
        // Issue 14's bar: the same GET / keep-alive service and body as http_c*, ours on N hubs against
        // hyper on tokio multi_thread, may_minihttp and Go's net/http on N workers; server and wrk
        // unpinned (the server needs the cores; wrk shares them, so compare ratios).
        for &w in &multi {
            match self.start_server(program, "http", w, false) {
                Ok(srv) => {
                    let t = load_threads(w, self.cores);
                    for &c in self.http_conns {
                        let name = rows::http_w(w, c);
                        self.wrk_row(&srv, &name, label, &url(srv.port, "/"), c, t, false);
                    }
                }
                Err(rc) => self.server_skip(Rows::Http(w), label, rc),
            }
        }
        // HTTPS plaintext (gevent::http + gevent::ssl; hyper + tokio-rustls) and the CPU-bound route on
        // every worker count: the project and tokio only.
        if program != "ours" && program != "tokio" {
            return;
        }
        match self.start_server(program, "https", 1, true) {
            Ok(srv) => {
                for &c in self.http_conns {
                    let u = format!("https://127.0.0.1:{}/", srv.port);
                    self.wrk_row(&srv, &rows::http(names::HTTPS, c), label, &u, c, 1, true);
                }
            }
            Err(rc) => self.server_skip(Rows::Https, label, rc),
        }
        for &w in &self.args.workers {
            match self.start_server(program, "http", w, false) {
                Ok(srv) => {
                    let path = format!("/work?us={WORK_US}");
                    let name = rows::work(WORK_US, w);
                    let t = load_threads(w, self.cores);
                    self.wrk_row(&srv, &name, label, &url(srv.port, &path), 50, t, false);
                }
                Err(rc) => self.server_skip(Rows::Work(w), label, rc),
            }
        }
    }

    /// One invocation of `program` for `group`; its RESULT/SKIP lines go to the raw file and the terminal.
    fn run_program(&self, program: &str, group: &str) {
        if group == "io" {
            self.run_io(program);
            return;
        }
        let a = &self.args;
        let bin = |b: &str| self.bin.join(b).display().to_string();
        let mut argv: Vec<String> = match program {
            "ours" | "calibrate" | "monkey_thread" => vec![bin(program)],
            "corosensei" | "may" | "tokio" | "sync" => vec![bin(&format!("peer_{program}"))],
            "python" => match &a.python {
                Some(py) => vec![
                    py.display().to_string(),
                    self.bench
                        .join("peers/python/peer.py")
                        .display()
                        .to_string(),
                ],
                None => {
                    let reason = "python_peers_not_installed";
                    self.raw.skip(group, "all", "py-gevent", reason);
                    return;
                }
            },
            "go" => match &a.go {
                Some(go) => {
                    let mut v = vec![go.display().to_string()];
                    v.extend(["-group".into(), group.into()]);
                    v.extend(["-duration".into(), a.duration.clone()]);
                    if a.quick {
                        v.push("-quick".into());
                    }
                    v
                }
                None => {
                    self.raw.skip(group, "all", "go", "go_not_installed");
                    return;
                }
            },
            other => die(&format!("no such peer {other}")),
        };
        if program != "go" {
            argv.extend(["--group".into(), group.into()]);
            argv.extend(["--duration".into(), a.duration.clone()]);
            if a.quick {
                argv.push("--quick".into());
            }
        }
        let limit = if a.quick {
            PEER_TIMEOUT_QUICK
        } else {
            PEER_TIMEOUT
        };
        let (rc, _) = run(&mut command(&argv, None), limit, false, |l| {
            if is_row(l) {
                self.raw.line(l);
            }
        });
        if rc != 0 {
            log(&format!("{program} ({group}) exited with {rc}"));
            self.raw
                .skip(group, "all", program, &format!("exit_status_{rc}"));
        }
    }

    /// The machine line of the report: cores, CPU, kernel and the peers' versions.
    fn machine(&self) -> String {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown cpu".to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let output = |argv: &[&str]| {
            Command::new(argv[0])
                .args(&argv[1..])
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default()
        };
        let word = |s: String, i: usize| s.split(' ').nth(i).unwrap_or("").to_owned();
        let mut versions = format!("rustc {}", word(output(&["rustc", "--version"]), 1));
        if self.args.go.is_some() {
            versions += &format!(", {}", word(output(&["go", "version"]), 2));
        }
        if let Some(py) = &self.args.python {
            let py = py.display().to_string();
            let v = output(&[
                &py,
                "-c",
                "import sys, gevent, greenlet; print(\"python %d.%d.%d, gevent %s, greenlet %s\" \
                 % (sys.version_info[:3] + (gevent.__version__, greenlet.__version__)))",
            ]);
            versions += &format!(", {v}");
        }
        format!(
            "{} cores, {cpu}, Linux {}; {versions}",
            cores(),
            kernel.trim()
        )
    }

    /// `--check`: every skip listed; true when none is an error and the project has numbers in every
    /// group it takes part in.
    fn check(&self) -> bool {
        let text = std::fs::read_to_string(&self.raw.path).unwrap_or_default();
        let (mut errors, mut warnings) = (0, 0);
        for line in text.lines().filter(|l| l.starts_with("SKIP ")) {
            let reason = line.rsplit_once("reason=").map_or("", |(_, r)| r);
            if reason.ends_with("not_installed") {
                warnings += 1;
                eprintln!(
                    "bench/run --check: NOT RUN (install failed, registry unreachable?): {line}"
                );
            } else if reason.contains("vm.max_map_count") {
                eprintln!("bench/run --check: skipped by design: {line}");
            } else {
                errors += 1;
                eprintln!("bench/run --check: ERROR: {line}");
            }
        }
        for g in self.args.groups.iter().filter(|g| g.ours) {
            let prefix = format!("RESULT group={} ", g.name);
            let has = text
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains(" peer=ours "));
            if !has {
                errors += 1;
                eprintln!(
                    "bench/run --check: ERROR: no result of the project in group {}",
                    g.name
                );
            }
        }
        if warnings > 0 {
            eprintln!(
                "bench/run --check: WARNING: {warnings} measurement(s) not run because a peer could \
                 not be installed"
            );
        }
        if errors > 0 {
            eprintln!(
                "bench/run --check: FAILED: {errors} error(s) (raw lines: {})",
                self.raw.path.display()
            );
            return false;
        }
        eprintln!("bench/run --check: ok");
        true
    }
}

/// (year, month, day, hour, minute, second) of `t`, UTC.
fn utc(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

fn main() {
    let args = parse_args();
    let exe = std::env::current_exe().unwrap_or_else(|e| die(&format!("current_exe: {e}")));
    let bin = exe.parent().expect("the binary's directory").to_path_buf();
    let target = bin.parent().unwrap_or(Path::new(".")).to_path_buf();
    let bench = args.bench_dir.clone();
    let raw_dir = target.join("bench-raw");
    let now = utc(SystemTime::now());
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.0, now.1, now.2, now.3, now.4, now.5
    );
    let day = format!("{:04}-{:02}-{:02}", now.0, now.1, now.2);
    let out = args.out.clone().unwrap_or_else(|| bench.join("results"));
    for d in [&raw_dir, &out] {
        std::fs::create_dir_all(d)
            .unwrap_or_else(|e| die(&format!("creating {}: {e}", d.display())));
    }
    let raw_path = raw_dir.join(format!("{stamp}.txt"));
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&raw_path)
        .unwrap_or_else(|e| die(&format!("creating {}: {e}", raw_path.display())));
    let duration: f64 = args.duration.parse().expect("checked duration");
    let quick = args.quick;
    let wants_io = args.groups.iter().any(|g| g.name == "io");
    // SAFETY: sysconf has no preconditions.
    let clk_tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let h = Harness {
        raw: Raw {
            path: raw_path,
            file: Mutex::new(file),
        },
        bin,
        bench,
        raw_dir,
        pins: (in_path("taskset") && cores() >= 2).then_some((0, 1)),
        cores: cores(),
        have_wrk: wants_io && in_path("wrk"),
        clk_tck,
        echo_conns: if quick { &[1, 50] } else { &[1, 50, 1000] },
        http_conns: if quick { &[50] } else { &[50, 1000] },
        load_secs: format!("{}", duration.max(0.2)),
        wrk_secs: ((duration + 0.999) as u64).max(1),
        args,
    };
    let a = &h.args;
    if wants_io {
        let over: Vec<String> = a
            .workers
            .iter()
            .filter(|&&w| w > h.cores)
            .map(|w| w.to_string())
            .collect();
        if !over.is_empty() {
            log(&format!(
                "{} core(s): the io rows on {} workers share them (and the load generator's)",
                h.cores,
                over.join(",")
            ));
        }
    }
    let start = Instant::now();
    for r in 1..=a.rounds {
        log(&format!("round {r} of {}", a.rounds));
        for g in &a.groups {
            // Rotate the order each round so no peer always runs first (or right after a heavy one).
            let n = g.programs.len();
            for i in 0..n {
                h.run_program(g.programs[(i + r - 1) % n], g.name);
            }
        }
    }
    log(&format!("measured in {} s", start.elapsed().as_secs()));

    let suffix = if quick { "-quick" } else { "" };
    let md = out.join(format!("{day}{suffix}.md"));
    let svg = out.join(format!("{day}{suffix}.svg"));
    let mut cmdline = String::from("bench/run");
    if quick {
        cmdline += " --quick";
    }
    let workers: Vec<String> = a.workers.iter().map(|w| w.to_string()).collect();
    cmdline += &format!(
        " --groups {} --rounds {} --duration {} --workers {}",
        a.groups_arg,
        a.rounds,
        a.duration,
        workers.join(",")
    );
    let status = Command::new(h.bin.join("report"))
        .arg("--raw")
        .arg(&h.raw.path)
        .arg("--md")
        .arg(&md)
        .arg("--svg")
        .arg(&svg)
        .args(["--command", &cmdline, "--date", &day])
        .args(["--rounds", &a.rounds.to_string()])
        .args(["--machine", &h.machine()])
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => die(&format!("report failed: {s}")),
        Err(e) => die(&format!("cannot run report: {e}")),
    }
    log(&format!(
        "wrote {} and {} (raw lines: {})",
        md.display(),
        svg.display(),
        h.raw.path.display()
    ));
    if a.check && !h.check() {
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_summary() {
        let out = "Running 1s test @ http://127.0.0.1:1/\n  1 threads and 50 connections\n  \
                   64109 requests in 1.00s, 7.83MB read\nRequests/sec:  63629.49\nTransfer/sec: 7.8MB\n";
        assert_eq!(parse_wrk(out), Some((64109, 63629.49)));
        let bad = format!("{out}  Non-2xx or 3xx responses: 12\n");
        assert_eq!(parse_wrk(&bad), None);
        assert_eq!(
            parse_wrk("unable to connect to 127.0.0.1:1 Connection refused"),
            None
        );
    }

    #[test]
    fn worker_counts() {
        assert_eq!(default_workers(1), [1, 2]);
        assert_eq!(default_workers(2), [1, 2]);
        assert_eq!(default_workers(16), [1, 2, 16]);
        assert_eq!(parse_workers("4,1,2,2"), Ok(vec![1, 2, 4]));
        assert!(parse_workers("0").is_err());
        assert!(parse_workers("2,x").is_err());
        assert!(parse_workers("").is_err());
        assert!(parse_workers("100000").is_err());
        // wrk -t1 / one loadgen thread on 2 cores and on 1; half the cores on wide machines.
        assert_eq!(load_threads(2, 2), 1);
        assert_eq!(load_threads(2, 1), 1);
        assert_eq!(load_threads(1, 16), 1);
        assert_eq!(load_threads(2, 16), 2);
        assert_eq!(load_threads(16, 16), 8);
    }

    #[test]
    fn utc_dates() {
        let t = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(utc(t(0)), (1970, 1, 1, 0, 0, 0));
        // 2026-12-06T11:29:19Z (date -u -d @1796556559)
        assert_eq!(utc(t(1_796_556_559)), (2026, 12, 6, 11, 29, 19));
        assert_eq!(utc(t(951_782_400)), (2000, 2, 29, 0, 0, 0));
    }

    #[test]
    fn cpu_ticks_of_this_process() {
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(cpu_ticks(std::process::id()) > 0);
        assert_eq!(cpu_ticks(u32::MAX), 0);
    }

    #[test]
    fn timeouts_kill_and_report_124() {
        let mut lines = Vec::new();
        let (rc, _) = run(
            Command::new("sh").args(["-c", "echo RESULT x; exec sleep 30"]),
            Duration::from_millis(200),
            false,
            |l| lines.push(l.to_owned()),
        );
        assert_eq!(rc, 124);
        assert_eq!(lines, ["RESULT x"]);
        let (rc, err) = run(
            Command::new("sh").args(["-c", "echo oops >&2; exit 3"]),
            Duration::from_secs(30),
            true,
            |_| {},
        );
        assert_eq!((rc, err.as_str()), (3, "oops\n"));
        let (rc, _) = run(
            &mut Command::new("/nonexistent/x"),
            LOAD_TIMEOUT,
            false,
            |_| {},
        );
        assert_eq!(rc, 127);
    }
}
