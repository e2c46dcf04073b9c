//! The seed's socket server: one greenlet per connection, each received chunk printed and sent back
//! upper-cased — all connections served concurrently from one OS thread.
//!
//! ```text
//! cargo run --release -p gevent --example upper_server            # listens on 127.0.0.1:8800
//! cargo run --release -p gevent --example upper_server 127.0.0.1:0 # any free port
//! UPPER_SERVER_ADDR=127.0.0.1:9000 cargo run -p gevent --example upper_server
//! ```
//! Then, in another terminal: `nc 127.0.0.1 8800`, type `hello`, get `HELLO` back.
//!
//! Output: first line `listening on ADDR` (the bound address, so a port of 0 can be found), then one
//! line per received chunk printed as Python's `print(res)` prints bytes (`b'hello\n'`), on stdout.
//! Errors are logged per connection on stderr, and the other connections go on.
//!
//! The Python original, for comparison:
//! ```python
//! from gevent import monkey;monkey.patch_all()
//! import gevent,socket
//! def ser():
//!     server=socket.socket()
//!     server.bind(('127.0.0.1',8800))
//!     server.listen()
//!     while True:
//!         conn,addr=server.accept()
//!         gevent.spawn(talk,conn,addr)
//! def talk(conn,addr):
//!     try:
//!         while True:
//!             res=conn.recv(1024)
//!             if not res:continue
//!             print(res)
//!             conn.send(res.upper())
//!     except Exception as e:
//!         print(e)
//! ```
//! Two deliberate differences: on EOF (`recv` returns nothing) the seed `continue`s, spinning forever
//! on a closed connection; here the connection is closed. And `send` may send only part of a chunk;
//! here `write_all` sends all of it. The shape (accept, spawn a greenlet per connection) is kept as
//! is, rather than using `gevent::server::StreamServer`, because it is the lesson of the seed:
//! blocking-style code, made concurrent by the hub.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use gevent::net::{TcpListener, TcpStream};

/// The seed's address.
const DEFAULT_ADDR: &str = "127.0.0.1:8800";

fn main() {
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("UPPER_SERVER_ADDR").ok())
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let server = match TcpListener::bind(addr.as_str()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("upper_server: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    println!("listening on {}", server.local_addr().expect("local_addr"));
    loop {
        match server.accept() {
            Ok((conn, addr)) => {
                gevent::spawn(move || talk(conn, addr));
            }
            Err(e) => {
                // Out of file descriptors and the like: say so, let connections finish, retry.
                eprintln!("upper_server: accept failed: {e}");
                gevent::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Serves one connection until the peer closes it or an error happens (logged, like the seed's
/// `print(e)`).
fn talk(conn: TcpStream, addr: SocketAddr) {
    if let Err(e) = echo_upper(conn) {
        eprintln!("{addr}: {e}");
    }
}

fn echo_upper(mut conn: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(()); // EOF: the connection is closed when `conn` drops
        }
        let res = &buf[..n];
        println!("{}", bytes_repr(res));
        conn.write_all(&res.to_ascii_uppercase())?;
    }
}

/// `repr(bytes)` as Python prints it: `b'...'`, or `b"..."` when the bytes hold `'` but no `"`.
fn bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::with_capacity(b.len() + 3);
    s.push('b');
    s.push(quote);
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            c if c as char == quote => {
                s.push('\\');
                s.push(quote);
            }
            0x20..=0x7e => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push(quote);
    s
}
