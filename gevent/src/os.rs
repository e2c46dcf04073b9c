//! Processes and the hub: [`fork`], [`reinit`] and a cooperative [`waitpid`] (gevent's
//! `gevent.fork` / `gevent.os.fork`, `gevent.reinit` and `gevent.os.waitpid`).
//!
//! # Why the hub must be rebuilt in a child
//! A `fork`ed child gets copies of the parent's fds, and an fd is only a reference: the hub's
//! epoll instance and the eventfd that wakes it are then *the same kernel objects* in both
//! processes. A child that ran its hub on the inherited epoll would take readiness events (they
//! are edge-triggered: each is delivered once) meant for the parent, whose parked reader would then
//! never wake; a child that deregistered an inherited socket would deregister it for the parent.
//! And the threads of the hub's helpers (the [thread pool](crate::threadpool), which also runs
//! the `monkey` DNS hooks) do not exist in the child at all.
//!
//! # What the child gets
//! Only the thread that called `fork` runs in the child. Its hub is rebuilt at once by [`fork`],
//! or, after any other fork, at its next use (see below):
//! - a new epoll instance and a new waker; the inherited ones are closed in the child only (the
//!   parent's registrations are untouched, so the parent never loses an event);
//! - every fd registered with the hub (gevent sockets, pipes, `monkey` hooks' fds) is registered
//!   with the child's poller again lazily, at its next wait in the child;
//! - a new cross-thread queue: work that other threads of the parent were doing for this hub never
//!   comes back, and does not keep the child's loop alive (no false "pending" work: a wait on
//!   nothing ends with [`LoopExit`](crate::LoopExit), never hangs);
//! - every [`ThreadPool`](crate::threadpool::ThreadPool) (the default one included) starts with
//!   no threads and an empty queue at its first use in the child, and works there as usual; a
//!   greenlet that was waiting for a job of the parent's gets `Err` from `spawn` ("lost in fork");
//! - [signal handlers](crate::signal) get a pipe of their own, so the child's signals run the
//!   child's handlers and never reach the parent's.
//!
//! **The other greenlets are kept, as in gevent**: every greenlet of the forking thread exists in
//! the child in the state it had (their stacks are part of the copied memory), ready greenlets run,
//! timers keep their deadlines (`sleep`, timeouts: the monotonic clock is the same in both
//! processes), and events, queues, locks and channels work between them. One exception: **a
//! greenlet parked on an fd at the fork** (a read, an accept, a `monkey` hook's wait) is woken in
//! the child and its wait fails with an error saying that it began before the fork (for `monkey`
//! hooks: `-1` with `EBADF`), instead of racing the parent for the same data. Its copy in the child
//! may wait on the fd again: that new wait is the child's own and is watched by the child's poller
//! (so a pre-fork server's accept loop that retries keeps serving in each child, as
//! [`StreamServer`](crate::server::StreamServer) does). Greenlets of other threads do not exist in
//! the child (their thread does not), as in the parent's view of a vanished thread.
//!
//! # Raw `fork()` calls: a `pthread_atfork` handler, not an interposed `fork`
//! A program may fork without [`fork`]: `libc::fork()` from a greenlet, a C library's `fork`, or
//! `std::process::Command` with `pre_exec` (which forks rather than `posix_spawn`s). gevent
//! registers a `pthread_atfork` child handler when the first hub is created, on every build (no
//! `monkey` needed), that only increments an atomic counter; the child's hub compares the counter
//! at its next use (its loop's next turn, an fd registration or wait, a [`HubHandle`] taken) and
//! rebuilds itself then, doing the work of [`reinit`]. This was chosen over interposing `fork`
//! (`dlsym(RTLD_NEXT)`) because:
//! - the handler runs for every `fork(3)` call in the process, including libc's and C libraries'
//!   internal ones, which an interposed symbol would not see, and does not need `patch_all`;
//! - rebuilding allocates and creates fds, which the child of a multi-threaded process must not do
//!   before `exec` (only async-signal-safe calls are allowed there: `pre_exec` closures run in that
//!   state). The handler itself is one lock-free atomic add, so a child that execs at once never
//!   touches the hub and pays nothing; the rebuild happens only in a child that goes on to use it.
//!
//! `std::process::Command` without `pre_exec` (and [`subprocess`](crate::subprocess)) starts
//! children with `posix_spawn` / `clone(CLONE_VM | CLONE_VFORK)`: the handler does not run (nothing
//! but `exec` runs in such a child) and nothing changes for them.
//!
//! # Limits
//! - A fork made without libc's `fork` (`syscall(SYS_fork)`, `clone`, glibc's `_Fork`) runs no
//!   atfork handler: call [`reinit`] first thing in such a child.
//! - [`HubHandle`]s taken before the fork point at the parent's queue: in the child they deliver
//!   nothing. Take new ones there.
//! - After a fork other than [`fork`], signals that arrive before the child first uses its hub
//!   still go to the parent's pipe (the handler cannot rebuild it: see above).
//! - As with any `fork` of a multi-threaded process, a lock held by another thread at the fork stays
//!   held in the child. gevent's rebuild takes none of the parent's locks; the one exception is a
//!   [`ThreadPool`](crate::threadpool::ThreadPool) shared by several hub threads *of a forked
//!   child* that forks again while one of them submits a job.
//! - The [`monitor`](crate::monitor) thread does not exist in the child; start it again there.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

