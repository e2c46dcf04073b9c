//! Parking on an fd's readiness, shared by every hook, and the hooks that end an fd's life
//! (`close`, `dup2`, `dup3`): a greenlet parked on the fd wakes with `EBADF` before it goes.
//!
//! # Ground rules
//! - One registration ([`IoSource`]) per fd per thread; every parked greenlet of the fd shares it
//!   (epoll takes one registration per fd, so a reader and a writer of one `&TcpStream` could not
//!   register separately). It stays after the last waiter leaves (fds below [`GEN_SLOTS`]), so an fd
//!   waited on again and again — a connection's socket — is registered once, as a gevent type's is,
//!   not twice per wait (`epoll_ctl` ADD and DEL cost more than the read itself).
//! - A kept registration is forgotten when its fd goes: `close`/`dup2`/`dup3` on this thread drop it
//!   (below); on any thread they bump the fd's close generation ([`GEN`]), and a registration whose
//!   generation is old is abandoned (its slot released, no `epoll_ctl` on a number that may now name
//!   another file) and made anew. A gevent type that registers a kept fd (`EEXIST`) takes it over:
//!   [`evict`] drops the idle kept registration first. (Closes by raw system call on another thread
//!   are not seen — as with every hook, raw system calls bypass them.) An idle kept registration
//!   inherited by a `fork`ed child is abandoned there, never deregistered (see below).
//! - `close`/`dup2`/`dup3` on a registered fd first close the registration ([`IoSource::close`]:
//!   deregister, wake every waiter with an error) and forget it, so a new fd that reuses the number
//!   gets a new registration; waiters of the old one see their `Rc` no longer in the table and leave
//!   it alone.
//! - The table is inherited by a `fork`ed child, whose hub keeps the parent's epoll instance
//!   (*shared* with the parent) until its next use rebuilds it ([`crate::os`]): a child that
//!   closes an inherited fd before that (a `fork` + close-everything + `exec` in some C library, a
//!   `pre_exec`, where nothing may allocate) must not deregister it, or the parent's parked
//!   greenlet never wakes. Each entry records the pid that made it; `closing` in another process
//!   leaves it alone until the child's hub is rebuilt (then it closes it like its own: the
//!   rebuilt hub deregisters only from the child's poller), and the child registers the fd anew
//!   at its own next wait.
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
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::Once;
use std::time::Instant;

use libc::c_int;

use super::intr::Intr;
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
    static AT_FORK: Once = Once::new();
    AT_FORK.call_once(|| {
        extern "C" fn child() {
            PID.store(0, Ordering::Relaxed);
        }
        // SAFETY: registers a handler that only stores to an atomic (async-signal-safe).
        unsafe { libc::pthread_atfork(None, None, Some(child)) };
    });
    let f: fn(c_int) -> bool = evict;
    let _ = crate::hub::reactor::EVICT.set(f);
}

/// This process's pid, cached (reset in a `fork`ed child by the handler `link` registers), so the
/// check on every wait is a load, not a `getpid` system call.
static PID: AtomicI32 = AtomicI32::new(0);

fn my_pid() -> libc::pid_t {
    match PID.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: getpid(2) has no preconditions.
            let p = unsafe { libc::getpid() };
            PID.store(p, Ordering::Relaxed);
            p
        }
        p => p,
    }
}

struct Entry {
    src: Rc<IoSource>,
    users: usize,
    /// The process that registered it (see the ground rules: `fork`).
    pid: libc::pid_t,
    /// [`GEN`] of the fd when it was registered.
    gen: u32,
}

/// Fds below this keep their registration between waits (above: dropped when the last waiter
/// leaves, as there is no close generation for them).
pub(super) const GEN_SLOTS: usize = 1 << 16;

/// Per fd number, how many times it was closed (or replaced by `dup2`/`dup3`) through the hooks,
/// on any thread, once any switch is on.
static GEN: [AtomicU32; GEN_SLOTS] = [const { AtomicU32::new(0) }; GEN_SLOTS];

fn gen_of(fd: c_int) -> Option<u32> {
    GEN.get(usize::try_from(fd).ok()?)
        .map(|g| g.load(Ordering::Acquire))
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
                    let gen = gen_of(self.fd);
                    if e.users == 0 && (gen != Some(e.gen) || e.pid != my_pid()) {
                        // No close generation (a high fd), closed on another thread meanwhile, or
                        // inherited from the parent process (not stale: see `forget_entry`).
                        let stale = gen.is_some() && gen != Some(e.gen);
                        if let Some(e) = m.remove(&self.fd) {
                            drop(m);
                            forget_entry(e, stale);
                        }
                    }
                }
            }
        });
    }
}

/// Drops a registration taken out of the table; `stale`: its fd was closed on another thread
/// (the number may name another file now), so no `epoll_ctl` is made on it. An entry of the
/// parent process's is dropped like any: `IoSource`'s drop deregisters only from this process's
/// own poller (see `crate::io`: a forked child's hub never touches the parent's epoll instance).
fn forget_entry(e: Entry, stale: bool) {
    match Rc::try_unwrap(e.src) {
        Ok(src) if stale => src.abandon(),
        Ok(src) => drop(src),
        Err(rc) => drop(rc), // a waiter still holds it: it goes with the last one
    }
}

