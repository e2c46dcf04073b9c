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
//! - The tracer runs on the hub's thread and only writes atomics; the watchdog only reads them.
//!   The name is read by the signal handler on the blocked thread: the running greenlet's, which
//!   is the gevent greenlet's name (`Greenlet-N` or what
//!   [`Greenlet::set_name`](crate::Greenlet::set_name) set), or the raw greenlet's for others.
//! - Without any call, a process-wide watchdog of the same kind is on in debug builds (and with
//!   `GEVENT_MONITOR_THREAD_ENABLE=1` in release; see "The blocking detector" in the crate
//!   docs); this module is for reports handed to code and a threshold of one's own.
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

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
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

pub use crate::hub::watchdog::SIGNAL;
use crate::hub::watchdog::{capture, install_handler, CAPTURE};

/// What the tracer publishes for the watchdog.
struct Shared {
    /// Switches seen on the hub's thread.
    switches: AtomicU64,
    /// Whether the running greenlet is the hub (which may legitimately wait in its poller).
    in_hub: AtomicBool,
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
        let blocked_for = since.elapsed();
        let c = capture(target, &s.gone);
        let report = Report {
            greenlet: c.name.unwrap_or_else(|| "?".to_owned()),
            blocked_for,
            backtrace: c.backtrace,
        };
        on_report(&report);
    }
}
