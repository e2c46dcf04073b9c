//! The io group's `ours-monkey` peer: a plain `std::net` echo server, written without any gevent type,
//! made cooperative by `gevent::monkey::patch_all()` (issue "gevent::monkey", item 6).
//!
//! Run: `ours_monkey --serve echo --port-file F` (as `bench/run` starts every io server).
//!
//! The accept loop runs in the main greenlet; each accepted `std::net::TcpStream` gets a greenlet
//! ([`gevent::spawn_raw`]) that reads and writes it with std's blocking calls (`recv`, `write`,
//! `accept4` through the monkey hooks, which park on the hub instead of blocking the thread). Accepted
//! sockets get TCP_NODELAY, as every peer's do. One thread, one hub, like `ours` (the native
//! `gevent::net` server on `gevent::server::StreamServer`, `bench/src/ours.rs`), which is the row this
//! one is compared with. A separate binary so that `ours` never links the hooks.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use bench::{Opts, Serve};

/// Writes back every byte read, until EOF or an error (resets are the clients' business).
fn echo(mut c: TcpStream) {
    let _ = c.set_nodelay(true);
    let mut buf = vec![0u8; 65536];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if c.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    let o = Opts::from_args();
    let Some(s) = &o.serve else {
        eprintln!("ours_monkey: only --serve echo --port-file F");
        std::process::exit(2);
    };
    if s.kind != "echo" {
        eprintln!("ours_monkey: unknown --serve kind {:?} (echo only)", s.kind);
        std::process::exit(3);
    }
    Serve::exit_after_max();
    gevent::monkey::patch_all();
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    s.announce(l.local_addr().expect("local_addr").port());
    loop {
        match l.accept() {
            Ok((c, _)) => gevent::spawn_raw(move || echo(c)),
            Err(e) => {
                eprintln!("ours_monkey: accept: {e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}
