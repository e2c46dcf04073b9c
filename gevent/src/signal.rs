//! Signal handlers that run in a greenlet (gevent's `gevent.signal_handler`).
//!
//! [`handle`]`(signum, f)` installs a process-wide handler for `signum`; every time the signal
//! arrives, `f` runs in a new greenlet of the installing thread's hub, so it may block, sleep and do
//! I/O like any greenlet. Dropping the returned [`SignalGuard`] removes the handler.
//!
//! # Ground rules
//! - The real (C) handler does only async-signal-safe work: it writes the signal number as one
//!   byte to a non-blocking self-pipe of the thread that installed the handler (`errno` is saved
//!   and restored; a full pipe drops the byte, as the kernel coalesces pending signals anyway).
//!   The pipe's read end is registered with that thread's hub; a reader greenlet reads the bytes
//!   and spawns one greenlet per handler per signal.
//! - Dispositions are process-wide, so one thread's hub owns a signal at a time: installing a
//!   handler for a signal another thread's hub handles fails with `ResourceBusy`. One thread may
//!   install several handlers for one signal; each signal runs all of them.
//! - The disposition in force before the first handler for a signal is saved and put back when the
//!   last [`SignalGuard`] for it is dropped.
//! - While a thread has handlers installed, its reader greenlet waits on the pipe, so the hub never
//!   reports [`LoopExit`](crate::LoopExit): a signal may always come (as a gevent signal watcher keeps
//!   the loop alive). Dropping the last guard stops the reader and closes the pipe; the close waits
//!   until no C handler can still be writing to it.
//! - In a `fork`ed child the pipe would be the parent's too (its signals would run the parent's
//!   handlers, and the parent's the child's): when the child's hub is rebuilt
//!   ([`crate::os`]), the thread gets a new pipe and reader and its routes move to it. (A child
//!   that never uses its hub — a `pre_exec` before `exec` — keeps the parent's pipe meanwhile.)
//! - A handler that panics (a kill is not a panic) is reported on stderr and its panic is raised
//!   in the thread's main greenlet (the hub's parent), at whatever it waits on, as gevent raises a
//!   signal handler's exception in the hub's parent: the program sees the failure where it
//!   waits (`catch_unwind` there to survive it), instead of losing it in a background greenlet.
//!   Other greenlets, and the other handlers of the same signal, are not disturbed.
//! - `SIGKILL` and `SIGSTOP` cannot be handled; the synchronous fault signals (`SIGSEGV`, `SIGBUS`,
//!   `SIGILL`, `SIGFPE`) must be handled at the fault, not later in a greenlet: all are refused
//!   with `InvalidInput`.
//!
//! # Examples
//! ```
//! use std::cell::Cell;
//! use std::rc::Rc;
//! use std::time::Duration;
//!
//! let got = Rc::new(Cell::new(0));
//! let g2 = got.clone();
//! let guard = gevent::signal::handle(libc::SIGUSR1, move || g2.set(g2.get() + 1)).unwrap();
//! // SAFETY: raise(3) is safe to call; SIGUSR1 is handled above.
//! unsafe { libc::raise(libc::SIGUSR1) };
//! while got.get() == 0 {
//!     gevent::sleep(Duration::from_millis(1));
//! }
//! drop(guard); // SIGUSR1's previous disposition is back
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;

use crate::io::{Interest, IoSource};

/// One more than the largest signal number (`SIGRTMAX` is 64 on Linux).
const NSIG: usize = 65;

/// Per signal: the write end of the self-pipe the C handler writes to, or -1.
///
/// # Invariant
/// A non-negative entry is an open fd until [`IN_HANDLER`] has been seen at 0 after the entry was
/// reset to -1 (see `Local`'s `Drop`, the only place a write end closes).
static ROUTE: [AtomicI32; NSIG] = [const { AtomicI32::new(-1) }; NSIG];

/// How many C handlers are running right now (on any thread).
static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// A signal's owner: the thread whose hub handles it, and the disposition to restore.
struct Owner {
    thread: std::thread::ThreadId,
    previous: libc::sigaction,
}

