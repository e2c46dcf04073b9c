//! `monkey::patch_all()`: make ordinary blocking Rust and C code cooperative (cargo feature `monkey`).
//!
//! gevent patches Python's modules; here the libc functions that std and C libraries call are
//! interposed: this crate defines them with C linkage, so the executable's calls — std's, and those
//! of every C library it links or `dlopen`s — bind to them. Each hook does the plain system call
//! unless **all** of these hold, in which case it parks the calling greenlet on the hub instead of
//! blocking the thread:
//! - the matching switch ([`patch_all`], [`patch_time`], [`patch_socket`], [`patch_io`],
//!   [`patch_select`], [`patch_dns`], [`patch_thread`]) was called;
//! - this thread has a hub, and the caller is not the hub itself (hub callbacks never yield, and the
//!   hub's own `epoll_wait` — mio calls it through libc — goes straight to the kernel);
//! - the call would block: a socket or pipe in blocking mode without `MSG_DONTWAIT`, a relative
//!   sleep, a `poll`/`select`/`epoll_wait` with a timeout other than zero, a name lookup.
//!
//! Outside greenlets, on other threads (the thread pool's workers included), on non-blocking fds and
//! on fds that are neither sockets nor pipes (TTYs, regular files) — and on fds 0-2 (inherited stdio)
//! for `read`/`write` — behaviour is exactly the system call's: the hooks call the kernel directly
//! (`libc::syscall`), or the next definition (`dlsym(RTLD_NEXT)`) for the name-service functions.
//!
//! | switch | hooks |
//! |---|---|
//! | [`patch_time`] | `clock_nanosleep` (std's sleep), `nanosleep`, `usleep`, `sleep` |
//! | [`patch_socket`] | `recv`, `recvfrom`, `recvmsg`, `send`, `sendto`, `sendmsg`, `accept`, `accept4`, `connect`, `__recv_chk`, `__recvfrom_chk` |
//! | [`patch_io`] | `read`, `readv`, `write`, `writev`, `__read_chk` on sockets and pipes |
//! | [`patch_select`] | `poll`, `ppoll`, `select`, `pselect`, `epoll_wait`, `epoll_pwait`, `__poll_chk`, `__ppoll_chk` |
//! | [`patch_dns`] | `getaddrinfo` (std's `ToSocketAddrs`), `getnameinfo`, `gethostbyname` — on the thread pool |
//! | [`patch_thread`] | `syscall` (its `SYS_futex` waits and wakes: std's `Mutex`, `Condvar`, `RwLock`, `Barrier`, `Once`, `thread::park`, channels), `pthread_join` (`JoinHandle::join`) — see [below](#locks-condvars-channels-and-joins) |
//! | always, once any is on | `close`, `dup2`, `dup3`: a greenlet parked on the fd wakes with `EBADF` |
//! | linked with any switch | `sigaction`, `signal`, `siginterrupt`: handlers interrupt hooked calls (below) |
//!
//! # Semantics kept
//! - **The user's non-blocking mode**: a hook tries the operation without blocking first
//!   (`MSG_DONTWAIT`, or a zero-timeout `poll`) and only when that would block reads the fd's
//!   `O_NONBLOCK` (`fcntl(F_GETFL)`, from the kernel each time, so `fcntl`, `ioctl(FIONBIO)` and dup'd
//!   fds need no hooks and there is no cache to go stale). Non-blocking fds get `EAGAIN` as always.
//!   `O_NONBLOCK` is never changed, except by `connect`, for the duration of the call, on the socket
//!   being connected.
//! - **Timeouts**: `SO_RCVTIMEO` / `SO_SNDTIMEO` give `EAGAIN` at the timeout (`connect`:
//!   `EINPROGRESS`), as the kernel's blocking calls do; a blocking stream `send`/`write`
//!   writes everything (parking as often as needed) unless a timeout or error cuts it short, and then
//!   returns the count written so far, as the kernel does.
//! - **errno** is what the system call would have left: unchanged by the hook's own bookkeeping on
//!   success, the kernel's error on failure. `EINTR` from the kernel is returned, never retried;
//!   a signal interrupts a parked hook as it would the system call (see below).
//!
//! # Linking
//! Each switch takes the address of its hooks, so calling it is what links them: a binary that never
//! calls one gets none (and the plain libc functions). The exception is the `syscall` shim of
//! [`patch_thread`]: gevent's own hooks call `syscall`, so every binary built with the `monkey`
//! feature has it; until [`patch_thread`] is called it passes every call straight to the kernel
//! (its cost: [below](#locks-condvars-channels-and-joins)).
//!
//! # Locks, condvars, channels and joins
//! Under [`patch_thread`], std's `Mutex`, `Condvar`, `RwLock`, `Barrier`, `Once`/`OnceLock`/
//! `LazyLock`, `thread::park`/`unpark`, `std::sync::mpsc` (and everything built on them), and
//! `JoinHandle::join` wait cooperatively: a greenlet that would block in one parks, and the hub
//! runs the others. A `Mutex` held across a switch (`gevent::sleep`, a socket read) no longer
//! freezes the hub when a second greenlet locks it; an OS thread can hand a greenlet a result
//! through a channel or a `Condvar`; a greenlet can join an OS thread.
//!
//! **The rule.** std waits on futexes through glibc's `syscall(SYS_futex, ...)`; a C shim
//! (`csrc/syscall.c`, linked with the `monkey` feature) defines `syscall` and hands `SYS_futex` to
//! gevent. A `FUTEX_WAIT`/`FUTEX_WAIT_BITSET` (private or not) made by a greenlet that is not the
//! hub parks that greenlet, with futex semantics: it parks only while the word still holds the
//! expected value (`EAGAIN` otherwise, checked under the wait table's lock), honours the timeout
//! (`ETIMEDOUT`; relative for `FUTEX_WAIT`, absolute on the asked clock for the bitset form), and
//! may return early (every futex user re-checks). A `FUTEX_WAKE` (and the bitset form) of `n`
//! from any thread or greenlet wakes up to `n` greenlets parked on that address, first come first
//! served, across hubs and threads, and asks the kernel for the rest, for OS threads waiting
//! there; when greenlets took all `n` and no OS thread waits on the word, it makes no system call
//! (with OS threads waiting there, they are woken too, so that greenlets cannot starve them; one
//! that began its wait while no greenlet was parked anywhere is not counted, and gets at least
//! every 32nd such wake of the words that share its shard of the wait table). The
//! `WAKE_OP` and requeue forms wake every greenlet on the address (they re-check) and call the
//! kernel. A wake that bypasses `syscall` (a raw `syscall` instruction, another library's own
//! futex) does not strand a greenlet: its word is re-read about 1 ms after it parked, then at
//! doubling intervals up to every 50 ms (one timer per thread while its greenlets wait). Every other system call number, every
//! call outside greenlets (OS threads, the thread pool) and every call of the hub itself goes to
//! the kernel untouched. `JoinHandle::join` (glibc's `pthread_join` waits with its own futex
//! call, which `syscall` does not see) is interposed too: inside a greenlet the real join runs on
//! a helper thread while the greenlet waits.
//!
//! std parks *threads*: `thread::park` and every channel receive use one parker per OS thread,
//! shared by all its greenlets. Waits on it are handled apart: while greenlets of the thread wait
//! there, the word reads empty as long as greenlets run (so a second greenlet entering `park`
//! reaches the hook instead of spinning in `park`'s loop) and parked while the hub sleeps (so
//! another thread's `unpark` makes its futex wake, which wakes the hub at once); a token that
//! came while greenlets ran is found before the hub sleeps. Every such wait ends with a token left
//! (a spurious wakeup, which `park` allows and std's callers re-check), an `unpark` wakes all the
//! thread's greenlets waiting there to re-check, and every 50 ms they all re-check anyway, for a
//! token that one greenlet took while it was meant for another. So a receive woken by another
//! thread's send resumes at once (a round trip OS thread -> greenlet -> OS thread through two std
//! channels costs about what tokio's channel to a task does, `bench/src/bin/monkey_thread.rs`);
//! with several greenlets of one thread receiving at once, a message can wait up to 50 ms longer.
//!
//! **parking_lot** (`Mutex`, `Condvar`, `RwLock`, and what uses them, such as **r2d2**'s pool
//! waiting for a free connection) is cooperative too, *when the build patches parking_lot_core
//! with the fork in this repository* (`vendor/parking_lot_core`; this workspace does). parking_lot
//! keeps each OS thread's wait state (`ThreadData`: the futex word *and* the links of the wait
//! queue it sits in) in a `thread_local!`, shared by every greenlet of the thread: two greenlets
//! of one thread parked on it at once would link the same `ThreadData` twice and corrupt the
//! queue. The fork asks [`patch_thread`]'s provider (crate `greenlet-park-hook`) for a
//! `ThreadData` per greenlet instead, made on the greenlet's first wait inside parking_lot and
//! freed when it finishes (the main greenlet's, and those of greenlets made directly with the
//! `greenlet` crate, when their thread exits): a few dozen bytes, and one more entry in
//! parking_lot's thread count, which sizes its hash table. Its futex word is an ordinary heap
//! word, parked on as above. So a parking_lot lock held across a switch parks the
//! second locker, and 50 greenlets calling `pool.get()` on an r2d2 pool of 2 connections all get
//! served while the hub runs (tests/monkey_r2d2.rs). A kill or [`Timeout`](crate::Timeout)
//! landing in a *timed* parking_lot wait (`try_lock_for`, `Condvar::wait_for`/`wait_until`,
//! r2d2's `get`) ends it as a timeout at once (r2d2 returns its timeout error); in an untimed one
//! (`lock`, `Condvar::wait`) the greenlet waits on until unparked, as for std's `Mutex::lock`
//! below. What the fork changes is listed in `vendor/parking_lot_core/PATCHED.md`; the fast paths
//! (an uncontended lock and unlock) never reach it.
//!
//! A project of its own gets this by adding to its root `Cargo.toml` (with the path, or `git`
//! URL, of this repository):
//! ```toml
//! [patch.crates-io]
//! parking_lot_core = { path = "../gevent-rs/vendor/parking_lot_core" }
//! ```
//! Without it (and for parking_lot 0.13, whose parking_lot_core 0.10 is not patched), a
//! greenlet's parking_lot waits happen on its thread's wait state, which sits in thread-local
//! storage; gevent recognises such words and lets those waits block the thread, as without the
//! patch (correct, not cooperative). One that blocks a greenlet's thread for more than 100 ms
//! is reported on stderr (once per process) and counted. A parking_lot lock held across a switch
//! by one greenlet and locked by another of the same thread is then a deadlock (a `try_lock_for`
//! or a timed `Condvar` wait ends at its timeout), and an exhausted r2d2 pool freezes its thread
//! until r2d2's `connection_timeout`. The recipes for that case: gate an r2d2 pool with a
//! [`Semaphore`](crate::lock::Semaphore) of its `max_size` permits, taken before `pool.get()` and
//! released after the connection is dropped (so `get` always finds one), or run `pool.get()` on a
//! [`ThreadPool`](crate::threadpool::ThreadPool) (its worker blocks, not the hub); for data
//! shared across switches use std's `Mutex`/`Condvar` (cooperative here) or [`crate::sync`]'s.
//!
//! **What stays blocking** (the monitor reports a greenlet that blocks its hub):
//! - parking_lot's waits, in a build without the patched parking_lot_core, and parking_lot 0.13's
//!   in any build (see above);
//! - spin loops (a lock that spins without a futex wait), a raw `syscall` instruction (rustix's
//!   `linux_raw` backend, inline assembly), io_uring, and glibc's own internal locks (`pthread_mutex`,
//!   `pthread_cond`, `sem_wait`: glibc calls the kernel directly);
//! - std's `ReentrantLock` (the `stdout` lock) counts its owner per OS thread: greenlets of one
//!   thread count as the same owner.
//!
//! **Kills and timeouts.** A kill or [`Timeout`](crate::Timeout) landing in a parked futex wait
//! makes it return (`ECANCELED`, `ETIMEDOUT`) and leaves nothing in the wait table; it is kept and
//! raised as described [below](#kills-timeouts-and-signals-in-hooked-calls). What the std type does
//! with that return differs: `Condvar::wait_timeout` reports a timeout, `Condvar::wait` returns
//! (as a spurious wakeup), `Mutex::lock`, `RwLock`, `Barrier`, `Once`, the channels' `recv` and
//! `JoinHandle::join` have no error path and retry: the greenlet keeps waiting (cooperatively;
//! later futex waits of a greenlet with a kill or timeout pending park normally) until the lock is
//! taken or the message comes, and the kill or timeout is raised at its next gevent wait, or at
//! [`with_timeout`](crate::with_timeout)'s boundary. A wake that reached a greenlet at the same
//! time as the kill or timeout is reported as a wake, so it is not lost to the other waiters.
//!
//! **Cost.** Every `syscall()` call of the process goes through the shim: for numbers other than
//! `SYS_futex`, on x86_64, glibc's own instructions plus one compare and branch (measured with
//! `examples/syscall_cost.rs`: no difference above the noise of the system call itself; elsewhere
//! a C function reading its variadic arguments). A `FUTEX_WAKE` while no greenlet is parked
//! anywhere costs one fence and one load more, a `FUTEX_WAIT` outside greenlets one load (two
//! atomic additions around the kernel's wait while greenlets are parked: it is counted, so that
//! greenlets taking the wakes do not starve it); an uncontended `Mutex::lock`/`unlock` makes no
//! system call and is unchanged. A futex wait in a greenlet costs an entry in a wait table sharded
//! by address (one lock, two small allocations) and no timer unless it has a timeout (one
//! re-check timer per thread covers wakes that bypass the hook); a wake that greenlets take whole
//! makes no system call. Two greenlets taking turns through a futex word cost about 0.2 µs per
//! hand-off (`futex_pingpong_two_greenlets` in `bench/src/bin/monkey_thread.rs`). A std `Mutex`
//! handed between two greenlets costs about 1.4 µs where tokio's `Mutex` between two tasks costs
//! about 0.2 µs: most of it is std's own spin in `Mutex::lock_contended` (100 rounds of a `pause`
//! instruction, about 1.1 µs on the machine measured) before its futex call, which a greenlet
//! runs whenever it finds the lock held by another greenlet and which no hook reaches. A
//! parking_lot `Mutex` handed between two greenlets (with the patched parking_lot_core) costs
//! about 0.7 µs: the fork lets a greenlet park after parking_lot's short spin instead of yielding
//! its thread to the OS seven times (about 4.3 µs). A greenlet's first wait inside parking_lot
//! allocates its `ThreadData`.
//!
//! # What cannot be made cooperative
//! Raw system calls (`libc::syscall` of anything but `SYS_futex`, rustix, io_uring) and variadic
//! functions other than `syscall` (`fcntl`, `ioctl`: not needed, see above) are not interposed. A
//! greenlet that blocks in one freezes its thread's hub; [`crate::monitor`] reports it with its
//! name and backtrace.
//! For data shared across switches, [`crate::sync`]'s `Mutex`, `RwLock` and `Condvar` park the
//! greenlet on any build (with or without this module) and also work across hubs.
//!
//! # Kills, timeouts and signals in hooked calls
//! A kill or [`Timeout`](crate::Timeout) cannot unwind through a C caller (the hook's caller may be
//! C code holding locks). When one lands while a greenlet is parked inside a hook, the hook returns
//! at once, and what the caller sees is:
//!
//! | what landed | sleeps (`nanosleep`, `clock_nanosleep`, `usleep`, `sleep`) | every other hook | name lookups |
//! |---|---|---|---|
//! | a [`Timeout`](crate::Timeout) | return as if completed (0) | `-1`, errno `ETIMEDOUT` (`io::ErrorKind::TimedOut`) | `EAI_SYSTEM`, errno `ETIMEDOUT` |
//! | a kill | return as if completed (0) | `-1`, errno `ECANCELED` | `EAI_SYSTEM`, errno `ECANCELED` |
//! | a signal handler on this thread (see below) | `-1`/`EINTR` (`clock_nanosleep`: returns `EINTR`), the time left in `rem` | `-1`, errno `EINTR` (`io::ErrorKind::Interrupted`) | not interrupted |
//!
//! A kill or timeout is kept and raised at the greenlet's next gevent wait: every later cooperative
//! call of that greenlet fails the same way at once, and the first wait of gevent's own (a
//! `gevent::sleep`, a channel, a join) unwinds as the kill or timeout would have. At the latest it
//! is raised at a boundary: [`with_timeout`](crate::with_timeout) returns `Err(TimeoutError)` for its
//! own timeout even when the code inside swallowed the io error and returned normally (so
//! `with_timeout(d, || std::thread::sleep(long))` and a `ureq` call both give `Err`), and a greenlet
//! that returns normally after a kill landed in a hook ends killed. A timeout that is cancelled or
//! dropped before it was raised is forgotten: it never surfaces at a later, unrelated wait.
//!
//! A C loop that ignores the error and retries forever (or keeps sleeping) cannot be stopped from
//! here; nor can a C library that blocks in a raw system call.
//!
//! **Signals** interrupt hooked calls as the kernel interrupts the real ones (signal(7)): a handler
//! running on the thread ends the hooked calls its greenlets are parked in when the kernel would
//! end them — `read`, `write`, `recv`, `send` (and their variants), `accept`, `connect` only if the
//! handler was installed without `SA_RESTART` or the socket has `SO_RCVTIMEO`/`SO_SNDTIMEO`;
//! sleeps, `poll`, `select`, `epoll_wait` (and their variants) whatever the flags. A call that
//! already moved data returns the count instead, as the kernel does. So that this works,
//! `sigaction`, `signal` and `siginterrupt` are interposed: a handler is installed wrapped in an
//! async-signal-safe function that counts the signal for its thread, wakes the thread's hub through
//! an eventfd, and calls the handler with the kernel's arguments; `sigaction` reports the handler
//! and flags that were asked for. `SIG_DFL`, `SIG_IGN` and the fault signals (`SIGSEGV`, `SIGBUS`,
//! `SIGILL`, `SIGFPE`, `SIGTRAP`, `SIGSYS`) are installed as they are. std's `thread::sleep`
//! retries on `EINTR`, so it sleeps on after a handler ran, exactly as without the hooks.

