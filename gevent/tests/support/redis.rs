//! A private `redis-server` for one test file: a free loopback port, no persistence, killed on drop.
//! Skips, loudly, only when `redis-server` is not installed (`.ci/tools` installs it).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`; killed and reaped on drop.
pub struct Server {
    child: Child,
    /// Its loopback port.
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `redis-server` on 127.0.0.1 with `extra` arguments and waits (bounded) until it accepts;
/// `None` (after printing why) when it cannot be started.
pub fn start_redis(extra: &[&str]) -> Option<Server> {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = match Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "\n\n*** SKIPPED: redis-server cannot be started ({e}); \
                 install it: apt-get install -y redis-server (.ci/run does) ***\n\n"
            );
            return None;
        }
    };
    let server = Server { child, port };
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(server)
}