/// # Invariant
/// `OWNERS[s]` is `Some` exactly while `on_signal` is installed for `s` by this module.
static OWNERS: Mutex<[Option<Owner>; NSIG]> = Mutex::new([const { None }; NSIG]);

/// The C handler: async-signal-safe work only (atomics, `errno` and the `write(2)` system call).
extern "C" fn on_signal(sig: libc::c_int) {
    IN_HANDLER.fetch_add(1, SeqCst);
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    let errno = unsafe { *libc::__errno_location() };
    if let Some(route) = usize::try_from(sig).ok().and_then(|s| ROUTE.get(s)) {
        let fd = route.load(SeqCst);
        if fd >= 0 {
            let byte = sig as u8;
            // The system call itself, not `libc::write`: with `gevent::monkey` linked, `write`
            // is the interposed hook (thread-locals, the hub's `Rc`, `fstat`, maybe parking),
            // which is not async-signal-safe code.
            // SAFETY: `fd` is open (ROUTE's invariant: it cannot be closed while IN_HANDLER > 0,
            // and IN_HANDLER was raised before `fd` was loaded); the buffer is one valid byte.
            // The write(2) system call is async-signal-safe and cannot block (O_NONBLOCK pipe).
            unsafe { libc::syscall(libc::SYS_write, fd, &byte as *const u8, 1usize) };
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
    IN_HANDLER.fetch_sub(1, SeqCst);
}

type Handler = Rc<dyn Fn()>;

/// This thread's handlers and self-pipe.
struct Local {
    /// The write end of the self-pipe (what `ROUTE` points at for this thread's signals).
    write: OwnedFd,
    /// Reads the pipe and spawns the handlers; owns the read end and its registration.
    reader: crate::Greenlet<()>,
    handlers: BTreeMap<libc::c_int, Vec<(u64, Handler)>>,
    next_id: u64,
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
    /// Whether [`after_fork`] is registered with this thread's hub.
    static HOOKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// This thread's hub was rebuilt in a forked child: a pipe and reader of its own, the routes of
/// this thread's signals moved to it (the old reader ends: see [`read_signals`]).
fn after_fork() {
    let (read, write) = match pipe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("gevent: signal: no pipe of its own in the forked child ({e}): its signals reach the parent's handlers");
            return;
        }
    };
    LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        let Some(local) = l.as_mut() else {
            return;
        };
        let old = local.write.as_raw_fd();
        for route in &ROUTE {
            let _ = route.compare_exchange(old, write.as_raw_fd(), SeqCst, SeqCst);
        }
        let old = std::mem::replace(&mut local.write, write);
        // ROUTE's invariant, as in `Local`'s drop: no route is `old` any more.
        while IN_HANDLER.load(SeqCst) != 0 {
            std::hint::spin_loop();
        }
        drop(old);
        local.reader = crate::spawn(move || read_signals(read));
    });
}

/// A non-blocking, close-on-exec pipe: (read end, write end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is valid for writes of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just opened both fds and nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl Drop for Local {
    /// Gives up every signal still routed to this pipe, then lets `write` close once no C handler
    /// can still be writing to it.
    ///
    /// Normally every route is already -1 here (each signal's last [`SignalGuard`] cleared its
    /// own). Not when the thread exits while a guard is still alive (leaked, or dropped only after
    /// `LOCAL`): then this thread-local's destructor is where the pipe closes, and a route left
    /// behind would make the C handler write into whatever fd reuses the number next.
    fn drop(&mut self) {
        let fd = self.write.as_raw_fd();
        let mut owners = OWNERS.lock().unwrap_or_else(|p| p.into_inner());
        for (s, route) in ROUTE.iter().enumerate() {
            if route.load(SeqCst) != fd {
                continue;
            }
            // `fd` is open (owned by `self.write`), so a route equal to it is one of ours.
            if let Some(owner) = owners[s].take() {
                // SAFETY: `previous` is the disposition sigaction returned for signal `s` (OWNERS'
                // invariant: `Some` exactly while `on_signal` is installed for it by this module).
                unsafe { libc::sigaction(s as libc::c_int, &owner.previous, std::ptr::null_mut()) };
            }
            route.store(-1, SeqCst);
        }
        drop(owners);
        // ROUTE's invariant: no route is `fd` any more; once IN_HANDLER is seen at 0, no C handler
        // can still hold it, so `self.write` may close (the fields drop after this).
        while IN_HANDLER.load(SeqCst) != 0 {
            std::hint::spin_loop();
        }
    }
}