//! # fork
//! A raw `fork()` (`libc::fork`, a C library's, `std::process::Command` with `pre_exec`) needs no
//! hook: gevent's `pthread_atfork` child handler, registered with the first hub whether or not
//! this module is used, marks the hub stale and the child rebuilds it at its next use (see
//! [`crate::os`], which also says why this beats interposing `fork`). A greenlet of the child
//! parked in a hook at the fork gets `-1`/`EBADF` there, never the parent's data; a `pre_exec`
//! closure may `close` inherited fds (the hook leaves the parent's registrations alone).
//!
//! # Limits
//! - `ppoll`/`pselect`/`epoll_pwait`'s signal mask is not applied while the greenlet is parked.
//! - A signal interrupts the hooked calls of the thread the kernel delivered it to (for `kill(2)`,
//!   a process-directed signal, usually the main thread; `pthread_kill`/`raise` pick the thread).
//!   Handlers installed through `sigset`, `sysv_signal` or a raw `rt_sigaction` system call are not
//!   wrapped and do not interrupt hooked calls; until a wrapped handler was installed once, hooks
//!   record nothing for signals (a call parked before that is not interrupted).
//! - `close` of an fd that a greenlet of *another* thread's hub is parked on does not wake it.
//! - A thread keeps its registration of an fd its greenlets waited on (fds below 65536) until the fd
//!   is closed through the hooks (`close`, `dup2`, `dup3`, on any thread). An fd closed by a raw
//!   system call (`close_range`, `syscall(SYS_close)`) whose number is then reused for another
//!   socket, waited on by a greenlet of that thread, would wait on the dead registration.
//! - `writev` of more than `PIPE_BUF` bytes to a blocking pipe parks until the pipe is writable, then
//!   may block the thread for the rest (a plain `write` is split and never blocks).

