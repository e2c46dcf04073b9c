//! Signals interrupt hooked calls as they interrupt the real ones.
//!
//! The kernel ends a blocking call with `EINTR` when a handler runs on the thread that is blocked
//! in it: `read`, `recv`, `accept`, `connect` and friends only if the handler was installed without
//! `SA_RESTART` (or the socket has `SO_RCVTIMEO`/`SO_SNDTIMEO`), sleeps and `poll`/`select`/
//! `epoll_wait` always (signal(7)). A greenlet parked in a hook is not blocked in the kernel, so
//! this module does it by hand:
//!
//! - `sigaction`, `signal` and `siginterrupt` are interposed. A handler (not `SIG_DFL`/`SIG_IGN`,
//!   not for the synchronous fault signals) is installed wrapped: the kernel runs [`trampoline`],
//!   which counts the signal in this thread's counters ([`ANY`], and [`NORESTART`] for a handler
//!   without `SA_RESTART`), writes to this thread's eventfd (registered with the hub's poller, so a
//!   hub sleeping in `epoll_wait` wakes even when the signal landed just before it went to sleep),
//!   and calls the user's handler with the arguments the kernel gave. Only atomics, `errno` and the
//!   `write(2)` system call: async-signal-safe. `sigaction` reports the user's handler and flags, not
//!   the wrapper.
//! - A hook that parks records the counters ([`Parked::enter`]). After each poll the hub calls
//!   [`after_poll`]: when a counter moved, every greenlet parked in a hook whose kind of call the
//!   signal interrupts (its counter moved since it parked) gets a private payload thrown into it;
//!   the hook catches it and returns `EINTR` (sleeps: with the time left).

use std::cell::{Cell, RefCell};
use std::rc::Weak;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};

use libc::{c_int, c_void, sighandler_t, siginfo_t};

/// Which signals end a parked hook with `EINTR`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Intr {
    /// None (name lookups, zero sleeps).
    Never,
    /// Every handled signal (sleeps, `poll`/`select`/`epoll_wait`, sockets with a timeout).
    Any,
    /// Handlers installed without `SA_RESTART` (reads, writes, `accept`, `connect`).
    NoRestart,
}

/// One more than the largest signal number.
const NSIG: usize = 65;

thread_local! {
    /// Wrapped handlers that ran on this thread.
    static ANY: AtomicU64 = const { AtomicU64::new(0) };
    /// Of them, those installed without `SA_RESTART`.
    static NORESTART: AtomicU64 = const { AtomicU64::new(0) };
    /// This thread's eventfd (registered with its hub's poller), or -1.
    static EFD: AtomicI32 = const { AtomicI32::new(-1) };
}

/// The user's handler of each signal (an address, as `sa_sigaction`) and its flags, while the
/// kernel runs [`trampoline`] for it.
static USER: [AtomicUsize; NSIG] = [const { AtomicUsize::new(0) }; NSIG];
static USER_FLAGS: [AtomicI32; NSIG] = [const { AtomicI32::new(0) }; NSIG];

/// Whether any handler was ever installed wrapped: until then a park records nothing.
static WRAPPED: AtomicBool = AtomicBool::new(false);

/// Serialises the interposed `sigaction` (table and kernel updated together).
static LOCK: AtomicBool = AtomicBool::new(false);

/// The payload thrown into a greenlet whose hooked call a signal interrupts.
pub(super) struct Interrupted;

/// Whether `p` is [`Interrupted`].
pub(super) fn is_interrupt(p: &(dyn std::any::Any + Send)) -> bool {
    p.is::<Interrupted>()
}

/// Takes every hook's address so the linker keeps them (see the module docs).
pub(super) fn link() {
    let hooks: [usize; 3] = [
        sigaction as *const () as usize,
        signal as *const () as usize,
        siginterrupt as *const () as usize,
    ];
    std::hint::black_box(hooks);
    let f: fn() = after_poll;
    let _ = crate::hub::AFTER_POLL.set(f);
}

