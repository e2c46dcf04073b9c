//! Callbacks handed to a hub from other threads (`HubHandle::run_callback`) wake it whether it is
//! running, spinning for an answer or asleep in its poller: the hub writes its eventfd only while
//! it sleeps (`Remote::sleeping`), and a callback that races with the hub going to sleep must not
//! be left in the queue until something else wakes it. Modelled on gevent's
//! `src/gevent/tests/test__threadpool.py` (results coming back from threads while the hub
//! sleeps) and `test__hub.py`'s async watcher checks.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Four threads hand the hub 4 x 2000 callbacks, each thread pausing now and then (so the hub
/// keeps falling asleep and being woken, and sometimes is mid-turn or spinning when one comes);
/// the last callback sets an event the main greenlet waits on. Nothing else can wake the hub
/// before the 30 s timeout: a lost wake-up leaves it asleep with callbacks queued, and the
/// timeout says so.
#[test]
fn every_callback_from_other_threads_runs_however_it_races_with_sleep() {
    const THREADS: usize = 4;
    const EACH: usize = 2000;
    thread_local! {
        /// Callbacks run on the hub's thread: they count here, and the last one sets `DONE`.
        static RAN: Cell<usize> = const { Cell::new(0) };
        static DONE: std::cell::RefCell<Option<gevent::event::Event>> =
            const { std::cell::RefCell::new(None) };
    }
    let done = gevent::event::Event::new();
    DONE.with(|d| *d.borrow_mut() = Some(done.clone()));
    let handle = gevent::get_hub().handle();
    let sent = Arc::new(AtomicUsize::new(0));
    // The threads' callbacks are outstanding work of the hub (it spins for them before sleeping).
    handle.begin_pending();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (h, sent) = (handle.clone(), sent.clone());
            std::thread::spawn(move || {
                for i in 0..EACH {
                    h.run_callback(|| {
                        let n = RAN.with(|r| {
                            r.set(r.get() + 1);
                            r.get()
                        });
                        if n == THREADS * EACH {
                            DONE.with(|d| d.borrow().as_ref().map(|e| e.set()));
                        }
                    });
                    sent.fetch_add(1, Ordering::Relaxed);
                    // Pauses of 0-60 us at varying places, so the callbacks meet the hub in
                    // every state.
                    if (i + t) % 7 == 0 {
                        std::thread::sleep(Duration::from_micros(((i * 13 + t * 5) % 60) as u64));
                    }
                }
            })
        })
        .collect();
    let finished = gevent::with_timeout(Duration::from_secs(30), || done.wait());
    handle.end_pending();
    for t in threads {
        t.join().unwrap();
    }
    assert!(
        finished.is_ok(),
        "the last callback had not run after 30 s (a wake-up was lost); when the timeout \
         fired, the hub had run {} of {} callbacks ({} sent)",
        RAN.with(Cell::get),
        THREADS * EACH,
        sent.load(Ordering::Relaxed)
    );
    assert_eq!(RAN.with(Cell::get), THREADS * EACH);
}
