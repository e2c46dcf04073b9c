//! `gevent::monitor`: report a greenlet that keeps its hub from turning (gevent's monitor thread,
//! `GEVENT_MONITOR_THREAD_ENABLE` / `max_blocking_time`).
//!
//! A greenlet that blocks its OS thread — a `std::sync::Mutex` held by another greenlet across a
//! switch (a futex wait that never ends), a raw system call, a call [`crate::monkey`] does not hook,
//! a long computation — silently freezes every other greenlet of that hub. [`start`] makes it loud:
//! it installs a switch tracer on this thread ([`greenlet::settrace`], chained to the one already
//! there) that publishes *which greenlet runs and how many switches happened* into shared atomics,
//! and starts a watchdog thread. When the same non-hub greenlet has run for longer than the
//! threshold without a single switch, the watchdog reports it once (per blocking episode) with its
//! name, how long it has been running, and its backtrace.
//!
//! # How the backtrace is taken
//! The watchdog sends the blocked thread a signal ([`SIGNAL`], a real-time signal); its handler
//! records the return addresses of the interrupted stack (no allocation, no locks: the
//! unwinder's state is warmed up by [`start`]) into a static buffer; the watchdog then resolves them
//! to symbols. The signal is installed with `SA_RESTART`: a futex wait or a restartable system call
//! simply continues after it; a call the kernel never restarts (`nanosleep`, `poll`, ...) returns
//! `EINTR` to its caller, as with any signal.
//!
//! # Ground rules
//! - The tracer runs on the hub's thread and only writes atomics and a mutex-protected name; the
//!   watchdog only reads them. The name is the gevent greenlet's name (`Greenlet-N` or what
//!   [`Greenlet::set_name`](crate::Greenlet::set_name) set before it started), or the raw
//!   greenlet's for others.
//! - One capture at a time, process-wide (a global lock around the signal round-trip).
//! - Dropping the [`Monitor`] stops the watchdog; the tracer stays installed until the thread calls
//!   [`Monitor::stop`] on it (it is thread-local: only this thread can remove it).
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! let m = gevent::monitor::start(Duration::from_millis(100));
//! let g = gevent::spawn(|| gevent::sleep(Duration::from_millis(10))); // switches: never reported
//! g.join();
//! m.stop();
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the watchdog found: a greenlet that kept the hub from turning.
#[derive(Debug, Clone)]
pub struct Report {
    /// The blocking greenlet's name.
    pub greenlet: String,
    /// How long it had run without switching when reported.
    pub blocked_for: Duration,
    /// Its stack, resolved to symbols (one frame per line); empty if it could not be taken.
    pub backtrace: String,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "gevent::monitor: greenlet {:?} has blocked its hub for {:?} \
             (a std Mutex held across a switch, or a blocking call gevent does not hook?)",
            self.greenlet, self.blocked_for
        )?;
        f.write_str(&self.backtrace)
    }
}

/// The signal the watchdog uses to take a blocked thread's backtrace: `SIGRTMAX - 2`.
pub static SIGNAL: OnceLock<libc::c_int> = OnceLock::new();

fn signal() -> libc::c_int {
    *SIGNAL.get_or_init(|| libc::SIGRTMAX() - 2)
}

/// What the tracer publishes for the watchdog.
struct Shared {
    /// Switches seen on the hub's thread.
    switches: AtomicU64,
    /// Whether the running greenlet is the hub (which may legitimately wait in its poller).
    in_hub: AtomicBool,
    /// The running greenlet's name.
    name: Mutex<String>,
    stop: AtomicBool,
    /// The monitored thread is exiting (its thread-locals are being destroyed): its `pthread_t`
    /// must never be signalled again (`pthread_kill` on a joined thread is undefined behaviour;
    /// glibc reads the descriptor in the thread's stack mapping, which may be unmapped by then).
    ///
    /// # Invariant
    /// Set only by [`Watched`]'s drop, on the monitored thread, while it holds [`CAPTURE`]; so a
    /// capture that sees it clear under `CAPTURE` signals a thread that is still running.
    gone: AtomicBool,
}

/// The monitors of one thread: marks them [`Shared::gone`] when the thread's thread-locals go.
/// (A [`Monitor`] is `Send`: it may outlive its thread, moved out or leaked.)
struct Watched(std::cell::RefCell<Vec<Arc<Shared>>>);

