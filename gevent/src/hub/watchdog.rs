//! The blocking detector that is on by default: a process-wide watchdog thread that reports a
//! greenlet keeping its hub from turning, with its name and backtrace, without any call (gevent's
//! monitor thread, `GEVENT_MONITOR_THREAD_ENABLE`, `GEVENT_MAX_BLOCKING_TIME`).
//!
//! # When it runs
//! - Debug builds (`debug_assertions`): on, threshold 1 s (debug code is slow; gevent's 0.1 s would
//!   report ordinary work).
//! - Release builds: off, unless `GEVENT_MONITOR_THREAD_ENABLE=1` (threshold 0.1 s, gevent's).
//! - `GEVENT_MONITOR_THREAD_ENABLE=0` turns it off in every build; `GEVENT_MAX_BLOCKING_TIME`
//!   (seconds, e.g. `0.25`) sets the threshold. Both are read once, when the first hub is made.
//!
//! # What it costs
//! Each hub owns a [`HubWatch`]: the hub bumps a counter (a plain store, not a locked
//! instruction) for each entry of its ready queue it runs, and stores its state (running, asleep
//! in the poller, nothing left to do) around each poll and when its loop starts or empties. Nothing is done on
//! greenlet switches that do not go through the hub, nothing allocates. One watchdog thread for
//! the whole process, started with the first hub, wakes every quarter threshold and reads those
//! atomics.
//!
//! # What it reports
//! A hub whose counter has not moved for the threshold while it was neither polling nor out of
//! work: some greenlet (or a hub callback) has run that long without yielding. The watchdog sends
//! the thread [`SIGNAL`]; its handler records the running greenlet's name (the gevent name) and
//! the return addresses of its stack; the watchdog prints them to stderr, once per blocking
//! episode. The signal is installed with `SA_RESTART`: a futex wait or a restartable system call
//! just goes on; a call the kernel never restarts (`nanosleep`, `poll`, ...) returns `EINTR` to
//! its caller, as with any signal, once per report. A hub that has nothing scheduled (its loop
//! emptied, or it never ran) is not watched: a main greenlet computing before or after its gevent
//! work keeps no one waiting.
//!
//! For reports handed to code, or a threshold per hub, use [`crate::monitor`].

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The signal the watchdogs use to take a blocked thread's backtrace: `SIGRTMAX - 2`.
pub static SIGNAL: OnceLock<libc::c_int> = OnceLock::new();

pub(crate) fn signal() -> libc::c_int {
    *SIGNAL.get_or_init(|| libc::SIGRTMAX() - 2)
}

/// A greenlet (or a hub callback) runs.
const RUNNING: u8 = 0;
/// The hub waits in the OS poller.
const POLLING: u8 = 1;
/// Nothing is scheduled: the loop emptied, or the hub has not turned yet.
const EMPTY: u8 = 2;

/// What a hub publishes for the watchdog.
struct Beat {
    /// Ready-queue entries the hub has run. Written only by the hub's thread.
    beats: AtomicU64,
    state: AtomicU8,
    /// The hub is gone (its thread exits): its thread must never be signalled again.
    ///
    /// # Invariant
    /// Set only by [`HubWatch`]'s drop, on the hub's thread, while it holds [`CAPTURE`]; so a
    /// capture that sees it clear under `CAPTURE` signals a thread that is still running.
    gone: AtomicBool,
    target: libc::pthread_t,
}

/// A hub's link to the watchdog (a field of the hub).
pub(crate) struct HubWatch {
    beat: Option<Arc<Beat>>,
}

impl HubWatch {
    /// Registers the calling thread's new hub with the watchdog, if it is enabled (starting the
    /// watchdog thread the first time).
    pub(crate) fn new() -> HubWatch {
        let Some(threshold) = config() else {
            return HubWatch { beat: None };
        };
        let beat = Arc::new(Beat {
            beats: AtomicU64::new(0),
            state: AtomicU8::new(EMPTY),
            gone: AtomicBool::new(false),
            // SAFETY: pthread_self has no preconditions.
            target: unsafe { libc::pthread_self() },
        });
        if !start_watchdog(threshold) {
            return HubWatch { beat: None };
        }
        install_handler();
        // Warm the unwinder up here, outside any signal handler (it may allocate the first time).
        backtrace::trace(|_| false);
        let mut hubs = HUBS.lock().unwrap_or_else(|e| e.into_inner());
        hubs.retain(|b| !b.gone.load(Ordering::SeqCst));
        hubs.push(beat.clone());
        HubWatch { beat: Some(beat) }
    }

    /// The hub ran one ready entry.
    #[inline(always)]
    pub(crate) fn tick(&self) {
        if let Some(b) = &self.beat {
            // Only this thread writes it: a load and a store, no locked instruction.
            b.beats.store(
                b.beats.load(Ordering::Relaxed).wrapping_add(1),
                Ordering::Relaxed,
            );
        }
    }

