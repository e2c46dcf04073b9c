//! A real PostgreSQL server through the bridge (cargo feature `tokio`): tokio-postgres from 100
//! greenlets, a transaction cut short by a `Timeout`, and the sync `postgres` crate by its
//! documented route (`gevent::threadpool`). The server is started by `support/pg.rs`; without
//! PostgreSQL installed the test prints why and skips.
//!
//! One test function, one server, sections run in order.

#[path = "support/pg.rs"]
mod pg;

use std::time::{Duration, Instant};

use gevent::event::Event;
use std::rc::Rc;

async fn connect(conn: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls)
        .await
        .unwrap();
    // The connection's I/O task: a greenlet of its own on this hub.
    gevent::spawn_future(connection);
    client
}

#[test]
fn postgres_through_the_bridge() {
    let server = match pg::PgServer::start() {
        Ok(s) => s,
        Err(why) => {
            println!("SKIPPED postgres_through_the_bridge: {why}");
            eprintln!("SKIPPED postgres_through_the_bridge: {why}");
            return;
        }
    };
    let conn: &'static str = Box::leak(server.conn.clone().into_boxed_str());

    hundred_concurrent_pg_sleeps(conn);
    timeout_mid_transaction_rolls_back(conn);
    sync_postgres_crate_on_the_threadpool(conn);
    drop(server);
}

/// 100 greenlets, each with its own connection, each `SELECT pg_sleep(0.2)`: < 0.6 s in all.
fn hundred_concurrent_pg_sleeps(conn: &'static str) {
    let go = Rc::new(Event::new());
    let connected = Rc::new(std::cell::Cell::new(0));
    let all_connected = Rc::new(Event::new());
    let gs: Vec<_> = (0..100)
        .map(|i| {
            let (go, connected, all_connected) =
                (go.clone(), connected.clone(), all_connected.clone());
            gevent::spawn(move || {
                let client = gevent::block_on(connect(conn));
                connected.set(connected.get() + 1);
                if connected.get() == 100 {
                    all_connected.set();
                }
                go.wait();
                let row =
                    gevent::block_on(client.query_one("SELECT pg_sleep(0.2), $1::int", &[&i]))
                        .unwrap();
                row.get::<_, i32>(1)
            })
        })
        .collect();
    let t0 = Instant::now();
    assert!(all_connected.wait_timeout(Duration::from_secs(30)));
    let connect_time = t0.elapsed();
    let start = Instant::now();
    go.set();
    gevent::joinall(&gs);
    let took = start.elapsed();
    println!("100 connections in {connect_time:?}; 100 concurrent pg_sleep(0.2) in {took:?}");
    assert_eq!(gs.iter().map(|g| g.value().unwrap()).sum::<i32>(), 4950);
    assert!(took >= Duration::from_millis(200));
    assert!(
        took < Duration::from_millis(600),
        "100 x pg_sleep(0.2) took {took:?}"
    );
}

/// A `Timeout` lands while a transaction waits on the server: the future is dropped, the
/// transaction rolls back, and the connection serves the next query.
fn timeout_mid_transaction_rolls_back(conn: &'static str) {
    let mut client = gevent::block_on(connect(conn));
    gevent::block_on(client.batch_execute("DROP TABLE IF EXISTS cut; CREATE TABLE cut (x int)"))
        .unwrap();
    let start = Instant::now();
    let r = gevent::with_timeout(Duration::from_millis(100), || {
        gevent::block_on(async {
            let tx = client.transaction().await.unwrap();
            tx.execute("INSERT INTO cut VALUES (1)", &[]).await.unwrap();
            tx.batch_execute("SELECT pg_sleep(2)").await.unwrap();
            tx.commit().await.unwrap();
            unreachable!("the timeout lands first");
        })
    });
    assert!(r.is_err());
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "the Timeout did not wait for the server"
    );
    // Same connection: the reply to pg_sleep is skipped, the dropped Transaction's ROLLBACK runs,
    // then this query.
    let n: i64 = gevent::block_on(client.query_one("SELECT count(*) FROM cut", &[]))
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "the insert was rolled back");
    assert!(!client.is_closed());
    // And another connection agrees.
    let other = gevent::block_on(connect(conn));
    let n: i64 = gevent::block_on(other.query_one("SELECT count(*) FROM cut", &[]))
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    // The connection still commits normally.
    gevent::block_on(async {
        let tx = client.transaction().await.unwrap();
        tx.execute("INSERT INTO cut VALUES (2)", &[]).await.unwrap();
        tx.commit().await.unwrap();
    });
    let n: i64 = gevent::block_on(other.query_one("SELECT count(*) FROM cut", &[]))
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

/// The sync `postgres` crate runs a private tokio runtime per client, so it must not run on a
/// hub's thread (it would block the hub, and inside a tokio context it panics with "Cannot start
/// a runtime from within a runtime"). The documented route: a `gevent::threadpool` thread per
/// call; the greenlets wait, the hub keeps serving.
fn sync_postgres_crate_on_the_threadpool(conn: &'static str) {
    let pool = gevent::threadpool::ThreadPool::new(10);
    let start = Instant::now();
    let gs: Vec<_> = (0..10)
        .map(|i| {
            let pool = pool.clone();
            gevent::spawn(move || {
                pool.apply(move || {
                    let mut c = postgres::Client::connect(conn, postgres::NoTls).unwrap();
                    let row = c.query_one("SELECT pg_sleep(0.2), $1::int", &[&i]).unwrap();
                    row.get::<_, i32>(1)
                })
            })
        })
        .collect();
    // A ticker shows the hub kept running meanwhile.
    let ticks = gevent::spawn(move || {
        let mut n = 0;
        while start.elapsed() < Duration::from_millis(150) {
            gevent::sleep(Duration::from_millis(5));
            n += 1;
        }
        n
    });
    gevent::joinall(&gs);
    let took = start.elapsed();
    println!("10 sync postgres clients on the thread pool: {took:?}");
    assert_eq!(gs.iter().map(|g| g.value().unwrap()).sum::<i32>(), 45);
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert!(ticks.get().unwrap() >= 10);
}
