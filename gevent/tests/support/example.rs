//! Test scaffolding for the tests that drive one of the crate's example binaries as a separate
//! process: build it, start it with its stdout piped, read its port from the first line it prints
//! (`listening on 127.0.0.1:PORT`, within a bound), collect its output on threads, and kill it when
//! the test is done with it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long an example may take to print its first line before the test fails.
pub const FIRST_LINE_BOUND: Duration = Duration::from_secs(20);

/// Builds the example `name` of the gevent crate (if it is not up to date) and returns its path.
pub fn example_binary(name: &str) -> PathBuf {
    example_binary_with(name, &[])
}

/// [`example_binary`] for an example that needs the crate `features`.
pub fn example_binary_with(name: &str, features: &[&str]) -> PathBuf {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-q", "-p", "gevent", "--example", name]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let st = cmd.status().expect("cargo build");
    assert!(st.success(), "building the {name} example");
    let mut exe = std::env::current_exe().expect("current exe");
    exe.pop();
    exe.pop();
    exe.push("examples");
    exe.push(name);
    exe
}

/// A running example process; killed (and reaped) when dropped.
pub struct Example {
    /// The process. Its `stdout` is still there, past the first line, for the test to read or
    /// drop; its `stderr` is piped if `start` was asked to pipe it.
    pub child: Child,
    /// The port it printed on its first line.
    pub port: u16,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Example {
    /// The rest of its stdout, line by line, forwarded by a thread: `Some(line)` per line, then
    /// `None` at EOF (when every process writing to the pipe has exited).
    ///
    /// # Panics
    /// If stdout was taken already.
    pub fn stdout_lines(&mut self) -> mpsc::Receiver<Option<String>> {
        let out = BufReader::new(self.child.stdout.take().expect("stdout is piped"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { break };
                if tx.send(Some(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(None);
        });
        rx
    }
}

/// Starts example `name` with `args`, stdout piped and stderr as given; reads the first line of
/// stdout (byte by byte, so no later line is consumed; failing the test if it does not come within
/// [`FIRST_LINE_BOUND`]) and parses the port from it.
pub fn start(name: &str, args: &[&str], stderr: Stdio) -> Example {
    start_with(name, &[], args, stderr)
}

/// [`start`] for an example that needs the crate `features`.
pub fn start_with(name: &str, features: &[&str], args: &[&str], stderr: Stdio) -> Example {
    let mut child = Command::new(example_binary_with(name, features))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut ex = Example { child, port: 0 };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut first = Vec::new();
        let mut b = [0u8; 1];
        while b[0] != b'\n' {
            if out.read(&mut b).unwrap_or(0) != 1 {
                break;
            }
            first.push(b[0]);
        }
        let _ = tx.send((first, out));
    });
    // On a timeout `ex` is dropped: the process is killed and the reading thread ends.
    let (first, out) = rx
        .recv_timeout(FIRST_LINE_BOUND)
        .unwrap_or_else(|_| panic!("{name} printed no first line within {FIRST_LINE_BOUND:?}"));
    let first = String::from_utf8_lossy(&first);
    ex.port = first
        .trim()
        .strip_prefix("listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    ex.child.stdout = Some(out);
    ex
}

/// Collects everything `r` gives until EOF, on a thread.
pub fn collect(mut r: impl Read + Send + 'static) -> (Arc<Mutex<Vec<u8>>>, JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    let t = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = r.read(&mut chunk) {
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    (buf, t)
}

/// Collects the lines `r` gives until EOF (or a line that is not UTF-8), on a thread.
pub fn collect_lines(r: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            l.lock().unwrap().push(line);
        }
    });
    lines
}
