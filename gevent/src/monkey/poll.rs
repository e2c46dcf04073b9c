//! The readiness hooks: `poll`, `ppoll`, `select`, `pselect`, `epoll_wait`, `epoll_pwait`,
//! `__poll_chk`, `__ppoll_chk`.
//!
//! A call with a zero timeout, outside greenlets, or from the hub itself goes straight to the
//! kernel — this is what keeps the hub's own `epoll_wait` (mio calls it through libc, so it lands
//! here) a plain system call. Inside a greenlet with any other timeout, the hook first asks the
//! kernel with a zero timeout; if nothing is ready it parks: `poll`/`select` through
//! [`crate::select::poll`] (dup'd registrations of every fd), `epoll_wait` on the epoll fd's own
//! readiness, then asks again with a zero timeout.

use std::time::{Duration, Instant};

use libc::{c_int, epoll_event, fd_set, nfds_t, pollfd, sigset_t, timespec, timeval};

use super::fd::{wait_fd, Failed};
use super::intr::Intr;
use super::net::check_len;
use super::{active, cooperative, errno, park, patched, set_errno, Module};
use crate::io::Interest;

/// Takes every hook's address so the linker keeps them (see the module docs).
pub(super) fn link() {
    let hooks: [usize; 8] = [
        poll as *const () as usize,
        ppoll as *const () as usize,
        select as *const () as usize,
        pselect as *const () as usize,
        epoll_wait as *const () as usize,
        epoll_pwait as *const () as usize,
        __poll_chk as *const () as usize,
        __ppoll_chk as *const () as usize,
    ];
    std::hint::black_box(hooks);
}

/// The kernel's `_NSIG / 8`: the signal-mask size the `p*` system calls take.
const SIGSET_SIZE: usize = 8;

fn ms_to_duration(ms: c_int) -> Option<Duration> {
    (ms >= 0).then(|| Duration::from_millis(ms as u64))
}

fn ts_to_duration(ts: *const timespec) -> Option<Duration> {
    if ts.is_null() {
        return None;
    }
    // SAFETY: non-null; valid per the C contract of the hooked function.
    let ts = unsafe { &*ts };
    Some(Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    ))
}

fn duration_to_ts(d: Duration) -> timespec {
    timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// `poll(2)` in the kernel, the caller's arguments unchanged: the fast path (no timeout conversion).
#[inline(always)]
fn raw_poll(fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller's arguments (valid per its C contract), forwarded unchanged.
    unsafe {
        super::sys6(
            libc::SYS_poll,
            fds as usize,
            nfds as usize,
            timeout as isize as usize,
            0,
            0,
            0,
        ) as c_int
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // No poll system call here (aarch64 and newer ports): ppoll with the timeout in a timespec.
        let ts = timespec {
            tv_sec: (timeout / 1000) as libc::time_t,
            tv_nsec: (timeout % 1000) as libc::c_long * 1_000_000,
        };
        let tsp = if timeout < 0 {
            std::ptr::null()
        } else {
            &ts as *const timespec
        };
        // SAFETY: the caller's fds (valid per its C contract) and our own timespec.
        unsafe { libc::syscall(libc::SYS_ppoll, fds, nfds, tsp, 0usize, SIGSET_SIZE) as c_int }
    }
}

/// `ppoll(2)` in the kernel with the caller's timeout pointer (copied: the system call writes the
/// time left into it, glibc's wrapper does not).
#[inline(always)]
fn raw_ppoll_ts(
    fds: *mut pollfd,
    nfds: nfds_t,
    tmo: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    let mut copy;
    let tsp = if tmo.is_null() {
        std::ptr::null()
    } else {
        // SAFETY: non-null and valid per the C contract.
        copy = unsafe { *tmo };
        &mut copy as *const timespec
    };
    // SAFETY: the caller's fds/mask (valid per its C contract) and our own timespec copy.
    unsafe { libc::syscall(libc::SYS_ppoll, fds, nfds, tsp, mask, SIGSET_SIZE) as c_int }
}

/// Whether a C timeout pointer is a zero timeout (null: forever, not zero).
#[inline(always)]
fn ts_is_zero(ts: *const timespec) -> bool {
    // SAFETY: non-null and valid per the C contract.
    !ts.is_null() && unsafe { (*ts).tv_sec == 0 && (*ts).tv_nsec == 0 }
}

/// `ppoll(2)` in the kernel; `timeout` `None` waits forever.
fn raw_ppoll(
    fds: *mut pollfd,
    nfds: nfds_t,
    timeout: Option<Duration>,
    mask: *const sigset_t,
) -> c_int {
    let ts = timeout.map(duration_to_ts);
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const timespec);
    // SAFETY: the caller's fds/mask (valid per its C contract) and our own timespec copy.
    unsafe { libc::syscall(libc::SYS_ppoll, fds, nfds, tsp, mask, SIGSET_SIZE) as c_int }
}

