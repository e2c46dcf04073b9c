//! `monkey::patch_all()`: make ordinary blocking Rust and C code cooperative (cargo feature `monkey`).
//!
//! gevent patches Python's modules; here the libc functions that std and C libraries call are
//! interposed: this crate defines `clock_nanosleep`, `nanosleep`, `usleep`, `sleep`, `recv`, `send`,
//! `accept`, `accept4` and `connect` with C linkage, so the executable's calls bind to them. Each
//! hook does the plain system call unless **all** of these hold, in which case it parks the calling
//! greenlet on the hub instead of blocking the thread:
//! - [`patch_all`] (or the matching finer switch) was called;
//! - this thread has a hub, and the caller is not the hub itself (hub callbacks never yield);
//! - the call would block: a socket in blocking mode without `MSG_DONTWAIT`, or a relative sleep.
//!
//! Outside greenlets, on other threads, on non-blocking sockets and on anything that is not a
//! socket, behaviour is exactly the system call's. `SO_RCVTIMEO` / `SO_SNDTIMEO` are honoured
//! (`EAGAIN` at the timeout, as the kernel would), and errno is preserved.
//!
//! # Linking
//! [`patch_all`] takes the address of every hook, so calling it is what links them: a binary that
//! never calls it gets none (and the plain libc functions).
//!
//! # Cancel safety
//! A kill or [`Timeout`](crate::Timeout) cannot unwind through a C caller. When one lands while a
//! greenlet is parked inside a hook, the hook returns at once — sleeps as if completed, socket calls
//! with `ECANCELED` — and the kill or timeout is raised at the greenlet's next gevent wait.

mod net;
mod time;

use std::sync::atomic::{AtomicBool, Ordering};

static TIME: AtomicBool = AtomicBool::new(false);
static SOCKET: AtomicBool = AtomicBool::new(false);

/// Patches everything this module can: [`patch_time`] and [`patch_socket`].
///
/// # Examples
/// ```
/// use std::time::{Duration, Instant};
/// gevent::monkey::patch_all();
/// let t = Instant::now();
/// let a = gevent::spawn(|| std::thread::sleep(Duration::from_millis(100)));
/// let b = gevent::spawn(|| std::thread::sleep(Duration::from_millis(100)));
/// gevent::joinall([&a, &b]);
/// assert!(t.elapsed() < Duration::from_millis(190)); // the two std sleeps overlapped
/// ```
pub fn patch_all() {
    patch_time();
    patch_socket();
}

/// Makes `std::thread::sleep`, `nanosleep`, `clock_nanosleep`, `usleep` and `sleep` cooperative.
pub fn patch_time() {
    time::link();
    TIME.store(true, Ordering::SeqCst);
}

/// Makes blocking `recv`, `send`, `accept`, `accept4` and `connect` on sockets cooperative (what
/// `std::net::TcpStream` / `TcpListener` call).
pub fn patch_socket() {
    net::link();
    SOCKET.store(true, Ordering::SeqCst);
}

/// Whether [`patch_all`] (or every finer switch) was called.
pub fn is_patched() -> bool {
    TIME.load(Ordering::Relaxed) && SOCKET.load(Ordering::Relaxed)
}

/// Whether a hook may park the caller: the thread has a hub and the caller is not the hub.
fn cooperative() -> bool {
    match crate::hub::try_hub() {
        Some(hub) => !hub.greenlet().is_current(),
        None => false,
    }
}

/// Runs a cooperative wait inside a hook. A kill or Timeout landing there is caught (it cannot unwind
/// through the C caller) and kept to be raised at the greenlet's next gevent wait; returns false then.
fn park(f: impl FnOnce() -> std::io::Result<()>) -> Result<std::io::Result<()>, ()> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => Ok(r),
        Err(payload) => {
            crate::hub::defer_unwind(payload);
            Err(())
        }
    }
}

fn set_errno(e: i32) {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() = e };
}

fn errno() -> i32 {
    // SAFETY: as in `set_errno`.
    unsafe { *libc::__errno_location() }
}
