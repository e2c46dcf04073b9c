//! Test-only: a small C library (`c/blocking.c`) that blocks in `recv`, `read` and `poll` — built
//! with the `cc` crate, fortified — for `gevent::monkey`'s tests: C code nobody wrote for greenlets,
//! made cooperative by interposition.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, missing_docs)]

use std::os::fd::RawFd;

extern "C" {
    fn c_blocking_recv(fd: libc::c_int, out: *mut u8, cap: libc::c_long) -> libc::c_long;
    fn c_blocking_read(fd: libc::c_int, out: *mut u8, cap: libc::c_long) -> libc::c_long;
    fn c_blocking_poll(
        fds: *const libc::c_int,
        n: libc::c_int,
        timeout_ms: libc::c_int,
    ) -> libc::c_int;
}

/// The C library's `recv(fd, ...)` into `out`: the byte count, or -1 (errno set).
pub fn recv(fd: RawFd, out: &mut [u8]) -> isize {
    // SAFETY: `out` is valid for `out.len()` bytes of writes; the C side writes at most that.
    unsafe { c_blocking_recv(fd, out.as_mut_ptr(), out.len() as libc::c_long) as isize }
}

/// The C library's `read(fd, ...)` into `out`: the byte count, or -1 (errno set).
pub fn read(fd: RawFd, out: &mut [u8]) -> isize {
    // SAFETY: as in `recv`.
    unsafe { c_blocking_read(fd, out.as_mut_ptr(), out.len() as libc::c_long) as isize }
}

/// The C library's `poll` for readability of up to 8 `fds`: poll's result.
pub fn poll(fds: &[RawFd], timeout_ms: i32) -> i32 {
    // SAFETY: `fds` is valid for its length; the C side reads at most 8 of them.
    unsafe { c_blocking_poll(fds.as_ptr(), fds.len() as libc::c_int, timeout_ms) }
}
