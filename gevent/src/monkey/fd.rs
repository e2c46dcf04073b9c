//! Parking on an fd's readiness, shared by every hook, and the hooks that end an fd's life
//! (`close`, `dup2`, `dup3`): a greenlet parked on the fd wakes with `EBADF` before it goes.
//!
//! # Ground rules
//! - One registration ([`IoSource`]) per fd per thread while at least one greenlet of this thread is
//!   parked on it; every parked greenlet of the fd shares it (epoll takes one registration per fd,
//!   so a reader and a writer of one `&TcpStream` could not register separately). The last one to
//!   leave drops it (deregistered then).
//! - `close`/`dup2`/`dup3` on a registered fd first close the registration ([`IoSource::close`]:
//!   deregister, wake every waiter with an error) and forget it, so a new fd that reuses the number
//!   gets a new registration; waiters of the old one see their `Rc` no longer in the table and leave
//!   it alone.
//! - The table and the hub's epoll instance are inherited by a `fork`ed child, but the epoll
//!   instance stays *shared* with the parent while the fd table is copied: a child that closes
//!   an inherited fd (a `fork` + close-everything + `exec` in some C library, a `pre_exec`) must
//!   not deregister it, or the parent's parked greenlet never wakes. Each entry records the pid
//!   that made it; `closing` in another process leaves it alone.
//! - `closing` touches the table only on threads where a hook has parked once ([`USED`], a
//!   constant-initialised flag): elsewhere — threads without greenlets, signal handlers there,
//!   thread-local destruction — `close` does no lazy thread-local initialisation (which would
//!   allocate and register a destructor).
//! - If the hub's epoll refuses the fd itself (`EEXIST`: a gevent type registered it already,
//!   `EPERM`: not pollable), the wait falls back to [`crate::select::poll`] (a dup'd registration).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::rc::Rc;
use std::time::Instant;

use libc::c_int;

use super::{park, set_errno, PATCHED};
use crate::io::{Interest, IoSource};

/// Takes every hook's address so the linker keeps them.
pub(super) fn link() {
    let hooks: [usize; 3] = [
        close as *const () as usize,
        dup2 as *const () as usize,
        dup3 as *const () as usize,
    ];
    std::hint::black_box(hooks);
}

struct Entry {
    src: Rc<IoSource>,
    users: usize,
    /// The process that registered it (see the ground rules: `fork`).
    pid: libc::pid_t,
}

thread_local! {
    /// The fds greenlets of this thread are parked on (see the ground rules).
    static FDS: RefCell<HashMap<c_int, Entry>> = RefCell::new(HashMap::new());
    /// Whether this thread ever touched [`FDS`] (set before its first access, never cleared).
    static USED: Cell<bool> = const { Cell::new(false) };
}

/// Leaves a shared registration when the wait ends, however it ends.
struct Lease {
    fd: c_int,
    src: Rc<IoSource>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = FDS.try_with(|m| {
            let mut m = m.borrow_mut();
            if let Some(e) = m.get_mut(&self.fd) {
                if Rc::ptr_eq(&e.src, &self.src) {
                    e.users -= 1;
                    if e.users == 0 {
                        m.remove(&self.fd);
                    }
                }
            }
        });
    }
}

fn lease(fd: c_int) -> io::Result<Lease> {
    USED.set(true);
    FDS.with(|m| {
        let mut m = m.borrow_mut();
        if let Some(e) = m.get_mut(&fd) {
            e.users += 1;
            return Ok(Lease {
                fd,
                src: e.src.clone(),
            });
        }
        let src = Rc::new(IoSource::new(fd)?);
        m.insert(
            fd,
            Entry {
                src: src.clone(),
                users: 1,
                // SAFETY: getpid(2) has no preconditions.
                pid: unsafe { libc::getpid() },
            },
        );
        Ok(Lease { fd, src })
    })
}

/// How a wait ended, when not with readiness.
pub(super) enum Failed {
    /// The deadline passed.
    TimedOut,
    /// A kill or Timeout landed (deferred to the next gevent wait).
    Cancelled,
    /// The fd was closed meanwhile, or cannot be waited on: this errno.
    Errno(c_int),
}

impl Failed {
    /// The errno a socket call reports for it (`EAGAIN` at a SO_RCVTIMEO-style timeout).
    pub(super) fn errno(&self) -> c_int {
        match self {
            Failed::TimedOut => libc::EAGAIN,
            Failed::Cancelled => libc::ECANCELED,
            Failed::Errno(e) => *e,
        }
    }
}

