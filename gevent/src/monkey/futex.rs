//! Futex waits of greenlets ([`patch_thread`](super::patch_thread)): std's `Mutex`, `Condvar`,
//! `RwLock`, `Once`, `Barrier`, `thread::park` and the channels built on them; and
//! `JoinHandle::join` ([`pthread_join`]).
//!
//! They all block in `syscall(SYS_futex, ...)` through glibc's `syscall` symbol. `csrc/syscall.c`
//! defines that symbol (a variadic function: C) and hands `SYS_futex` to [`gevent_futex`] once
//! [`link`] turned it on; every other number goes straight to the kernel.
//!
//! - A `FUTEX_WAIT`/`FUTEX_WAIT_BITSET` (private or not) of a greenlet other than the hub parks it
//!   in [`TABLE`], keyed by the word's address, after re-checking the word under the table's lock
//!   (`EAGAIN` if it moved). It returns 0 when a wake reaches it or the word no longer holds the
//!   expected value, `ETIMEDOUT` at the timeout, `EINTR` for a signal handler, `ECANCELED` for a kill
//!   and `ETIMEDOUT` for a [`Timeout`](crate::Timeout) (both raised at the greenlet's next gevent
//!   wait, see `super::park`).
//! - A `FUTEX_WAKE`/`FUTEX_WAKE_BITSET` of `n`, from any thread, wakes the first `n` greenlets
//!   parked on the address (first come, first served; a greenlet leaving its wait when the wake
//!   reaches it reports the wake, so none is lost), and calls the kernel for the rest, for OS
//!   threads. When greenlets took all `n`, the kernel call is skipped (futex semantics allow it,
//!   and it is most of a hand-off's cost) unless OS threads wait on an address of the same
//!   [`Shard`] ([`kernel_wait`] counts them while greenlets are parked): greenlets must not
//!   starve them. `WAKE_OP`, `REQUEUE` and `CMP_REQUEUE` wake every greenlet on the address (they
//!   re-check) and call the kernel. Greenlets of the waker's own thread are woken directly; those
//!   of other threads through their hub's [`HubHandle`].
//! - A wake that bypasses the hook (a raw `syscall` instruction, another library's private futex)
//!   is caught by re-reading the word ([`sweep_words`]: one timer per thread while its greenlets
//!   wait, each word re-read 1 ms after parking, then at intervals doubling to 50 ms).
//! - Two kinds of words are apart: the thread's std parker, shared by all its greenlets ([`parker`],
//!   [`around_sleep`]); and words in thread-local storage (parking_lot's per-thread wait state),
//!   whose waits block the thread ([`in_thread_tls`]) and are reported when that lasts
//!   ([`blocking_wait`]).
//! - parking_lot, built on this repository's patched parking_lot_core, waits on a per-greenlet
//!   `ThreadData` ([`super::lots`]) whose word is on the heap: an ordinary word, parked on
//!   cooperatively. The thread-local fallback above is for builds without the patch (and
//!   parking_lot_core 0.10), and for hubs, which keep using their thread's own.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{fence, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use libc::{c_int, c_long, timespec};

use super::intr::Intr;
use crate::hub::{HubHandle, Waiter};

extern "C" {
    /// Read by the shim before it calls [`gevent_futex`]; set by [`link`].
    static gevent_futex_on: AtomicI32;
    /// Defined in the shim's object: taking its address keeps the object (and its `syscall`).
    fn gevent_syscall_shim_link();
}

const FUTEX_WAIT: c_int = 0;
const FUTEX_WAKE: c_int = 1;
const FUTEX_REQUEUE: c_int = 3;
const FUTEX_CMP_REQUEUE: c_int = 4;
const FUTEX_WAKE_OP: c_int = 5;
const FUTEX_WAIT_BITSET: c_int = 9;
const FUTEX_WAKE_BITSET: c_int = 10;
const FUTEX_PRIVATE_FLAG: c_int = 128;
const FUTEX_CLOCK_REALTIME: c_int = 256;

/// The interval between re-checks of a parked word ([`sweep_words`]), doubled up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(1);
const MAX_BACKOFF: Duration = Duration::from_millis(50);
/// How often greenlets waiting on the thread's std parker all re-check (see [`poll_parker`]).
const PARKER_SWEEP: Duration = Duration::from_millis(50);

/// std's parker states (library/std/src/sys/sync/thread_parking/futex.rs).
const EMPTY: u32 = 0;
const NOTIFIED: u32 = 1;
const PARKED_STATE: u32 = u32::MAX;

/// Turns the futex hook on (the shim passes `SYS_futex` through until then).
pub(super) fn link() {
    std::hint::black_box((
        gevent_syscall_shim_link as unsafe extern "C" fn(),
        pthread_join as *const (),
    ));
    // SAFETY: the shim defines `gevent_futex_on` as a plain `int`, which `AtomicI32` matches in
    // size and alignment; it is only ever accessed atomically.
    unsafe { gevent_futex_on.store(1, Ordering::Relaxed) };
    let f: fn(bool) -> bool = around_sleep;
    let _ = crate::hub::AROUND_SLEEP.set(f);
}

