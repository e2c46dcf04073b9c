//! The socket hooks: `recv`, `recvfrom`, `recvmsg`, `send`, `sendto`, `sendmsg`, `accept`,
//! `accept4`, `connect` (what `std::net` calls), and the `_chk` variants fortified C code calls.
//!
//! Each tries the operation without blocking first (`MSG_DONTWAIT`, or a readiness check for
//! `accept`), and parks the greenlet on the fd's readiness only when it would block and the socket
//! is in blocking mode.

use std::time::{Duration, Instant};

use libc::{c_int, c_void, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};

use super::fd::{fail, wait_fd, Failed};
use super::intr::Intr;

/// Which signals interrupt a socket call parked until `deadline`: with a timeout set on the socket
/// (`SO_RCVTIMEO`/`SO_SNDTIMEO`) every handled one, else only handlers without `SA_RESTART`, as
/// in the kernel (signal(7)).
fn sock_intr(deadline: Option<Instant>) -> Intr {
    if deadline.is_some() {
        Intr::Any
    } else {
        Intr::NoRestart
    }
}
use super::{active, errno, is_blocking, set_errno, would_block, Module};
use crate::io::Interest;

/// Takes every hook's address so the linker keeps them (see the module docs).
pub(super) fn link() {
    let hooks: [usize; 11] = [
        recv as *const () as usize,
        recvfrom as *const () as usize,
        recvmsg as *const () as usize,
        send as *const () as usize,
        sendto as *const () as usize,
        sendmsg as *const () as usize,
        accept as *const () as usize,
        accept4 as *const () as usize,
        connect as *const () as usize,
        __recv_chk as *const () as usize,
        __recvfrom_chk as *const () as usize,
    ];
    std::hint::black_box(hooks);
}

extern "C" {
    /// glibc's "buffer overflow detected" abort, what the real `_chk` functions call.
    fn __chk_fail() -> !;
}

/// Aborts as glibc's fortified functions do when `len` exceeds the buffer's known size.
pub(super) fn check_len(len: size_t, buflen: size_t) {
    if len > buflen {
        // SAFETY: __chk_fail takes no arguments and never returns (it aborts the process).
        unsafe { __chk_fail() }
    }
}

/// The socket's `SO_RCVTIMEO` / `SO_SNDTIMEO`, if set.
pub(super) fn sock_timeout(fd: c_int, opt: c_int) -> Option<Duration> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    if !sol_socket_opt(fd, opt, &mut tv) || (tv.tv_sec == 0 && tv.tv_usec == 0) {
        return None;
    }
    Some(Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000))
}

/// Whether `fd` is a `SOCK_STREAM` socket (`SO_TYPE`; errno untouched on success).
fn is_stream(fd: c_int) -> bool {
    let mut ty: c_int = 0;
    sol_socket_opt(fd, libc::SO_TYPE, &mut ty) && ty == libc::SOCK_STREAM
}

/// Reads the `SOL_SOCKET` option `opt` of `fd` into `out` (a plain C value of the option's type:
/// `c_int`, `timeval`), straight to the kernel; whether that succeeded (errno untouched if so).
fn sol_socket_opt<T: Copy>(fd: c_int, opt: c_int, out: &mut T) -> bool {
    let mut len = std::mem::size_of::<T>() as socklen_t;
    // SAFETY: `out` and `len` are valid out-pointers; `len` is `out`'s size, so the kernel writes
    // inside it; `T` is a plain C value (any bytes the kernel writes are valid for it).
    let r = unsafe {
        libc::syscall(
            libc::SYS_getsockopt,
            fd,
            libc::SOL_SOCKET,
            opt,
            out as *mut T,
            &mut len as *mut socklen_t,
        )
    };
    r == 0
}

/// Whether `fd` has `events` pending now (a zero-timeout `ppoll`, straight to the kernel).
pub(super) fn poll0(fd: c_int, events: libc::c_short) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `pfd` and `ts` are valid for the call; nfds = 1; no signal mask.
    let n = unsafe {
        libc::syscall(
            libc::SYS_ppoll,
            &mut pfd as *mut _,
            1,
            &ts as *const _,
            0usize,
            8usize,
        )
    };
    n != 0
}

