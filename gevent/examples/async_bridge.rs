//! The async bridge end to end: a hyper 1 server and 50 hyper clients, all greenlets on one hub
//! and gevent sockets (no tokio), then a tokio-postgres query through the `tokio` feature when a
//! PostgreSQL server is reachable.
//!
//! ```text
//! cargo run -p gevent --features hyper,tokio --example async_bridge
//! cargo run -p gevent --features hyper,tokio --example async_bridge -- \
//!     --pg "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
//! ```
//! Without `--pg`, the connection string comes from `GEVENT_PG` if set, else
//! `host=127.0.0.1 port=5432 user=postgres dbname=postgres` is tried (loopback only).
//!
//! Output (stdout): `listening on 127.0.0.1:P`, then `fetched 50/50 pages in N ms`, then either
//! `postgres: <answer>` or `postgres: skipped (<why>)`.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use gevent::bridge::hyper::{GeventExecutor, GeventTimer};
use gevent::net::{TcpListener, TcpStream};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};

const CLIENTS: usize = 50;

/// The service: blocking gevent code is fine inside it (the greenlet has a stack).
async fn page(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    gevent::sleep(Duration::from_millis(50)); // a slow backend, served concurrently
    let body = format!("page {}\n", req.uri().path());
    Ok(Response::new(Full::new(Bytes::from(body))))
}

/// Accepts forever, a greenlet per connection, hyper's HTTP/1 server on each.
fn serve(listener: TcpListener) {
    loop {
        let (conn, _) = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        gevent::spawn_future(async move {
            let r = hyper::server::conn::http1::Builder::new()
                .timer(GeventTimer)
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(conn, hyper::service::service_fn(page))
                .await;
            if let Err(e) = r {
                eprintln!("connection: {e}");
            }
        });
    }
}

/// One client: connect, hand the connection task to a greenlet, GET `path`, return the body.
async fn fetch(addr: std::net::SocketAddr, path: String) -> Result<String, String> {
    let io = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    hyper::rt::Executor::execute(&GeventExecutor, conn);
    let req = Request::get(path)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// A tokio-postgres query through the `tokio` feature, or why not.
fn postgres(conn: &str) -> Result<String, String> {
    gevent::with_timeout(Duration::from_secs(5), || {
        gevent::block_on(async {
            let (client, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("not reachable: {e}"))?;
            gevent::spawn_future(connection);
            let row = client
                .query_one("SELECT 'answer ' || (6 * 7)::text", &[])
                .await
                .map_err(|e| e.to_string())?;
            Ok(row.get::<_, String>(0))
        })
    })
    .map_err(|e| format!("no answer: {e}"))?
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pg = args
        .iter()
        .position(|a| a == "--pg")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("GEVENT_PG").ok())
        .unwrap_or_else(|| "host=127.0.0.1 port=5432 user=postgres dbname=postgres".into());

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    println!("listening on {addr}");
    let server = gevent::spawn(move || serve(listener));

    let start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| gevent::spawn(move || gevent::block_on(fetch(addr, format!("/{i}")))))
        .collect();
    gevent::joinall(&clients);
    let ok = clients
        .iter()
        .enumerate()
        .filter(|(i, c)| c.value().is_some_and(|r| r == Ok(format!("page /{i}\n"))))
        .count();
    for c in &clients {
        if let Some(Err(e)) = c.value() {
            eprintln!("client: {e}");
        }
    }
    println!(
        "fetched {ok}/{CLIENTS} pages in {} ms",
        start.elapsed().as_millis()
    );
    server.kill();

    match postgres(&pg) {
        Ok(answer) => println!("postgres: {answer}"),
        Err(why) => println!("postgres: skipped ({why})"),
    }
    if ok != CLIENTS {
        std::process::exit(1);
    }
}
