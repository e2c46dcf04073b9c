//! Code nobody here wrote: the blocking HTTP client `ureq`, used from 100 greenlets at once after
//! `patch_all()`, against a local server that answers each request after 200 ms. Together they take
//! about one request's time, not 100.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

const DELAY: Duration = Duration::from_millis(200);

/// The tests' elapsed-time bars compare with one request's time: they run one at a time, not
/// beside each other's hundred server threads. Taken before the test thread has a hub.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A thread-per-connection HTTP server (in threads without a hub: the hooks pass through there).
fn slow_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                std::thread::sleep(DELAY);
                let _ = c.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                );
            });
        }
    });
    addr
}

fn get(url: &str) -> String {
    ureq::get(url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

#[test]
fn hundred_ureq_requests_from_greenlets_take_about_one_requests_time() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    gevent::monkey::patch_all();
    let url = format!("http://{}/", slow_server());
    let u = url.clone();
    let one = gevent::spawn(move || {
        let t = Instant::now();
        assert_eq!(get(&u), "hello");
        t.elapsed()
    });
    let one = one.get().unwrap();
    let t = Instant::now();
    let gs: Vec<_> = (0..100)
        .map(|_| {
            let u = url.clone();
            gevent::spawn(move || get(&u))
        })
        .collect();
    for g in &gs {
        assert_eq!(g.get().unwrap(), "hello");
    }
    let all = t.elapsed();
    eprintln!("ureq: one request {one:?}, 100 concurrent {all:?}");
    assert!(one >= DELAY);
    assert!(all < one * 3, "100 requests took {all:?}, one took {one:?}");
}

/// Issue 16: with `timeout_global`, ureq resolves names on a thread of its own and waits for it
/// through `std::sync::mpsc::Receiver::recv_timeout`: 50 greenlets of one hub all wait on their
/// thread's parker at once, and still finish in about one request's time.
#[test]
fn fifty_ureq_requests_with_timeout_global_take_about_one_requests_time() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    gevent::monkey::patch_all();
    let addr = slow_server();
    // A name, so that the resolver thread runs.
    let url = format!("http://localhost:{}/", addr.port());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let get = move |agent: &ureq::Agent, url: &str| {
        agent
            .get(url)
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    };
    let (a, u) = (agent.clone(), url.clone());
    let one = gevent::spawn(move || {
        let t = Instant::now();
        assert_eq!(get(&a, &u), "hello");
        t.elapsed()
    });
    let one = one.get().unwrap();
    let t = Instant::now();
    let gs: Vec<_> = (0..50)
        .map(|_| {
            let (a, u) = (agent.clone(), url.clone());
            gevent::spawn(move || get(&a, &u))
        })
        .collect();
    for g in &gs {
        assert_eq!(g.get_timeout(Duration::from_secs(20)).unwrap(), "hello");
    }
    let all = t.elapsed();
    eprintln!("ureq timeout_global: one request {one:?}, 50 concurrent {all:?}");
    assert!(one >= DELAY);
    assert!(all < one * 3, "50 requests took {all:?}, one took {one:?}");
}