/// A receive on a socket: `op(offset, flags)` receives into the caller's buffer from `offset` on.
/// Without `MSG_DONTWAIT` in `flags`, inside a greenlet, on a blocking socket: parks instead of
/// blocking, until data, the `SO_RCVTIMEO` timeout (`EAGAIN`), or an error. `MSG_WAITALL` on a
/// stream socket (only: not on datagram or seqpacket sockets, as in the kernel) keeps receiving until `len` bytes, the end of the stream, or an error (as the kernel does).
pub(super) fn recv_like(
    fd: c_int,
    flags: c_int,
    len: usize,
    mut op: impl FnMut(usize, c_int) -> ssize_t,
) -> ssize_t {
    if flags & libc::MSG_DONTWAIT != 0 || !active(Module::Socket) {
        return op(0, flags);
    }
    recv_loop(fd, flags, len, &mut op)
}

/// The loop of [`recv_like`], also used by `read`/`readv` on sockets.
pub(super) fn recv_loop(
    fd: c_int,
    flags: c_int,
    len: usize,
    op: &mut dyn FnMut(usize, c_int) -> ssize_t,
) -> ssize_t {
    let saved = errno();
    let mut deadline: Option<Option<Instant>> = None;
    // Whether `fd` is a stream socket: only there does MSG_WAITALL ask for more than one receive
    // (the kernel ignores it on datagram and seqpacket sockets). Asked once, when it matters.
    let mut stream: Option<bool> = None;
    let mut done = 0usize;
    loop {
        let r = op(done, flags | libc::MSG_DONTWAIT);
        if r > 0
            && flags & libc::MSG_WAITALL != 0
            && done + (r as usize) < len
            && *stream.get_or_insert_with(|| is_stream(fd))
        {
            done += r as usize;
            continue;
        }
        if r >= 0 {
            set_errno(saved);
            return (done + r as usize) as ssize_t;
        }
        if let Some(end) = park_or_end(fd, Interest::Read, &mut deadline, done, saved) {
            return end;
        }
    }
}

/// A send on a socket: `op(offset, flags)` sends the caller's data from `offset` on. Without
/// `MSG_DONTWAIT`, inside a greenlet, on a blocking socket: sends everything (a blocking stream
/// send does), parking while the buffer is full; a timeout (`SO_SNDTIMEO`) or error after some data
/// went returns the count sent, as the kernel does.
pub(super) fn send_like(
    fd: c_int,
    flags: c_int,
    len: usize,
    mut op: impl FnMut(usize, c_int) -> ssize_t,
) -> ssize_t {
    if flags & libc::MSG_DONTWAIT != 0 || !active(Module::Socket) {
        return op(0, flags);
    }
    send_loop(fd, flags, len, &mut op)
}

/// The loop of [`send_like`], also used by `write`/`writev` on sockets.
pub(super) fn send_loop(
    fd: c_int,
    flags: c_int,
    len: usize,
    op: &mut dyn FnMut(usize, c_int) -> ssize_t,
) -> ssize_t {
    let saved = errno();
    let mut deadline: Option<Option<Instant>> = None;
    let mut done = 0usize;
    loop {
        let r = op(done, flags | libc::MSG_DONTWAIT);
        if r >= 0 {
            done += r as usize;
            if done >= len {
                set_errno(saved);
                return done as ssize_t;
            }
            continue; // a partial send: the next try tells whether to park
        }
        if let Some(end) = park_or_end(fd, Interest::Write, &mut deadline, done, saved) {
            return end;
        }
    }
}

/// After a receive or send on `fd` failed (errno set) with `done` bytes already moved: parks until
/// `fd` is ready for `interest` and returns `None` (try again), or returns what the call returns
/// instead: `done` with errno restored to `saved` if some data moved, else -1 with the error (not a
/// would-block, a non-blocking socket, the socket's `SO_RCVTIMEO`/`SO_SNDTIMEO` timeout, a signal
/// or a kill). `deadline` is that timeout's, read from the socket at the first park.
fn park_or_end(
    fd: c_int,
    interest: Interest,
    deadline: &mut Option<Option<Instant>>,
    done: usize,
    saved: c_int,
) -> Option<ssize_t> {
    let e = errno();
    let r = if !would_block(e) || !is_blocking(fd) {
        set_errno(e);
        -1
    } else {
        let opt = match interest {
            Interest::Read => libc::SO_RCVTIMEO,
            Interest::Write => libc::SO_SNDTIMEO,
        };
        let d = *deadline.get_or_insert_with(|| sock_timeout(fd, opt).map(|t| Instant::now() + t));
        match wait_fd(fd, interest, d, sock_intr(d)) {
            Ok(()) => return None,
            Err(f) => fail(f),
        }
    };
    if done > 0 {
        set_errno(saved);
        return Some(done as ssize_t);
    }
    Some(r)
}

