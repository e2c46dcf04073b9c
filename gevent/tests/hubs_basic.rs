//! `gevent::hubs`: N hubs on N threads, tasks handed to them from threads and greenlets, results
//! and panics coming back, shutdown.
//!
//! No upstream test file: gevent has one hub per thread and no API to run several (users pre-fork).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use gevent::hubs::{self, Hubs, TaskError};

/// Every wait in these tests gives up after this.
const BOUND: Duration = Duration::from_secs(10);

fn join<T: Send + 'static>(t: hubs::Task<T>) -> Result<T, TaskError> {
    t.join_timeout(BOUND)
        .unwrap_or_else(|_| panic!("a task did not finish within {BOUND:?}"))
}

#[test]
fn a_function_runs_on_each_hub_in_its_own_thread() {
    let hubs = Hubs::start(2).unwrap();
    assert_eq!(hubs.len(), 2);
    let tasks = hubs.spawn_each(|i| {
        // It runs in a greenlet of hub `i`, on that hub's thread.
        assert!(!gevent::getcurrent().is_main());
        (
            i,
            hubs::current_index(),
            std::thread::current().id(),
            std::thread::current().name().map(str::to_owned),
        )
    });
    let got: Vec<_> = tasks.into_iter().map(|t| join(t).unwrap()).collect();
    assert_eq!(got[0].0, 0);
    assert_eq!(got[1].0, 1);
    assert_eq!(got[0].1, Some(0));
    assert_eq!(got[1].1, Some(1));
    assert_ne!(got[0].2, got[1].2);
    assert_ne!(got[0].2, std::thread::current().id());
    assert_eq!(got[1].3.as_deref(), Some("gevent-hub-1"));
    assert_eq!(hubs::current_index(), None);
    let report = hubs.shutdown(Duration::from_secs(1));
    assert_eq!(report.alive, vec![0, 0]);
}

#[test]
fn run_each_starts_runs_and_stops_in_one_call() {
    let r = hubs::run_each(Some(2), |i| (i, std::thread::current().id())).unwrap();
    let r: Vec<_> = r.into_iter().map(Result::unwrap).collect();
    assert_eq!((r[0].0, r[1].0), (0, 1));
    assert_ne!(r[0].1, r[1].1);
    assert!(hubs::run_each(Some(0), |_| ()).is_err());
}

#[test]
fn spawn_on_a_chosen_hub_from_a_plain_thread_blocks_for_the_result() {
    let hubs = Hubs::start(2).unwrap();
    let sp = hubs.spawner();
    let on_hub1 = join(hubs.spawn_on(1, hubs::current_index)).unwrap();
    assert_eq!(on_hub1, Some(1));
    // From another OS thread, which has no hub: it blocks.
    let t = std::thread::spawn(move || {
        let task = sp.spawn_on(0, || {
            gevent::sleep(Duration::from_millis(20));
            hubs::current_index().map(|i| i + 100)
        });
        join(task).unwrap()
    });
    assert_eq!(t.join().unwrap(), Some(100));
    assert_eq!(hubs.shutdown(Duration::ZERO).alive, vec![0, 0]);
}

#[test]
fn a_greenlet_waiting_for_a_task_parks_and_its_hub_runs_the_others() {
    let hubs = Hubs::start(2).unwrap();
    let sp = hubs.spawner();
    // On this thread's own hub: one greenlet waits for a task on hub 1 while another ticks.
    let ticks = Arc::new(AtomicUsize::new(0));
    let ticks2 = ticks.clone();
    let ticker = gevent::spawn(move || {
        for _ in 0..5 {
            ticks2.fetch_add(1, Ordering::SeqCst);
            gevent::sleep(Duration::from_millis(5));
        }
    });
    let waiter = gevent::spawn(move || {
        let t = sp.spawn_on(1, || {
            gevent::sleep(Duration::from_millis(100));
            std::thread::current().id()
        });
        join(t).unwrap()
    });
    let started = Instant::now();
    let other_thread = waiter.get_timeout(BOUND).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(90));
    assert_ne!(other_thread, std::thread::current().id());
    // The ticker ran to its end while the waiter was parked (the thread was not blocked).
    assert_eq!(ticks.load(Ordering::SeqCst), 5);
    ticker.join_timeout(BOUND);

    // A greenlet on hub 0 hands work to hub 1 and waits for it there (hub to hub).
    let sp = hubs.spawner();
    let r = join(hubs.spawn_on(0, move || {
        let inner = sp.spawn_on(1, hubs::current_index);
        let mine = hubs::current_index();
        (mine, join(inner).unwrap())
    }))
    .unwrap();
    assert_eq!(r, (Some(0), Some(1)));
    assert_eq!(hubs.shutdown(Duration::ZERO).alive, vec![0, 0]);
}