/// One greenlet parked on a futex word.
struct Entry {
    addr: usize,
    bitset: u32,
    /// The greenlet's thread ([`thread_key`]).
    owner: usize,
    id: u64,
    /// Its hub, for wakes from other threads.
    hub: HubHandle,
    /// A wait on its thread's std parker (see [`parker`]).
    parker: bool,
}

/// One shard of the wait table: the greenlets parked on the addresses that hash to it.
#[repr(align(64))]
struct Shard {
    entries: Mutex<Vec<Entry>>,
    /// OS threads (and hubs) in a kernel futex wait, through the shim, on an address of this
    /// shard, counted while any greenlet is parked (see [`kernel_wait`]): a wake that woke as many
    /// greenlets as it asked skips the kernel only when this is 0, so that greenlets do not starve
    /// the OS threads waiting on the same word.
    kernel: AtomicUsize,
    /// Wakes of this shard that skipped the kernel: every [`FORCE_KERNEL`]th calls it anyway,
    /// for OS threads that went to the kernel uncounted (while no greenlet was parked).
    skips: AtomicUsize,
}

/// See [`Shard::skips`]: an OS thread waits at most this many greenlet hand-offs on its word.
const FORCE_KERNEL: usize = 32;

const SHARDS: usize = 64;

/// Every parked greenlet of the process (wakes come from any thread), by address.
static TABLE: [Shard; SHARDS] = [const {
    Shard {
        entries: Mutex::new(Vec::new()),
        kernel: AtomicUsize::new(0),
        skips: AtomicUsize::new(0),
    }
}; SHARDS];
/// How many entries the table holds, read without a lock: a wake with nothing parked goes
/// straight to the kernel.
static PARKED: AtomicUsize = AtomicUsize::new(0);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A parked greenlet's side of its entry, on its own thread.
struct Slot {
    id: u64,
    /// Set by a wake through the table.
    hit: Cell<bool>,
    /// The waiter of the current step of the wait.
    waiter: RefCell<Rc<Waiter>>,
    /// A wait on this thread's std parker (see [`parker`]).
    parker: bool,
    /// The word and the value it waits on, for [`sweep_words`].
    word: usize,
    expected: u32,
    /// When [`sweep_words`] next re-reads the word (`None`: at its next run), and the interval
    /// after that.
    next_check: Cell<Option<Instant>>,
    backoff: Cell<Duration>,
}

thread_local! {
    /// This thread's parked greenlets.
    static LOCAL: RefCell<Vec<Rc<Slot>>> = const { RefCell::new(Vec::new()) };
    /// Set while this thread is inside the hook's own bookkeeping: a futex call made from there
    /// (the table's lock, a hub's queue) goes to the kernel.
    static BUSY: Cell<bool> = const { Cell::new(false) };
    /// Identifies the thread (its address).
    static KEY: u8 = const { 0 };
    /// The word of this thread's last futex wait that found it changed (`EAGAIN`), to notice a
    /// caller that retries in a loop.
    static LAST_EAGAIN: Cell<usize> = const { Cell::new(0) };
}

fn thread_key() -> usize {
    KEY.with(|k| k as *const u8 as usize)
}

/// Marks this thread busy in the hook for its lifetime.
struct Busy;

impl Busy {
    /// `None` if the thread is already busy (or its thread-locals are gone).
    fn enter() -> Option<Busy> {
        match BUSY.try_with(|b| b.replace(true)) {
            Ok(false) => Some(Busy),
            _ => None,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = BUSY.try_with(|b| b.set(false));
    }
}

fn shard_of(addr: usize) -> &'static Shard {
    // Fibonacci hashing: the top bits of the product spread word addresses over the shards.
    &TABLE[(addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) as usize
        >> (64 - SHARDS.trailing_zeros())]
}

fn table(addr: usize) -> MutexGuard<'static, Vec<Entry>> {
    shard_of(addr)
        .entries
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// How many greenlets of this thread are parked in futex waits (tests check that kills and
/// timeouts leave none behind).
#[doc(hidden)]
pub fn parked_count() -> usize {
    let me = thread_key();
    let _busy = Busy::enter();
    TABLE
        .iter()
        .map(|sh| {
            let t = sh.entries.lock().unwrap_or_else(|e| e.into_inner());
            t.iter().filter(|e| e.owner == me).count()
        })
        .sum()
}

