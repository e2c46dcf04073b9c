//! `monkey::patch_io`, `patch_select`, `patch_dns` and the close/dup hooks: plain std and libc calls
//! on sockets, pipes, poll/select/epoll and name lookups become cooperative in greenlets, with the
//! system call's semantics kept (non-blocking mode, MSG_DONTWAIT, errno, files and stdio untouched).
//! Scenarios after gevent's src/gevent/tests/test__monkey_select*.py, test__socket_close.py and
//! test__socket_dns.py.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap()
}

#[test]
fn switches_and_is_patched() {
    gevent::monkey::patch_all();
    assert!(gevent::monkey::is_patched());
    for m in [
        gevent::monkey::Module::Time,
        gevent::monkey::Module::Socket,
        gevent::monkey::Module::Io,
        gevent::monkey::Module::Select,
        gevent::monkey::Module::Dns,
        gevent::monkey::Module::Thread,
    ] {
        assert!(gevent::monkey::is_module_patched(m));
    }
}

#[test]
fn unix_stream_read_write_park_instead_of_blocking() {
    gevent::monkey::patch_all();
    let (a, b) = UnixStream::pair().unwrap();
    let t = Instant::now();
    let reader = gevent::spawn(move || {
        let mut a = a;
        let mut buf = [0u8; 5];
        a.read_exact(&mut buf).unwrap();
        buf
    });
    let writer = gevent::spawn(move || {
        let mut b = b;
        std::thread::sleep(Duration::from_millis(100)); // the reader is parked meanwhile
        b.write_all(b"hello").unwrap();
    });
    assert_eq!(reader.get().unwrap(), *b"hello");
    writer.join();
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn pipe_big_write_and_read_in_one_thread() {
    gevent::monkey::patch_all();
    let (mut r, mut w) = std::io::pipe().unwrap();
    const N: usize = 1 << 20; // far more than a pipe holds (64 KiB): the writer must park
    let writer = gevent::spawn(move || {
        let data = vec![7u8; N];
        w.write_all(&data).unwrap();
    });
    let reader = gevent::spawn(move || {
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        got
    });
    let got = reader.get().unwrap();
    writer.get().unwrap();
    assert_eq!(got.len(), N);
    assert!(got.iter().all(|&b| b == 7));
}

#[test]
fn users_non_blocking_mode_and_msg_dontwait_are_kept() {
    gevent::monkey::patch_all();
    let g = gevent::spawn(|| {
        let (a, _b) = UnixStream::pair().unwrap();
        // MSG_DONTWAIT on a blocking socket: EAGAIN at once.
        let mut buf = [0u8; 4];
        // SAFETY: a valid buffer of its length.
        let n = unsafe {
            libc::recv(
                a.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        let e1 = errno();
        // The user's own non-blocking mode: WouldBlock at once.
        a.set_nonblocking(true).unwrap();
        let e2 = (&a).read(&mut buf).unwrap_err().kind();
        (n, e1, e2)
    });
    let t = Instant::now();
    let (n, e1, e2) = g.get().unwrap();
    assert_eq!((n, e1), (-1, libc::EAGAIN));
    assert_eq!(e2, std::io::ErrorKind::WouldBlock);
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[test]
fn errno_is_kept_across_a_parked_call() {
    gevent::monkey::patch_all();
    let (a, b) = UnixStream::pair().unwrap();
    let w = gevent::spawn(move || {
        gevent::sleep(Duration::from_millis(20));
        (&b).write_all(b"x").unwrap();
    });
    let g = gevent::spawn(move || {
        // SAFETY: this thread's errno slot.
        unsafe { *libc::__errno_location() = 4242 };
        let mut buf = [0u8; 1];
        // SAFETY: a valid buffer of its length.
        let n = unsafe { libc::read(a.as_raw_fd(), buf.as_mut_ptr().cast(), 1) };
        (n, errno())
    });
    assert_eq!(g.get().unwrap(), (1, 4242));
    w.join();
}

#[test]
fn files_and_stdio_are_untouched() {
    gevent::monkey::patch_all();
    let g = gevent::spawn(|| {
        let p = std::env::temp_dir().join(format!("gevent-monkey-{}", std::process::id()));
        std::fs::write(&p, b"file contents").unwrap();
        let s = std::fs::read_to_string(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        // fd 1 is never made cooperative, whatever it is.
        std::io::stdout().write_all(b"").unwrap();
        s
    });
    assert_eq!(g.get().unwrap(), "file contents");
}

#[test]
fn poll_select_epoll_with_timeouts_overlap() {
    gevent::monkey::patch_all();
    let t = Instant::now();
    let poller = gevent::spawn(|| {
        let (a, _b) = UnixStream::pair().unwrap();
        let mut p = [libc::pollfd {
            fd: a.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: a valid pollfd array of length 1.
        unsafe { libc::poll(p.as_mut_ptr(), 1, 200) }
    });
    let selecter = gevent::spawn(|| {
        let (a, _b) = UnixStream::pair().unwrap();
        // SAFETY: fd_set is plain data; FD_ZERO/FD_SET on a valid set with a small fd.
        let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe { libc::FD_SET(a.as_raw_fd(), &mut set) };
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        // SAFETY: valid set and timeval.
        unsafe {
            libc::select(
                a.as_raw_fd() + 1,
                &mut set,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut tv,
            )
        }
    });
    let epoller = gevent::spawn(|| {
        let (a, _b) = UnixStream::pair().unwrap();
        // SAFETY: plain system calls on fds this greenlet owns.
        unsafe {
            let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: 1,
            };
            libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, a.as_raw_fd(), &mut ev);
            let mut out = [libc::epoll_event { events: 0, u64: 0 }; 4];
            let n = libc::epoll_wait(ep, out.as_mut_ptr(), 4, 200);
            libc::close(ep);
            n
        }
    });
    assert_eq!(poller.get().unwrap(), 0);
    assert_eq!(selecter.get().unwrap(), 0);
    assert_eq!(epoller.get().unwrap(), 0);
    let e = t.elapsed();
    // Three 200 ms waits, one after another, would take 600 ms.
    assert!(e >= Duration::from_millis(200), "{e:?}");
    assert!(e < Duration::from_millis(500), "{e:?}");
}

#[test]
fn poll_and_epoll_report_readiness_made_by_another_greenlet() {
    gevent::monkey::patch_all();
    let (a, b) = UnixStream::pair().unwrap();
    let (c, d) = UnixStream::pair().unwrap();
    let fa = a.as_raw_fd();
    let fc = c.as_raw_fd();
    let poller = gevent::spawn(move || {
        let mut p = [libc::pollfd {
            fd: fa,
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: a valid pollfd array of length 1.
        let n = unsafe { libc::poll(p.as_mut_ptr(), 1, -1) };
        (n, p[0].revents & libc::POLLIN != 0)
    });
    let epoller = gevent::spawn(move || {
        // SAFETY: plain system calls on fds that stay open for the test.
        unsafe {
            let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: 9,
            };
            libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fc, &mut ev);
            let mut out = [libc::epoll_event { events: 0, u64: 0 }; 4];
            let n = libc::epoll_wait(ep, out.as_mut_ptr(), 4, -1);
            libc::close(ep);
            (n, out[0].u64)
        }
    });
    let writer = gevent::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        (&b).write_all(b"1").unwrap();
        (&d).write_all(b"2").unwrap();
        gevent::sleep(Duration::from_millis(50));
    });
    assert_eq!(poller.get().unwrap(), (1, true));
    assert_eq!(epoller.get().unwrap(), (1, 9));
    writer.join();
    drop((a, c));
}

#[test]
fn close_wakes_a_parked_reader_with_ebadf() {
    gevent::monkey::patch_all();
    let (a, _b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    std::mem::forget(a); // closed by hand below
    let reader = gevent::spawn(move || {
        let mut buf = [0u8; 8];
        // SAFETY: a valid buffer of its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        (n, errno())
    });
    let closer = gevent::spawn(move || {
        gevent::sleep(Duration::from_millis(30));
        // SAFETY: the fd was forgotten by its owner above; closed once.
        unsafe { libc::close(fd) }
    });
    assert_eq!(closer.get().unwrap(), 0);
    assert_eq!(reader.get().unwrap(), (-1, libc::EBADF));
}

#[test]
fn kill_while_parked_in_read_is_raised_at_the_next_wait() {
    gevent::monkey::patch_all();
    let (a, _b) = UnixStream::pair().unwrap();
    let g = gevent::spawn(move || {
        let mut buf = [0u8; 1];
        let r = (&a).read(&mut buf); // parks; the kill makes it return ECANCELED
        let e = r.unwrap_err().raw_os_error();
        assert_eq!(e, Some(libc::ECANCELED));
        gevent::sleep(Duration::ZERO); // the kill is raised here
        unreachable!("killed");
    });
    gevent::sleep(Duration::from_millis(20));
    g.kill();
    assert!(matches!(g.get(), Err(gevent::GetError::Killed)));
}

#[test]
fn name_lookups_run_on_the_thread_pool() {
    use std::net::ToSocketAddrs;
    gevent::monkey::patch_all();
    let gs: Vec<_> = (0..10)
        .map(|_| {
            gevent::spawn(|| {
                ("localhost", 80)
                    .to_socket_addrs()
                    .unwrap()
                    .any(|a| a.ip().is_loopback())
            })
        })
        .collect();
    for g in &gs {
        assert_eq!(g.get(), Ok(true));
    }
    // A name that does not exist fails as it would without the hook.
    let g = gevent::spawn(|| ("no-such-host.invalid", 80).to_socket_addrs().is_err());
    assert_eq!(g.get(), Ok(true));
}

#[test]
fn connect_timeout_uses_cooperative_poll() {
    gevent::monkey::patch_all();
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let g = gevent::spawn(move || {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
    });
    assert_eq!(g.get(), Ok(true));
}