#[cfg(doc)]
use crate::hub::HubHandle;
use crate::io::{Interest, IoSource};

/// Forks the process; in the child, rebuilds this thread's hub at once ([`reinit`]). Returns what
/// `fork(2)` does: the child's pid in the parent, 0 in the child (gevent's `gevent.fork`).
///
/// See the [module docs](self) for what the child gets: in short, a hub of its own (a new poller,
/// waker and thread pools; its fds watched again at their next wait), every greenlet of this thread
/// kept, those parked on an fd at the fork woken with an error, and the parent never losing an
/// event. The parent reaps the child as with any fork (`waitpid`, or
/// [`subprocess`](crate::subprocess)'s tools for its own children).
///
/// # Errors
/// What `fork(2)` returns (`EAGAIN`, `ENOMEM`), in the parent; no child exists then.
///
/// # Panics
/// In the child, at its first use of the hub, if the hub cannot be rebuilt there (no fd left for
/// a new epoll instance: `EMFILE`).
///
/// # Cancel safety
/// Does not wait: a kill or Timeout cannot land inside it.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let pid = gevent::fork().unwrap();
/// if pid == 0 {
///     // The child: a hub of its own, cooperative as ever.
///     gevent::sleep(Duration::from_millis(1));
///     // SAFETY: _exit(2) ends the process at once, without running the parent's atexit code.
///     unsafe { libc::_exit(7) };
/// }
/// let mut status = 0;
/// // SAFETY: `status` is valid for writes; `pid` is our child.
/// assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
/// assert_eq!(libc::WEXITSTATUS(status), 7);
/// ```
pub fn fork() -> io::Result<libc::pid_t> {
    // Registers the atfork handler if no hub did yet, so the child's own forks are seen too.
    crate::hub::fork_generation();
    // SAFETY: fork(2) has no preconditions; the child goes on with a copy of this thread's memory,
    // where gevent rebuilds what it shares with the parent (below) before anything else runs.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        if let Err(e) = reinit() {
            // The hub's next use tries again (and panics with the reason if it fails again).
            eprintln!("gevent: fork: cannot rebuild the hub in the child yet: {e}");
        }
    }
    Ok(pid)
}

