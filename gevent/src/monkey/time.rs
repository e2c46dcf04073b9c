//! The sleep hooks: `clock_nanosleep` (what `std::thread::sleep` calls), `nanosleep`, `usleep`, `sleep`.

use std::time::{Duration, Instant};

use libc::{c_int, c_uint, clockid_t, timespec};

use super::intr::Intr;
use super::{park, set_errno, Module};

/// Takes every hook's address so the linker keeps them (see the module docs).
pub(super) fn link() {
    let hooks: [usize; 4] = [
        clock_nanosleep as *const () as usize,
        nanosleep as *const () as usize,
        usleep as *const () as usize,
        sleep as *const () as usize,
    ];
    std::hint::black_box(hooks);
}

fn active() -> bool {
    super::active(Module::Time)
}

/// How a cooperative sleep ended.
enum Slept {
    /// It slept the whole time, or a kill or Timeout cut it short (reported as completed: the kill
    /// or Timeout is raised at the next gevent wait, see `park`).
    Done,
    /// A signal handler ran on this thread (`EINTR`): this much was left.
    Interrupted(Duration),
}

/// Sleeps cooperatively for `d`.
///
/// In steps of at most [`STEP`]: `crate::sleep` needs a deadline `Instant` can represent, and
/// "sleep forever" (std's `sleep(Duration::MAX)` passes `i64::MAX` seconds) must sleep, not panic.
fn green_sleep(d: Duration) -> Slept {
    /// About 34 years.
    const STEP: Duration = Duration::from_secs(1 << 30);
    if d.is_zero() {
        let _ = park(Intr::Never, || crate::sleep(d)); // a zero sleep yields, as before
        return Slept::Done;
    }
    let mut left = d;
    while !left.is_zero() {
        let step = left.min(STEP);
        let end = Instant::now() + step;
        match park(Intr::Any, || crate::sleep(step)) {
            Ok(()) => left -= step,
            Err(libc::EINTR) => {
                return Slept::Interrupted(
                    left - step + end.saturating_duration_since(Instant::now()),
                )
            }
            Err(_) => return Slept::Done,
        }
    }
    Slept::Done
}

/// Writes `d` to `rem` if it is not null.
///
/// # Safety
/// `rem` is null or valid for writes.
unsafe fn put(rem: *mut timespec, d: Duration) {
    if !rem.is_null() {
        // SAFETY: non-null and valid per the caller.
        unsafe {
            *rem = timespec {
                tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            }
        };
    }
}

fn to_duration(ts: &timespec) -> Option<Duration> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

fn now(clock: clockid_t) -> Option<Duration> {
    let mut ts = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the call.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    to_duration(&ts)
}

/// Interposed `clock_nanosleep(3)`.
///
/// # Safety
/// The C contract: `req` points to a valid `timespec`; `rem` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    if active() && !req.is_null() {
        // SAFETY: non-null and valid per the C contract.
        if let Some(want) = to_duration(unsafe { &*req }) {
            let d = if flags & libc::TIMER_ABSTIME != 0 {
                now(clock).map(|n| want.saturating_sub(n))
            } else {
                Some(want)
            };
            if let Some(d) = d {
                return match green_sleep(d) {
                    Slept::Done => 0,
                    Slept::Interrupted(left) => {
                        if flags & libc::TIMER_ABSTIME == 0 {
                            // SAFETY: `rem` is null or valid per the C contract.
                            unsafe { put(rem, left) };
                        }
                        libc::EINTR
                    }
                };
            }
        }
    }
    // SAFETY: forwards the caller's arguments to the system call unchanged.
    let r = unsafe { libc::syscall(libc::SYS_clock_nanosleep, clock, flags, req, rem) };
    if r == 0 {
        0
    } else {
        super::errno()
    }
}

/// Interposed `nanosleep(2)`.
///
/// # Safety
/// The C contract: `req` points to a valid `timespec`; `rem` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    if active() && !req.is_null() {
        // SAFETY: non-null and valid per the C contract.
        match to_duration(unsafe { &*req }) {
            Some(d) => {
                return match green_sleep(d) {
                    Slept::Done => 0,
                    Slept::Interrupted(left) => {
                        // SAFETY: `rem` is null or valid per the C contract.
                        unsafe { put(rem, left) };
                        set_errno(libc::EINTR);
                        -1
                    }
                };
            }
            None => {
                set_errno(libc::EINVAL);
                return -1;
            }
        }
    }
    // SAFETY: forwards the caller's arguments to the system call unchanged.
    unsafe { libc::syscall(libc::SYS_nanosleep, req, rem) as c_int }
}

/// Interposed `usleep(3)`.
///
/// # Safety
/// None beyond the C function's (it takes no pointers); `unsafe` because it is an FFI export.
#[no_mangle]
pub unsafe extern "C" fn usleep(usec: libc::useconds_t) -> c_int {
    let ts = timespec {
        tv_sec: (usec / 1_000_000) as libc::time_t,
        tv_nsec: ((usec % 1_000_000) * 1000) as libc::c_long,
    };
    // SAFETY: `ts` is valid; `rem` may be null.
    unsafe { nanosleep(&ts, std::ptr::null_mut()) }
}

/// Interposed `sleep(3)`: returns the seconds left (0 when it slept the whole time).
///
/// # Safety
/// None beyond the C function's; `unsafe` because it is an FFI export.
#[no_mangle]
pub unsafe extern "C" fn sleep(secs: c_uint) -> c_uint {
    let ts = timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    let mut rem = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: both pointers are valid for the call.
    if unsafe { nanosleep(&ts, &mut rem) } == 0 {
        0
    } else {
        // Rounded, as glibc's sleep(3) does.
        rem.tv_sec as c_uint + c_uint::from(rem.tv_nsec >= 500_000_000)
    }
}