    /// The hub runs with something scheduled: it starts its loop, or a poll returned.
    #[inline(always)]
    pub(crate) fn running(&self) {
        self.set(RUNNING);
    }

    /// The hub is about to wait in the OS poller.
    #[inline(always)]
    pub(crate) fn polling(&self) {
        self.set(POLLING);
    }

    /// The hub has nothing left to do.
    #[inline(always)]
    pub(crate) fn empty(&self) {
        self.set(EMPTY);
    }

    #[inline(always)]
    fn set(&self, state: u8) {
        if let Some(b) = &self.beat {
            // A changed state also counts as a beat: a poll that returns at once is progress.
            b.beats.store(
                b.beats.load(Ordering::Relaxed).wrapping_add(1),
                Ordering::Relaxed,
            );
            b.state.store(state, Ordering::Relaxed);
        }
    }
}

impl Drop for HubWatch {
    fn drop(&mut self) {
        if let Some(b) = &self.beat {
            let _one = CAPTURE.lock().unwrap_or_else(|e| e.into_inner());
            b.gone.store(true, Ordering::SeqCst);
        }
    }
}

/// The hubs being watched (entries whose hub is gone are pruned as new ones come).
static HUBS: Mutex<Vec<Arc<Beat>>> = Mutex::new(Vec::new());

/// The threshold if the watchdog is enabled (read from the environment once).
fn config() -> Option<Duration> {
    static CONFIG: OnceLock<Option<Duration>> = OnceLock::new();
    *CONFIG.get_or_init(|| {
        let enabled = match std::env::var("GEVENT_MONITOR_THREAD_ENABLE") {
            Ok(v) => !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "false" | "off" | "no"
            ),
            Err(_) => cfg!(debug_assertions),
        };
        if !enabled {
            return None;
        }
        let default = if cfg!(debug_assertions) {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(100)
        };
        let threshold = match std::env::var("GEVENT_MAX_BLOCKING_TIME") {
            Ok(v) => match v.trim().parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 => Duration::from_secs_f64(s),
                _ => {
                    eprintln!(
                        "gevent: GEVENT_MAX_BLOCKING_TIME={v:?} is not a positive number of \
                         seconds; using {default:?}"
                    );
                    default
                }
            },
            Err(_) => default,
        };
        Some(threshold)
    })
}

/// Starts the watchdog thread once; returns whether it runs.
fn start_watchdog(threshold: Duration) -> bool {
    static STARTED: OnceLock<bool> = OnceLock::new();
    *STARTED.get_or_init(|| {
        std::thread::Builder::new()
            .name("gevent-watchdog".into())
            .spawn(move || watch(threshold))
            .map_err(|e| eprintln!("gevent: cannot start the blocking watchdog: {e}"))
            .is_ok()
    })
}

/// What the watchdog remembers of one hub.
struct Seen {
    beat: Arc<Beat>,
    last: u64,
    since: Instant,
    reported: bool,
}

fn watch(threshold: Duration) {
    let period = (threshold / 4).max(Duration::from_millis(1));
    let mut seen: Vec<Seen> = Vec::new();
    loop {
        std::thread::sleep(period);
        {
            let hubs = HUBS.lock().unwrap_or_else(|e| e.into_inner());
            seen.retain(|s| !s.beat.gone.load(Ordering::SeqCst));
            for b in hubs.iter() {
                if !b.gone.load(Ordering::SeqCst) && !seen.iter().any(|s| Arc::ptr_eq(&s.beat, b)) {
                    seen.push(Seen {
                        beat: b.clone(),
                        last: b.beats.load(Ordering::Relaxed),
                        since: Instant::now(),
                        reported: false,
                    });
                }
            }
        }
        for s in &mut seen {
            let now = s.beat.beats.load(Ordering::Relaxed);
            if now != s.last || s.beat.state.load(Ordering::Relaxed) != RUNNING {
                s.last = now;
                s.since = Instant::now();
                s.reported = false;
                continue;
            }
            if s.reported || s.since.elapsed() < threshold {
                continue;
            }
            s.reported = true;
            let blocked_for = s.since.elapsed();
            let c = capture(s.beat.target, &s.beat.gone);
            eprintln!(
                "gevent::watchdog: greenlet {:?} has blocked its hub for {blocked_for:?} \
                 (a std Mutex held across a switch, or a blocking call gevent does not hook?)\n{}",
                c.name.as_deref().unwrap_or("?"),
                c.backtrace
            );
        }
    }
}

const MAX_FRAMES: usize = 64;
const MAX_NAME: usize = 128;