mod dns;
mod fd;
mod futex;
#[doc(hidden)]
pub use futex::{blocking_waits, parked_count};
mod intr;
mod lots;
#[doc(hidden)]
pub use lots::wait_states as parking_lot_wait_states;
mod net;
mod poll;
mod rw;
mod time;

use std::sync::atomic::{AtomicU8, Ordering};

/// Which hook groups are on: one bit per switch.
static PATCHED: AtomicU8 = AtomicU8::new(0);

/// A group of hooks, as turned on by one switch (gevent's module names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Module {
    /// [`patch_time`].
    Time = 1,
    /// [`patch_socket`].
    Socket = 2,
    /// [`patch_io`].
    Io = 4,
    /// [`patch_select`].
    Select = 8,
    /// [`patch_dns`].
    Dns = 16,
    /// [`patch_thread`].
    Thread = 32,
}

const ALL: u8 = Module::Time as u8
    | Module::Socket as u8
    | Module::Io as u8
    | Module::Select as u8
    | Module::Dns as u8
    | Module::Thread as u8;

/// Patches everything this module can: [`patch_time`], [`patch_socket`], [`patch_io`],
/// [`patch_select`], [`patch_dns`] and [`patch_thread`].
///
/// # Examples
/// ```
/// use std::time::{Duration, Instant};
/// gevent::monkey::patch_all();
/// let t = Instant::now();
/// let sleepers: Vec<_> = (0..10)
///     .map(|_| gevent::spawn(|| std::thread::sleep(Duration::from_millis(200))))
///     .collect();
/// gevent::joinall(&sleepers);
/// // The ten std sleeps overlapped: one after the other they would take 2 s.
/// assert!(t.elapsed() < Duration::from_secs(1));
/// ```
pub fn patch_all() {
    patch_time();
    patch_socket();
    patch_io();
    patch_select();
    patch_dns();
    patch_thread();
}