/// Sleeps cooperatively for `d` (`None`: forever): `Ok` when it slept the whole time, else the errno
/// (`EINTR` for a signal; a kill or Timeout: see `park`).
fn green_sleep(d: Option<Duration>) -> Result<(), c_int> {
    park(Intr::Any, || match d {
        Some(d) => crate::sleep(d),
        None => loop {
            crate::sleep(Duration::from_secs(86_400));
        },
    })
}

/// The cooperative poll shared by `poll`/`ppoll`/`select`: the caller already knows `timeout` is
/// not zero and the caller is a greenlet.
fn green_poll(fds: *mut pollfd, nfds: nfds_t, timeout: Option<Duration>) -> c_int {
    let saved = errno();
    let n = raw_ppoll(fds, nfds, Some(Duration::ZERO), std::ptr::null());
    if n != 0 {
        return n;
    }
    if nfds == 0 || fds.is_null() {
        // poll(NULL, 0, t): a sleep.
        return match green_sleep(timeout) {
            Ok(()) => {
                set_errno(saved);
                0
            }
            Err(e) => {
                set_errno(e);
                -1
            }
        };
    }
    // SAFETY: `fds` points to `nfds` pollfds per the C contract; nothing else uses them meanwhile.
    let slice = unsafe { std::slice::from_raw_parts_mut(fds, nfds as usize) };
    match park(Intr::Any, || crate::select::poll(slice, timeout)) {
        Ok(Ok(n)) => {
            set_errno(saved);
            n as c_int
        }
        Ok(Err(e)) => {
            set_errno(e.raw_os_error().unwrap_or(libc::ENOMEM));
            -1
        }
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

/// Interposed `poll(2)`.
///
/// # Safety
/// The C contract: `fds` points to `nfds` valid pollfds (or `nfds` is 0).
#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int {
    // The fast path: a compare and one relaxed load, then a jump to the system call (no frame:
    // the thread-local check and everything else are in `poll_slow`). Nothing is converted before
    // it is known that the call may park.
    if timeout != 0 && patched(Module::Select) {
        return poll_slow(fds, nfds, timeout);
    }
    raw_poll(fds, nfds, timeout)
}

/// [`poll`] with a non-zero timeout once patched: cooperative in a greenlet, else the system call.
#[inline(never)]
fn poll_slow(fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int {
    if cooperative() {
        return green_poll(fds, nfds, ms_to_duration(timeout));
    }
    raw_poll(fds, nfds, timeout)
}

/// Interposed `ppoll(2)`. Parked in a greenlet, the signal mask is not applied.
///
/// # Safety
/// The C contract: `fds` points to `nfds` pollfds; `tmo` and `mask` are null or valid.
#[no_mangle]
pub unsafe extern "C" fn ppoll(
    fds: *mut pollfd,
    nfds: nfds_t,
    tmo: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    if ts_is_zero(tmo) || !active(Module::Select) {
        return raw_ppoll_ts(fds, nfds, tmo, mask);
    }
    green_poll(fds, nfds, ts_to_duration(tmo))
}

/// Interposed `__poll_chk` (fortified `poll`).
///
/// # Safety
/// As [`poll`]; `fdslen` is the array's real size in bytes.
#[no_mangle]
pub unsafe extern "C" fn __poll_chk(
    fds: *mut pollfd,
    nfds: nfds_t,
    timeout: c_int,
    fdslen: usize,
) -> c_int {
    check_len(nfds as usize, fdslen / std::mem::size_of::<pollfd>());
    // SAFETY: as poll; the count was checked against the array.
    unsafe { poll(fds, nfds, timeout) }
}

/// Interposed `__ppoll_chk` (fortified `ppoll`).
///
/// # Safety
/// As [`ppoll`]; `fdslen` is the array's real size in bytes.
#[no_mangle]
pub unsafe extern "C" fn __ppoll_chk(
    fds: *mut pollfd,
    nfds: nfds_t,
    tmo: *const timespec,
    mask: *const sigset_t,
    fdslen: usize,
) -> c_int {
    check_len(nfds as usize, fdslen / std::mem::size_of::<pollfd>());
    // SAFETY: as ppoll; the count was checked against the array.
    unsafe { ppoll(fds, nfds, tmo, mask) }
}

/// `select`/`pselect` inside a greenlet: the sets become pollfds, [`green_poll`] waits, the sets are
/// rewritten from the answer (hang-ups and errors count as readable, as `select(2)` says).
fn green_select(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    timeout: Option<Duration>,
) -> c_int {
    let isset = |set: *mut fd_set, fd: c_int| {
        // SAFETY: `set` is non-null and valid per the C contract; fd < nfds <= FD_SETSIZE.
        !set.is_null() && unsafe { libc::FD_ISSET(fd, set) }
    };
    if !(0..=libc::FD_SETSIZE as c_int).contains(&nfds) {
        set_errno(libc::EINVAL);
        return -1;
    }
    let mut fds: Vec<pollfd> = Vec::new();
    for fd in 0..nfds {
        let mut events = 0;
        if isset(r, fd) {
            events |= libc::POLLIN;
        }
        if isset(w, fd) {
            events |= libc::POLLOUT;
        }
        if isset(e, fd) {
            events |= libc::POLLPRI;
        }
        if events != 0 {
            fds.push(pollfd {
                fd,
                events,
                revents: 0,
            });
        }
    }
    let n = green_poll(fds.as_mut_ptr(), fds.len() as nfds_t, timeout);
    if n < 0 {
        return n;
    }
    if fds.iter().any(|f| f.revents & libc::POLLNVAL != 0) {
        set_errno(libc::EBADF);
        return -1;
    }
    for set in [r, w, e] {
        if !set.is_null() {
            // SAFETY: non-null and valid per the C contract.
            unsafe { libc::FD_ZERO(set) };
        }
    }
    let mut count = 0;
    for f in &fds {
        let mut mark = |set: *mut fd_set, cond: bool| {
            if cond && !set.is_null() {
                // SAFETY: non-null and valid; f.fd < nfds <= FD_SETSIZE.
                unsafe { libc::FD_SET(f.fd, set) };
                count += 1;
            }
        };
        let rv = f.revents;
        mark(
            r,
            f.events & libc::POLLIN != 0
                && rv & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0,
        );
        mark(
            w,
            f.events & libc::POLLOUT != 0 && rv & (libc::POLLOUT | libc::POLLERR) != 0,
        );
        mark(e, f.events & libc::POLLPRI != 0 && rv & libc::POLLPRI != 0);
    }
    count
}

/// `pselect6(2)` in the kernel (which writes the time left into `ts`).
fn raw_pselect(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    ts: Option<&mut timespec>,
    mask: *const sigset_t,
) -> c_int {
    let tsp = ts.map_or(std::ptr::null_mut(), |t| t as *mut timespec);
    let data: [usize; 2] = [mask as usize, SIGSET_SIZE];
    let datap = if mask.is_null() {
        std::ptr::null()
    } else {
        data.as_ptr()
    };
    // SAFETY: the caller's sets (valid per its C contract), our timespec, and the kernel's
    // { sigset pointer, size } pair for the mask.
    unsafe { libc::syscall(libc::SYS_pselect6, nfds, r, w, e, tsp, datap) as c_int }
}

/// Interposed `select(2)`. As Linux's, it writes the time left into `tv`.
///
/// # Safety
/// The C contract: the sets are null or valid; `tv` is null or valid.
#[no_mangle]
pub unsafe extern "C" fn select(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    tv: *mut timeval,
) -> c_int {
    #[cfg(target_arch = "x86_64")]
    {
        // The fast path: straight to the kernel's select, which writes the time left into `tv`.
        // SAFETY: non-null and valid per the C contract.
        let zero = !tv.is_null() && unsafe { (*tv).tv_sec == 0 && (*tv).tv_usec == 0 };
        if zero || !active(Module::Select) {
            // SAFETY: the caller's arguments (valid per its C contract), forwarded unchanged.
            return unsafe { libc::syscall(libc::SYS_select, nfds, r, w, e, tv) as c_int };
        }
    }
    let t = if tv.is_null() {
        None
    } else {
        // SAFETY: non-null and valid per the C contract.
        let tv = unsafe { &*tv };
        Some(Duration::new(
            tv.tv_sec.max(0) as u64,
            (tv.tv_usec.clamp(0, 999_999) * 1000) as u32,
        ))
    };
    let write_back = |left: Duration| {
        if !tv.is_null() {
            // SAFETY: non-null and valid per the C contract.
            unsafe {
                (*tv).tv_sec = left.as_secs() as libc::time_t;
                (*tv).tv_usec = left.subsec_micros() as libc::suseconds_t;
            }
        }
    };
    if t == Some(Duration::ZERO) || !active(Module::Select) {
        let mut ts = t.map(duration_to_ts);
        let n = raw_pselect(nfds, r, w, e, ts.as_mut(), std::ptr::null());
        if let Some(ts) = ts {
            write_back(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
        }
        return n;
    }
    let start = Instant::now();
    let n = green_select(nfds, r, w, e, t);
    if let Some(t) = t {
        write_back(t.saturating_sub(start.elapsed()));
    }
    n
}

/// Interposed `pselect(2)`. Parked in a greenlet, the signal mask is not applied.
///
/// # Safety
/// The C contract: the sets, `ts` and `mask` are null or valid.
#[no_mangle]
pub unsafe extern "C" fn pselect(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    ts: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    if ts_is_zero(ts) || !active(Module::Select) {
        // The system call writes the time left; the caller's timespec is const: pass a copy.
        // SAFETY: non-null and valid per the C contract.
        let mut copy = (!ts.is_null()).then(|| unsafe { *ts });
        return raw_pselect(nfds, r, w, e, copy.as_mut(), mask);
    }
    green_select(nfds, r, w, e, ts_to_duration(ts))
}

/// `epoll_pwait(2)` in the kernel.
fn raw_epoll(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const sigset_t,
) -> c_int {
    // SAFETY: the caller's arguments (valid per its C contract), forwarded unchanged.
    unsafe {
        libc::syscall(
            libc::SYS_epoll_pwait,
            epfd,
            events,
            max,
            timeout,
            mask,
            SIGSET_SIZE,
        ) as c_int
    }
}

/// `epoll_wait` inside a greenlet: park on the epoll fd's own readiness, then ask without waiting.
fn green_epoll(epfd: c_int, events: *mut epoll_event, max: c_int, timeout: c_int) -> c_int {
    let saved = errno();
    let deadline = ms_to_duration(timeout).map(|d| Instant::now() + d);
    loop {
        let n = raw_epoll(epfd, events, max, 0, std::ptr::null());
        if n != 0 {
            return n;
        }
        match wait_fd(epfd, Interest::Read, deadline, Intr::Any) {
            Ok(()) => continue,
            Err(Failed::TimedOut) => {
                set_errno(saved);
                return raw_epoll(epfd, events, max, 0, std::ptr::null());
            }
            Err(f) => {
                set_errno(f.errno());
                return -1;
            }
        }
    }
}

/// `epoll_wait`/`epoll_pwait` with a non-zero timeout once patched: cooperative in a greenlet (the
/// mask is not applied then), else the system call.
#[inline(never)]
fn epoll_slow(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const sigset_t,
) -> c_int {
    if cooperative() {
        return green_epoll(epfd, events, max, timeout);
    }
    raw_epoll(epfd, events, max, timeout, mask)
}

/// Interposed `epoll_wait(2)`. The hub's own call (mio's) is a plain system call: the caller is
/// the hub greenlet then.
///
/// # Safety
/// The C contract: `events` is valid for `max` entries.
#[no_mangle]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    if timeout == 0 || !patched(Module::Select) {
        return raw_epoll(epfd, events, max, timeout, std::ptr::null());
    }
    epoll_slow(epfd, events, max, timeout, std::ptr::null())
}

/// Interposed `epoll_pwait(2)`. Parked in a greenlet, the signal mask is not applied.
///
/// # Safety
/// The C contract: `events` is valid for `max` entries; `mask` null or valid.
#[no_mangle]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const sigset_t,
) -> c_int {
    if timeout == 0 || !patched(Module::Select) {
        return raw_epoll(epfd, events, max, timeout, mask);
    }
    epoll_slow(epfd, events, max, timeout, mask)
}
