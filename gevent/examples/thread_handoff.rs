//! An OS thread hands work to a hub running on another thread and waits for the results.
//!
//! Two ways: a one-off job (`HubHandle::run_callback` spawns a greenlet there, which fills a
//! `sync::AsyncResult` the OS thread waits on), and a service greenlet on the hub fed through a
//! `sync::Channel` whose requests carry their own reply slot. The OS thread blocks in `get()`; the
//! hub's greenlets never block their thread, so the jobs run concurrently.
//!
//! Run: `cargo run -p gevent --example thread_handoff`

use std::time::{Duration, Instant};

use gevent::sync::{AsyncResult, Channel, Event};

fn main() {
    // A hub on its own thread: it sends back a handle, then runs whatever it is handed until
    // told to stop (its main greenlet parks on `stop`, the hub keeps running).
    let handle: AsyncResult<gevent::HubHandle> = AsyncResult::new();
    let stop = Event::new();
    let requests: Channel<(u64, AsyncResult<u64>)> = Channel::bounded(16);
    let hub_thread = {
        let (handle, stop, requests) = (handle.clone(), stop.clone(), requests.clone());
        std::thread::Builder::new()
            .name("hub".into())
            .spawn(move || {
                // The service greenlet: squares numbers, a little later each.
                let service = gevent::spawn(move || {
                    for (n, reply) in requests.iter() {
                        gevent::spawn(move || {
                            gevent::sleep(Duration::from_millis(30));
                            reply.set(n * n);
                        });
                    }
                });
                handle.set(gevent::get_hub().handle());
                stop.wait();
                service.join();
            })
            .expect("start the hub thread")
    };
    let hub = handle.get().expect("the hub's handle");

    // 1. One-off jobs: three greenlets on the hub, each sleeping 100 ms.
    let t = Instant::now();
    let results: Vec<AsyncResult<String>> = (0..3)
        .map(|i| {
            let r = AsyncResult::new();
            let r2 = r.clone();
            hub.run_callback(move || {
                gevent::spawn(move || {
                    gevent::sleep(Duration::from_millis(100));
                    let me = std::thread::current();
                    r2.set(format!(
                        "job {i} done on thread {}",
                        me.name().unwrap_or("?")
                    ));
                });
            });
            r
        })
        .collect();
    for r in &results {
        println!("{}", r.get().expect("a job's result")); // this OS thread blocks here
    }
    let el = t.elapsed();
    println!(
        "3 jobs of 100 ms took {} ms: {}",
        el.as_millis(),
        if el < Duration::from_millis(250) {
            "concurrent"
        } else {
            "sequential"
        }
    );

    // 2. Requests to the service greenlet, each with its reply slot.
    let replies: Vec<_> = (1..=5u64)
        .map(|n| {
            let reply = AsyncResult::new();
            requests
                .send((n, reply.clone()))
                .expect("the service is up");
            reply
        })
        .collect();
    let squares: Vec<u64> = replies.iter().map(|r| r.get().expect("a reply")).collect();
    println!("squares: {squares:?}");

    requests.close();
    stop.set();
    hub_thread.join().expect("the hub thread");
    println!("hub stopped");
}