/// The reader greenlet: spawns the handlers for each signal byte read from `read`.
fn read_signals(read: OwnedFd) {
    let Ok(src) = IoSource::new(read.as_raw_fd()) else {
        return;
    };
    // A reader of a forked parent's pipe stops (the child has its own: `after_fork`).
    let gen = crate::hub::fork_generation();
    let mut buf = [0u8; 64];
    loop {
        if crate::hub::fork_generation() != gen {
            return;
        }
        // SAFETY: `read` is open for the whole loop; `buf` is valid for writes of its length.
        let n = unsafe { libc::read(read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => {
                    src.clear_ready(Interest::Read);
                    if src.wait(Interest::Read, None).is_err() {
                        return;
                    }
                    continue;
                }
                _ => return,
            }
        }
        if n == 0 {
            return;
        }
        for &sig in &buf[..n as usize] {
            let handlers: Vec<Handler> = LOCAL.with(|l| {
                l.borrow()
                    .as_ref()
                    .and_then(|l| l.handlers.get(&libc::c_int::from(sig)))
                    .map(|hs| hs.iter().map(|(_, h)| h.clone()).collect())
                    .unwrap_or_default()
            });
            for h in handlers {
                crate::spawn_raw(move || run_handler(sig, &h));
            }
        }
    }
}

/// Runs one handler in its greenlet. A panic (other than a kill) is reported on stderr and raised
/// in the main greenlet (the hub's parent), as gevent raises a signal handler's exception there.
fn run_handler(sig: u8, h: &Handler) {
    let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h())) else {
        return;
    };
    if p.is::<greenlet::GreenletExit>() {
        // A kill: the greenlet just ends (`spawn_raw` reports nothing for it).
        std::panic::resume_unwind(p);
    }
    crate::hub::done_unwinding();
    let hub = crate::hub::get_hub();
    let what = crate::greenlet::describe_panic(&*p);
    match hub.greenlet().parent().filter(|m| !m.is_dead()) {
        Some(main) => {
            eprintln!("gevent: the handler of signal {sig} panicked: {what}; raising it in the main greenlet");
            // From the hub, as a Timeout is thrown: the main greenlet unwinds from its wait.
            hub.run_callback(move || crate::hub::throw_into(&main, p));
        }
        None => {
            eprintln!("gevent: the handler of signal {sig} panicked: {what} (no main greenlet to raise it in)");
            crate::hub::drop_payload(p);
        }
    }
}

fn check_signum(signum: libc::c_int) -> io::Result<usize> {
    let refused = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
    ];
    match usize::try_from(signum) {
        Ok(s @ 1..NSIG) if !refused.contains(&signum) => Ok(s),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {signum} cannot be handled in a greenlet"),
        )),
    }
}

