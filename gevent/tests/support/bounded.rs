//! Test scaffolding for waits that could freeze a hub: a body run on a thread of its own with a
//! bound, a ticker greenlet and a monitor that show the hub kept running, and a kill that must
//! end a waiting greenlet promptly.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Runs a test body on a thread of its own (with its own hub) and fails, rather than hangs, if it
/// does not end within `limit` (a wait that froze its hub).
pub fn bounded(limit: Duration, body: fn()) {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let r = std::panic::catch_unwind(body);
        let _ = tx.send(());
        r
    });
    match rx.recv_timeout(limit) {
        Ok(()) => {
            if let Err(p) = t.join().unwrap() {
                std::panic::resume_unwind(p);
            }
        }
        Err(_) => panic!("the test froze: a wait blocked its hub"),
    }
}

/// A greenlet that ticks every 5 ms until `stop` is set (at most `max` times); returns how many
/// ticks it made.
pub fn ticker(stop: Rc<Cell<bool>>, max: usize) -> gevent::Greenlet<usize> {
    gevent::spawn(move || {
        let mut n = 0;
        while !stop.get() && n < max {
            gevent::sleep(Duration::from_millis(5));
            n += 1;
        }
        n
    })
}

/// A [`ticker`] and the flag that stops it.
pub struct Ticker {
    stop: Rc<Cell<bool>>,
    tick: gevent::Greenlet<usize>,
}

impl Ticker {
    /// Starts a ticker of at most `max` ticks.
    pub fn start(max: usize) -> Self {
        let stop = Rc::new(Cell::new(false));
        let tick = ticker(stop.clone(), max);
        Ticker { stop, tick }
    }

    /// Stops the ticker; returns how many ticks it made.
    pub fn stop(self) -> usize {
        self.stop.set(true);
        self.tick.get().unwrap()
    }
}

/// A monitor of this thread's hub that counts its reports (a hub blocked for 100 ms is reported).
pub struct QuietMonitor {
    monitor: gevent::monitor::Monitor,
    reports: Arc<AtomicUsize>,
}

impl QuietMonitor {
    pub fn start() -> Self {
        let reports = Arc::new(AtomicUsize::new(0));
        let r = reports.clone();
        let monitor = gevent::monitor::start_with(Duration::from_millis(100), move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        });
        QuietMonitor { monitor, reports }
    }

    /// Stops the monitor and asserts that it reported no blocked hub.
    pub fn stop(self) {
        self.monitor.stop();
        assert_eq!(
            self.reports.load(Ordering::SeqCst),
            0,
            "the monitor saw a blocked hub"
        );
    }
}

/// Kills `g` (waiting somewhere a kill reaches) and asserts that the kill ended it, within a
/// second of the 2 s allowed, and that it ended killed.
pub fn kill_promptly<T: gevent::CloneResult + std::fmt::Debug + PartialEq>(
    g: &gevent::Greenlet<T>,
) {
    let t = Instant::now();
    assert!(g.kill_timeout(Duration::from_secs(2)), "the kill ended it");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(g.get(), Err(gevent::GetError::Killed));
}
