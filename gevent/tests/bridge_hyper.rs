//! hyper 1 on gevent sockets, no tokio: a hyper server and hyper clients on one hub, driven by
//! `gevent::block_on` (cargo feature `hyper`).

use std::convert::Infallible;
use std::time::{Duration, Instant};

use gevent::bridge::hyper::{GeventExecutor, GeventTimer};
use gevent::net::{TcpListener, TcpStream};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/sleep" {
        gevent::sleep(Duration::from_millis(100)); // blocking gevent code inside a service
    }
    Ok(Response::new(Full::new(Bytes::from(format!(
        "hello {}",
        req.uri().path()
    )))))
}

/// A server greenlet: a greenlet per connection, each serving it with hyper.
fn serve(listener: TcpListener, connections: usize) -> gevent::Greenlet<()> {
    gevent::spawn(move || {
        for _ in 0..connections {
            let (conn, _) = listener.accept().unwrap();
            gevent::spawn_future(async move {
                hyper::server::conn::http1::Builder::new()
                    .timer(GeventTimer)
                    .serve_connection(conn, hyper::service::service_fn(hello))
                    .await
            });
        }
    })
}

async fn get(addr: std::net::SocketAddr, paths: &[&str]) -> Vec<String> {
    let io = TcpStream::connect(addr).unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    hyper::rt::Executor::execute(&GeventExecutor, conn);
    let mut out = Vec::new();
    for p in paths {
        let req = Request::get(*p).body(Empty::<Bytes>::new()).unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        out.push(String::from_utf8(body.to_vec()).unwrap());
    }
    out
}

#[test]
fn fifty_clients_keep_alive_on_one_hub() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = serve(listener, 50);
    let start = Instant::now();
    let clients: Vec<_> = (0..50)
        .map(|i| {
            gevent::spawn(move || {
                let path = format!("/c{i}");
                gevent::block_on(get(addr, &[&path, "/sleep"]))
            })
        })
        .collect();
    gevent::joinall(&clients);
    for (i, c) in clients.iter().enumerate() {
        assert_eq!(
            c.value().unwrap(),
            vec![format!("hello /c{i}"), "hello /sleep".to_string()]
        );
    }
    // 50 handlers each sleeping 100 ms, concurrently.
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    server.join();
}

#[test]
fn header_read_timeout_uses_hub_timers() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = gevent::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let start = Instant::now();
        let r = gevent::block_on(
            hyper::server::conn::http1::Builder::new()
                .timer(GeventTimer)
                .header_read_timeout(Duration::from_millis(50))
                .serve_connection(conn, hyper::service::service_fn(hello)),
        );
        (r.is_err(), start.elapsed())
    });
    // A client that connects and sends nothing.
    let mut c = std::io::BufReader::new(TcpStream::connect(addr).unwrap());
    let mut s = String::new();
    let _ = std::io::Read::read_to_string(&mut c, &mut s); // EOF when the server gives up
    server.join();
    let (failed, took) = server.value().unwrap();
    assert!(failed, "the connection ended with a timeout error");
    assert!(
        took >= Duration::from_millis(45) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn timer_sleep_is_a_hub_timer() {
    use hyper::rt::Timer;
    let start = Instant::now();
    let a = gevent::spawn_future(GeventTimer.sleep(Duration::from_millis(100)));
    let b =
        gevent::spawn_future(GeventTimer.sleep_until(Instant::now() + Duration::from_millis(100)));
    let c = gevent::spawn_future(GeventTimer.sleep(Duration::from_millis(100)));
    gevent::joinall([&a, &b, &c]);
    let took = start.elapsed();
    // One after the other: 300 ms.
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_millis(250),
        "{took:?}"
    );
    // Dropped before its deadline: its timer is cancelled, nothing fires later.
    let s = GeventTimer.sleep(Duration::from_secs(10));
    let _ = futures::FutureExt::now_or_never(s);
}

#[test]
fn hyper_rt_types_are_send_and_sync() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<GeventExecutor>();
    check::<GeventTimer>();
    fn send_sync<T: Send + Sync>() {}
    send_sync::<gevent::bridge::hyper::Sleep>();
}
