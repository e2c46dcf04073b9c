//! Pre-fork: N worker processes share one listening socket (gunicorn's model), each with its own
//! hub serving connections in greenlets, for those who prefer processes to threads (a crash or a
//! leak stays in one worker; no state is shared by accident). The server upper-cases what it gets,
//! as `upper_server` does.
//!
//! ```text
//! cargo run --release -p gevent --example prefork_server -- 127.0.0.1:8801 --workers 4
//! ```
//! Output: `listening on ADDR`, then `worker I (pid P) serving` per worker, on stdout. The parent
//! only waits for its workers; they end with it (`PR_SET_PDEATHSIG`), so killing the parent stops
//! the whole server.
//!
//! How it divides the work: the socket is bound and listening before the fork, so every worker
//! accepts from the same kernel queue, and whichever worker's hub is free takes the next connection
//! (the kernel wakes the waiting ones, one wins the `accept`; the others get `EAGAIN` and wait
//! again). For one process with a hub per core instead, see `upper_server --workers N` and
//! [`gevent::hubs`].
//!
//! The fork happens before anything of gevent exists in the parent (no hub, no thread pool, no
//! logging thread): the children start from a single-threaded process and make their own hubs.
//! Forking a process that already runs a hub needs `gevent::fork()` (issue 10), which resets the
//! hub's state in the child; it is not used here, because this example never needs it.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use gevent::net::{TcpListener, TcpStream};
use gevent::server::StreamServer;

/// `[ADDR] [--workers N]`, shared with `upper_server`. The defaults here: `127.0.0.1:8801`, and a
/// worker per available CPU.
#[path = "support/cli.rs"]
mod cli;

fn main() {
    let (addr, workers) = cli::addr_and_workers_or_exit("prefork_server");
    let addr = addr.unwrap_or_else(|| "127.0.0.1:8801".to_owned());
    let workers =
        workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let listener = match std::net::TcpListener::bind(addr.as_str()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("prefork_server: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let local = listener.local_addr().expect("local_addr");
    println!("listening on {local}");
    // Nothing buffered may be copied into the children (it would be printed once per process).
    let _ = io::stdout().flush();
    let mut children = Vec::with_capacity(workers);
    for i in 0..workers {
        // `libc::fork` rather than `gevent::fork()` (issue 10): the parent has no hub and no thread
        // at this point, so a plain fork is all it takes.
        // SAFETY: the process is single-threaded here (no hub, pool or logging thread has been
        // started), so the child may go on running arbitrary code; it gets copies of the
        // listener's descriptor and of the (flushed) stdio state, nothing else.
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => {
                eprintln!(
                    "prefork_server: fork failed: {}",
                    io::Error::last_os_error()
                );
                break;
            }
            0 => worker(i, listener),
            pid => children.push(pid),
        }
    }
    drop(listener); // the workers hold it
    let mut status = 0;
    for _ in 0..children.len() {
        // SAFETY: waitpid writes the status into `status`, which outlives the call.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 {
            break;
        }
        eprintln!("prefork_server: worker pid {pid} ended (status {status})");
    }
    std::process::exit(1);
}

/// A worker process: serves the inherited listener with a hub of its own, until killed.
fn worker(i: usize, listener: std::net::TcpListener) -> ! {
    let parent = std::os::unix::process::parent_id();
    // End with the parent (Linux): a SIGTERM when it exits.
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
    if std::os::unix::process::parent_id() != parent {
        std::process::exit(0); // the parent died before the line above
    }
    let served = TcpListener::from_std(listener).and_then(|l| StreamServer::new(l, talk));
    let server = match served {
        Ok(s) => s,
        Err(e) => {
            eprintln!("prefork_server: worker {i}: {e}");
            std::process::exit(1);
        }
    };
    println!("worker {i} (pid {}) serving", std::process::id());
    let _ = io::stdout().flush();
    server.serve_forever();
    std::process::exit(0);
}

/// Serves one connection until the peer closes it; errors go to stderr.
fn talk(mut conn: TcpStream, peer: SocketAddr) {
    let mut buf = [0u8; 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                let res = &mut buf[..n];
                res.make_ascii_uppercase();
                if let Err(e) = conn.write_all(res) {
                    eprintln!("{peer}: {e}");
                    return;
                }
            }
            Err(e) => {
                eprintln!("{peer}: {e}");
                return;
            }
        }
    }
}