impl Drop for Watched {
    fn drop(&mut self) {
        let _one = CAPTURE.lock().unwrap_or_else(|e| e.into_inner());
        for s in self.0.borrow().iter() {
            s.gone.store(true, Ordering::SeqCst);
        }
    }
}

thread_local! {
    static WATCHED: Watched = const { Watched(std::cell::RefCell::new(Vec::new())) };
}

/// A running monitor of one hub's thread. Dropping it stops the watchdog.
pub struct Monitor {
    shared: Arc<Shared>,
    watchdog: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Monitor")
    }
}

impl Monitor {
    /// Stops the watchdog and, called on the monitored thread, removes the tracer (restoring none).
    pub fn stop(mut self) {
        self.halt();
        let _ = greenlet::settrace(None);
    }

    fn halt(&mut self) {
        if let Some(w) = self.watchdog.take() {
            self.shared.stop.store(true, Ordering::SeqCst);
            w.thread().unpark();
            let _ = w.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Monitors this thread's hub: a greenlet that runs longer than `threshold` without switching is
/// reported on stderr (see the module docs).
///
/// # Panics
/// If the watchdog thread cannot be started.
pub fn start(threshold: Duration) -> Monitor {
    start_with(threshold, |r| eprintln!("{r}"))
}

/// As [`start`], handing each [`Report`] to `on_report` (on the watchdog thread) instead.
///
/// # Panics
/// If the watchdog thread cannot be started.
pub fn start_with(threshold: Duration, on_report: impl Fn(&Report) + Send + 'static) -> Monitor {
    let hub = crate::get_hub();
    let hub_g = hub.greenlet().clone();
    let shared = Arc::new(Shared {
        switches: AtomicU64::new(0),
        in_hub: AtomicBool::new(hub_g.is_current()),
        name: Mutex::new(greenlet::getcurrent().name()),
        stop: AtomicBool::new(false),
        gone: AtomicBool::new(false),
    });
    WATCHED.with(|w| {
        let mut w = w.0.borrow_mut();
        w.retain(|s| !s.stop.load(Ordering::SeqCst));
        w.push(shared.clone());
    });
    let s = shared.clone();
    let mut previous = greenlet::settrace(None);
    greenlet::settrace(Some(Box::new(move |e: &greenlet::Event| {
        let target = match e {
            greenlet::Event::Switch { target, .. } | greenlet::Event::Throw { target, .. } => {
                target
            }
        };
        let in_hub = greenlet::Greenlet::ptr_eq(target, &hub_g);
        if !in_hub {
            *s.name.lock().unwrap_or_else(|e| e.into_inner()) = target.name();
        }
        s.in_hub.store(in_hub, Ordering::SeqCst);
        s.switches.fetch_add(1, Ordering::SeqCst);
        if let Some(p) = previous.as_mut() {
            p(e);
        }
    })));
    install_handler();
    // Warm the unwinder up here, outside any signal handler (it may allocate the first time).
    backtrace::trace(|_| false);
    // SAFETY: pthread_self has no preconditions.
    let target = unsafe { libc::pthread_self() };
    let s = shared.clone();
    let watchdog = std::thread::Builder::new()
        .name("gevent-monitor".into())
        .spawn(move || watch(s, threshold, target, on_report))
        .expect("gevent::monitor: cannot start the watchdog thread");
    Monitor {
        shared,
        watchdog: Some(watchdog),
    }
}

fn watch(
    s: Arc<Shared>,
    threshold: Duration,
    target: libc::pthread_t,
    on_report: impl Fn(&Report),
) {
    let period = (threshold / 4).max(Duration::from_millis(1));
    let mut last = s.switches.load(Ordering::SeqCst);
    let mut since = Instant::now();
    let mut reported = false;
    while !s.stop.load(Ordering::SeqCst) && !s.gone.load(Ordering::SeqCst) {
        std::thread::park_timeout(period);
        let now = s.switches.load(Ordering::SeqCst);
        if now != last {
            last = now;
            since = Instant::now();
            reported = false;
            continue;
        }
        if reported || s.in_hub.load(Ordering::SeqCst) || since.elapsed() < threshold {
            continue;
        }
        reported = true;
        let report = Report {
            greenlet: s.name.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            blocked_for: since.elapsed(),
            backtrace: capture(target, &s.gone),
        };
        on_report(&report);
    }
}

const MAX_FRAMES: usize = 64;

/// The frames the signal handler records (return addresses), and how many.
static FRAMES: [AtomicUsize; MAX_FRAMES] = [const { AtomicUsize::new(0) }; MAX_FRAMES];
static NFRAMES: AtomicUsize = AtomicUsize::new(0);
/// Set by the watchdog before it signals; cleared by the handler when the frames are in.
static WANTED: AtomicBool = AtomicBool::new(false);
/// One capture at a time, process-wide.
static CAPTURE: Mutex<()> = Mutex::new(());

extern "C" fn on_signal(_: libc::c_int) {
    if !WANTED.load(Ordering::SeqCst) {
        return;
    }
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    let errno = unsafe { *libc::__errno_location() };
    let mut n = 0;
    // SAFETY: `trace_unsynchronized` requires that nothing else uses the unwinder in a way that
    // conflicts with this call. Here that means async-signal reentrancy, not threads:
    // - no allocation or lock that the interrupted code could hold: `start` ran a first trace
    //   outside any handler, so libgcc's one-time setup is done; `_Unwind_Backtrace` then walks
    //   frames on the stack and finds FDEs through `dl_iterate_phdr`, whose loader lock is
    //   recursive (re-entered safely if the interrupted code holds it, waited for if another
    //   thread does — never by a thread that waits for this one);
    // - the one hazard left is interrupting the same thread *inside* an unwind (a panic or a
    //   backtrace in progress): libgcc's FDE cache may then be updated under the interrupted
    //   walk. This is not ruled out, only made unlikely: the watchdog signals a thread that has
    //   not switched for the whole threshold, i.e. one blocked, not one unwinding;
    // - the closure only writes atomics, at indices `n < MAX_FRAMES`.
    unsafe {
        backtrace::trace_unsynchronized(|f| {
            FRAMES[n].store(f.ip() as usize, Ordering::Relaxed);
            n += 1;
            n < MAX_FRAMES
        });
    }
    NFRAMES.store(n, Ordering::SeqCst);
    WANTED.store(false, Ordering::SeqCst);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

fn install_handler() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // SAFETY: a zeroed sigaction is a valid starting value; the handler is an `extern "C"`
        // fn(c_int) that only touches atomics and the unwinder (see `on_signal`).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(signal(), &sa, std::ptr::null_mut());
        }
    });
}