/// Rebuilds this thread's hub after a fork (gevent's `gevent.reinit`): a new poller and waker, a
/// new cross-thread queue, greenlets parked on fds woken (their waits fail), the hooks of the
/// layers above run (thread pools, signals). Does nothing in a process that was not forked since
/// the hub was made (or last rebuilt), nor on a thread without a hub. Also sees forks that ran no
/// atfork handler (it compares the pid: one `getpid` system call).
///
/// Not needed after [`fork`] (which calls it) nor after `libc::fork()` (the hub notices at its
/// next use); useful after a fork that bypassed libc's `fork` (see the module docs: Limits) or to
/// do the rebuild at a chosen moment.
///
/// # Errors
/// Creating the new epoll instance or eventfd (`EMFILE`); the hub is then left as it was.
///
/// # Cancel safety
/// Does not wait.
pub fn reinit() -> io::Result<()> {
    crate::hub::count_unseen_fork();
    match crate::hub::try_hub() {
        Some(hub) => hub.reinit_after_fork(),
        None => Ok(()),
    }
}

/// Waits for the child `pid` (one made by [`fork`] or `libc::fork`) to exit and reaps it, while the
/// other greenlets run (gevent's cooperative `gevent.os.waitpid`); `timeout` `None` waits for ever.
/// Returns its status, or `None` when `timeout` passed first (the child is then not reaped).
///
/// Watches a pidfd (`pidfd_open(2)`) on the hub; on kernels without one (before 5.3) it looks
/// again after cooperative sleeps of 1 ms growing to 50 ms.
///
/// # Errors
/// `InvalidInput` for `pid <= 0` (process groups are not waited for here); what `waitpid(2)`
/// returns (`ECHILD`: not a child of this process, or already reaped).
///
/// # Cancel safety
/// A kill or Timeout landing here unwinds out of it and leaves nothing registered; the child is
/// not reaped (call again, or `waitpid(2)` it).
///
/// # Examples
/// ```
/// use std::os::unix::process::ExitStatusExt;
/// use std::time::Duration;
/// let pid = gevent::fork().unwrap();
/// if pid == 0 {
///     gevent::sleep(Duration::from_millis(20));
///     // SAFETY: _exit(2) ends the child at once.
///     unsafe { libc::_exit(3) };
/// }
/// let status = gevent::os::waitpid(pid, Some(Duration::from_secs(10))).unwrap().unwrap();
/// assert_eq!(status.code(), Some(3));
/// ```
pub fn waitpid(pid: libc::pid_t, timeout: Option<Duration>) -> io::Result<Option<ExitStatus>> {
    if pid <= 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("gevent::os::waitpid: {pid} is not the pid of one child"),
        ));
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    if let Some(s) = try_reap(pid)? {
        return Ok(Some(s));
    }
    // SAFETY: pidfd_open(pid_t, unsigned int) takes no pointers; it returns a new fd or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return wait_polling(pid, deadline);
    }
    // SAFETY: `r` was just opened by pidfd_open and nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(r as libc::c_int) };
    let src = IoSource::new(pidfd.as_raw_fd())?;
    loop {
        // Clear first, then look: an exit after the look brings a fresh edge.
        src.clear_ready(Interest::Read);
        if let Some(s) = try_reap(pid)? {
            return Ok(Some(s));
        }
        match src.wait(Interest::Read, deadline) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return try_reap(pid),
            Err(e) => return Err(e),
        }
    }
}

/// `waitpid(pid, WNOHANG)`: the status if the child has exited (it is reaped then).
fn try_reap(pid: libc::pid_t) -> io::Result<Option<ExitStatus>> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is valid for writes for the duration of the call.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return Ok(Some(ExitStatus::from_raw(status)));
        }
        if r == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// [`waitpid`] without a pidfd: looks again after growing cooperative sleeps.
fn wait_polling(pid: libc::pid_t, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(s) = try_reap(pid)? {
            return Ok(Some(s));
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            return Ok(None);
        }
        crate::sleep(left.map_or(pause, |l| l.min(pause)));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
