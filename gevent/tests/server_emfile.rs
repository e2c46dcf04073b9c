//! The listener runs out of file descriptors (`RLIMIT_NOFILE` lowered in a child process, the test
//! binary re-executed): the server logs once, backs off instead of spinning, and recovers when
//! descriptors free up.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "GEVENT_TEST_EMFILE_CHILD";

/// In the child: a StreamServer with about 5 descriptors to spare.
#[test]
fn emfile_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return; // only meaningful when re-executed by `listener_out_of_fds_backs_off_and_recovers`
    }
    gevent::sleep(Duration::ZERO); // the hub (poller, waker) exists before the limit is computed
    let server = gevent::server::StreamServer::bind("127.0.0.1:0", |mut conn, _| {
        let mut buf = [0u8; 64];
        while let Ok(n @ 1..) = conn.read(&mut buf) {
            if conn.write_all(&buf[..n].to_ascii_uppercase()).is_err() {
                break;
            }
        }
    })
    .unwrap();
    let open: std::collections::HashSet<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .collect();
    // The lowest limit that leaves exactly 5 free descriptor numbers (inherited fds may be sparse).
    let mut free = 0;
    let mut limit = 0;
    while free < 5 {
        if !open.contains(&limit) {
            free += 1;
        }
        limit += 1;
    }
    let lim = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: `lim` is a valid rlimit for the duration of the call.
    let r = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(r, 0, "setrlimit: {}", std::io::Error::last_os_error());
    println!("port {}", server.local_addr().port());
    std::io::stdout().flush().unwrap();
    server.start();
    gevent::sleep(Duration::from_secs(30)); // the parent kills us long before
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15 of stat; `after` starts at field 3.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn listener_out_of_fds_backs_off_and_recovers() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "emfile_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    /// Kills the child however this test ends.
    struct Reap(u32);
    impl Drop for Reap {
        fn drop(&mut self) {
            // SAFETY: kill(2) on the pid of a child this test started; no memory is involved.
            unsafe { libc::kill(self.0 as libc::pid_t, libc::SIGKILL) };
        }
    }
    let _reap = Reap(pid);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut port = None;
    for _ in 0..20 {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        // libtest prints `test emfile_child ... ` before the child's own output.
        if let Some(i) = line.find("port ") {
            port = Some(line[i + 5..].trim().parse::<u16>().unwrap());
            break;
        }
    }
    let port = port.expect("the child printed its port");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));

    // 20 connections: the kernel completes them all (backlog), the server can accept only ~5.
    let mut clients: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for c in &mut clients {
        c.write_all(b"x").unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    // While starved, the server backs off instead of spinning: little CPU over 500 ms.
    let t0 = cpu_ticks(pid);
    std::thread::sleep(Duration::from_millis(500));
    let used = cpu_ticks(pid) - t0;
    assert!(
        used < 15,
        "the server used {used} ticks (10 ms) of CPU in 500 ms while out of fds"
    );
    // Some were served, not all.
    let mut served = 0;
    for c in &mut clients {
        c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut b = [0u8; 1];
        if c.read(&mut b)
            .map(|n| n == 1 && b[0] == b'X')
            .unwrap_or(false)
        {
            served += 1;
        }
    }
    assert!(served > 0 && served < 20, "served {served} of 20");

    // Free the descriptors: the server recovers and serves a new client.
    drop(clients);
    let t = Instant::now();
    let mut ok = false;
    while t.elapsed() < Duration::from_secs(10) {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        c.write_all(b"back").unwrap();
        let mut b = [0u8; 4];
        if c.read_exact(&mut b).is_ok() && &b == b"BACK" {
            ok = true;
            break;
        }
    }
    let recovered_in = t.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(ok, "the server did not recover; stderr: {err}");
    let logged = err.matches("accept failed").count();
    assert!(
        logged == 1,
        "logged {logged} times (once per 10 s expected):\n{err}"
    );
    assert!(err.contains("Too many open files"), "{err}");
    assert!(err.contains("accepting again"), "{err}");
    eprintln!("recovered in {recovered_in:?}; {logged} log line(s):\n{err}");
}
