//! A plain `std::net` echo server, written without any gevent type, serving many clients at once from
//! one thread after `monkey::patch_all()`: each connection gets a greenlet, and the blocking
//! `accept`/`read`/`write` calls of std switch to the hub instead of blocking the thread.
//!
//! Run: `cargo run -p gevent --features monkey --example monkey_std_echo [127.0.0.1:PORT]`
//! (default 127.0.0.1:8801); try `nc 127.0.0.1 8801`. Prints `listening on ADDR` once bound.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

fn talk(mut conn: TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return, // the peer closed: done (the seed's loop would spin here)
            Ok(n) => {
                if let Err(e) = conn.write_all(&buf[..n]) {
                    eprintln!("write: {e}");
                    return;
                }
            }
            Err(e) => {
                eprintln!("read: {e}");
                return;
            }
        }
    }
}

fn main() -> std::io::Result<()> {
    gevent::monkey::patch_all();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8801".to_string());
    let server = TcpListener::bind(&addr)?;
    println!("listening on {}", server.local_addr()?);
    loop {
        let (conn, _) = server.accept()?;
        gevent::spawn_raw(move || talk(conn));
    }
}
