//! Test scaffolding for waits that could freeze a hub: a body run on a thread of its own with a
//! bound, and a ticker greenlet that shows the hub kept running.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

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
