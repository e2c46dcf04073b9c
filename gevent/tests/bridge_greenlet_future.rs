//! Greenlets from async code: `Greenlet<T>` is a `Future`, `spawn_future` runs a future as a
//! greenlet, and `futures::join!` / `select` mix with `joinall`.

use std::time::{Duration, Instant};

use gevent::GetError;

#[test]
fn join_macro_over_greenlets_and_joinall_over_futures() {
    let start = Instant::now();
    let a = gevent::spawn(|| {
        gevent::sleep(Duration::from_millis(300));
        1
    });
    let b = gevent::spawn(|| {
        gevent::sleep(Duration::from_millis(300));
        2
    });
    // A future (in a greenlet of its own) that awaits two greenlets with join!.
    let sum = gevent::spawn_future(async move {
        let (x, y) = futures::join!(a, b);
        x.unwrap() + y.unwrap()
    });
    // And an async sleep-ish future next to a plain greenlet, all joined with joinall.
    let c = gevent::spawn_future(async {
        gevent::sleep(Duration::from_millis(300));
        10
    });
    let d = gevent::spawn(|| {
        gevent::sleep(Duration::from_millis(300));
        20
    });
    gevent::joinall([&sum, &c, &d]);
    assert_eq!(
        (sum.value(), c.value(), d.value()),
        (Some(3), Some(10), Some(20))
    );
    assert!(
        start.elapsed() < Duration::from_millis(600),
        "all waited concurrently (one after the other: 1.2 s)"
    );
}

#[test]
fn awaiting_gives_the_outcome() {
    let ok = gevent::spawn(|| String::from("v"));
    let killed = gevent::spawn(|| gevent::sleep(Duration::from_secs(10)));
    let panicked = gevent::spawn(|| -> u8 { panic!("boom") });
    gevent::sleep(Duration::ZERO);
    killed.kill_nowait();
    assert_eq!(gevent::block_on(ok.clone()), Ok(String::from("v")));
    // The value moved out: a second await (or get) says so.
    assert_eq!(gevent::block_on(ok.clone()), Err(GetError::Taken));
    assert_eq!(gevent::block_on(killed), Err(GetError::Killed));
    match gevent::block_on(panicked) {
        Err(GetError::Panicked(f)) => assert!(f.message().contains("boom")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn select_between_a_greenlet_and_another_future() {
    let slow = gevent::spawn(|| {
        gevent::sleep(Duration::from_secs(10));
        "slow"
    });
    let fast = gevent::spawn(|| {
        gevent::sleep(Duration::from_millis(10));
        "fast"
    });
    let start = Instant::now();
    let r = gevent::block_on(futures::future::select(slow.clone(), fast));
    match r {
        futures::future::Either::Right((v, _)) => assert_eq!(v, Ok("fast")),
        futures::future::Either::Left(_) => panic!("the slow one won"),
    }
    assert!(start.elapsed() < Duration::from_secs(1));
    slow.kill();
}

#[test]
fn iwait_over_spawned_futures() {
    let gs: Vec<_> = [150u64, 10, 80]
        .into_iter()
        .map(|ms| {
            gevent::spawn_future(async move {
                gevent::sleep(Duration::from_millis(ms));
                ms
            })
        })
        .collect();
    let refs: Vec<&gevent::Greenlet<u64>> = gs.iter().collect();
    let order: Vec<u64> = gevent::iwait(&refs, None)
        .map(|i| gs[i].value().unwrap())
        .collect();
    assert_eq!(order, vec![10, 80, 150]);
}
