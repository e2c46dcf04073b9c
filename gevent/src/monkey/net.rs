//! The socket hooks: `recv`, `send`, `accept`, `accept4`, `connect` — what `std::net` calls.
//!
//! Each tries the operation without blocking first (`MSG_DONTWAIT`, or a readiness check for
//! `accept`), and parks the greenlet on the fd's readiness only when it would block.

use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use libc::{c_int, c_void, size_t, sockaddr, socklen_t, ssize_t};

use super::{cooperative, errno, park, set_errno, SOCKET};
use crate::io::Interest;

/// Takes every hook's address so the linker keeps them (see the module docs).
pub(super) fn link() {
    let hooks: [usize; 5] = [
        recv as *const () as usize,
        send as *const () as usize,
        accept as *const () as usize,
        accept4 as *const () as usize,
        connect as *const () as usize,
    ];
    std::hint::black_box(hooks);
}

/// Whether a hook should park on `fd`: patched, in a greenlet, and `fd` is in blocking mode.
fn active(fd: c_int) -> bool {
    if !SOCKET.load(Ordering::Relaxed) || !cooperative() {
        return false;
    }
    // SAFETY: F_GETFL takes no pointer; a bad fd just returns -1.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    fl >= 0 && fl & libc::O_NONBLOCK == 0
}

/// The socket's `SO_RCVTIMEO` / `SO_SNDTIMEO`, if set.
fn sock_timeout(fd: c_int, opt: c_int) -> Option<Duration> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as socklen_t;
    // SAFETY: `tv` and `len` are valid out-pointers of the right size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    if r != 0 || (tv.tv_sec == 0 && tv.tv_usec == 0) {
        return None;
    }
    Some(Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000))
}

fn would_block(e: i32) -> bool {
    e == libc::EAGAIN || e == libc::EWOULDBLOCK
}

/// Parks until `fd` is ready for `interest` or `deadline`. On failure sets errno and returns false:
/// `EAGAIN` at the deadline (what the kernel reports for SO_RCVTIMEO), `ECANCELED` on kill/Timeout.
fn wait(fd: c_int, interest: Interest, deadline: Option<Instant>) -> bool {
    let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    if timeout.is_some_and(|t| t.is_zero()) {
        set_errno(libc::EAGAIN);
        return false;
    }
    let r = park(|| match interest {
        Interest::Read => crate::io::wait_read(fd, timeout),
        Interest::Write => crate::io::wait_write(fd, timeout),
    });
    match r {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            set_errno(match e.kind() {
                io::ErrorKind::TimedOut => libc::EAGAIN,
                _ => e.raw_os_error().unwrap_or(libc::EBADF),
            });
            false
        }
        Err(()) => {
            set_errno(libc::ECANCELED);
            false
        }
    }
}

/// The loop shared by recv/send: try without blocking, park on `WouldBlock`.
fn retry(
    fd: c_int,
    interest: Interest,
    timeout_opt: c_int,
    mut op: impl FnMut() -> ssize_t,
) -> ssize_t {
    let mut deadline: Option<Option<Instant>> = None;
    loop {
        let r = op();
        if r >= 0 || !would_block(errno()) {
            return r;
        }
        let d = *deadline
            .get_or_insert_with(|| sock_timeout(fd, timeout_opt).map(|t| Instant::now() + t));
        if !wait(fd, interest, d) {
            return -1;
        }
    }
}

/// Interposed `recv(2)`.
///
/// # Safety
/// The C contract: `buf` is valid for `len` bytes of writes.
#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> ssize_t {
    // SAFETY: the caller's arguments, forwarded unchanged (plus MSG_DONTWAIT).
    let raw = |flags: c_int| unsafe {
        libc::syscall(libc::SYS_recvfrom, fd, buf, len, flags, 0usize, 0usize) as ssize_t
    };
    if flags & libc::MSG_DONTWAIT != 0 || !active(fd) {
        return raw(flags);
    }
    retry(fd, Interest::Read, libc::SO_RCVTIMEO, || {
        raw(flags | libc::MSG_DONTWAIT)
    })
}

/// Interposed `send(2)`.
///
/// # Safety
/// The C contract: `buf` is valid for `len` bytes of reads.
#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t {
    // SAFETY: the caller's arguments, forwarded unchanged (plus MSG_DONTWAIT).
    let raw = |flags: c_int| unsafe {
        libc::syscall(libc::SYS_sendto, fd, buf, len, flags, 0usize, 0usize) as ssize_t
    };
    if flags & libc::MSG_DONTWAIT != 0 || !active(fd) {
        return raw(flags);
    }
    retry(fd, Interest::Write, libc::SO_SNDTIMEO, || {
        raw(flags | libc::MSG_DONTWAIT)
    })
}

/// Interposed `accept4(2)`.
///
/// # Safety
/// The C contract: `addr`/`len` are null or valid as `accept4` requires.
#[no_mangle]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    // SAFETY: the caller's arguments, forwarded unchanged.
    let raw = || unsafe { libc::syscall(libc::SYS_accept4, fd, addr, len, flags) as c_int };
    if !active(fd) {
        return raw();
    }
    let deadline = sock_timeout(fd, libc::SO_RCVTIMEO).map(|t| Instant::now() + t);
    loop {
        // Accept only when a connection is pending, so the blocking call returns at once. (Another
        // process sharing the listener could take it first; then this call blocks, as it would have.)
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is valid for the call; nfds = 1; timeout 0.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        if n != 0 {
            return raw();
        }
        if !wait(fd, Interest::Read, deadline) {
            return -1;
        }
    }
}

/// Interposed `accept(2)`.
///
/// # Safety
/// As [`accept4`].
#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: same contract as accept4 with no flags.
    unsafe { accept4(fd, addr, len, 0) }
}

/// Interposed `connect(2)`: on a blocking socket in a greenlet, starts the connection non-blocking
/// and parks until it completes (or `SO_SNDTIMEO` passes, as the kernel's blocking connect would).
///
/// # Safety
/// The C contract: `addr` is valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: the caller's arguments, forwarded unchanged.
    let raw = || unsafe { libc::syscall(libc::SYS_connect, fd, addr, len) as c_int };
    if !active(fd) {
        return raw();
    }
    // SAFETY: F_GETFL/F_SETFL take no pointers.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) };
    let r = raw();
    let e = errno();
    let result = if r == 0 || e != libc::EINPROGRESS {
        r
    } else {
        let deadline = sock_timeout(fd, libc::SO_SNDTIMEO).map(|t| Instant::now() + t);
        if wait(fd, Interest::Write, deadline) {
            let mut err: c_int = 0;
            let mut elen = std::mem::size_of::<c_int>() as socklen_t;
            // SAFETY: `err`/`elen` are valid out-pointers of the right size.
            unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&mut err as *mut c_int).cast(),
                    &mut elen,
                )
            };
            if err == 0 {
                0
            } else {
                set_errno(err);
                -1
            }
        } else {
            if errno() == libc::EAGAIN {
                set_errno(libc::ETIMEDOUT);
            }
            -1
        }
    };
    let e = errno();
    // SAFETY: restores the caller's file status flags.
    unsafe { libc::fcntl(fd, libc::F_SETFL, fl) };
    set_errno(e);
    result
}
