//! tokio-based futures inside `gevent::block_on` (cargo feature `tokio`): timers, tokio's
//! TcpStream, `tokio::spawn`, and tokio's io traits on gevent's sockets.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A greenlet that ticks every 2 ms until told to stop; its value is the number of ticks.
fn ticker(stop: Rc<Cell<bool>>) -> gevent::Greenlet<u32> {
    gevent::spawn(move || {
        let mut n = 0;
        while !stop.get() && n < 10_000 {
            gevent::sleep(Duration::from_millis(2));
            n += 1;
        }
        n
    })
}

#[test]
fn hundred_tokio_sleeps_overlap_and_the_hub_keeps_serving() {
    let stop = Rc::new(Cell::new(false));
    let t = ticker(stop.clone());
    let start = Instant::now();
    let gs: Vec<_> = (0..100)
        .map(|i| {
            gevent::spawn(move || {
                gevent::block_on(async move {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    i
                })
            })
        })
        .collect();
    gevent::joinall(&gs);
    let took = start.elapsed();
    stop.set(true);
    assert_eq!(gs.iter().map(|g| g.value().unwrap()).sum::<u32>(), 4950);
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(
        took < Duration::from_millis(600),
        "100 sleeps of 200 ms took {took:?}"
    );
    let ticks = t.get().unwrap();
    assert!(ticks >= 30, "the ticker ran only {ticks} times in {took:?}");
}

#[test]
fn hundred_tokio_tcp_round_trips_to_a_gevent_server() {
    let listener = gevent::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The server: gevent, blocking style, a greenlet per connection; each answer 100 ms late.
    let server = gevent::spawn(move || {
        for _ in 0..100 {
            let (mut conn, _) = listener.accept().unwrap();
            gevent::spawn(move || {
                let mut buf = [0u8; 16];
                let n = std::io::Read::read(&mut conn, &mut buf).unwrap();
                gevent::sleep(Duration::from_millis(100));
                std::io::Write::write_all(&mut conn, &buf[..n].to_ascii_uppercase()).unwrap();
            });
        }
    });
    let stop = Rc::new(Cell::new(false));
    let t = ticker(stop.clone());
    let start = Instant::now();
    let clients: Vec<_> = (0..100)
        .map(|i| {
            gevent::spawn(move || {
                gevent::block_on(async move {
                    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                    s.write_all(format!("hi{i}").as_bytes()).await.unwrap();
                    let mut out = String::new();
                    s.read_to_string(&mut out).await.unwrap();
                    out
                })
            })
        })
        .collect();
    gevent::joinall(&clients);
    let took = start.elapsed();
    stop.set(true);
    for (i, c) in clients.iter().enumerate() {
        assert_eq!(c.value().unwrap(), format!("HI{i}"));
    }
    assert!(took < Duration::from_millis(800), "took {took:?}");
    assert!(t.get().unwrap() >= 10);
    server.join();
}

#[test]
fn tokio_spawn_and_the_context_helpers() {
    let v = gevent::block_on(async {
        let h = tokio::spawn(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            std::thread::current().name().map(str::to_owned)
        });
        h.await.unwrap()
    });
    assert_eq!(
        v.as_deref(),
        Some("gevent-tokio"),
        "spawned tasks run on the runtime's thread"
    );
    // A tokio object made outside the future, inside tokio_context.
    let sleep = gevent::bridge::tokio_context(|| tokio::time::sleep(Duration::from_millis(5)));
    gevent::block_on(sleep);
    // The handle, for spawning from plain code.
    let h = gevent::bridge::tokio_handle().spawn(async { 7 });
    assert_eq!(gevent::block_on(h).unwrap(), 7);
}

#[test]
fn blocking_gevent_calls_inside_tokio_polls_interleave() {
    // Each future makes a blocking gevent call in the middle of a poll, with the tokio context
    // entered; the greenlets' polls then end in a different order than they began.
    let gs: Vec<_> = [30u64, 10, 20]
        .into_iter()
        .map(|ms| {
            gevent::spawn(move || {
                gevent::block_on(async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    gevent::sleep(Duration::from_millis(ms));
                    let inner = gevent::block_on(async move {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        ms
                    });
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    inner
                })
            })
        })
        .collect();
    gevent::joinall(&gs);
    assert_eq!(
        gs.iter().map(|g| g.value().unwrap()).collect::<Vec<_>>(),
        vec![30, 10, 20]
    );
    // Outside block_on the context is left again.
    assert!(tokio::runtime::Handle::try_current().is_err());
}

#[test]
fn tokio_io_traits_on_gevent_sockets() {
    let (a, b) = gevent::net::UnixStream::pair().unwrap();
    let g = gevent::spawn(move || {
        gevent::block_on(async move {
            let mut b = b;
            let mut buf = [0u8; 3];
            b.read_exact(&mut buf).await.unwrap();
            b.write_all(&buf.to_ascii_uppercase()).await.unwrap();
        })
    });
    let out = gevent::block_on(async move {
        let mut a = a;
        a.write_all(b"abc").await.unwrap();
        let mut buf = [0u8; 3];
        a.read_exact(&mut buf).await.unwrap();
        buf
    });
    assert_eq!(&out, b"ABC");
    g.join();
}