/// Installs `f` as a handler for `signum`: each time the signal arrives, `f` runs in a new greenlet
/// of this thread's hub. Returns a guard; dropping it removes the handler, and dropping the last
/// one for `signum` restores the disposition that was in force before (gevent's
/// `signal_handler(signum, f)`; see the [module docs](self) for the rules).
///
/// # Errors
/// `InvalidInput` for signals that cannot be handled here (`SIGKILL`, `SIGSTOP`, the fault
/// signals, numbers out of range); `ResourceBusy` if another thread's hub handles `signum`; what
/// `pipe2(2)`, `sigaction(2)` or registering with the hub return.
pub fn handle(signum: libc::c_int, f: impl Fn() + 'static) -> io::Result<SignalGuard> {
    let s = check_signum(signum)?;
    let me = std::thread::current().id();
    // The thread's pipe and reader first (kept if installing fails: the guard-less teardown below).
    let id = LOCAL.with(|l| -> io::Result<u64> {
        let mut l = l.borrow_mut();
        if l.is_none() {
            if !HOOKED.get() {
                HOOKED.set(true);
                crate::hub::on_reinit(after_fork);
            }
            let (read, write) = pipe()?;
            let reader = crate::spawn(move || read_signals(read));
            *l = Some(Local {
                write,
                reader,
                handlers: BTreeMap::new(),
                next_id: 0,
            });
        }
        let local = l.as_mut().expect("just made");
        local.next_id += 1;
        Ok(local.next_id)
    })?;
    let installed = (|| -> io::Result<()> {
        let mut owners = OWNERS.lock().unwrap_or_else(|p| p.into_inner());
        match &owners[s] {
            Some(o) if o.thread == me => return Ok(()),
            Some(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!("signal {signum} is handled by another thread's hub"),
                ))
            }
            None => {}
        }
        let write_fd = LOCAL.with(|l| l.borrow().as_ref().map(|l| l.write.as_raw_fd()));
        ROUTE[s].store(write_fd.unwrap_or(-1), SeqCst);
        // SAFETY: sigaction is plain data; all-zero is a valid (empty) value.
        let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
        new.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        new.sa_flags = libc::SA_RESTART;
        // SAFETY: `new.sa_mask` is a valid sigset_t to initialise.
        unsafe { libc::sigemptyset(&mut new.sa_mask) };
        // SAFETY: as above.
        let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid for the call; `on_signal` is async-signal-safe.
        if unsafe { libc::sigaction(signum, &new, &mut previous) } != 0 {
            let e = io::Error::last_os_error();
            ROUTE[s].store(-1, SeqCst);
            return Err(e);
        }
        owners[s] = Some(Owner {
            thread: me,
            previous,
        });
        Ok(())
    })();
    if let Err(e) = installed {
        teardown_if_unused();
        return Err(e);
    }
    LOCAL.with(|l| {
        if let Some(l) = l.borrow_mut().as_mut() {
            l.handlers.entry(signum).or_default().push((id, Rc::new(f)));
        }
    });
    Ok(SignalGuard {
        signum,
        id,
        _not_send: PhantomData,
    })
}

/// Stops this thread's reader and closes its pipe if no handler is left.
fn teardown_if_unused() {
    let local = LOCAL
        .try_with(|l| {
            let mut l = l.borrow_mut();
            if l.as_ref().is_some_and(|l| l.handlers.is_empty()) {
                l.take()
            } else {
                None
            }
        })
        .ok()
        .flatten();
    if let Some(local) = local {
        // The reader owns the read end and its registration; both go when it unwinds. The write
        // end closes in `Local`'s drop, once no C handler can still use it.
        local.reader.kill_nowait();
        drop(local);
    }
}

/// Removes the handler it was returned for when dropped; the last one for a signal restores the
/// signal's previous disposition. Not `Send`: it belongs to the thread whose hub runs the handler.
#[must_use = "dropping the guard removes the handler at once"]
pub struct SignalGuard {
    signum: libc::c_int,
    id: u64,
    _not_send: PhantomData<Rc<()>>,
}

impl fmt::Debug for SignalGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignalGuard(signal {})", self.signum)
    }
}

impl SignalGuard {
    /// The signal it handles.
    pub fn signum(&self) -> libc::c_int {
        self.signum
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        let last = LOCAL
            .try_with(|l| {
                let mut l = l.borrow_mut();
                // No `Local`: it was dropped with the thread's thread-locals, and its drop gave up
                // this thread's signals already (another thread may own this one by now).
                let Some(local) = l.as_mut() else {
                    return false;
                };
                let hs = local.handlers.entry(self.signum).or_default();
                hs.retain(|(id, _)| *id != self.id);
                let last = hs.is_empty();
                if last {
                    local.handlers.remove(&self.signum);
                }
                last
            })
            .unwrap_or(false); // `LOCAL` is gone: as for `None` above.
        if last {
            let s = self.signum as usize;
            let mut owners = OWNERS.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(owner) = owners[s].take() {
                // SAFETY: `previous` is the disposition sigaction returned for this signal.
                unsafe { libc::sigaction(self.signum, &owner.previous, std::ptr::null_mut()) };
            }
            ROUTE[s].store(-1, SeqCst);
        }
        teardown_if_unused();
    }
}