/// Called by the shim for every `SYS_futex` while the hook is on. Returns 1 with the result in
/// `*out` (and errno set on failure) when it handled the call, 0 to let the shim make it.
///
/// # Safety
/// The arguments are those of a `futex(2)` call, under its contract (`uaddr` valid for the
/// operation, `timeout` null or a valid `timespec` for waits); `out` is valid for writes.
#[no_mangle]
pub unsafe extern "C" fn gevent_futex(
    uaddr: c_long,
    op: c_long,
    val: c_long,
    timeout: c_long,
    uaddr2: c_long,
    val3: c_long,
    out: *mut c_long,
) -> c_int {
    let op = op as c_int;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            if PROBING.try_with(|p| p.get()).unwrap_or(false) {
                PROBED.set(uaddr as usize);
                super::set_errno(libc::ETIMEDOUT);
                // SAFETY: `out` is valid for writes per the shim's contract.
                unsafe { *out = -1 };
                return 1;
            }
            if uaddr == 0 || uaddr % 4 != 0 {
                return 0;
            }
            if !super::cooperative() {
                // SAFETY: the caller's futex call, unchanged; `out` as above.
                return unsafe { kernel_wait(uaddr, op, val, timeout, uaddr2, val3, out) };
            }
            let bitset = if cmd == FUTEX_WAIT {
                u32::MAX
            } else {
                val3 as u32
            };
            if bitset == 0 {
                return 0; // EINVAL, from the kernel
            }
            let ts = timeout as *const timespec;
            let deadline = if ts.is_null() {
                None
            } else {
                // SAFETY: a non-null timeout is a valid timespec per the futex contract.
                let Some(d) = to_duration(unsafe { &*ts }) else {
                    return 0; // EINVAL, from the kernel
                };
                let rel = if cmd == FUTEX_WAIT {
                    Some(d)
                } else {
                    let clock = if op & FUTEX_CLOCK_REALTIME != 0 {
                        libc::CLOCK_REALTIME
                    } else {
                        libc::CLOCK_MONOTONIC
                    };
                    now(clock).map(|n| d.saturating_sub(n))
                };
                match rel {
                    // Too far to represent: as good as no timeout.
                    Some(rel) => Instant::now().checked_add(rel),
                    None => return 0,
                }
            };
            let Some(busy) = Busy::enter() else {
                return 0;
            };
            drop(busy);
            if LOCAL.try_with(|_| ()).is_err() {
                return 0; // the thread is exiting
            }
            if in_thread_tls(uaddr as usize) {
                // Per-thread wait state (parking_lot's): see `in_thread_tls`.
                // SAFETY: the caller's futex wait, with its word, value and bitset; `out` as above.
                return unsafe { blocking_wait(uaddr, op, val, bitset, deadline, out) };
            }
            // SAFETY: `uaddr` is a 4-byte aligned futex word, valid per the futex contract for
            // as long as a waiter may wait on it; it is only read (atomically).
            let word = unsafe { &*(uaddr as *const AtomicU32) };
            let r = wait(
                word,
                val as u32,
                bitset,
                deadline,
                uaddr as usize == parker(),
            );
            // SAFETY: `out` is valid for writes per the shim's contract.
            unsafe {
                *out = match r {
                    Ok(()) => 0,
                    Err(e) => {
                        super::set_errno(e);
                        -1
                    }
                }
            };
            1
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET | FUTEX_WAKE_OP | FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            // Pairs with the waiter's increment of PARKED before it reads the word: either the
            // waiter sees the new value, or this load sees the waiter.
            fence(Ordering::SeqCst);
            if PARKED.load(Ordering::SeqCst) == 0 {
                return 0;
            }
            let Some(_busy) = Busy::enter() else {
                return 0;
            };
            let mask = if cmd == FUTEX_WAKE_BITSET {
                val3 as u32
            } else {
                u32::MAX
            };
            // A plain wake asks for `val` waiters (the kernel wakes one for 0 or less); the
            // others wake every greenlet parked on the address (and leave requeueing to the
            // kernel: a greenlet is woken instead, and re-checks).
            let counted = matches!(cmd, FUTEX_WAKE | FUTEX_WAKE_BITSET);
            let limit = if counted {
                (val as i32).max(1) as usize
            } else {
                usize::MAX
            };
            let (mut woken, parker) = wake(uaddr as usize, mask, limit);
            if cmd == FUTEX_WAKE_OP {
                woken += wake(uaddr2 as usize, u32::MAX, usize::MAX).0;
            }
            // Greenlets took every wake asked for: the kernel's waiters need none (futex
            // semantics: a wake of n wakes at most n), unless OS threads wait there, whom
            // greenlets must not starve (they then get theirs too: a spurious wakeup at worst).
            // Those that went to the kernel while no greenlet was parked are not counted: they
            // get every FORCE_KERNEL-th wake of the shard.
            let shard = shard_of(uaddr as usize);
            // A thread's std parker word: its own thread may wait on it in the kernel too.
            if counted
                && !parker
                && woken >= limit
                && shard.kernel.load(Ordering::SeqCst) == 0
                && shard.skips.fetch_add(1, Ordering::Relaxed) % FORCE_KERNEL != FORCE_KERNEL - 1
            {
                // SAFETY: `out` is valid for writes per the shim's contract.
                unsafe { *out = woken as c_long };
                return 1;
            }
            let kval = if counted && woken < limit {
                (limit - woken) as c_long
            } else {
                val
            };
            // SAFETY: the caller's futex call, with the count of waiters still to wake.
            let r = unsafe {
                super::sys6(
                    libc::SYS_futex,
                    uaddr as usize,
                    op as usize,
                    kval as usize,
                    timeout as usize,
                    uaddr2 as usize,
                    val3 as usize,
                )
            };
            // SAFETY: `out` is valid for writes per the shim's contract.
            unsafe {
                *out = if r >= 0 && matches!(cmd, FUTEX_WAKE | FUTEX_WAKE_BITSET) {
                    r as c_long + woken as c_long
                } else {
                    r as c_long
                }
            };
            1
        }
        _ => 0,
    }
}

