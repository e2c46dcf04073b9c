//! The seed's server (`examples/upper_server.rs`) with `--workers 2`: two hubs on two threads
//! serve the one address, every chunk still comes back upper-cased and is printed once, and bad
//! `--workers` values are refused. Every wait is bounded.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BOUND: Duration = Duration::from_secs(20);

fn example_binary() -> std::path::PathBuf {
    let st = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "gevent", "--example", "upper_server"])
        .status()
        .expect("cargo build");
    assert!(st.success(), "building the upper_server example");
    let mut exe = std::env::current_exe().expect("current exe");
    exe.pop();
    exe.pop();
    exe.push("examples");
    exe.push("upper_server");
    exe
}

/// The server process; killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The names of the process's threads.
fn thread_names(pid: u32) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in dir.flatten() {
            if let Ok(n) = std::fs::read_to_string(t.path().join("comm")) {
                names.insert(n.trim().to_owned());
            }
        }
    }
    names
}

#[test]
fn two_workers_serve_and_print_every_chunk() {
    let mut child = Command::new(example_binary())
        .args(["127.0.0.1:0", "--workers", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start upper_server");
    let out = BufReader::new(child.stdout.take().unwrap());
    let server = Server(child);
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in out.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(BOUND).expect("the first line");
    let port: u16 = first
        .strip_prefix("listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    let names = thread_names(server.0.id());
    assert!(
        names.contains("gevent-hub-0") && names.contains("gevent-hub-1"),
        "{names:?}"
    );
    let started = Instant::now();
    let mut want = BTreeSet::new();
    for k in 0..100 {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(BOUND)).unwrap();
        let msg = format!("hello {k}\n");
        c.write_all(msg.as_bytes()).unwrap();
        let mut got = vec![0u8; msg.len()];
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, msg.to_uppercase().as_bytes());
        want.insert(format!("b'hello {k}\\n'"));
        assert!(started.elapsed() < BOUND);
    }
    // Each chunk printed once, whichever hub served it (in any order across hubs).
    let mut printed = BTreeSet::new();
    while printed.len() < want.len() {
        let line = rx
            .recv_timeout(BOUND)
            .unwrap_or_else(|_| panic!("only {} lines printed", printed.len()));
        assert!(printed.insert(line.clone()), "printed twice: {line}");
    }
    assert_eq!(printed, want);
}

#[test]
fn bad_worker_counts_are_refused() {
    for bad in [&["--workers", "0"][..], &["--workers", "x"], &["--workers"]] {
        let out = Command::new(example_binary())
            .args(["127.0.0.1:0"])
            .args(bad)
            .stdin(Stdio::null())
            .output()
            .expect("run upper_server");
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("usage: upper_server"), "{bad:?}: {err}");
    }
}
