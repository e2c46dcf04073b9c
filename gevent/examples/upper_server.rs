//! The seed's socket server: one greenlet per connection, each received chunk printed and sent back
//! upper-cased — all connections served concurrently from one OS thread.
//!
//! ```text
//! cargo run --release -p gevent --example upper_server            # listens on 127.0.0.1:8800
//! cargo run --release -p gevent --example upper_server 127.0.0.1:0 # any free port
//! UPPER_SERVER_ADDR=127.0.0.1:9000 cargo run -p gevent --example upper_server
//! cargo run --release -p gevent --example upper_server -- --workers 2 # a hub on each of 2 threads
//! ```
//! Then, in another terminal: `nc 127.0.0.1 8800`, type `hello`, get `HELLO` back.
//!
//! `--workers N` (default 1) serves the address from N hubs on N threads, each with its own accept
//! loop on its own `SO_REUSEPORT` socket ([`gevent::server::StreamServer::bind_workers_with`]); the
//! kernel spreads connections across them. With 1 worker the seed's single loop below runs as is.
//!
//! Output: first line `listening on ADDR` (the bound address, so a port of 0 can be found), then one
//! line per received chunk printed as Python's `print(res)` prints bytes (`b'hello\n'`), on stdout.
//! Errors are logged per connection on stderr, and the other connections go on.
//!
//! Logging never stops the server: both streams are written through
//! [`gevent::logging::LogWriter`], which buffers lines and writes them from a thread of its own. If
//! stdout is a pipe that nobody reads, lines beyond the buffer are dropped (and counted) while every
//! connection is still served; if the reader goes away, the lines are dropped and the connections
//! go on (the seed's `print` would block the whole hub in the first case and raise in the second).
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
//! Three deliberate differences: logging never blocks or fails (above). On EOF (`recv` returns
//! nothing) the seed `continue`s, spinning forever on a closed connection; here the connection is
//! closed. And `send` may send only part of a chunk; here `write_all` sends all of it. The shape (accept, spawn a greenlet per connection) is kept as
//! is, rather than using `gevent::server::StreamServer`, because it is the lesson of the seed:
//! blocking-style code, made concurrent by the hub.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use gevent::logging::LogWriter;
use gevent::net::{TcpListener, TcpStream};
use gevent::server::StreamServer;

/// `[ADDR] [--workers N]`, shared with `prefork_server`.
#[path = "support/cli.rs"]
mod cli;

/// The seed's address.
const DEFAULT_ADDR: &str = "127.0.0.1:8800";

