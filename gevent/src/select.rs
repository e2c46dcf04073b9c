//! Cooperative [`select`] and [`poll`] over any pollable fds (gevent's `gevent.select`): the calling
//! greenlet waits, the hub keeps running the others.
//!
//! # How
//! First `poll(2)` with a zero timeout (the fast path). If nothing is ready, each fd is `dup`'d and
//! the duplicate registered with the hub for the duration of the call — a duplicate, because the fd
//! itself may already be registered by a [`gevent::net`](crate::net) socket, and epoll accepts one
//! registration per (fd, open file) pair. When the hub reports any of them, `poll(2)` with a zero
//! timeout gives the exact answer. The duplicates are deregistered before they are closed (epoll
//! keeps a registration while any fd of the open file lives).
//!
//! # Examples
//! ```
//! use std::io::Write;
//! use std::os::fd::AsRawFd;
//! use std::time::Duration;
//! let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
//! let (r, _) = gevent::select::select(&[a.as_raw_fd()], &[], Some(Duration::from_millis(10))).unwrap();
//! assert!(r.is_empty()); // timed out
//! (&b).write_all(b"x").unwrap();
//! let (r, w) = gevent::select::select(&[a.as_raw_fd()], &[b.as_raw_fd()], None).unwrap();
//! assert_eq!((r, w), (vec![a.as_raw_fd()], vec![b.as_raw_fd()]));
//! ```

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::io::{wait_any, Interest, IoSource};

fn poll_now(fds: &mut [libc::pollfd]) -> io::Result<usize> {
    loop {
        // SAFETY: `fds` is a valid, exclusively borrowed slice of pollfd for the whole call; its
        // length is passed as nfds; timeout 0 never blocks.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `poll(2)`, cooperatively: waits until one of `fds` has one of its `events` (or an error/hang-up,
/// always reported), or `timeout` passes (`None`: forever). Fills `revents` and returns how many
/// entries have some.
///
/// # Errors
/// As `poll(2)` and `dup(2)` (`EMFILE`); the [`LoopExit`](crate::LoopExit) message if nothing
/// could ever wake it (no timeout and no other greenlet, timer or fd).
///
/// # Cancel safety
/// A kill or Timeout unwinds out of it; the temporary registrations are removed.
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    for f in fds.iter_mut() {
        f.revents = 0;
    }
    let n = poll_now(fds)?;
    if n > 0 || timeout == Some(Duration::ZERO) {
        return Ok(n);
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    // Declared before `sources`, so dropped after them: deregistered first, then closed.
    let mut dups: Vec<OwnedFd> = Vec::new();
    let mut sources: Vec<IoSource> = Vec::new();
    let mut wants: Vec<(usize, Interest)> = Vec::new();
    for f in fds.iter() {
        if f.fd < 0 {
            continue; // poll(2) ignores negative fds
        }
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a caller-provided fd; no memory is passed.
        let d = unsafe { libc::fcntl(f.fd, libc::F_DUPFD_CLOEXEC, 0) };
        if d < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `d` was just returned by fcntl, is open and owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(d) };
        let src = IoSource::new(owned.as_raw_fd());
        dups.push(owned);
        sources.push(src?);
        let k = sources.len() - 1;
        if f.events & libc::POLLOUT != 0 {
            wants.push((k, Interest::Write));
        }
        if f.events & libc::POLLOUT == 0 || f.events & libc::POLLIN != 0 {
            // Read readiness also covers errors and hang-ups, always reported by poll(2).
            wants.push((k, Interest::Read));
        }
    }
    loop {
        let refs: Vec<(&IoSource, Interest)> =
            wants.iter().map(|&(k, i)| (&sources[k], i)).collect();
        wait_any(&refs, deadline)?;
        let n = poll_now(fds)?;
        if n > 0 || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(n);
        }
    }
}

/// `select(2)`, cooperatively (gevent's `gevent.select.select`): waits until some of `rlist` are
/// readable or some of `wlist` writable, or `timeout` passes; returns the ready ones of each, in
/// the given order (both empty at the timeout).
///
/// # Errors
/// As [`poll`]; an fd that is not open (closed, or negative) fails the whole call with the raw OS
/// error `EBADF` (`err.raw_os_error() == Some(libc::EBADF)`), as `select(2)` does, whatever the
/// timeout and whatever the other fds.
///
/// # Cancel safety
/// As [`poll`].
pub fn select(
    rlist: &[RawFd],
    wlist: &[RawFd],
    timeout: Option<Duration>,
) -> io::Result<(Vec<RawFd>, Vec<RawFd>)> {
    let mut fds: Vec<libc::pollfd> = rlist
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .chain(wlist.iter().map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        }))
        .collect();
    if fds.iter().any(|f| f.fd < 0) {
        // select(2) cannot name a negative fd; not an open one either.
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    poll(&mut fds, timeout)?;
    if fds.iter().any(|f| f.revents & libc::POLLNVAL != 0) {
        // As select(2): the raw OS error, so `raw_os_error() == Some(EBADF)`.
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    let ready = |f: &libc::pollfd| f.revents != 0;
    let r = fds[..rlist.len()]
        .iter()
        .filter(|f| ready(f))
        .map(|f| f.fd)
        .collect();
    let w = fds[rlist.len()..]
        .iter()
        .filter(|f| ready(f))
        .map(|f| f.fd)
        .collect();
    Ok((r, w))
}
