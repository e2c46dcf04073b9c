//! `create_connection`'s timeout per attempt, and no socket left behind by an attempt that times
//! out or is killed.
//!
//! Upstream: gevent `src/gevent/tests/test__socket.py`, `TestCreateConnection.test_base_exception`
//! (a `BaseException` — a kill, a Timeout — raised while connecting closes the half-made socket)
//! and CPython's `Lib/test/test_socket.py` `NetworkConnectionAttributesTest.testTimeoutDefault`'s
//! premise (the timeout bounds the connect). A connect that hangs on loopback: a listener whose
//! accept queue is full drops further SYNs, so the handshake waits for a retransmission.
//!
//! One test in its own binary, since it counts this process's open fds.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use gevent::net::{create_connection, TcpListener, TcpStream};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn a_timed_out_or_killed_attempt_leaves_no_socket() {
    let l = TcpListener::bind_with_backlog("127.0.0.1:0", 0).unwrap();
    let addr = l.local_addr().unwrap();
    // Fill the accept queue (nobody accepts): connect until one attempt hangs.
    let mut held: Vec<TcpStream> = Vec::new();
    let before = open_fds();
    let mut timed_out = None;
    for _ in 0..8 {
        let t = Instant::now();
        match create_connection(addr, Some(Duration::from_millis(300)), None) {
            Ok(c) => held.push(c),
            Err(e) => {
                timed_out = Some((e, t.elapsed()));
                break;
            }
        }
    }
    let Some((e, elapsed)) = timed_out else {
        eprintln!("skipping: this kernel accepted 8 connections into a backlog-0 queue");
        return;
    };
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(
        open_fds(),
        before + held.len(),
        "the timed-out socket was closed"
    );

    // A kill landing in the connect (test_base_exception): the socket is closed too.
    let g = gevent::spawn(move || create_connection(addr, None, None).is_ok());
    gevent::sleep(Duration::from_millis(50));
    assert!(!g.ready(), "the connect should hang on the full queue");
    assert_eq!(open_fds(), before + held.len() + 1, "the half-made socket");
    g.kill();
    assert_eq!(open_fds(), before + held.len(), "closed by the kill");

    // A Timeout around it likewise.
    let r = gevent::with_timeout(Duration::from_millis(50), || {
        create_connection(addr, None, None)
    });
    assert!(r.is_err());
    assert_eq!(open_fds(), before + held.len());
    drop(l);
}
