//! The seed's server (`examples/upper_server.rs`) with `--workers 2`: two hubs on two threads
//! serve the one address, every chunk still comes back upper-cased and is printed once, and bad
//! `--workers` values are refused. Every wait is bounded.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/example.rs"]
mod example;

const BOUND: Duration = Duration::from_secs(20);

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
    let mut server = example::start(
        "upper_server",
        &["127.0.0.1:0", "--workers", "2"],
        Stdio::null(),
    );
    let port = server.port;
    let rx = server.stdout_lines();
    let names = thread_names(server.child.id());
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
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("only {} lines printed", printed.len()));
        assert!(printed.insert(line.clone()), "printed twice: {line}");
    }
    assert_eq!(printed, want);
}

#[test]
fn bad_worker_counts_are_refused() {
    for bad in [&["--workers", "0"][..], &["--workers", "x"], &["--workers"]] {
        let out = Command::new(example::example_binary("upper_server"))
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