/// The iovecs of `iov` after skipping `skip` bytes.
pub(super) fn advance_iov(iov: &[iovec], mut skip: usize) -> Vec<iovec> {
    let mut out = Vec::with_capacity(iov.len());
    for v in iov {
        if skip >= v.iov_len {
            skip -= v.iov_len;
            continue;
        }
        out.push(iovec {
            // SAFETY: `skip < iov_len`, so the result stays inside the caller's buffer.
            iov_base: unsafe { v.iov_base.cast::<u8>().add(skip) }.cast(),
            iov_len: v.iov_len - skip,
        });
        skip = 0;
    }
    out
}

/// The total length of `iov`.
pub(super) fn iov_len(iov: &[iovec]) -> usize {
    iov.iter().map(|v| v.iov_len).sum()
}

/// System call `nr` (`recvfrom` or `sendto`) on `fd` with the caller's buffer `buf` of `len`
/// bytes from `off` on, `flags`, and the address arguments `addr`/`addrlen` (0 for none).
///
/// # Safety
/// `buf` is valid for `len` bytes (of writes for `recvfrom`, reads for `sendto`), `off <= len`;
/// `addr`/`addrlen` are 0 or valid as `nr` requires.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn buf_call(
    nr: libc::c_long,
    fd: c_int,
    buf: *const u8,
    off: usize,
    len: usize,
    flags: c_int,
    addr: usize,
    addrlen: usize,
) -> ssize_t {
    // SAFETY: the caller's contract; `off <= len` keeps the pointer inside the buffer.
    unsafe {
        super::sys6(
            nr,
            fd as usize,
            buf.add(off) as usize,
            len - off,
            flags as usize,
            addr,
            addrlen,
        )
    }
}

/// Interposed `recv(2)`.
///
/// # Safety
/// The C contract: `buf` is valid for `len` bytes of writes.
#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> ssize_t {
    recv_like(fd, flags, len, |off, flags| {
        // SAFETY: the caller's buffer from `off < len` on (off is 0 unless MSG_WAITALL advanced it).
        unsafe { buf_call(libc::SYS_recvfrom, fd, buf.cast(), off, len, flags, 0, 0) }
    })
}

/// Interposed `recvfrom(2)`.
///
/// # Safety
/// The C contract: `buf` is valid for `len` bytes of writes; `addr`/`addrlen` null or valid.
#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    addrlen: *mut socklen_t,
) -> ssize_t {
    recv_like(fd, flags, len, |off, flags| {
        // SAFETY: the caller's arguments (the buffer from `off < len` on).
        unsafe {
            buf_call(
                libc::SYS_recvfrom,
                fd,
                buf.cast(),
                off,
                len,
                flags,
                addr as usize,
                addrlen as usize,
            )
        }
    })
}

/// Interposed `recvmsg(2)` (`MSG_WAITALL` is passed to the kernel but not looped on here).
///
/// # Safety
/// The C contract: `msg` is valid, its buffers writable.
#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    recv_like(fd, flags & !libc::MSG_WAITALL, 0, |_, f| {
        // SAFETY: the caller's arguments, forwarded unchanged (plus MSG_DONTWAIT).
        unsafe {
            libc::syscall(libc::SYS_recvmsg, fd, msg, f | (flags & libc::MSG_WAITALL)) as ssize_t
        }
    })
}

/// Interposed `send(2)`.
///
/// # Safety
/// The C contract: `buf` is valid for `len` bytes of reads.
#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t {
    send_like(fd, flags, len, |off, flags| {
        // SAFETY: the caller's buffer from `off <= len` on.
        unsafe { buf_call(libc::SYS_sendto, fd, buf.cast(), off, len, flags, 0, 0) }
    })
}

/// Interposed `sendto(2)`.
///
/// # Safety
/// The C contract: `buf` valid for `len` bytes of reads, `addr` null or valid for `addrlen` bytes.
#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const sockaddr,
    addrlen: socklen_t,
) -> ssize_t {
    send_like(fd, flags, len, |off, flags| {
        // SAFETY: the caller's arguments (the buffer from `off <= len` on).
        unsafe {
            buf_call(
                libc::SYS_sendto,
                fd,
                buf.cast(),
                off,
                len,
                flags,
                addr as usize,
                addrlen as usize,
            )
        }
    })
}