fn turn_on(m: Module) {
    fd::link();
    intr::link();
    PATCHED.fetch_or(m as u8, Ordering::SeqCst);
}

/// Makes `std::thread::sleep`, `nanosleep`, `clock_nanosleep`, `usleep` and `sleep` cooperative.
pub fn patch_time() {
    time::link();
    turn_on(Module::Time);
}

/// Makes blocking `recv`, `recvfrom`, `recvmsg`, `send`, `sendto`, `sendmsg`, `accept`, `accept4`
/// and `connect` on sockets cooperative (what `std::net::TcpStream`, `TcpListener` and `UdpSocket`
/// call), with the `_chk` variants of fortified C code.
pub fn patch_socket() {
    net::link();
    turn_on(Module::Socket);
}

/// Makes blocking `read`, `readv`, `write`, `writev` (and `__read_chk`) cooperative on sockets and
/// pipes (what `std::os::unix::net::UnixStream`, `std::process` pipes and C code call). Never on
/// TTYs, regular files or fds 0-2.
pub fn patch_io() {
    rw::link();
    turn_on(Module::Io);
}

/// Makes `poll`, `ppoll`, `select`, `pselect`, `epoll_wait` and `epoll_pwait` with a non-zero timeout
/// cooperative (what `TcpStream::connect_timeout` and C event loops call).
pub fn patch_select() {
    poll::link();
    turn_on(Module::Select);
}

