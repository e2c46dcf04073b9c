//! Under `monkey::patch_all()`, a raw `libc::fork()` from a greenlet is as safe as `gevent::fork`:
//! the parent's greenlet parked in a plain std `read` wakes when its data arrives while the child
//! runs its hub; the child sleeps with `std::thread::sleep` (cooperative there too), serves std
//! sockets of its own and resolves names on its own thread pool; its copy of the parked read
//! fails (`EBADF`) instead of taking the parent's data (issue 10, item 2, the `monkey` variant;
//! gevent's `src/gevent/tests/test__monkey_fork.py` / `test__os.py` fork tests check the same).
//!
//! Every child ends with `_exit` and is reaped with a bounded wait; every wait is bounded.

use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[path = "support/fork.rs"]
mod fork;
use fork::{child_main, park_reader, reap};

#[test]
fn raw_fork_under_patch_all_parent_keeps_its_events() {
    gevent::monkey::patch_all();
    let (a, b) = UnixStream::pair().unwrap();
    let (ready_r, ready_w) = UnixStream::pair().unwrap();
    let (bye_r, bye_w) = UnixStream::pair().unwrap();
    ready_r
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    bye_r
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (reader, got) = park_reader(a);
    let got_in_child = got.clone();
    let forker = gevent::spawn(move || {
        // SAFETY: fork(2); the child only runs `child_main` and ends with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid != 0 {
            return pid;
        }
        child_main(|| {
            // std sockets of its own, served by a greenlet: an echo.
            let (c1, c2) = UnixStream::pair().unwrap();
            c2.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            if let Err(code) = fork::echo_works(c1, &c2) {
                return code;
            }
            // Name lookups run on the child's own thread pool.
            match ("localhost", 80).to_socket_addrs() {
                Ok(a) if a.len() > 0 => {}
                _ => return 4,
            }
            // std::thread::sleep is cooperative here: the waiter runs.
            if !fork::bye_arrives_while_sleeping(bye_r, &ready_w, std::thread::sleep) {
                return 5;
            }
            match got_in_child.borrow().as_ref() {
                Some((Err(e), _)) if e.raw_os_error() == Some(libc::EBADF) => 0,
                Some((Err(_), _)) => 6,
                Some((Ok(_), _)) => 7, // it took the parent's data
                None => 8,             // still parked: would hang
            }
        })
    });
    let pid = forker.get().unwrap();
    fork::parent_keeps_its_events(pid, &ready_r, &b, &bye_w, &reader, &got);
}

#[test]
fn command_with_pre_exec_under_patch_all() {
    use std::os::unix::process::CommandExt;
    gevent::monkey::patch_all();
    let (a, b) = UnixStream::pair().unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&a);
    let (reader, got) = park_reader(a);
    // A child that closes inherited fds before exec (as C libraries' fork + exec do), here the
    // very fd the parent's reader is parked on: the parent's registration must survive it.
    let mut cmd = std::process::Command::new("true");
    // SAFETY: the closure calls only close(2) (the hook: async-signal-safe on this path, no
    // allocation or lock), before exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::close(raw);
            Ok(())
        })
    };
    let mut child = cmd.spawn().unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "`true` did not exit");
        std::thread::sleep(Duration::from_millis(2));
    };
    assert!(status.success());
    (&b).write_all(b"y").unwrap();
    assert!(reader.join_timeout(Duration::from_secs(3)));
    assert_eq!(got.borrow_mut().take().unwrap().0.unwrap(), b"y");
}

#[test]
fn child_serves_an_inherited_listener_the_parent_was_accepting_on() {
    gevent::monkey::patch_all();
    let listener = Rc::new(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = listener.local_addr().unwrap();
    let l2 = listener.clone();
    // Parked in a plain std accept (hooked) when the fork happens: the pre-fork server pattern.
    let acceptor = gevent::spawn(move || l2.accept().map(|_| ()).map_err(|e| e.raw_os_error()));
    gevent::sleep(Duration::ZERO);
    assert!(!acceptor.ready());
    let (l3, acceptor_in_child) = (listener.clone(), acceptor.clone());
    let forker = gevent::spawn(move || {
        // SAFETY: fork(2); the child only runs `child_main` and ends with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid != 0 {
            return pid;
        }
        child_main(move || {
            // The child's copy of the parked accept fails instead of racing the parent.
            if !acceptor_in_child.join_timeout(Duration::from_secs(5)) {
                return 2;
            }
            if acceptor_in_child.value() != Some(Err(Some(libc::EBADF))) {
                return 3;
            }
            // A new accept of the child's own on the same listener is watched by its poller.
            let Ok((c, _)) = l3.accept() else {
                return 4;
            };
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 4];
            if (&c).read_exact(&mut buf).is_err() || &buf != b"ping" {
                return 5;
            }
            match (&c).write_all(b"pong") {
                Ok(()) => 0,
                Err(_) => 6,
            }
        })
    });
    let pid = forker.get().unwrap();
    // The parent stops accepting, so the child is the only acceptor left.
    acceptor.kill();
    let client = std::net::TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    (&client).write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    let r = (&client).read_exact(&mut buf);
    let code = reap(pid, Duration::from_secs(15));
    assert_eq!(code, 0, "the child's check failed (code {code})");
    r.unwrap();
    assert_eq!(&buf, b"pong");
}

#[test]
fn closing_an_inherited_fd_in_the_child_wakes_the_childs_reader() {
    use std::os::fd::AsRawFd;
    gevent::monkey::patch_all();
    let (a, _b) = UnixStream::pair().unwrap();
    let a = Rc::new(a);
    let a_fd = a.as_raw_fd();
    // The parent's reader is parked on the fd (a registration of the hooks, made in the parent).
    let a2 = a.clone();
    let reader = gevent::spawn(move || (&*a2).read(&mut [0u8; 4]).map_err(|e| e.raw_os_error()));
    gevent::sleep(Duration::ZERO);
    assert!(!reader.ready());
    let forker = gevent::spawn(move || {
        // SAFETY: fork(2); the child only runs `child_main` and ends with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid != 0 {
            return pid;
        }
        child_main(move || {
            // A reader of the child's own on the inherited fd (sharing the parent's entry)...
            let a3 = a.clone();
            let mine = gevent::spawn(move || {
                let mut buf = [0u8; 4];
                (&*a3).read(&mut buf).map_err(|e| e.raw_os_error())
            });
            gevent::sleep(Duration::ZERO);
            gevent::sleep(Duration::ZERO);
            // ...is woken with EBADF when the child closes the fd, not left waiting for ever.
            // SAFETY: closes the child's copy of `a`'s fd; `a` is forgotten below, never closed
            // again.
            unsafe { libc::close(a_fd) };
            let woke = mine.join_timeout(Duration::from_secs(5));
            std::mem::forget(a);
            if !woke {
                return 2;
            }
            match mine.value() {
                Some(Err(Some(libc::EBADF))) => 0,
                _ => 3,
            }
        })
    });
    let pid = forker.get().unwrap();
    assert_eq!(reap(pid, Duration::from_secs(15)), 0);
    assert!(!reader.ready(), "the parent's reader is still parked");
    reader.kill();
}
