//! The `monkey_std_echo` example (a plain `std::net` echo server under `patch_all()`) serves 100
//! clients of another process concurrently from one OS thread. The clients hold their connections
//! open together and each talks twice, after all of them talked once: a server that blocked in one
//! client's `read` would never reach the others (the clients' 10 s read timeout would fail the test).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::{Arc, Barrier};
use std::time::Duration;

#[path = "support/example.rs"]
mod example;

#[test]
fn std_echo_server_serves_many_clients_concurrently_from_one_thread() {
    let mut server = example::start_with(
        "monkey_std_echo",
        &["monkey"],
        &["127.0.0.1:0"],
        Stdio::inherit(),
    );
    drop(server.child.stdout.take()); // nothing more is read from it
    let addr = format!("127.0.0.1:{}", server.port);

    const CLIENTS: usize = 100;
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let addr = addr.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                for round in 0..2 {
                    let msg = format!("client {i} round {round}\n");
                    s.write_all(msg.as_bytes()).unwrap();
                    let mut back = vec![0u8; msg.len()];
                    s.read_exact(&mut back).expect("echo within 10 s");
                    assert_eq!(back, msg.as_bytes());
                    if round == 0 {
                        barrier.wait(); // everyone is connected and served once
                    }
                }
            })
        })
        .collect();
    let results: Vec<_> = clients.into_iter().map(|c| c.join()).collect();
    // The server's threads, but for gevent's blocking watchdog (on in debug builds), which
    // serves nothing.
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", server.child.id()))
        .unwrap()
        .map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).unwrap())
        .map(|comm| comm.trim().to_string())
        .filter(|comm| comm != "gevent-watchdog")
        .collect();
    drop(server); // killed
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(
        threads.len(),
        1,
        "the server used more than one OS thread: {threads:?}"
    );
}