/// Runs `getaddrinfo` (what `ToSocketAddrs` calls), `getnameinfo` and `gethostbyname` on the hub's
/// thread pool ([`crate::threadpool::default_pool`]) while the calling greenlet waits.
pub fn patch_dns() {
    dns::link();
    turn_on(Module::Dns);
}

/// Makes std's futex waits cooperative: `Mutex`, `Condvar`, `RwLock`, `Barrier`,
/// `Once`/`OnceLock`, `thread::park`, `std::sync::mpsc` receives, and `JoinHandle::join` of an OS
/// thread; and parking_lot's, when the build patches parking_lot_core with this repository's fork
/// (installs the per-greenlet wait state it asks for). See
/// [the rule](self#locks-condvars-channels-and-joins).
pub fn patch_thread() {
    futex::link();
    lots::link();
    turn_on(Module::Thread);
}

/// Whether every switch was called (as by [`patch_all`]).
pub fn is_patched() -> bool {
    PATCHED.load(Ordering::Relaxed) == ALL
}

/// Whether the switch of `m` was called (gevent's `is_module_patched`).
pub fn is_module_patched(m: Module) -> bool {
    PATCHED.load(Ordering::Relaxed) & m as u8 != 0
}

/// Whether hooks of `m` should act for this caller: `m` is on, the thread has a hub, and the caller
/// is not the hub. The first check is one relaxed load, so outside patched programs and greenlets a
/// hook costs a load and a thread-local read.
#[inline]
fn active(m: Module) -> bool {
    patched(m) && cooperative()
}