/// A futex wait that goes to the kernel (outside greenlets, or the hub's own), counted in its
/// address's [`Shard::kernel`] while any greenlet is parked anywhere; otherwise (the only case
/// of a program whose greenlets never wait on a futex) returns 0 for the shim to make the call,
/// at the cost of one load.
///
/// # Safety
/// As [`gevent_futex`], for a wait.
unsafe fn kernel_wait(
    uaddr: c_long,
    op: c_int,
    val: c_long,
    timeout: c_long,
    uaddr2: c_long,
    val3: c_long,
    out: *mut c_long,
) -> c_int {
    if PARKED.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    // Off x86_64, sys6 is `syscall(3)`: the nested call finds the thread busy and passes.
    let Some(_busy) = Busy::enter() else {
        return 0;
    };
    let kernel = &shard_of(uaddr as usize).kernel;
    kernel.fetch_add(1, Ordering::SeqCst);
    // SAFETY: the caller's futex call, unchanged.
    let r = unsafe {
        super::sys6(
            libc::SYS_futex,
            uaddr as usize,
            op as usize,
            val as usize,
            timeout as usize,
            uaddr2 as usize,
            val3 as usize,
        )
    };
    kernel.fetch_sub(1, Ordering::SeqCst);
    // SAFETY: `out` is valid for writes per the caller's contract.
    unsafe { *out = r as c_long };
    1
}

fn to_duration(ts: &timespec) -> Option<Duration> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

fn now(clock: libc::clockid_t) -> Option<Duration> {
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

/// How long a greenlet's futex wait on per-thread state blocks its thread before
/// [`blocking_wait`] says so on stderr (the monitor's default threshold).
const BLOCKING_WARN: Duration = Duration::from_millis(100);
/// How many waits [`blocking_wait`] reported.
static BLOCKING_REPORTED: AtomicUsize = AtomicUsize::new(0);

/// How many futex waits of greenlets on per-thread state (parking_lot's) blocked their thread
/// for longer than 100 ms, process-wide: each was reported on stderr (the first with the
/// explanation). Tests check that the failure is loud.
#[doc(hidden)]
pub fn blocking_waits() -> usize {
    BLOCKING_REPORTED.load(Ordering::Relaxed)
}

/// A greenlet's futex wait on a word in thread-local storage ([`in_thread_tls`]): it cannot be
/// parked per greenlet, so it blocks the thread, as without the hook; but not silently. The
/// kernel wait is cut at [`BLOCKING_WARN`]: if it is still waiting then, stderr says which wait
/// blocks the hub and why (parking_lot, r2d2: a deadlock if what it waits for is another
/// greenlet of this thread), and the wait goes on to the caller's own timeout. Returns 1 with
/// the result in `*out`, as [`gevent_futex`] does.
///
/// # Safety
/// `uaddr`, `op`, `val` and `bitset` are those of the caller's futex wait, under its contract;
/// `out` is valid for writes.
unsafe fn blocking_wait(
    uaddr: c_long,
    op: c_int,
    val: c_long,
    bitset: u32,
    deadline: Option<Instant>,
    out: *mut c_long,
) -> c_int {
    // A futex call from here (sys6 is `syscall(3)` off x86_64) goes straight to the kernel.
    let busy = Busy::enter();
    let saved = super::errno();
    // Both steps wait with FUTEX_WAIT_BITSET, whose timeout is absolute on CLOCK_MONOTONIC (the
    // clock of `Instant`): the second step's deadline is the caller's, not restarted.
    let wait_until = |until: Option<Instant>| -> Result<(), c_int> {
        let ts = until.map(|until| {
            let at = now(libc::CLOCK_MONOTONIC).unwrap_or_default()
                + until.saturating_duration_since(Instant::now());
            timespec {
                tv_sec: at.as_secs() as libc::time_t,
                tv_nsec: at.subsec_nanos() as c_long,
            }
        });
        let tsp = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const timespec);
        let cmd = FUTEX_WAIT_BITSET | (op & FUTEX_PRIVATE_FLAG);
        // SAFETY: the caller's futex word and value, per its contract; `tsp` is null or points to
        // `ts`, alive for the call.
        let r = unsafe {
            super::sys6(
                libc::SYS_futex,
                uaddr as usize,
                cmd as usize,
                val as usize,
                tsp as usize,
                0,
                bitset as usize,
            )
        };
        if r < 0 {
            Err(super::errno())
        } else {
            Ok(())
        }
    };
    let first = Instant::now() + BLOCKING_WARN;
    let mut r = wait_until(Some(deadline.map_or(first, |d| d.min(first))));
    if r == Err(libc::ETIMEDOUT) && deadline.is_none_or(|d| d > first) {
        let n = BLOCKING_REPORTED.fetch_add(1, Ordering::Relaxed);
        if n == 0 {
            eprintln!(
                "gevent: monkey: a greenlet has blocked its thread and hub for {BLOCKING_WARN:?} \
                 in a futex wait on per-thread state, which cannot be made cooperative: most \
                 likely parking_lot's Mutex, Condvar or RwLock (an r2d2 pool waiting for a free \
                 connection is one) in a build that does not patch parking_lot_core with \
                 gevent's fork (vendor/parking_lot_core), or parking_lot 0.13. The thread's \
                 other greenlets wait until it returns: a deadlock, if what it waits for is one \
                 of them. See the gevent::monkey docs, \"parking_lot\", for the [patch.crates-io] \
                 entry that makes it cooperative and what to do otherwise (said once; the \
                 monitor gives the backtrace)."
            );
        }
        r = wait_until(deadline);
    }
    drop(busy);
    // SAFETY: `out` is valid for writes per the caller's contract.
    unsafe {
        *out = match r {
            Ok(()) => {
                super::set_errno(saved); // the first step's ETIMEDOUT is not the caller's
                0
            }
            Err(e) => {
                super::set_errno(e);
                -1
            }
        }
    };
    1
}