/// The frames the signal handler records (return addresses), and how many.
static FRAMES: [AtomicUsize; MAX_FRAMES] = [const { AtomicUsize::new(0) }; MAX_FRAMES];
static NFRAMES: AtomicUsize = AtomicUsize::new(0);
/// The running greenlet's name, as the signal handler found it.
static NAME: [AtomicU8; MAX_NAME] = [const { AtomicU8::new(0) }; MAX_NAME];
static NAME_LEN: AtomicUsize = AtomicUsize::new(0);
/// Set by the watchdog before it signals; cleared by the handler when the frames are in.
static WANTED: AtomicBool = AtomicBool::new(false);
/// One capture at a time, process-wide; also taken by whoever marks a watched thread gone.
pub(crate) static CAPTURE: Mutex<()> = Mutex::new(());

extern "C" fn on_signal(_: libc::c_int) {
    if !WANTED.load(Ordering::SeqCst) {
        return;
    }
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    let errno = unsafe { *libc::__errno_location() };
    let mut name = [0u8; MAX_NAME];
    let len = greenlet::greenlet::current_name_into(&mut name);
    for (slot, b) in NAME.iter().zip(&name[..len]) {
        slot.store(*b, Ordering::Relaxed);
    }
    NAME_LEN.store(len, Ordering::Relaxed);
    let mut n = 0;
    // SAFETY: `trace_unsynchronized` requires that nothing else uses the unwinder in a way that
    // conflicts with this call. Here that means async-signal reentrancy, not threads:
    // - no allocation or lock that the interrupted code could hold: a first trace ran outside any
    //   handler before this handler could be asked for anything (`HubWatch::new`,
    //   `monitor::start`), so libgcc's one-time setup is done; `_Unwind_Backtrace` then walks
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

type SigactionFn =
    unsafe extern "C" fn(libc::c_int, *const libc::sigaction, *mut libc::sigaction) -> libc::c_int;

/// Installs the handler of [`SIGNAL`] (once per process), with the C library's own `sigaction`:
/// `monkey` interposes `sigaction` to make signals interrupt hooked calls, and this signal must
/// not (it would end other greenlets' hooked sleeps and polls with `EINTR`, and give every thread
/// an eventfd for it).
pub(crate) fn install_handler() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // SAFETY: dlsym with a valid NUL-terminated name; RTLD_NEXT skips this executable's own
        // (interposed) definition.
        let next = unsafe { libc::dlsym(libc::RTLD_NEXT, c"sigaction".as_ptr()) };
        let real: SigactionFn = if next.is_null() {
            libc::sigaction
        } else {
            // SAFETY: the C library's `sigaction`, whose signature this is.
            unsafe { std::mem::transmute::<*mut libc::c_void, SigactionFn>(next) }
        };
        // SAFETY: a zeroed sigaction is a valid starting value; the handler is an `extern "C"`
        // fn(c_int) that only touches atomics, the unwinder and the current greenlet's name (see
        // `on_signal`).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            real(signal(), &sa, std::ptr::null_mut());
        }
    });
}

/// What a capture found on the blocked thread.
pub(crate) struct Captured {
    /// The running greenlet's name; `None` if the thread did not answer.
    pub(crate) name: Option<String>,
    /// Its stack, resolved to symbols (one frame per line).
    pub(crate) backtrace: String,
}

/// Takes `target`'s running greenlet name and backtrace through the signal handler (nothing if
/// `gone`: the thread is exiting).
///
/// `gone` must follow [`Beat::gone`]'s invariant: set only by the target thread, under
/// [`CAPTURE`], before it exits.
pub(crate) fn capture(target: libc::pthread_t, gone: &AtomicBool) -> Captured {
    let _one = CAPTURE.lock().unwrap_or_else(|e| e.into_inner());
    let nothing = |why: &str| Captured {
        name: None,
        backtrace: why.to_owned(),
    };
    if gone.load(Ordering::SeqCst) {
        return nothing("");
    }
    NFRAMES.store(0, Ordering::SeqCst);
    NAME_LEN.store(0, Ordering::SeqCst);
    WANTED.store(true, Ordering::SeqCst);
    // SAFETY: `target` is the watched thread's id, and that thread has not finished exiting:
    // `gone` was clear under `CAPTURE`, which we hold, so the thread has not yet passed the point
    // (which takes `CAPTURE`) after which it may end (`Beat::gone`'s invariant).
    if unsafe { libc::pthread_kill(target, signal()) } != 0 {
        WANTED.store(false, Ordering::SeqCst);
        return nothing("");
    }
    let t = Instant::now();
    while WANTED.load(Ordering::SeqCst) && t.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(1));
    }
    if WANTED.swap(false, Ordering::SeqCst) {
        return nothing("  (no backtrace: the thread did not answer the signal)\n");
    }
    let len = NAME_LEN.load(Ordering::SeqCst).min(MAX_NAME);
    let name: Vec<u8> = NAME[..len]
        .iter()
        .map(|b| b.load(Ordering::Relaxed))
        .collect();
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
    Captured {
        name: Some(String::from_utf8_lossy(&name).into_owned()),
        backtrace: out,
    }
}