/// Whether the switch of `m` was called: one relaxed load. Hooks whose fast path must stay a
/// frameless jump to the system call test this inline and leave [`cooperative`] to an outlined
/// function.
#[inline(always)]
fn patched(m: Module) -> bool {
    PATCHED.load(Ordering::Relaxed) & m as u8 != 0
}

/// Whether a hook may park the caller: the thread has a hub and the caller is not the hub.
#[inline]
pub(super) fn cooperative() -> bool {
    crate::hub::may_park()
}

/// Runs a cooperative wait inside a hook. A kill or Timeout landing there is caught (it cannot unwind
/// through the C caller) and kept to be raised at the greenlet's next gevent wait (see the module
/// docs); a signal that interrupts the wait (`intr`) is not kept. Returns the errno the hook reports
/// then: `ETIMEDOUT` for a [`Timeout`](crate::Timeout), `EINTR` for a signal, `ECANCELED` for a kill
/// (or any other payload).
fn park<T>(intr: intr::Intr, f: impl FnOnce() -> T) -> Result<T, libc::c_int> {
    let _parked = intr::Parked::enter(intr);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => Ok(r),
        Err(payload) if intr::is_interrupt(&*payload) => Err(libc::EINTR),
        Err(payload) => {
            let e = if payload.is::<crate::TimeoutError>() {
                libc::ETIMEDOUT
            } else {
                libc::ECANCELED
            };
            crate::hub::defer_unwind(payload);
            Err(e)
        }
    }
}

