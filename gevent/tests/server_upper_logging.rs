//! The seed's server (`examples/upper_server.rs`) survives its own logging: a stdout pipe that
//! nobody reads does not freeze it, a stdout whose reader is gone does not kill its connections,
//! and each chunk is still printed exactly as Python's `print(bytes)` prints it (checked against
//! python3 for all 256 byte values and the quoting cases). Every wait is bounded.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{ChildStderr, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/example.rs"]
mod example;
use example::{collect, collect_lines, Example};

/// Starts the server with stdout and stderr piped; returns it, its port and its stdout with the
/// first line (`listening on ...`) read, nothing more.
fn start() -> (Example, u16, ChildStdout, ChildStderr) {
    let mut ex = example::start("upper_server", &["127.0.0.1:0"], Stdio::piped());
    let out = ex.child.stdout.take().unwrap();
    let err = ex.child.stderr.take().unwrap();
    let port = ex.port;
    (ex, port, out, err)
}

fn connect(port: u16) -> TcpStream {
    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

/// Sends `msg`, expects it back upper-cased (within the socket timeouts).
fn roundtrip(c: &mut TcpStream, msg: &[u8]) {
    c.write_all(msg).unwrap();
    let mut got = vec![0u8; msg.len()];
    c.read_exact(&mut got)
        .unwrap_or_else(|e| panic!("no answer from the server: {e}"));
    assert_eq!(got, msg.to_ascii_uppercase());
}

#[test]
fn a_stdout_pipe_nobody_reads_does_not_freeze_the_server() {
    let (server, port, stdout, stderr) = start();
    // Neither stdout nor stderr is read from here on (both stay open).
    let t = Instant::now();
    let payload: Vec<u8> = (0..1024).map(|i| i as u8).collect();
    let mut c = connect(port);
    // About 2.9 KiB of output per KiB sent (mostly \xhh): 1.7 MB in all, far beyond the pipe
    // (64 KiB) and the writer's buffer.
    for _ in 0..600 {
        roundtrip(&mut c, &payload);
    }
    // Other connections are served too, at once.
    let mut others: Vec<TcpStream> = (0..20).map(|_| connect(port)).collect();
    for (i, o) in others.iter_mut().enumerate() {
        roundtrip(o, format!("still serving {i}").as_bytes());
    }
    roundtrip(&mut c, b"the first one too");
    assert!(t.elapsed() < Duration::from_secs(60));
    // What did reach stdout is whole lines: records are dropped whole, never cut. (But the last
    // one: the kill may land while the writer thread is in the middle of a write.)
    drop(server);
    drop(stderr);
    let mut rest = Vec::new();
    BufReader::new(stdout).read_to_end(&mut rest).unwrap();
    let rest = String::from_utf8_lossy(&rest);
    let mut lines: Vec<&str> = rest.split('\n').collect();
    lines.pop();
    assert!(lines.len() > 10, "{} lines", lines.len());
    for l in lines {
        assert!(
            (l.starts_with("b'") && l.ends_with('\''))
                || (l.starts_with("b\"") && l.ends_with('"')),
            "a cut line: {l:?}"
        );
    }
}

#[test]
fn a_stdout_whose_reader_is_gone_does_not_kill_connections() {
    let (server, port, stdout, stderr) = start();
    drop(stdout); // the reader goes away: every later write to the pipe is EPIPE
    let (err, err_thread) = collect(stderr);
    let mut conns: Vec<TcpStream> = (0..3).map(|_| connect(port)).collect();
    for round in 0..50 {
        for (i, c) in conns.iter_mut().enumerate() {
            roundtrip(c, format!("hello {i} round {round}").as_bytes());
        }
    }
    // A new connection too.
    roundtrip(&mut connect(port), b"and a new one");
    drop(conns);
    drop(server);
    err_thread.join().unwrap();
    let err = String::from_utf8_lossy(&err.lock().unwrap()).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("failed with"), "{err}");
    assert!(!err.contains("Broken pipe"), "{err}");
}

/// What python3 prints for each of `inputs` (`print(bytes)`), one line each.
fn python_reprs(inputs: &[Vec<u8>]) -> Option<Vec<String>> {
    let hex: Vec<String> = inputs
        .iter()
        .map(|b| b.iter().map(|c| format!("{c:02x}")).collect())
        .collect();
    let out = Command::new("python3")
        .arg("-c")
        .arg("import sys\nfor h in sys.argv[1:]: print(bytes.fromhex(h))")
        .args(&hex)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn chunks_are_printed_as_python_prints_bytes_for_every_byte_value() {
    let mut inputs: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    inputs.extend(
        [
            &b"'"[..],
            b"\"",
            b"'\"",
            b"it's",
            b"say \"hi\"",
            b"it's \"quoted\"",
            b"back\\slash\ttab\r\n",
            b"hello\n",
            b"\x00\x7f\x80\xff",
        ]
        .map(<[u8]>::to_vec),
    );
    inputs.push((0..=255u8).collect());
    // Longer than the repr's 512-byte stack buffer, in every mix (one TCP segment, one chunk each).
    inputs.push((0..1000u32).map(|i| b'a' + (i % 26) as u8).collect());
    inputs.push((0..1000u32).map(|i| (i * 7 % 256) as u8).collect());
    inputs.push(
        (0..1000u32)
            .map(|i| if i < 400 { b'q' } else { (i % 256) as u8 })
            .collect(),
    );
    let Some(want) = python_reprs(&inputs) else {
        eprintln!("skipped: python3 is not installed");
        return;
    };
    assert_eq!(want.len(), inputs.len());
    let (_server, port, stdout, _stderr) = start();
    let lines = collect_lines(stdout);
    let mut c = connect(port);
    // One chunk each: the answer comes back before the next is sent.
    for i in &inputs {
        roundtrip(&mut c, i);
    }
    let t = Instant::now();
    while lines.lock().unwrap().len() < want.len() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let got = lines.lock().unwrap().clone();
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "input {:?}", inputs[k]);
    }
}