/// What the kernel runs for a wrapped handler.
extern "C" fn trampoline(sig: c_int, info: *mut siginfo_t, ctx: *mut c_void) {
    let Some(s) = usize::try_from(sig).ok().filter(|s| *s < NSIG) else {
        return;
    };
    let flags = USER_FLAGS[s].load(Ordering::SeqCst);
    let handler = USER[s].load(Ordering::SeqCst);
    // SAFETY: this thread's errno slot.
    let saved = unsafe { *libc::__errno_location() };
    // Const thread-locals without destructors: plain TLS accesses, async-signal-safe.
    let _ = ANY.try_with(|a| a.fetch_add(1, Ordering::SeqCst));
    if flags & libc::SA_RESTART == 0 {
        let _ = NORESTART.try_with(|a| a.fetch_add(1, Ordering::SeqCst));
    }
    let fd = EFD.try_with(|e| e.load(Ordering::SeqCst)).unwrap_or(-1);
    if fd >= 0 {
        let one: u64 = 1;
        // SAFETY: write(2) of 8 valid bytes to this thread's non-blocking eventfd, which stays open
        // while EFD names it (it is reset before the fd closes, on this thread); a full counter
        // just fails with EAGAIN.
        unsafe { libc::syscall(libc::SYS_write, fd, &one as *const u64, 8usize) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN || handler == libc::SIG_ERR {
        return; // changed meanwhile
    }
    if flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the user installed this address as an `sa_sigaction` with SA_SIGINFO; the
        // arguments are the kernel's.
        let f: extern "C" fn(c_int, *mut siginfo_t, *mut c_void) =
            unsafe { std::mem::transmute(handler) };
        f(sig, info, ctx);
    } else {
        // SAFETY: the user installed this address as an `sa_handler`.
        let f: extern "C" fn(c_int) = unsafe { std::mem::transmute(handler) };
        f(sig);
    }
}

/// Signals handled at the fault (or never): passed through unwrapped.
fn passes_through(sig: c_int) -> bool {
    matches!(
        sig,
        libc::SIGSEGV
            | libc::SIGBUS
            | libc::SIGILL
            | libc::SIGFPE
            | libc::SIGTRAP
            | libc::SIGSYS
            | libc::SIGKILL
            | libc::SIGSTOP
    ) || !(1..NSIG as c_int).contains(&sig)
}

type SigactionFn =
    unsafe extern "C" fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;

fn real_sigaction() -> Option<SigactionFn> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mut p = NEXT.load(Ordering::Relaxed);
    if p == 0 {
        // SAFETY: a valid C string; RTLD_NEXT asks for the definition after this object's (libc's).
        p = unsafe { libc::dlsym(libc::RTLD_NEXT, c"sigaction".as_ptr()) } as usize;
        NEXT.store(p, Ordering::Relaxed);
    }
    // SAFETY: a non-null address dlsym gave for "sigaction" is that function, of this type.
    (p != 0).then(|| unsafe { std::mem::transmute::<usize, SigactionFn>(p) })
}

/// Holds [`LOCK`] with every signal blocked on this thread (so a handler calling `sigaction`
/// cannot deadlock against the thread it interrupted).
struct Locked(libc::sigset_t);

impl Locked {
    fn take() -> Locked {
        // SAFETY: sigset_t is plain data, filled below.
        let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid sigset pointers.
        unsafe {
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        }
        while LOCK
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        Locked(old)
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        LOCK.store(false, Ordering::Release);
        // SAFETY: restores the mask saved in `take`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

/// Interposed `sigaction(2)`: installs a handler wrapped (see the module docs) and reports the
/// user's own handler and flags.
///
/// # Safety
/// The C contract: `act` and `old` are null or valid.
#[no_mangle]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    let Some(real) = real_sigaction() else {
        super::set_errno(libc::ENOSYS);
        return -1;
    };
    if passes_through(sig) {
        // SAFETY: the caller's arguments, forwarded unchanged.
        return unsafe { real(sig, act, old) };
    }
    let s = sig as usize;
    let tramp = trampoline as extern "C" fn(c_int, *mut siginfo_t, *mut c_void) as sighandler_t;
    let _lock = Locked::take();
    // SAFETY: sigaction is plain data; all-zero is valid.
    let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a query into a valid out-pointer.
    if unsafe { real(sig, std::ptr::null(), &mut cur) } != 0 {
        return -1;
    }
    let (prev_h, prev_f) = (
        USER[s].load(Ordering::SeqCst),
        USER_FLAGS[s].load(Ordering::SeqCst),
    );
    if cur.sa_sigaction == tramp {
        cur.sa_sigaction = prev_h;
        cur.sa_flags = prev_f;
    }
    if !act.is_null() {
        // SAFETY: non-null and valid per the C contract.
        let mut new = unsafe { *act };
        let h = new.sa_sigaction;
        if h != libc::SIG_DFL && h != libc::SIG_IGN {
            USER_FLAGS[s].store(new.sa_flags, Ordering::SeqCst);
            USER[s].store(h, Ordering::SeqCst);
            new.sa_sigaction = tramp;
            new.sa_flags |= libc::SA_SIGINFO;
            WRAPPED.store(true, Ordering::SeqCst);
        }
        // SAFETY: a valid action; the trampoline is async-signal-safe (see the module docs).
        if unsafe { real(sig, &new, std::ptr::null_mut()) } != 0 {
            USER_FLAGS[s].store(prev_f, Ordering::SeqCst);
            USER[s].store(prev_h, Ordering::SeqCst);
            return -1;
        }
    }
    if !old.is_null() {
        // SAFETY: non-null and valid for writes per the C contract.
        unsafe { *old = cur };
    }
    0
}

