//! Code nobody here wrote: the synchronous `redis` crate against a real `redis-server` (Debian's
//! package; `.ci/run` installs it), used from 100 greenlets at once after `patch_all()`. Each
//! client blocks 200 ms in the server (`BLPOP` with a timeout); together they take about one
//! request's time, not 100.
//!
//! Skips, loudly, only when `redis-server` is not installed.

use std::time::{Duration, Instant};

#[path = "support/redis.rs"]
mod redis_server;
use redis_server::start_redis;

#[test]
fn hundred_redis_clients_in_greenlets_take_about_one_requests_time() {
    let Some(server) = start_redis(&[]) else {
        return;
    };
    gevent::monkey::patch_all();
    let url = format!("redis://127.0.0.1:{}/", server.port);
    let blpop = |url: String, key: String| {
        let client = redis::Client::open(url).unwrap();
        let mut con = client.get_connection().unwrap();
        let t = Instant::now();
        let r: Option<(String, String)> = redis::cmd("BLPOP")
            .arg(&key)
            .arg(0.2)
            .query(&mut con)
            .unwrap();
        assert_eq!(r, None);
        t.elapsed()
    };
    let u = url.clone();
    let check = gevent::spawn(move || {
        let client = redis::Client::open(u).unwrap();
        let mut con = client.get_connection().unwrap();
        redis::cmd("SET").arg("k").arg("v").exec(&mut con).unwrap();
        redis::cmd("GET")
            .arg("k")
            .query::<String>(&mut con)
            .unwrap()
    });
    assert_eq!(check.get().unwrap(), "v");
    let u = url.clone();
    let one = gevent::spawn(move || blpop(u, "empty".into()))
        .get()
        .unwrap();
    let t = Instant::now();
    let gs: Vec<_> = (0..100)
        .map(|i| {
            let u = url.clone();
            gevent::spawn(move || blpop(u, format!("empty-{i}")))
        })
        .collect();
    gevent::joinall(&gs);
    for g in &gs {
        assert!(g.get().is_ok());
    }
    let all = t.elapsed();
    eprintln!("redis: one BLPOP {one:?}, 100 concurrent {all:?}");
    assert!(one >= Duration::from_millis(190));
    assert!(all < one * 3, "100 clients took {all:?}, one took {one:?}");
}