#[test]
fn a_panic_in_a_task_comes_back_as_an_error_and_the_hub_goes_on() {
    let hubs = Hubs::start(2).unwrap();
    let t = hubs.spawn_on(1, || -> u8 { panic!("task exploded") });
    match join(t) {
        Err(TaskError::Panicked(p)) => {
            assert_eq!(p.downcast_ref::<&str>(), Some(&"task exploded"));
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    let t = hubs.spawn_on(1, || -> u8 { panic!("again") });
    let e = join(t).unwrap_err();
    assert!(e.to_string().contains("again"), "{e}");
    // The hub is still serving.
    assert_eq!(join(hubs.spawn_on(1, || 7)).unwrap(), 7);
    assert_eq!(hubs.shutdown(Duration::ZERO).alive, vec![0, 0]);
}

#[test]
fn round_robin_spreads_tasks_over_every_hub() {
    let hubs = Hubs::start(2).unwrap();
    let tasks: Vec<_> = (0..6).map(|_| hubs.spawn(hubs::current_index)).collect();
    let mut per_hub = [0; 2];
    for t in tasks {
        per_hub[join(t).unwrap().unwrap()] += 1;
    }
    assert_eq!(per_hub, [3, 3]);
    hubs.shutdown(Duration::ZERO);
}

#[test]
fn wait_with_a_timeout_returns_false_while_the_task_runs() {
    let hubs = Hubs::start(1).unwrap();
    let (tx, rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let go_rx = std::sync::Mutex::new(go_rx);
    let t = hubs.spawn_on(0, move || {
        tx.send(()).unwrap();
        // Poll cooperatively for the go-ahead from the test thread (bounded).
        for _ in 0..1000 {
            if go_rx.lock().unwrap().try_recv().is_ok() {
                return "done";
            }
            gevent::sleep(Duration::from_millis(5));
        }
        "gave up"
    });
    rx.recv_timeout(BOUND).unwrap();
    assert!(!t.wait(Some(Duration::from_millis(30))));
    assert!(!t.is_ready());
    go_tx.send(()).unwrap();
    assert!(t.wait(Some(BOUND)));
    assert_eq!(t.join().unwrap(), "done");
    hubs.shutdown(Duration::ZERO);
}

/// Sends on drop: tells the test a killed greenlet's destructors ran.
struct OnDrop(mpsc::Sender<&'static str>);
impl Drop for OnDrop {
    fn drop(&mut self) {
        let _ = self.0.send("dropped");
    }
}

#[test]
fn shutdown_joins_the_threads_and_reports_greenlets_left_alive() {
    let hubs = Hubs::start(2).unwrap();
    let sp = hubs.spawner();
    let (tx, rx) = mpsc::channel();
    // Hub 0: a task that never ends by itself, and a greenlet it spawned that never ends either.
    let tx2 = tx.clone();
    let forever = hubs.spawn_on(0, move || {
        let guard = OnDrop(tx2);
        let tx3 = guard.0.clone();
        gevent::spawn(move || {
            let _g = OnDrop(tx3);
            gevent::sleep(Duration::from_secs(3600));
        });
        gevent::sleep(Duration::from_secs(3600));
        drop(guard);
    });
    // Hub 1: a greenlet that finishes within the grace period.
    let quick = hubs.spawn_on(1, || gevent::sleep(Duration::from_millis(30)));
    // Let both tasks start (a round trip through each hub).
    join(hubs.spawn_on(0, || ())).unwrap();
    join(hubs.spawn_on(1, || ())).unwrap();
    let threads_before = hubs.len();
    let started = Instant::now();
    let report = hubs.shutdown(Duration::from_millis(200));
    assert!(started.elapsed() < BOUND);
    assert_eq!(threads_before, 2);
    assert_eq!(report.alive, vec![2, 0], "{report:?}");
    assert_eq!(report.total_alive(), 2);
    // Both were killed, and their destructors ran before the threads ended.
    assert_eq!(rx.try_recv(), Ok("dropped"));
    assert_eq!(rx.try_recv(), Ok("dropped"));
    assert!(matches!(join(forever), Err(TaskError::Killed)));
    assert!(join(quick).is_ok());
    // The group takes no more work.
    assert!(matches!(
        join(sp.spawn_on(0, || ())),
        Err(TaskError::NotRun)
    ));
    drop(tx);
}

#[test]
fn dropping_the_group_stops_its_hubs() {
    let hubs = Hubs::start(2).unwrap();
    let sp = hubs.spawner();
    let t = hubs.spawn_on(1, || gevent::sleep(Duration::from_secs(3600)));
    join(hubs.spawn_on(1, || ())).unwrap();
    drop(hubs);
    assert!(matches!(join(t), Err(TaskError::Killed)));
    assert!(matches!(join(sp.spawn(|| ())), Err(TaskError::NotRun)));
}

#[test]
fn a_group_dropped_on_one_of_its_own_hubs_stops_without_joining_itself() {
    let hubs = Hubs::start(2).unwrap();
    let sp = hubs.spawner();
    let sleeper = hubs.spawn_on(1, || gevent::sleep(Duration::from_secs(3600)));
    join(sp.spawn_on(1, || ())).unwrap();
    // Hub 0 drops the group: it cannot join its own thread, so it only stops the hubs.
    join(sp.spawn_on(0, move || drop(hubs))).unwrap();
    assert!(matches!(join(sleeper), Err(TaskError::Killed)));
    assert!(matches!(
        join(sp.spawn_on(0, || ())),
        Err(TaskError::NotRun)
    ));
}

#[test]
fn a_task_spawned_onto_its_own_hub_runs_there_and_can_be_joined() {
    let hubs = Hubs::start(2).unwrap();
    let r = join(hubs.spawn_on(0, || {
        let sp = hubs::Spawner::current().expect("a worker knows its group");
        let inner = sp.spawn_on(0, || (hubs::current_index(), std::thread::current().id()));
        let (index, thread) = join(inner).unwrap();
        (index, thread == std::thread::current().id())
    }))
    .unwrap();
    assert_eq!(r, (Some(0), true));
    hubs.shutdown(Duration::ZERO);
}