/// Interposed `signal(2)`: glibc's (BSD) semantics, `SA_RESTART` and the signal blocked in its
/// handler, through [`sigaction`].
///
/// # Safety
/// `handler` is `SIG_DFL`, `SIG_IGN` or a function taking the signal number.
#[no_mangle]
pub unsafe extern "C" fn signal(sig: c_int, handler: sighandler_t) -> sighandler_t {
    // SAFETY: plain data, filled below.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = handler;
    act.sa_flags = libc::SA_RESTART;
    // SAFETY: a valid sigset pointer; an invalid `sig` makes sigaddset fail, as signal() must.
    let bad = unsafe {
        libc::sigemptyset(&mut act.sa_mask) != 0 || libc::sigaddset(&mut act.sa_mask, sig) != 0
    };
    if bad {
        super::set_errno(libc::EINVAL);
        return libc::SIG_ERR;
    }
    // SAFETY: plain data.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers valid.
    if unsafe { sigaction(sig, &act, &mut old) } != 0 {
        return libc::SIG_ERR;
    }
    old.sa_sigaction
}

/// Interposed `siginterrupt(3)`: sets (flag 0) or clears `SA_RESTART` on the handler of `sig`.
///
/// # Safety
/// None beyond the C function's.
#[no_mangle]
pub unsafe extern "C" fn siginterrupt(sig: c_int, flag: c_int) -> c_int {
    // SAFETY: plain data.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a query into a valid out-pointer.
    if unsafe { sigaction(sig, std::ptr::null(), &mut act) } != 0 {
        return -1;
    }
    if flag != 0 {
        act.sa_flags &= !libc::SA_RESTART;
    } else {
        act.sa_flags |= libc::SA_RESTART;
    }
    // SAFETY: a valid action, the one just read.
    unsafe { sigaction(sig, &act, std::ptr::null_mut()) }
}

/// A greenlet parked in a hook, as [`after_poll`] sees it.
struct Entry {
    greenlet: greenlet::Greenlet,
    intr: Intr,
    any: u64,
    norestart: u64,
}

/// This thread's eventfd and the hub whose poller it is registered with.
struct Wake {
    hub: Weak<crate::hub::Hub>,
    fd: c_int,
}

impl Drop for Wake {
    /// Closes the eventfd, which removes its registration once no process holds it any more: no
    /// explicit deregistration, which in a forked child would remove the parent's (the epoll
    /// instance is shared until the child's hub makes its own).
    fn drop(&mut self) {
        let _ = EFD.try_with(|e| e.store(-1, Ordering::SeqCst));
        // SAFETY: our own eventfd, no longer named by EFD (the only other user, on this thread).
        unsafe { libc::syscall(libc::SYS_close, self.fd) };
    }
}

/// The parked greenlets: slots reused (no allocation per park once warm), each tagged with the id
/// of the park that filled it.
struct Slab {
    entries: Vec<Option<(u64, Entry)>>,
    free: Vec<usize>,
}

impl Slab {
    fn insert(&mut self, id: u64, e: Entry) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.entries[i] = Some((id, e));
                i
            }
            None => {
                self.entries.push(Some((id, e)));
                self.entries.len() - 1
            }
        }
    }

    /// Empties slot `i` if park `id` still holds it; true then.
    fn remove(&mut self, i: usize, id: u64) -> bool {
        match self.entries.get_mut(i) {
            Some(slot) if slot.as_ref().is_some_and(|(j, _)| *j == id) => {
                *slot = None;
                self.free.push(i);
                true
            }
            _ => false,
        }
    }
}