fn lease(fd: c_int) -> io::Result<Lease> {
    USED.set(true);
    let gen = gen_of(fd);
    let pid = my_pid();
    let stale = FDS.with(|m| {
        let mut m = m.borrow_mut();
        match m.get_mut(&fd) {
            Some(e) if e.users > 0 || (Some(e.gen) == gen && e.pid == pid) => {
                e.users += 1;
                Ok(Lease {
                    fd,
                    src: e.src.clone(),
                })
            }
            Some(_) => Err(m.remove(&fd)),
            None => Err(None),
        }
    });
    let stale = match stale {
        Ok(l) => return Ok(l),
        Err(e) => e,
    };
    if let Some(e) = stale {
        let closed = gen.is_none() || Some(e.gen) != gen;
        forget_entry(e, closed);
    }
    let src = Rc::new(IoSource::new(fd)?);
    FDS.with(|m| {
        m.borrow_mut().insert(
            fd,
            Entry {
                src: src.clone(),
                users: 1,
                pid,
                gen: gen.unwrap_or(0),
            },
        )
    });
    Ok(Lease { fd, src })
}

/// The reactor's [`EVICT`](crate::hub::reactor::EVICT) hook, called by [`IoSource::new`] when
/// epoll says `EEXIST`: drops this thread's idle kept registration
/// of `fd`, if there is one (true: the caller may register again).
pub(crate) fn evict(fd: c_int) -> bool {
    if !USED.get() {
        return false;
    }
    let gen = gen_of(fd);
    let e = FDS
        .try_with(|m| {
            let mut m = m.try_borrow_mut().ok()?;
            if m.get(&fd).is_some_and(|e| e.users == 0) {
                m.remove(&fd)
            } else {
                None
            }
        })
        .ok()
        .flatten();
    match e {
        Some(e) => {
            let stale = gen_of(fd).is_some() && Some(e.gen) != gen;
            forget_entry(e, stale);
            true
        }
        None => false,
    }
}

/// How a wait ended, when not with readiness.
pub(super) enum Failed {
    /// The deadline passed.
    TimedOut,
    /// A kill or Timeout landed (deferred to the next gevent wait), or a signal interrupted the
    /// wait: the errno to report (see [`park`]).
    Cancelled(c_int),
    /// The fd was closed meanwhile, or cannot be waited on: this errno.
    Errno(c_int),
}

impl Failed {
    /// The errno a socket call reports for it (`EAGAIN` at a SO_RCVTIMEO-style timeout).
    pub(super) fn errno(&self) -> c_int {
        match self {
            Failed::TimedOut => libc::EAGAIN,
            Failed::Cancelled(e) => *e,
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
    intr: Intr,
) -> Result<(), Failed> {
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Err(Failed::TimedOut);
    }
    let lease = match lease(fd) {
        Ok(l) => l,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST) | Some(libc::EPERM)) => {
            return wait_fd_dup(fd, interest, deadline, intr);
        }
        Err(e) => return Err(Failed::Errno(e.raw_os_error().unwrap_or(libc::EBADF))),
    };
    // Every caller has just seen the fd not ready (`EAGAIN`, or a zero-timeout poll), and no event
    // can have been dispatched since: an edge remembered from before is stale.
    lease.src.clear_ready(interest);
    let r = park(intr, || lease.src.wait(interest, deadline));
    drop(lease);
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if e.kind() == io::ErrorKind::TimedOut => Err(Failed::TimedOut),
        Ok(Err(e)) => Err(Failed::Errno(e.raw_os_error().unwrap_or(libc::EBADF))),
        Err(e) => Err(Failed::Cancelled(e)),
    }
}

/// The fallback of [`wait_fd`]: a cooperative `poll` through a dup'd registration.
fn wait_fd_dup(
    fd: c_int,
    interest: Interest,
    deadline: Option<Instant>,
    intr: Intr,
) -> Result<(), Failed> {
    let mut pfd = [libc::pollfd {
        fd,
        events: match interest {
            Interest::Read => libc::POLLIN,
            Interest::Write => libc::POLLOUT,
        },
        revents: 0,
    }];
    let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    match park(intr, || crate::select::poll(&mut pfd, timeout)) {
        Ok(Ok(0)) => Err(Failed::TimedOut),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Failed::Errno(e.raw_os_error().unwrap_or(libc::EBADF))),
        Err(e) => Err(Failed::Cancelled(e)),
    }
}

/// Wakes (with an error) every greenlet of this thread parked on `fd`, and forgets its registration.
fn closing(fd: c_int) {
    if PATCHED.load(Ordering::Relaxed) == 0 {
        return;
    }
    // On every thread (a static, no thread-local): a registration of another thread sees it.
    if let Some(g) = usize::try_from(fd).ok().and_then(|i| GEN.get(i)) {
        g.fetch_add(1, Ordering::AcqRel);
    }
    if !USED.get() {
        return;
    }
    let entry = FDS
        .try_with(|m| {
            let mut m = m.try_borrow_mut().ok()?;
            // SAFETY: getpid(2) has no preconditions.
            if m.get(&fd)?.pid != unsafe { libc::getpid() } && !crate::hub::hub_is_this_process() {
                // A forked child whose hub still uses the parent's epoll instance (a `pre_exec`,
                // where nothing may allocate either): the registration is the parent's. Once the
                // hub is rebuilt, closing it touches only the child's own poller.
                return None;
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