thread_local! {
    /// This thread's blocks of static and dynamic TLS (start, length), found on first use.
    static TLS: RefCell<Option<Vec<(usize, usize)>>> = const { RefCell::new(None) };
}

/// Whether `addr` lies in one of this thread's thread-local storage blocks.
///
/// A futex word there is per-thread wait state, shared by every greenlet of the thread:
/// parking_lot keeps each thread's `ThreadData` (its futex word and the links of the wait queues
/// it sits in) in a `thread_local!`. A second greenlet of the thread entering parking_lot's `park`
/// while a first one is parked would link the same `ThreadData` into a second queue and corrupt
/// both. Such waits therefore block the thread, as without the hook: only one greenlet at a time
/// is ever inside them. (With the patched parking_lot_core, greenlets wait on a `ThreadData` of
/// their own, on the heap, and never come here: see [`super::lots`].)
fn in_thread_tls(addr: usize) -> bool {
    TLS.try_with(|t| {
        let mut t = t.borrow_mut();
        t.get_or_insert_with(tls_blocks)
            .iter()
            .any(|&(start, len)| addr.wrapping_sub(start) < len)
    })
    .unwrap_or(true)
}

/// This thread's TLS blocks: for each loaded object with a `PT_TLS` segment whose block this
/// thread has, `dlpi_tls_data` (this thread's copy) and the segment's size.
fn tls_blocks() -> Vec<(usize, usize)> {
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> c_int {
        // SAFETY: dl_iterate_phdr passes a valid `info` for the duration of the callback, and
        // `data` is the `Vec` handed to it below.
        let (info, out) = unsafe { (&*info, &mut *(data as *mut Vec<(usize, usize)>)) };
        if info.dlpi_tls_data.is_null() || info.dlpi_phdr.is_null() {
            return 0;
        }
        // SAFETY: `dlpi_phdr` points to `dlpi_phnum` program headers.
        let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
        for ph in phdrs {
            if ph.p_type == libc::PT_TLS {
                out.push((info.dlpi_tls_data as usize, ph.p_memsz as usize));
            }
        }
        0
    }
    let mut out: Vec<(usize, usize)> = Vec::new();
    // SAFETY: `each` matches the callback's contract; `out` outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(each), &mut out as *mut _ as *mut libc::c_void) };
    out
}

thread_local! {
    /// The address of this thread's std parker (0 until found).
    static PARKER: Cell<usize> = const { Cell::new(0) };
    /// Set while [`parker`] probes: the hook records the word of the futex wait and returns.
    static PROBING: Cell<bool> = const { Cell::new(false) };
    static PROBED: Cell<usize> = const { Cell::new(0) };
    /// Whether [`poll_parker`] is armed.
    static POLLING: Cell<bool> = const { Cell::new(false) };
    /// Greenlets of this thread waiting on its std parker.
    static PARKER_WAITERS: Cell<usize> = const { Cell::new(0) };
}

/// The futex word of this thread's std parker (`thread::park`, and so every std channel
/// receive and `Once` wait), found once per thread by parking with a zero timeout while the hook
/// records the word; 0 if that failed.
///
/// All greenlets of a thread share it: std parks threads, not greenlets. Its waits are handled
/// apart ([`wait_parked`]): the word is kept EMPTY while greenlets wait on it (so that the next
/// greenlet entering `park` comes to the hook instead of spinning in `park`'s loop), every wait
/// ends with a token left (a spurious wakeup, which `park` allows), [`around_sleep`] lets
/// `unpark`s wake the hub, and [`poll_parker`] sweeps.
fn parker() -> usize {
    let known = PARKER.try_with(|p| p.get()).unwrap_or(0);
    if known != 0 {
        return known;
    }
    PROBED.set(0);
    PROBING.set(true);
    let probed = std::panic::catch_unwind(|| {
        let me = std::thread::current();
        me.unpark(); // EMPTY -> NOTIFIED (or PARKED -> NOTIFIED and a wake)
        std::thread::park_timeout(Duration::ZERO); // takes the token
        std::thread::park_timeout(Duration::ZERO); // EMPTY -> PARKED, waits: recorded
        me
    });
    PROBING.set(false);
    if let Ok(me) = probed {
        // A token that was there before the probe is given back (at worst a spurious wakeup).
        me.unpark();
    }
    let addr = PROBED.get();
    PARKER.set(addr);
    addr
}