thread_local! {
    static PARKED: RefCell<Slab> = const {
        RefCell::new(Slab {
            entries: Vec::new(),
            free: Vec::new(),
        })
    };
    static NEXT: Cell<u64> = const { Cell::new(0) };
    static WAKE: RefCell<Option<Wake>> = const { RefCell::new(None) };
    /// The counters as [`after_poll`] last saw them.
    static SEEN: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// The poller token of the eventfd: beyond any fd slot, so the hub's dispatch ignores it.
const TOKEN: mio::Token = mio::Token(usize::MAX - 1);

fn counters() -> (u64, u64) {
    (
        ANY.with(|a| a.load(Ordering::SeqCst)),
        NORESTART.with(|a| a.load(Ordering::SeqCst)),
    )
}

/// Makes sure this thread's eventfd is registered with its current hub.
fn ensure_wake() {
    let hub = crate::hub::get_hub();
    let _ = WAKE.try_with(|w| {
        let Ok(mut w) = w.try_borrow_mut() else {
            return;
        };
        if w.as_ref()
            .is_some_and(|w| std::ptr::eq(w.hub.as_ptr(), &*hub))
        {
            return;
        }
        *w = None;
        // SAFETY: eventfd(2) with valid flags.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return;
        }
        let registered = hub.registry().registry().register(
            &mut mio::unix::SourceFd(&fd),
            TOKEN,
            mio::Interest::READABLE,
        );
        if registered.is_err() {
            // SAFETY: our own fd, just opened.
            unsafe { libc::syscall(libc::SYS_close, fd) };
            return;
        }
        EFD.with(|e| e.store(fd, Ordering::SeqCst));
        *w = Some(Wake {
            hub: std::rc::Rc::downgrade(&hub),
            fd,
        });
    });
}

/// A greenlet parked in a hook, for as long as this lives.
pub(super) struct Parked(Option<(usize, u64)>);

impl Parked {
    /// Records the current greenlet as parked in a call that `intr`'s signals interrupt.
    pub(super) fn enter(intr: Intr) -> Parked {
        if intr == Intr::Never || !WRAPPED.load(Ordering::Relaxed) || std::thread::panicking() {
            // Nothing can interrupt it, or it waits inside a destructor run by an unwind, where
            // a thrown payload would abort the process.
            return Parked(None);
        }
        ensure_wake();
        let (any, norestart) = counters();
        let id = NEXT.with(|n| {
            let i = n.get();
            n.set(i + 1);
            i
        });
        let entry = Entry {
            greenlet: greenlet::getcurrent(),
            intr,
            any,
            norestart,
        };
        let i = PARKED.with(|p| p.borrow_mut().insert(id, entry));
        Parked(Some((i, id)))
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        if let Some((i, id)) = self.0 {
            let _ = PARKED.try_with(|p| p.borrow_mut().remove(i, id));
        }
    }
}

/// Run by the hub after each poll: interrupts the parked hooks that a signal since they parked
/// interrupts (see the module docs). One thread-local read when no signal came.
fn after_poll() {
    let Ok(now) = ANY
        .try_with(|a| a.load(Ordering::SeqCst))
        .and_then(|any| NORESTART.try_with(|n| (any, n.load(Ordering::SeqCst))))
    else {
        return;
    };
    let Ok(seen) = SEEN.try_with(|s| s.replace(now)) else {
        return;
    };
    if now == seen {
        return;
    }
    if let Ok(fd) = EFD.try_with(|e| e.load(Ordering::SeqCst)) {
        if fd >= 0 {
            let mut buf = 0u64;
            // SAFETY: read(2) of 8 bytes into a valid buffer from our non-blocking eventfd.
            unsafe { libc::syscall(libc::SYS_read, fd, &mut buf as *mut u64, 8usize) };
        }
    }
    let due: Vec<(usize, u64, greenlet::Greenlet)> = PARKED
        .try_with(|p| {
            p.borrow()
                .entries
                .iter()
                .enumerate()
                .filter_map(|(i, slot)| slot.as_ref().map(|(id, e)| (i, id, e)))
                .filter(|(_, _, e)| match e.intr {
                    Intr::Never => false,
                    Intr::Any => e.any != now.0,
                    Intr::NoRestart => e.norestart != now.1,
                })
                .map(|(i, id, e)| (i, *id, e.greenlet.clone()))
                .collect()
        })
        .unwrap_or_default();
    for (i, id, g) in due {
        // Still parked in the same call (an earlier throw may have run code that ended it).
        let still = PARKED
            .try_with(|p| p.borrow_mut().remove(i, id))
            .unwrap_or(false);
        if still && !g.is_dead() {
            g.throw_payload(Box::new(Interrupted));
        }
    }
}
