//! The process-wide `SIGSEGV`/`SIGBUS` handler and per-thread alternate signal stacks.
//!
//! # Ground rules
//! - The handler is installed once per process ([`install_fault_handler`], behind a `Once`). Before
//!   installing it, the previous actions are saved in [`STATE`], which is never written again; the
//!   handler only reads it.
//! - A guard-page hit happens with the stack pointer at the bottom of a full stack, so the handler must
//!   run on an alternate signal stack (`SA_ONSTACK`). std gives the main thread and the threads it spawns
//!   one; [`ensure_alt_stack`] gives any other thread its own, freed when the thread exits.
//! - The handler allocates nothing, takes no lock and calls only async-signal-safe functions: it calls
//!   the hook (which reads thread-locals without lazy initialisation and writes with `write(2)`), then
//!   chains to the previous handler (std's, which reports overflows of the thread's own stack), or,
//!   when there was none, restores the default action and returns so the fault repeats and kills the
//!   process with the right signal.

use std::cell::RefCell;
use std::mem::{self, MaybeUninit};
use std::ptr;
use std::sync::{Once, OnceLock};

/// What the handler needs, written once before the handler is installed.
struct State {
    /// Called with the fault address and the interrupted stack pointer (0 if unknown); returns only
    /// if the fault is not a greenlet stack overflow.
    hook: fn(usize, usize),
    /// The actions for `SIGSEGV` and `SIGBUS` that were in place before ours.
    prev_segv: libc::sigaction,
    prev_bus: libc::sigaction,
}

/// # Invariant
/// Set (once) before our handler is installed for either signal; never changed afterwards.
static STATE: OnceLock<State> = OnceLock::new();

/// Installs the fault handler for the whole process (only the first call does anything).
///
/// Failure to install is ignored: overflow detection by guard page is then reduced to the kernel's
/// plain `SIGSEGV`, which still never lets an overflow go unnoticed.
pub(crate) fn install_fault_handler(hook: fn(usize, usize)) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: querying the current actions (null `act`) into zeroed, writable structs.
        let (prev_segv, prev_bus) = unsafe {
            let mut segv: libc::sigaction = mem::zeroed();
            let mut bus: libc::sigaction = mem::zeroed();
            let a = libc::sigaction(libc::SIGSEGV, ptr::null(), &mut segv);
            let b = libc::sigaction(libc::SIGBUS, ptr::null(), &mut bus);
            if a != 0 || b != 0 {
                return;
            }
            (segv, bus)
        };
        if STATE
            .set(State {
                hook,
                prev_segv,
                prev_bus,
            })
            .is_err()
        {
            return; // unreachable: only this Once sets STATE
        }
        // SAFETY: a zeroed sigaction is a valid "empty" one; we fill in a handler with the
        // SA_SIGINFO signature, an empty mask and our flags. STATE is set (its invariant).
        unsafe {
            let mut act: libc::sigaction = mem::zeroed();
            act.sa_sigaction = fault_handler as *const () as libc::sighandler_t;
            act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(libc::SIGSEGV, &act, ptr::null_mut());
            libc::sigaction(libc::SIGBUS, &act, ptr::null_mut());
        }
    });
}

/// The handler: the hook first, then the previous handler or the default action.
extern "C" fn fault_handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let Some(state) = STATE.get() else {
        restore_default(sig);
        return;
    };
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler; for SIGSEGV and SIGBUS
    // `si_addr` is the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    (state.hook)(addr, interrupted_sp(ctx));

    let prev = if sig == libc::SIGBUS {
        &state.prev_bus
    } else {
        &state.prev_segv
    };
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Ignoring a synchronous fault would spin forever: fall back to the default action.
        restore_default(sig);
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: with SA_SIGINFO the previous handler has this signature (that is how it was
        // installed); we pass on exactly what the kernel gave us.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: without SA_SIGINFO the previous handler is a plain `void (*)(int)`.
        let f: extern "C" fn(libc::c_int) = unsafe { mem::transmute(h) };
        f(sig);
    }
}

