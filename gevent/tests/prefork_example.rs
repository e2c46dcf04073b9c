//! The pre-fork example (`examples/prefork_server.rs`): two worker processes share one listening
//! socket, serve every connection, and end with their parent. Every wait is bounded.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[path = "support/example.rs"]
mod example;

const BOUND: Duration = Duration::from_secs(20);

#[test]
fn two_worker_processes_serve_one_socket_and_end_with_their_parent() {
    let mut parent = example::start(
        "prefork_server",
        &["127.0.0.1:0", "--workers", "2"],
        Stdio::null(),
    );
    let port = parent.port;
    // Every line of every process (they share the pipe); `None` at EOF, when all have exited.
    let rx = parent.stdout_lines();
    let next = || rx.recv_timeout(BOUND).expect("a line within the bound");
    let mut workers = BTreeSet::new();
    let mut pids = Vec::new();
    for _ in 0..2 {
        let line = next().expect("a worker line");
        // `worker I (pid P) serving`
        let rest = line
            .strip_prefix("worker ")
            .unwrap_or_else(|| panic!("{line:?}"));
        let (i, rest) = rest.split_once(" (pid ").unwrap();
        let pid: u32 = rest.strip_suffix(") serving").unwrap().parse().unwrap();
        workers.insert(i.to_owned());
        pids.push(pid);
    }
    assert_eq!(workers, BTreeSet::from(["0".to_owned(), "1".to_owned()]));
    assert_ne!(pids[0], pids[1]);
    assert!(!pids.contains(&parent.child.id()));

    // Connections in flight at once, so that both processes have work to take.
    let started = Instant::now();
    let mut conns: Vec<TcpStream> = (0..50)
        .map(|_| {
            let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_read_timeout(Some(BOUND)).unwrap();
            c
        })
        .collect();
    for (k, c) in conns.iter_mut().enumerate() {
        let msg = format!("hello {k}");
        c.write_all(msg.as_bytes()).unwrap();
        let mut got = vec![0u8; msg.len()];
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, msg.to_uppercase().as_bytes());
    }
    assert!(started.elapsed() < BOUND);
    drop(conns);

    // Killing the parent ends the workers (PR_SET_PDEATHSIG): the shared stdout reaches EOF once
    // the last process holding it is gone.
    parent.child.kill().unwrap();
    parent.child.wait().unwrap();
    loop {
        match rx.recv_timeout(BOUND) {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(_) => panic!("the workers {pids:?} outlived their parent"),
        }
    }
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