/// Parks the current greenlet until `fd` may be ready for `interest` (callers retry their operation
/// and come back on `EAGAIN`: a wake can be spurious), or `deadline`.
pub(super) fn wait_fd(
    fd: c_int,
    interest: Interest,
    deadline: Option<Instant>,
) -> Result<(), Failed> {
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Err(Failed::TimedOut);
    }
    let lease = match lease(fd) {
        Ok(l) => l,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST) | Some(libc::EPERM)) => {
            return wait_fd_dup(fd, interest, deadline);
        }
        Err(e) => return Err(Failed::Errno(e.raw_os_error().unwrap_or(libc::EBADF))),
    };
    let r = park(|| lease.src.wait(interest, deadline));
    drop(lease);
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if e.kind() == io::ErrorKind::TimedOut => Err(Failed::TimedOut),
        Ok(Err(e)) => Err(Failed::Errno(e.raw_os_error().unwrap_or(libc::EBADF))),
        Err(()) => Err(Failed::Cancelled),
    }
}

/// The fallback of [`wait_fd`]: a cooperative `poll` through a dup'd registration.
fn wait_fd_dup(fd: c_int, interest: Interest, deadline: Option<Instant>) -> Result<(), Failed> {
    let mut pfd = [libc::pollfd {
        fd,
        events: match interest {
            Interest::Read => libc::POLLIN,
            Interest::Write => libc::POLLOUT,
        },
        revents: 0,
    }];
    let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    match park(|| crate::select::poll(&mut pfd, timeout)) {
        Ok(Ok(0)) => Err(Failed::TimedOut),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Failed::Errno(e.raw_os_error().unwrap_or(libc::EBADF))),
        Err(()) => Err(Failed::Cancelled),
    }
}

/// Wakes (with an error) every greenlet of this thread parked on `fd`, and forgets its registration.
fn closing(fd: c_int) {
    if PATCHED.load(std::sync::atomic::Ordering::Relaxed) == 0 || !USED.get() {
        return;
    }
    let entry = FDS
        .try_with(|m| {
            let mut m = m.try_borrow_mut().ok()?;
            // SAFETY: getpid(2) has no preconditions.
            if m.get(&fd)?.pid != unsafe { libc::getpid() } {
                return None; // a forked child: the registration is the parent's
            }
            m.remove(&fd)
        })
        .ok()
        .flatten();
    if let Some(e) = entry {
        // Deregisters while the fd is still open, and wakes the waiters (they see `closed`).
        e.src.close();
    }
}

/// Interposed `close(2)`: wakes greenlets parked on `fd` (their call fails with `EBADF`), then closes.
///
/// # Safety
/// None beyond `close(2)`'s (closing an fd someone else owns is the caller's bug, as always).
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    closing(fd);
    // SAFETY: the caller's argument, forwarded unchanged.
    unsafe { libc::syscall(libc::SYS_close, fd) as c_int }
}

/// Interposed `dup2(2)`: `newfd` is closed by it, so its parked greenlets are woken as by [`close`].
///
/// # Safety
/// As `dup2(2)`.
#[no_mangle]
pub unsafe extern "C" fn dup2(oldfd: c_int, newfd: c_int) -> c_int {
    if oldfd == newfd {
        // dup2 to itself only checks that the fd is open.
        // SAFETY: F_GETFD takes no pointer.
        let r = unsafe { libc::syscall(libc::SYS_fcntl, oldfd, libc::F_GETFD) };
        return if r < 0 { -1 } else { newfd };
    }
    closing(newfd);
    // SAFETY: the caller's arguments, forwarded unchanged.
    unsafe { libc::syscall(libc::SYS_dup3, oldfd, newfd, 0) as c_int }
}

/// Interposed `dup3(2)`: as [`dup2`].
///
/// # Safety
/// As `dup3(2)`.
#[no_mangle]
pub unsafe extern "C" fn dup3(oldfd: c_int, newfd: c_int, flags: c_int) -> c_int {
    if oldfd != newfd {
        closing(newfd);
    }
    // SAFETY: the caller's arguments, forwarded unchanged.
    unsafe { libc::syscall(libc::SYS_dup3, oldfd, newfd, flags) as c_int }
}

/// The errno to report after a failed wait.
pub(super) fn fail(f: Failed) -> isize {
    set_errno(f.errno());
    -1
}
