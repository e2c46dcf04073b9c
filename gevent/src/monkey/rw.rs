//! The generic I/O hooks: `read`, `readv`, `write`, `writev`, `__read_chk` — cooperative only on
//! sockets and pipes (FIFOs) in blocking mode, above fd 2.
//!
//! `read` and `write` inside a greenlet first try the fd as a socket (`recv`/`send` with
//! `MSG_DONTWAIT`, which is what they are on a socket): on a socket that is the call itself, with no
//! `fstat`; anything else answers `ENOTSOCK` (errno is then restored) and goes on as below.
//!
//! The fd's kind comes from `fstat` on each call inside a greenlet (one system call; not cached,
//! because a cache keyed by fd number goes stale whenever an fd is closed or replaced behind the
//! hooks' back — raw `close` system calls, `close_range`, another thread). Outside greenlets there is
//! no `fstat`: the call goes straight to the kernel.
//!
//! - Sockets: as `recv`/`send` (see `net`): try with `MSG_DONTWAIT`, park on `EAGAIN`, honour
//!   `SO_RCVTIMEO`/`SO_SNDTIMEO`; a blocking stream write writes everything.
//! - Pipes: their `O_NONBLOCK` belongs to the open file description (shared with other processes),
//!   so it is never touched: the hook waits for readiness with a zero-timeout `poll`, then makes the
//!   call, which then does not block. A write is split into pieces of at most `PIPE_BUF` bytes, each
//!   made only when the pipe reports room for it (Linux reports a pipe writable when a whole page,
//!   `PIPE_BUF`, is free), so it never blocks the thread; writes of at most `PIPE_BUF` bytes stay
//!   atomic.

use libc::{c_int, c_void, iovec, size_t, ssize_t};

use super::fd::{fail, wait_fd};
use super::intr::Intr;
use super::net::{advance_iov, check_len, iov_len, poll0, recv_loop, send_loop};
use super::{active, errno, is_blocking, set_errno, Module};
use crate::io::Interest;

/// Takes every hook's address so the linker keeps them (see the module docs).
pub(super) fn link() {
    let hooks: [usize; 5] = [
        read as *const () as usize,
        readv as *const () as usize,
        write as *const () as usize,
        writev as *const () as usize,
        __read_chk as *const () as usize,
    ];
    std::hint::black_box(hooks);
}

#[derive(PartialEq, Eq)]
enum Kind {
    Socket,
    Pipe,
    Other,
}

/// What the hook should do with `fd`: `None` when the call must go straight to the kernel.
fn kind(fd: c_int) -> Option<Kind> {
    if fd <= 2 || !active(Module::Io) {
        return None;
    }
    // SAFETY: stat is plain data; all-zero is a valid value to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let saved = errno();
    // SAFETY: `st` is a valid out-pointer of the right type.
    if unsafe { libc::syscall(libc::SYS_fstat, fd, &mut st as *mut libc::stat) } != 0 {
        set_errno(saved);
        return None; // a bad fd: let the call report it
    }
    Some(match st.st_mode & libc::S_IFMT {
        libc::S_IFSOCK => Kind::Socket,
        libc::S_IFIFO => Kind::Pipe,
        _ => Kind::Other,
    })
}

const PIPE_BUF: usize = libc::PIPE_BUF;

/// Waits for a blocking pipe's readiness before `op` (which then does not block). `op(done)` does
/// the next piece from `done` on; `len` the total (0: one call, whatever it returns).
fn pipe_loop(
    fd: c_int,
    interest: Interest,
    len: usize,
    op: &mut dyn FnMut(usize) -> ssize_t,
) -> ssize_t {
    if !is_blocking(fd) {
        return op(0);
    }
    let events = match interest {
        Interest::Read => libc::POLLIN,
        Interest::Write => libc::POLLOUT,
    };
    let saved = errno();
    let mut done = 0usize;
    loop {
        if poll0(fd, events) {
            let r = op(done);
            if interest == Interest::Read || r < 0 {
                if r < 0 && done > 0 {
                    set_errno(saved);
                    return done as ssize_t;
                }
                return r;
            }
            done += r as usize;
            if done >= len {
                set_errno(saved);
                return done as ssize_t;
            }
            continue;
        }
        if let Err(f) = wait_fd(fd, interest, None, Intr::NoRestart) {
            if done > 0 {
                set_errno(saved);
                return done as ssize_t;
            }
            return fail(f);
        }
    }
}

/// Interposed `read(2)`.
///
/// # Safety
/// The C contract: `buf` is valid for `len` bytes of writes.
#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, len: size_t) -> ssize_t {
    // SAFETY: the caller's arguments, forwarded unchanged.
    let raw = || unsafe { libc::syscall(libc::SYS_read, fd, buf, len) as ssize_t };
    if fd <= 2 || !active(Module::Io) {
        return raw();
    }
    let saved = errno();
    let r = recv_loop(fd, 0, len, &mut |_, flags| {
        // SAFETY: the caller's buffer; on a socket read(2) is recv(2) without flags.
        unsafe { libc::syscall(libc::SYS_recvfrom, fd, buf, len, flags, 0usize, 0usize) as ssize_t }
    });
    if r >= 0 || errno() != libc::ENOTSOCK {
        return r;
    }
    set_errno(saved);
    match kind(fd) {
        Some(Kind::Pipe) => pipe_loop(fd, Interest::Read, 0, &mut |_| raw()),
        _ => raw(),
    }
}

