//! `gevent::subprocess` leaves no file descriptor behind: pipes and pidfds of finished, killed and
//! dropped children are all closed (counted in `/proc/self/fd`; alone in its binary so no other
//! test opens fds meanwhile).

use std::io::Write;
use std::time::Duration;

use gevent::subprocess::{Command, Stdio};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn no_fd_leaks() {
    // Warm up: the hub, its poller and the thread pool's fds exist before counting.
    Command::new("true").output().unwrap();
    let before = open_fds();
    for _ in 0..5 {
        Command::new("echo").arg("x").output().unwrap();
        let mut c = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.as_mut().unwrap().write_all(b"data").unwrap();
        let out = c.wait_with_output().unwrap();
        assert_eq!(out.stdout, b"data");
        let mut k = Command::new("sleep").arg("10").spawn().unwrap();
        assert!(k.wait_timeout(Duration::from_millis(5)).unwrap().is_none());
        k.kill().unwrap();
        k.wait().unwrap();
        drop(k);
    }
    // Closed sources are released on the hub's next turn.
    gevent::sleep(Duration::from_millis(10));
    assert_eq!(open_fds(), before);
}
