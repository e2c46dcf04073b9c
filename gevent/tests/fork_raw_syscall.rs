//! A fork that runs no atfork handler (the raw `fork` system call) followed by `gevent::reinit()`
//! gives the child a hub of its own, as `gevent::fork` does (issue 10, item 2; the `Limits` of
//! `gevent::os`). Alone in its binary: a raw fork does not take libc's locks, so no other test
//! thread may hold one (malloc's) at that moment.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use gevent::net::UnixStream;

#[cfg(target_arch = "x86_64")]
#[test]
fn raw_fork_syscall_then_reinit() {
    let (a, b) = UnixStream::pair().unwrap();
    let (ready_r, ready_w) = UnixStream::pair().unwrap();
    ready_r
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let reader = gevent::spawn(move || {
        let mut buf = [0u8; 8];
        (&a).read(&mut buf).map(|n| buf[..n].to_vec()).ok()
    });
    gevent::sleep(Duration::ZERO);
    // SAFETY: the fork system call; the child runs the block below and ends with _exit.
    let pid = unsafe { libc::syscall(libc::SYS_fork) } as libc::pid_t;
    assert!(pid >= 0);
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            gevent::reinit().unwrap();
            (&ready_w).write_all(b"r").unwrap();
            // The child's hub runs (polls) while the parent's data arrives.
            gevent::sleep(Duration::from_millis(300));
            0
        }))
        .unwrap_or(99);
        // SAFETY: _exit(2) ends the child at once.
        unsafe { libc::_exit(code) };
    }
    let mut r = [0u8; 1];
    let ready = (&ready_r).read_exact(&mut r);
    let sent = Instant::now();
    (&b).write_all(b"hello").unwrap();
    let woke = reader.join_timeout(Duration::from_secs(3));
    let latency = sent.elapsed();
    let mut status = 0;
    let t = Instant::now();
    loop {
        // SAFETY: `status` is valid for writes; `pid` is our child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if t.elapsed() > Duration::from_secs(15) {
            // SAFETY: as above.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the child did not exit");
        }
        gevent::sleep(Duration::from_millis(2));
    }
    ready.expect("the child reported that its hub runs");
    assert!(
        woke,
        "the parent's reader never woke: the child took its event"
    );
    assert!(
        latency < Duration::from_millis(290),
        "woke after {latency:?}"
    );
    assert_eq!(reader.get().unwrap().as_deref(), Some(&b"hello"[..]));
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
}