/// The stack pointer of the context the fault interrupted, or 0 where it is not decoded.
fn interrupted_sp(ctx: *mut libc::c_void) -> usize {
    #[cfg(all(
        any(target_os = "linux", target_os = "android"),
        target_arch = "x86_64"
    ))]
    if !ctx.is_null() {
        // SAFETY: for an SA_SIGINFO handler the third argument is the interrupted `ucontext_t`,
        // valid for the duration of the handler; on x86_64 Linux its saved RSP is `gregs[REG_RSP]`.
        return unsafe {
            (*ctx.cast::<libc::ucontext_t>()).uc_mcontext.gregs[libc::REG_RSP as usize]
        } as usize;
    }
    let _ = ctx;
    0
}

/// Restores the default action for `sig`; returning from the handler then re-executes the faulting
/// instruction, which kills the process with `sig`.
fn restore_default(sig: libc::c_int) {
    // SAFETY: a zeroed sigaction with SIG_DFL (0) is valid; sigaction is async-signal-safe.
    unsafe {
        let mut act: libc::sigaction = mem::zeroed();
        act.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &act, ptr::null_mut());
    }
}

/// An alternate signal stack this module installed for the current thread.
///
/// # Invariant
/// `base` is the start of a mapping of `len` bytes owned by this value: a guard page, then the
/// signal stack registered with `sigaltstack` for this thread.
struct AltStack {
    base: *mut u8,
    len: usize,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let page = super::page_size();
        // SAFETY: disabling only if the thread's alternate stack is still ours (base + guard page,
        // by the invariant); then the mapping is no longer used by anyone and can be unmapped.
        unsafe {
            let mut cur = MaybeUninit::<libc::stack_t>::zeroed();
            if libc::sigaltstack(ptr::null(), cur.as_mut_ptr()) != 0 {
                return;
            }
            let cur = cur.assume_init();
            if cur.ss_sp.cast::<u8>() != self.base.add(page) {
                return; // someone else replaced it: leave the mapping alone (leaked)
            }
            let disable = libc::stack_t {
                ss_sp: ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            if libc::sigaltstack(&disable, ptr::null_mut()) == 0 {
                let _ = super::unmap(self.base, self.len);
            }
        }
    }
}

thread_local! {
    /// `Some` if we installed this thread's alternate signal stack (freed at thread exit).
    static ALT_STACK: RefCell<Option<AltStack>> = const { RefCell::new(None) };
    /// Whether `ensure_alt_stack` already ran on this thread.
    static ALT_CHECKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Makes sure the calling thread has an alternate signal stack (std gives one to its own threads;
/// threads created otherwise get one here).
pub(crate) fn ensure_alt_stack() {
    if ALT_CHECKED.with(|c| c.replace(true)) {
        return;
    }
    // SAFETY: querying into a zeroed, writable stack_t.
    let cur = unsafe {
        let mut cur = MaybeUninit::<libc::stack_t>::zeroed();
        if libc::sigaltstack(ptr::null(), cur.as_mut_ptr()) != 0 {
            return;
        }
        cur.assume_init()
    };
    if cur.ss_flags & libc::SS_DISABLE == 0 {
        return; // the thread has one (std's, or its owner's)
    }
    let page = super::page_size();
    let size = (libc::SIGSTKSZ.max(64 * 1024) + page - 1) & !(page - 1);
    let len = size + page;
    // SAFETY: a fresh mapping owned by the AltStack below (or unmapped on failure).
    let Ok(base) = (unsafe { super::reserve(len) }) else {
        return;
    };
    let base = base.as_ptr();
    // SAFETY: `base + page .. base + len` lies in the mapping just created; once registered, the
    // AltStack (stored in a thread-local) keeps it mapped until the thread exits.
    unsafe {
        let stack = base.add(page);
        if super::protect_rw(stack, size).is_err() {
            let _ = super::unmap(base, len);
            return;
        }
        let new = libc::stack_t {
            ss_sp: stack.cast(),
            ss_flags: 0,
            ss_size: size,
        };
        if libc::sigaltstack(&new, ptr::null_mut()) != 0 {
            let _ = super::unmap(base, len);
            return;
        }
    }
    let _ = ALT_STACK.try_with(|a| *a.borrow_mut() = Some(AltStack { base, len }));
}