/// Arms this thread's [`poll_parker`] if it is not.
fn watch_parker(hub: &crate::hub::Hub) {
    if !POLLING.replace(true) {
        hub.add_timer(Instant::now() + PARKER_SWEEP, poll_parker);
    }
}

thread_local! {
    /// The hub in which [`sweep_words`] is armed. A `Weak`, so that a hub replacing it on this
    /// thread cannot have its address (and be taken for it).
    static SWEEP: RefCell<Option<std::rc::Weak<crate::hub::Hub>>> = const { RefCell::new(None) };
}

/// Arms this thread's [`sweep_words`] in `hub` if it is not.
fn watch_words(hub: &Rc<crate::hub::Hub>) {
    let armed = SWEEP.with(|s| {
        s.borrow()
            .as_ref()
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), Rc::as_ptr(hub)))
    });
    if !armed {
        hub.add_timer(Instant::now() + FIRST_BACKOFF, sweep_words);
        SWEEP.with(|s| *s.borrow_mut() = Some(Rc::downgrade(hub)));
    }
}

/// While greenlets of this thread are parked on futex words (other than its std parker), wakes
/// those whose word no longer holds the value they wait on: a wake that bypassed the hook (a raw
/// `syscall` instruction, another library's own futex) must not strand them. Each word is
/// re-read at the sweep after its greenlet parked, then at intervals doubling from
/// [`FIRST_BACKOFF`] to [`MAX_BACKOFF`]; the sweep re-arms for the earliest and stops when none
/// is parked.
fn sweep_words() {
    let now = Instant::now();
    let mut next: Option<Instant> = None;
    let due: Vec<Rc<Waiter>> = LOCAL.with(|l| {
        let mut due = Vec::new();
        for s in l.borrow().iter().filter(|s| !s.parker) {
            if s.next_check.get().is_none_or(|at| at <= now) {
                // SAFETY: the word of a futex wait in progress on this thread (its slot is
                // listed): valid for the wait's duration, per the futex contract; only read.
                let word = unsafe { &*(s.word as *const AtomicU32) };
                if word.load(Ordering::Acquire) != s.expected {
                    // It re-checks and leaves; should the word be back by then and it park
                    // again, the next sweep looks at once.
                    due.push(s.waiter.borrow().clone());
                    s.next_check.set(None);
                } else {
                    let b = s.backoff.get();
                    s.backoff.set((b * 2).min(MAX_BACKOFF));
                    s.next_check.set(Some(now + b));
                }
            }
            let at = s.next_check.get().unwrap_or(now + FIRST_BACKOFF);
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        due
    });
    for w in due {
        w.wake();
    }
    let hub = crate::hub::get_hub();
    let armed = next.map(|at| {
        hub.add_timer(at.max(now + FIRST_BACKOFF), sweep_words);
        Rc::downgrade(&hub)
    });
    SWEEP.with(|s| *s.borrow_mut() = armed);
}

/// Wakes every greenlet of this thread waiting on its std parker.
fn wake_parker_waiters() {
    let slots: Vec<u64> = LOCAL.with(|l| {
        l.borrow()
            .iter()
            .filter(|s| s.parker)
            .map(|s| s.id)
            .collect()
    });
    for id in slots {
        local_wake(id);
    }
}

/// Every [`PARKER_SWEEP`] while greenlets of this thread wait on its std parker, they all wake and
/// re-check what they wait for: a greenlet about to wait may have taken a token meant for another
/// (std's parker is one per thread: it cannot tell whom a token was for).
fn poll_parker() {
    if PARKER_WAITERS.get() == 0 {
        POLLING.set(false);
        return;
    }
    wake_parker_waiters();
    crate::hub::get_hub().add_timer(Instant::now() + PARKER_SWEEP, poll_parker);
}

/// The hub's [`AROUND_SLEEP`](crate::hub::AROUND_SLEEP). While greenlets of this thread wait on its
/// std parker, the word is EMPTY as long as greenlets run (so that one entering `park` comes to the
/// hook), and PARKED while the hub sleeps, so that an `unpark` from another thread makes its futex
/// wake, which wakes the hub. A token that came while greenlets ran (an `unpark` seeing EMPTY makes
/// no system call) is found before the hub sleeps; one that came while it slept, after: either way
/// they all wake and re-check.
fn around_sleep(before: bool) -> bool {
    if PARKER_WAITERS.try_with(|w| w.get()).unwrap_or(0) == 0 {
        return false;
    }
    let addr = PARKER.with(|p| p.get());
    if addr == 0 {
        return false;
    }
    // SAFETY: `addr` is this thread's std parker word, which lives as long as the thread.
    let word = unsafe { &*(addr as *const AtomicU32) };
    let (from, to) = if before {
        (EMPTY, PARKED_STATE)
    } else {
        (PARKED_STATE, EMPTY)
    };
    match word.compare_exchange(from, to, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => false,
        Err(NOTIFIED) => {
            wake_parker_waiters();
            true
        }
        Err(_) => false,
    }
}

/// Wakes the first `limit` greenlets parked on `addr` whose bitset meets `mask` (all of them if it
/// is a thread's std parker: see [`parker`]); returns how many, and whether it was a parker.
fn wake(addr: usize, mask: u32, limit: usize) -> (usize, bool) {
    let me = thread_key();
    let mut n = 0;
    let mut parker = false;
    let mut remote = Vec::new();
    {
        let mut t = table(addr);
        t.retain(|e| {
            if e.addr == addr && e.bitset & mask != 0 && (e.parker || n < limit) {
                n += 1;
                parker |= e.parker;
                if e.owner == me {
                    // No lock taken, no futex call: a slot flag and the hub's ready queue.
                    local_wake(e.id);
                } else {
                    remote.push((e.id, e.hub.clone()));
                }
                false
            } else {
                true
            }
        });
        PARKED.fetch_sub(n, Ordering::SeqCst);
    }
    for (id, hub) in remote {
        hub.run_callback(move || local_wake(id));
    }
    (n, parker)
}

/// Wakes this thread's parked greenlet `id`, if it still waits.
fn local_wake(id: u64) {
    let w = LOCAL.try_with(|l| {
        l.borrow().iter().find(|s| s.id == id).map(|s| {
            s.hit.set(true);
            s.waiter.borrow().clone()
        })
    });
    if let Ok(Some(w)) = w {
        w.wake();
    }
}

/// A futex wait of the current greenlet (not the hub): see the module docs.
fn wait(
    word: &AtomicU32,
    expected: u32,
    bitset: u32,
    deadline: Option<Instant>,
    parker: bool,
) -> Result<(), c_int> {
    // A kill or Timeout that already landed in an earlier futex wait of this greenlet is raised at
    // its next gevent wait, not here: the callers (`Mutex::lock`) retry until they get the lock,
    // and would spin on a wait that fails at once.
    let stash = crate::hub::take_deferred();
    let r = wait_parked(word, expected, bitset, deadline, parker);
    if let Some(p) = stash {
        crate::hub::defer_unwind(p);
    }
    r
}

fn wait_parked(
    word: &AtomicU32,
    expected: u32,
    bitset: u32,
    deadline: Option<Instant>,
    parker: bool,
) -> Result<(), c_int> {
    let addr = word as *const AtomicU32 as usize;
    let hub = crate::hub::get_hub();
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let owner = thread_key();
    {
        let busy = Busy::enter();
        let mut t = table(addr);
        PARKED.fetch_add(1, Ordering::SeqCst);
        let cur = word.load(Ordering::SeqCst);
        if parker {
            // A token is there (or arrived just now): let `park` take it. Otherwise the word goes
            // back to EMPTY while this greenlet is parked, so that the next greenlet of the thread
            // entering `park` finds EMPTY (and comes here) rather than PARKED, which would make
            // it spin in `park`'s loop without a system call.
            if cur == NOTIFIED
                || word
                    .compare_exchange(cur, EMPTY, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
            {
                PARKED.fetch_sub(1, Ordering::SeqCst);
                word.store(NOTIFIED, Ordering::SeqCst);
                return Ok(());
            }
        } else if cur != expected {
            PARKED.fetch_sub(1, Ordering::SeqCst);
            drop(t);
            drop(busy);
            // A caller retrying on a word that keeps changing under it lets the others run
            // rather than spin in the hub's thread.
            if LAST_EAGAIN.replace(addr) == addr {
                let _ = super::park(Intr::Never, crate::hub::yield_now);
            }
            return Err(libc::EAGAIN);
        }
        t.push(Entry {
            addr,
            bitset,
            owner,
            id,
            hub: hub.handle(),
            parker,
        });
    }
    LAST_EAGAIN.set(0);
    let slot = Rc::new(Slot {
        id,
        hit: Cell::new(false),
        waiter: RefCell::new(Waiter::new()),
        parker,
        word: addr,
        expected,
        next_check: Cell::new(None),
        backoff: Cell::new(FIRST_BACKOFF),
    });
    LOCAL.with(|l| l.borrow_mut().push(slot.clone()));
    // The thread's parker is watched by `poll_parker`, other words by `sweep_words`, for the
    // whole thread: a wait arms no timer of its own unless it has a timeout.
    if parker {
        PARKER_WAITERS.set(PARKER_WAITERS.get() + 1);
        watch_parker(&hub);
    } else {
        watch_words(&hub);
    }
    let res = loop {
        let w = slot.waiter.borrow().clone();
        if slot.hit.get() {
            break Ok(());
        }
        let timer = deadline.map(|deadline| {
            let w2 = w.clone();
            hub.add_timer(deadline, move || {
                w2.wake();
            })
        });
        let r = super::park(Intr::Any, || w.wait());
        if let Some(timer) = timer {
            hub.cancel_timer(timer);
        }
        if slot.hit.get() {
            break Ok(());
        }
        if let Err(e) = r {
            break Err(e); // ETIMEDOUT, ECANCELED (a kill) or EINTR (a signal handler)
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break Err(libc::ETIMEDOUT);
        }
        if parker || word.load(Ordering::Acquire) != expected {
            break Ok(()); // woken by a wake that bypassed the hook, or spuriously
        }
        *slot.waiter.borrow_mut() = Waiter::new();
    };
    LOCAL.with(|l| l.borrow_mut().retain(|s| s.id != id));
    let taken = {
        let _busy = Busy::enter();
        let mut t = table(addr);
        match t.iter().position(|e| e.id == id) {
            Some(i) => {
                t.remove(i); // keeps the others in order: wakes go first come, first served
                PARKED.fetch_sub(1, Ordering::SeqCst);
                false
            }
            None => true,
        }
    };
    if parker {
        PARKER_WAITERS.set(PARKER_WAITERS.get() - 1);
        // Whatever ended the wait, `park`'s loop must see a token to return (a spurious wakeup,
        // which `park` allows; its caller re-checks its condition).
        word.store(NOTIFIED, Ordering::SeqCst);
    }
    // A wake that took the entry is this wait's: report it (a kill or Timeout that landed too is
    // still raised at the next gevent wait), so it is not lost to the other waiters.
    if taken {
        Ok(())
    } else {
        res
    }
}

type JoinFn = unsafe extern "C" fn(libc::pthread_t, *mut *mut libc::c_void) -> c_int;

/// libc's `pthread_join` (the next definition), or null.
fn real_join() -> Option<JoinFn> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mut p = NEXT.load(Ordering::Relaxed);
    if p == 0 {
        // SAFETY: a valid C string; RTLD_NEXT asks for the definition after this object's.
        p = unsafe { libc::dlsym(libc::RTLD_NEXT, c"pthread_join".as_ptr()) } as usize;
        NEXT.store(p, Ordering::Relaxed);
    }
    // SAFETY: a non-null address dlsym gave for "pthread_join" is that function, of this type.
    (p != 0).then(|| unsafe { std::mem::transmute::<usize, JoinFn>(p) })
}

/// Interposed `pthread_join(3)` (what `std::thread::JoinHandle::join` calls; glibc waits for the
/// thread's exit with a futex call of its own, which the `syscall` shim does not see). Inside a
/// greenlet, a helper thread makes the real call while the greenlet waits on a futex word of ours,
/// which the helper wakes through the hook. A kill or Timeout landing meanwhile does not cut the
/// join short (it has no error path that std would not turn into a panic): it is raised at the
/// greenlet's next gevent wait, like those landing in a `Mutex::lock`.
///
/// # Safety
/// The C contract: `thread` is a joinable thread not joined yet; `retval` is null or valid for
/// writes.
#[no_mangle]
pub unsafe extern "C" fn pthread_join(
    thread: libc::pthread_t,
    retval: *mut *mut libc::c_void,
) -> c_int {
    let Some(real) = real_join() else {
        return libc::ENOSYS;
    };
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    if !(super::patched(super::Module::Thread) && super::cooperative()) || thread == me {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real(thread, retval) };
    }
    struct Done {
        word: AtomicU32,
        rc: AtomicI32,
        ret: AtomicUsize,
    }
    let done = std::sync::Arc::new(Done {
        word: AtomicU32::new(0),
        rc: AtomicI32::new(0),
        ret: AtomicUsize::new(0),
    });
    let d2 = done.clone();
    let joiner = std::thread::Builder::new()
        .name("gevent-join".into())
        .spawn(move || {
            let mut ret = std::ptr::null_mut();
            // SAFETY: the caller's thread, joined once, here; `ret` is a valid out-pointer.
            let rc = unsafe { real(thread, &mut ret) };
            d2.rc.store(rc, Ordering::Relaxed);
            d2.ret.store(ret as usize, Ordering::Relaxed);
            d2.word.store(1, Ordering::Release);
            // SAFETY: a futex wake on a live word of ours (through the hook: it wakes the greenlet).
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    &d2.word as *const AtomicU32,
                    FUTEX_WAKE | FUTEX_PRIVATE_FLAG,
                    i32::MAX,
                )
            };
        });
    if joiner.is_err() {
        // No thread to spare: block, as without the hook.
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real(thread, retval) };
    }
    while done.word.load(Ordering::Acquire) == 0 {
        let _ = wait(&done.word, 0, u32::MAX, None, false);
    }
    if !retval.is_null() {
        // SAFETY: non-null and valid for writes per the C contract.
        unsafe { *retval = done.ret.load(Ordering::Relaxed) as *mut libc::c_void };
    }
    done.rc.load(Ordering::Relaxed)
}
