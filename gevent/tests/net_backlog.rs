//! The listen backlog is what the docs say (1024 by default, capped by `net.core.somaxconn`) and can
//! be chosen on the listeners and on `StreamServer`. For TCP the kernel's own value is read back:
//! on Linux, `getsockopt(TCP_INFO)` on a listening socket reports its `sk_max_ack_backlog` in
//! `tcpi_sacked`. For Unix sockets the queue is filled: non-blocking connects succeed until it holds
//! backlog + 1 connections, then fail with `EAGAIN`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use gevent::net::{TcpListener, UnixListener, DEFAULT_BACKLOG};
use gevent::server::StreamServer;

/// The backlog the kernel holds for the listening TCP socket `fd`.
fn kernel_backlog(fd: RawFd) -> u32 {
    // SAFETY: tcp_info is plain old data; all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` and `len` are valid for writes of `len` bytes for the whole call.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
    assert_eq!(
        info.tcpi_state, 10,
        "not a listening socket (TCP_LISTEN is 10)"
    );
    info.tcpi_sacked
}

fn somaxconn() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096)
}

#[test]
fn tcp_bind_listens_with_the_documented_backlog() {
    assert_eq!(DEFAULT_BACKLOG, 1024);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    assert_eq!(
        kernel_backlog(l.as_raw_fd()),
        DEFAULT_BACKLOG.min(somaxconn())
    );
}

#[test]
fn tcp_backlog_is_configurable_on_the_listener() {
    let l = TcpListener::bind_with_backlog("127.0.0.1:0", 10).unwrap();
    assert_eq!(kernel_backlog(l.as_raw_fd()), 10);
    l.listen(77).unwrap();
    assert_eq!(kernel_backlog(l.as_raw_fd()), 77);
    // Beyond what the kernel allows, it caps (and u32::MAX does not wrap to a negative backlog).
    l.listen(u32::MAX).unwrap();
    assert_eq!(kernel_backlog(l.as_raw_fd()), somaxconn());
    l.close();
    let e = l.listen(5).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotConnected);
}

#[test]
fn stream_server_backlog_reaches_the_kernel() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    // A second fd on the same socket, to read the backlog after the server took the listener.
    // SAFETY: dup(2) of an fd this test owns; the result is owned by nobody else.
    let dup = unsafe { OwnedFd::from_raw_fd(libc::dup(l.as_raw_fd())) };
    let server = StreamServer::new(l, |_c, _p| {})
        .unwrap()
        .backlog(300)
        .unwrap();
    assert_eq!(kernel_backlog(dup.as_raw_fd()), 300);
    server.start();
    let c = gevent::net::TcpStream::connect(server.local_addr()).unwrap();
    drop(c);
    server.stop(Duration::from_secs(1));
    let e = server.clone().backlog(10).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotConnected);
}

/// Non-blocking connects to `path` (nobody accepts) until one fails with `EAGAIN`; returns how
/// many succeeded. At most `limit` tries.
fn fill_unix_queue(path: &std::path::Path, limit: usize) -> (usize, Vec<OwnedFd>) {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: sockaddr_un is plain old data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    assert!(bytes.len() < addr.sun_path.len());
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let mut fds = Vec::new();
    for _ in 0..limit {
        // SAFETY: socket(2) takes no memory.
        let fd = unsafe {
            libc::socket(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: `fd` was just made and is owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: `addr` is a valid sockaddr_un for the whole call, its size passed with it.
        let r = unsafe {
            libc::connect(
                fd,
                (&addr as *const libc::sockaddr_un).cast(),
                std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            )
        };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            assert_eq!(e.raw_os_error(), Some(libc::EAGAIN), "connect: {e}");
            return (fds.len(), fds);
        }
        fds.push(owned);
    }
    (fds.len(), fds)
}

fn socket_path(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("gevent-backlog-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn unix_backlog_is_configurable() {
    let path = socket_path("small");
    let l = UnixListener::bind_with_backlog(&path, 4).unwrap();
    // Linux queues backlog + 1 connections before a non-blocking connect says EAGAIN.
    let (n, mut held) = fill_unix_queue(&path, 100);
    assert_eq!(n, 5);
    l.listen(9).unwrap();
    let (more, fds) = fill_unix_queue(&path, 100);
    held.extend(fds);
    assert_eq!(n + more, 10);
    drop(held);
    drop(l);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn unix_bind_listens_with_the_documented_backlog() {
    // 1,026 sockets are needed at once: raise the soft fd limit if the hard one allows it.
    // SAFETY: rlimit is plain old data; getrlimit/setrlimit get valid pointers.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut r), 0);
        if r.rlim_cur < 1200 {
            if r.rlim_max < 1200 {
                eprintln!("skipped: RLIMIT_NOFILE hard limit {} < 1200", r.rlim_max);
                return;
            }
            r.rlim_cur = 1200;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &r), 0);
        }
    }
    let path = socket_path("default");
    let l = UnixListener::bind(&path).unwrap();
    let (n, held) = fill_unix_queue(&path, 1100);
    assert_eq!(n as u32, DEFAULT_BACKLOG.min(somaxconn()) + 1);
    drop(held);
    drop(l);
    std::fs::remove_file(&path).unwrap();
}