/// Interposed `write(2)`.
///
/// # Safety
/// The C contract: `buf` is valid for `len` bytes of reads.
#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, len: size_t) -> ssize_t {
    let raw_at = |off: usize, n: usize| {
        // SAFETY: `off + n <= len`: a piece of the caller's buffer.
        unsafe { libc::syscall(libc::SYS_write, fd, buf.cast::<u8>().add(off), n) as ssize_t }
    };
    if fd <= 2 || !active(Module::Io) {
        return raw_at(0, len);
    }
    let saved = errno();
    let r = send_loop(fd, 0, len, &mut |off, flags| {
        // SAFETY: the caller's buffer from `off <= len` on; on a socket write(2) is send(2).
        unsafe {
            libc::syscall(
                libc::SYS_sendto,
                fd,
                buf.cast::<u8>().add(off),
                len - off,
                flags,
                0usize,
                0usize,
            ) as ssize_t
        }
    });
    if r >= 0 || errno() != libc::ENOTSOCK {
        return r;
    }
    set_errno(saved);
    match kind(fd) {
        Some(Kind::Pipe) if len > 0 => pipe_loop(fd, Interest::Write, len, &mut |off| {
            raw_at(off, (len - off).min(PIPE_BUF))
        }),
        _ => raw_at(0, len),
    }
}

/// Interposed `readv(2)`.
///
/// # Safety
/// The C contract: `iov` points to `iovcnt` valid iovecs of writable buffers.
#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    // SAFETY: the caller's arguments, forwarded unchanged.
    let raw = || unsafe { libc::syscall(libc::SYS_readv, fd, iov, iovcnt) as ssize_t };
    match kind(fd) {
        Some(Kind::Socket) if iovcnt >= 0 => recv_loop(fd, 0, 0, &mut |_, flags| {
            // SAFETY: msghdr is plain data; all-zero is a valid empty message.
            let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
            m.msg_iov = iov.cast_mut();
            m.msg_iovlen = iovcnt as _;
            // SAFETY: the caller's iovecs; on a socket readv(2) is recvmsg(2) without flags.
            unsafe {
                libc::syscall(libc::SYS_recvmsg, fd, &mut m as *mut libc::msghdr, flags) as ssize_t
            }
        }),
        Some(Kind::Pipe) => pipe_loop(fd, Interest::Read, 0, &mut |_| raw()),
        _ => raw(),
    }
}

/// Interposed `writev(2)`.
///
/// # Safety
/// The C contract: `iov` points to `iovcnt` valid iovecs of readable buffers.
#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    // SAFETY: the caller's arguments, forwarded unchanged.
    let raw = || unsafe { libc::syscall(libc::SYS_writev, fd, iov, iovcnt) as ssize_t };
    let k = kind(fd);
    if iovcnt <= 0 || iov.is_null() || !matches!(k, Some(Kind::Socket) | Some(Kind::Pipe)) {
        return raw();
    }
    // SAFETY: `iov` points to `iovcnt` iovecs per the C contract.
    let v = unsafe { std::slice::from_raw_parts(iov, iovcnt as usize) };
    let len = iov_len(v);
    let rawv = |rest: &[iovec]| {
        // SAFETY: iovecs inside the caller's buffers.
        unsafe { libc::syscall(libc::SYS_writev, fd, rest.as_ptr(), rest.len()) as ssize_t }
    };
    if k == Some(Kind::Socket) {
        send_loop(fd, 0, len, &mut |off, flags| {
            let mut rest = advance_iov(v, off);
            // SAFETY: msghdr is plain data; all-zero is a valid empty message.
            let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
            m.msg_iov = rest.as_mut_ptr();
            m.msg_iovlen = rest.len() as _;
            // SAFETY: the caller's remaining iovecs; on a socket writev(2) is sendmsg(2).
            unsafe {
                libc::syscall(libc::SYS_sendmsg, fd, &m as *const libc::msghdr, flags) as ssize_t
            }
        })
    } else if len == 0 {
        raw()
    } else {
        pipe_loop(fd, Interest::Write, len, &mut |off| {
            // The next piece of at most PIPE_BUF bytes.
            let mut rest = advance_iov(v, off);
            let mut room = PIPE_BUF;
            let mut n = 0;
            while n < rest.len() && room > 0 {
                let take = rest[n].iov_len.min(room);
                rest[n].iov_len = take;
                room -= take;
                n += 1;
            }
            rawv(&rest[..n])
        })
    }
}

/// Interposed `__read_chk` (fortified `read`).
///
/// # Safety
/// As [`read`]; `buflen` is the buffer's real size.
#[no_mangle]
pub unsafe extern "C" fn __read_chk(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    buflen: size_t,
) -> ssize_t {
    check_len(len, buflen);
    // SAFETY: as read; the length was checked against the buffer.
    unsafe { read(fd, buf, len) }
}