/// A system call with up to six arguments, the kernel's way: on x86_64 the `syscall` instruction
/// itself (as glibc's own wrappers do), not the variadic `syscall(3)`, which shuffles seven argument
/// registers and costs a few ns more on the hooks' fast paths; elsewhere `syscall(3)`. Sets errno
/// and returns -1 on failure, as `syscall(3)` does.
///
/// # Safety
/// As the system call `nr` with these arguments.
#[inline(always)]
unsafe fn sys6(
    nr: libc::c_long,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    e: usize,
    f: usize,
) -> isize {
    #[cfg(target_arch = "x86_64")]
    {
        let ret: isize;
        // SAFETY: the Linux x86_64 system call convention (number in rax, arguments in
        // rdi/rsi/rdx/r10/r8/r9, result in rax, rcx and r11 clobbered); the call's own contract
        // is the caller's.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") nr as isize => ret,
                in("rdi") a,
                in("rsi") b,
                in("rdx") c,
                in("r10") d,
                in("r8") e,
                in("r9") f,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        if (-4095..0).contains(&ret) {
            set_errno(-ret as i32);
            -1
        } else {
            ret
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: the caller's.
    unsafe {
        libc::syscall(nr, a, b, c, d, e, f) as isize
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

/// Whether `fd` is in blocking mode (false for a bad fd: let the system call report it).
fn is_blocking(fd: libc::c_int) -> bool {
    // SAFETY: F_GETFL takes no pointer; a bad fd just returns -1.
    let fl = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFL) };
    fl >= 0 && fl as libc::c_int & libc::O_NONBLOCK == 0
}

fn would_block(e: i32) -> bool {
    e == libc::EAGAIN || e == libc::EWOULDBLOCK
}