/// Takes `target`'s backtrace through the signal handler and resolves it (empty if `gone`).
fn capture(target: libc::pthread_t, gone: &AtomicBool) -> String {
    let _one = CAPTURE.lock().unwrap_or_else(|e| e.into_inner());
    if gone.load(Ordering::SeqCst) {
        return String::new();
    }
    NFRAMES.store(0, Ordering::SeqCst);
    WANTED.store(true, Ordering::SeqCst);
    // SAFETY: `target` is the monitored thread's id, and that thread has not finished exiting:
    // `gone` was clear under `CAPTURE`, which we hold, so its `Watched` thread-local (which sets
    // `gone` under `CAPTURE` before the thread can end) has not run yet (`Shared::gone`'s invariant).
    if unsafe { libc::pthread_kill(target, signal()) } != 0 {
        WANTED.store(false, Ordering::SeqCst);
        return String::new();
    }
    let t = Instant::now();
    while WANTED.load(Ordering::SeqCst) && t.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(1));
    }
    if WANTED.swap(false, Ordering::SeqCst) {
        return "  (no backtrace: the thread did not answer the signal)\n".into();
    }
    let n = NFRAMES.load(Ordering::SeqCst);
    let mut out = String::new();
    for (i, f) in FRAMES[..n].iter().enumerate() {
        let ip = f.load(Ordering::Relaxed);
        let mut line = format!("  {i:2}: {ip:#x}");
        backtrace::resolve(ip as *mut std::ffi::c_void, |sym| {
            if let Some(name) = sym.name() {
                line = format!("  {i:2}: {name:#}");
            }
            if let (Some(file), Some(l)) = (sym.filename(), sym.lineno()) {
                line.push_str(&format!("\n        at {}:{l}", file.display()));
            }
        });
        out.push_str(&line);
        out.push('\n');
    }
    out
}