fn main() {
    let (addr, workers) = cli::addr_and_workers_or_exit("upper_server");
    let addr = addr
        .or_else(|| std::env::var("UPPER_SERVER_ADDR").ok())
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let workers = workers.unwrap_or(1);
    // Before anything else takes a descriptor: a stream that cannot be written to (closed at
    // start) is logged to nowhere, and the server still serves.
    let log = Log {
        out: log_writer(LogWriter::stdout()),
        err: log_writer(LogWriter::stderr()),
    };
    if workers > 1 {
        serve_on_workers(&addr, workers, log);
    }
    let server = match TcpListener::bind(addr.as_str()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("upper_server: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    log.out.write_line(format_args!(
        "listening on {}",
        server.local_addr().expect("local_addr")
    ));
    loop {
        match server.accept() {
            Ok((conn, addr)) => {
                let log = log.clone();
                gevent::spawn(move || talk(conn, addr, &log));
            }
            Err(e) => {
                // Out of file descriptors and the like: say so, let connections finish, retry.
                log.err
                    .write_line(format_args!("upper_server: accept failed: {e}"));
                gevent::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// The same server on `workers` hubs, one thread each: every hub accepts on its own socket and
/// serves its connections with [`talk`], as the single loop does. Runs until the process is killed.
fn serve_on_workers(addr: &str, workers: usize, log: Log) -> ! {
    let out = log.out.clone();
    let server = StreamServer::bind_workers_with(addr, workers, move |_, listener| {
        let log = log.clone();
        // `StreamServer` logs an accept error (out of descriptors, ...) and retries with a back-off.
        StreamServer::new(listener, move |conn, peer| talk(conn, peer, &log))
    });
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            eprintln!("upper_server: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    // The first line, as with one worker (the log is shared by every hub).
    out.write_line(format_args!("listening on {}", server.local_addr()));
    loop {
        std::thread::park();
    }
}

/// `w`, or a writer that discards everything if it could not be made.
fn log_writer(w: io::Result<LogWriter>) -> LogWriter {
    w.or_else(|_| LogWriter::new(io::sink()))
        .expect("upper_server: cannot start a logging thread")
}

/// Where the server's lines go: stdout (the chunks) and stderr (the errors), neither of which can
/// block the hub.
#[derive(Clone)]
struct Log {
    out: LogWriter,
    err: LogWriter,
}

/// Serves one connection until the peer closes it or an error happens (logged, like the seed's
/// `print(e)`).
fn talk(conn: TcpStream, addr: SocketAddr, log: &Log) {
    if let Err(e) = echo_upper(conn, log) {
        log.err.write_line(format_args!("{addr}: {e}"));
    }
}

fn echo_upper(mut conn: TcpStream, log: &Log) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(()); // EOF: the connection is closed when `conn` drops
        }
        let res = &mut buf[..n];
        log.out.write_line(format_args!("{}", BytesRepr(res)));
        res.make_ascii_uppercase();
        conn.write_all(res)?;
    }
}

/// `repr(bytes)` as Python prints it, as a `Display` that writes straight into the formatter (no
/// allocation): `b'...'`, or `b"..."` when the bytes hold `'` but no `"`; `\\`, `\t`, `\n`, `\r`
/// and the quote are escaped, other bytes below 0x20 or above 0x7e written as `\xhh`. The text is
/// assembled in a small stack buffer and handed to the formatter a few hundred bytes at a time.
struct BytesRepr<'a>(&'a [u8]);

impl fmt::Display for BytesRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let b = self.0;
        let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
            b'"'
        } else {
            b'\''
        };
        let mut out = Chunk {
            buf: [0; 512],
            len: 0,
        };
        out.push(f, &[b'b', quote])?;
        let mut i = 0;
        while i < b.len() {
            // A run of bytes written as they are, copied in one piece.
            let run = b[i..]
                .iter()
                .take_while(|&&c| (0x20..=0x7e).contains(&c) && c != b'\\' && c != quote)
                .count();
            if run > 0 {
                out.push_run(f, &b[i..i + run])?;
                i += run;
                continue;
            }
            let c = b[i];
            i += 1;
            match c {
                b'\\' => out.push(f, b"\\\\")?,
                b'\t' => out.push(f, b"\\t")?,
                b'\n' => out.push(f, b"\\n")?,
                b'\r' => out.push(f, b"\\r")?,
                c if c == quote => out.push(f, &[b'\\', quote])?,
                0x20..=0x7e => out.push(f, &[c])?,
                c => out.push(
                    f,
                    &[
                        b'\\',
                        b'x',
                        HEX[usize::from(c >> 4)],
                        HEX[usize::from(c & 0xf)],
                    ],
                )?,
            }
        }
        out.push(f, &[quote])?;
        out.flush(f)
    }
}

/// A stack buffer of ASCII text on its way to a formatter.
struct Chunk {
    buf: [u8; 512],
    len: usize,
}

impl Chunk {
    /// Appends `s` (ASCII, at most 4 bytes), handing the buffer over first if it is full.
    #[inline]
    fn push(&mut self, f: &mut fmt::Formatter<'_>, s: &[u8]) -> fmt::Result {
        if self.len + s.len() > self.buf.len() {
            self.flush(f)?;
        }
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
        Ok(())
    }

    /// Appends a run of printable ASCII of any length.
    fn push_run(&mut self, f: &mut fmt::Formatter<'_>, run: &[u8]) -> fmt::Result {
        if self.len + run.len() <= self.buf.len() {
            self.buf[self.len..self.len + run.len()].copy_from_slice(run);
            self.len += run.len();
            return Ok(());
        }
        self.flush(f)?;
        f.write_str(std::str::from_utf8(run).map_err(|_| fmt::Error)?)
    }

    fn flush(&mut self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only ASCII is ever pushed, so this cannot fail.
        let text = std::str::from_utf8(&self.buf[..self.len]).map_err(|_| fmt::Error)?;
        self.len = 0;
        f.write_str(text)
    }
}