/// Interposed `sendmsg(2)`.
///
/// # Safety
/// The C contract: `msg` is valid, its iovecs readable.
#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    let raw = |m: *const msghdr, f: c_int| {
        // SAFETY: the caller's message (or a copy with advanced iovecs), forwarded.
        unsafe { libc::syscall(libc::SYS_sendmsg, fd, m, f) as ssize_t }
    };
    if flags & libc::MSG_DONTWAIT != 0 || !active(Module::Socket) || msg.is_null() {
        return raw(msg, flags);
    }
    // SAFETY: non-null and valid per the C contract.
    let m = unsafe { &*msg };
    let iov: &[iovec] = if m.msg_iov.is_null() || m.msg_iovlen == 0 {
        &[]
    } else {
        // SAFETY: msg_iov points to msg_iovlen iovecs per the C contract.
        unsafe { std::slice::from_raw_parts(m.msg_iov, m.msg_iovlen) }
    };
    let len = iov_len(iov);
    send_loop(fd, flags, len, &mut |off, f| {
        if off == 0 {
            return raw(msg, f);
        }
        // The rest of a partial stream send: the remaining bytes, no ancillary data (already sent).
        let mut rest = advance_iov(iov, off);
        // SAFETY: msghdr is plain data; all-zero is a valid empty message.
        let mut m2: msghdr = unsafe { std::mem::zeroed() };
        m2.msg_iov = rest.as_mut_ptr();
        m2.msg_iovlen = rest.len() as _;
        raw(&m2, f)
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
    if !active(Module::Socket) || !is_blocking(fd) {
        return raw();
    }
    let deadline = sock_timeout(fd, libc::SO_RCVTIMEO).map(|t| Instant::now() + t);
    loop {
        // Accept only when a connection is pending, so the blocking call returns at once. (Another
        // process sharing the listener could take it first; then this call blocks, as it would have.)
        if poll0(fd, libc::POLLIN) {
            return raw();
        }
        if let Err(f) = wait_fd(fd, Interest::Read, deadline, sock_intr(deadline)) {
            return fail(f) as c_int;
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
/// and parks until it completes. At an `SO_SNDTIMEO` timeout it fails with `EINPROGRESS` and the
/// connection goes on in the background, as the kernel's blocking connect does.
///
/// # Safety
/// The C contract: `addr` is valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: the caller's arguments, forwarded unchanged.
    let raw = || unsafe { libc::syscall(libc::SYS_connect, fd, addr, len) as c_int };
    if !active(Module::Socket) || !is_blocking(fd) {
        return raw();
    }
    let saved = errno();
    // SAFETY: F_GETFL/F_SETFL take no pointers.
    let fl = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFL) } as c_int;
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_SETFL, fl | libc::O_NONBLOCK) };
    let r = raw();
    let e = errno();
    let (result, e) = if r == 0 || e != libc::EINPROGRESS {
        (r, e)
    } else {
        let deadline = sock_timeout(fd, libc::SO_SNDTIMEO).map(|t| Instant::now() + t);
        match wait_fd(fd, Interest::Write, deadline, sock_intr(deadline)) {
            Ok(()) => {
                let mut err: c_int = 0;
                sol_socket_opt(fd, libc::SO_ERROR, &mut err);
                if err == 0 {
                    (0, saved)
                } else {
                    (-1, err)
                }
            }
            Err(Failed::TimedOut) => (-1, libc::EINPROGRESS),
            Err(f) => (-1, f.errno()),
        }
    };
    // SAFETY: restores the caller's file status flags.
    unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_SETFL, fl) };
    set_errno(e);
    result
}

/// Interposed `__recv_chk` (fortified `recv`).
///
/// # Safety
/// As [`recv`]; `buflen` is the buffer's real size.
#[no_mangle]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    check_len(len, buflen);
    // SAFETY: as recv; the length was checked against the buffer.
    unsafe { recv(fd, buf, len, flags) }
}

/// Interposed `__recvfrom_chk` (fortified `recvfrom`).
///
/// # Safety
/// As [`recvfrom`]; `buflen` is the buffer's real size.
#[no_mangle]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    addrlen: *mut socklen_t,
) -> ssize_t {
    check_len(len, buflen);
    // SAFETY: as recvfrom; the length was checked against the buffer.
    unsafe { recvfrom(fd, buf, len, flags, addr, addrlen) }
}
