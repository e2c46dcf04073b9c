//! Ported from gevent's `src/gevent/tests/test__greenlet.py` (gevent 26.x): TestKill* (kill before
//! start, after start, while running; block and non-block; killall), TestLink / TestUnlink, and the
//! issue's case: kill of a greenlet that is running its own destructor, which itself sleeps.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gevent::GetError;

type Log = Rc<RefCell<Vec<&'static str>>>;

/// A finally-style destructor that sleeps.
struct Finally(Log);
impl Drop for Finally {
    fn drop(&mut self) {
        self.0.borrow_mut().push("finally start");
        gevent::sleep(Duration::from_millis(20));
        self.0.borrow_mut().push("finally end");
    }
}

/// TestKill / TestKillAfterStart / TestKillWhileRunning, block and non-block.
#[test]
fn kill_at_every_stage() {
    // Before start: it never runs.
    let g = gevent::spawn(|| unreachable!());
    g.kill();
    assert_eq!(g.get(), Err(GetError::Killed));
    // After start (parked).
    let g = gevent::spawn(|| gevent::sleep(Duration::from_secs(100)));
    gevent::sleep(Duration::ZERO);
    g.kill();
    assert!(g.ready() && g.successful());
    // Non-blocking kill, then join.
    let g = gevent::spawn(|| gevent::sleep(Duration::from_secs(100)));
    gevent::sleep(Duration::ZERO);
    g.kill_nowait();
    assert!(!g.ready());
    g.join();
    assert_eq!(g.get(), Err(GetError::Killed));
    // spawn_later, killed before it starts.
    let g = gevent::spawn_later(Duration::from_millis(10), || unreachable!());
    g.kill();
    gevent::sleep(Duration::from_millis(20));
    assert_eq!(g.get(), Err(GetError::Killed));
}

/// TestKill.test_block_killall.
#[test]
fn killall() {
    let gs: Vec<_> = (0..3)
        .map(|_| gevent::spawn(|| gevent::sleep(Duration::from_secs(100))))
        .collect();
    gevent::sleep(Duration::ZERO);
    gevent::killall(&gs);
    assert!(gs.iter().all(|g| g.ready()));
}

/// A kill lands while the greenlet is in its own sleeping destructor (after a first kill started
/// the unwind). Throwing again there would panic inside a destructor during unwinding, which
/// aborts the process; instead the second kill waits for the destructor to finish. The greenlet
/// dies, its links fire, and the hub goes on.
#[test]
fn kill_during_sleeping_destructor() {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let l2 = log.clone();
    let g = gevent::spawn(move || {
        let _f = Finally(l2);
        gevent::sleep(Duration::from_secs(100));
    });
    let l3 = log.clone();
    g.link(move |_| l3.borrow_mut().push("linked"));
    gevent::sleep(Duration::ZERO);
    g.kill_nowait(); // starts the unwind: the destructor begins and sleeps
    gevent::sleep(Duration::from_millis(1));
    assert_eq!(*log.borrow(), ["finally start"]);
    assert!(!g.ready());
    g.kill(); // a second kill lands inside the destructor's sleep
    assert!(g.ready());
    gevent::sleep(Duration::ZERO);
    assert_eq!(*log.borrow(), ["finally start", "finally end", "linked"]);
    // The hub still works.
    assert_eq!(gevent::spawn(|| 3).get(), Ok(3));
}

/// A single kill whose unwind runs a sleeping destructor: kill waits for it to finish.
#[test]
fn kill_waits_for_sleeping_destructor() {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let l2 = log.clone();
    let g = gevent::spawn(move || {
        let _f = Finally(l2);
        gevent::sleep(Duration::from_secs(100));
    });
    gevent::sleep(Duration::ZERO);
    g.kill();
    assert_eq!(*log.borrow(), ["finally start", "finally end"]);
}

/// TestLink / TestUnlink: links by kind, unlink removes.
#[test]
fn links_and_unlink() {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let g = gevent::spawn(|| 1);
    let (a, b, c, d) = (log.clone(), log.clone(), log.clone(), log.clone());
    g.link(move |_| a.borrow_mut().push("any"));
    g.link_value(move |_| b.borrow_mut().push("value"));
    g.link_exception(move |_| c.borrow_mut().push("exception"));
    let id = g.link(move |_| d.borrow_mut().push("unlinked"));
    assert!(g.unlink(id));
    g.join();
    gevent::sleep(Duration::ZERO);
    assert_eq!(*log.borrow(), ["any", "value"]);
}

/// TestStuff.test_minimal_id and names.
#[test]
fn minimal_ident_and_name() {
    let a = gevent::spawn(|| ());
    let b = gevent::spawn(|| ());
    assert!(a.minimal_ident() < b.minimal_ident());
    assert_eq!(a.name(), format!("Greenlet-{}", a.minimal_ident()));
    gevent::joinall([&a, &b]);
}

/// `kill()` may be called many times, and every call throws again (gevent's `Greenlet.kill`: "may
/// be called multiple times"; test__greenlet.py TestKill: "kill second time must not hurt"): a
/// greenlet that catches the first kill and goes on is killed by the second, whatever its payload.
#[test]
fn every_kill_throws_again() {
    let caught = Rc::new(std::cell::Cell::new(0));
    let c2 = caught.clone();
    let g = gevent::spawn(move || {
        // Survives the first two kills, then waits again.
        for _ in 0..2 {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                gevent::sleep(Duration::from_secs(100))
            }));
            assert!(r.unwrap_err().is::<greenlet::GreenletExit>());
            c2.set(c2.get() + 1);
        }
        gevent::sleep(Duration::from_secs(100));
    });
    gevent::sleep(Duration::ZERO);
    for n in 1..=2 {
        assert!(!g.kill_timeout(Duration::from_millis(50)), "kill {n}");
        assert_eq!(caught.get(), n, "kill {n} was not thrown");
    }
    // The third kill, with a custom payload this time, ends it.
    assert!(g.kill_with("third", Some(Duration::from_secs(5))));
    assert_eq!(caught.get(), 2);
    match g.get() {
        Err(GetError::Panicked(f)) => assert_eq!(f.message(), "third"),
        other => panic!("{other:?}"),
    }
    // Killing the dead greenlet again does not hurt.
    g.kill();
    g.kill_nowait();
    assert!(matches!(g.get(), Err(GetError::Panicked(_))));
}

/// The same with non-blocking kills queued while the greenlet runs its handler of the first.
#[test]
fn kill_nowait_twice_reaches_a_survivor() {
    let g = gevent::spawn(|| {
        let r = std::panic::catch_unwind(|| gevent::sleep(Duration::from_secs(100)));
        assert!(r.is_err());
        gevent::sleep(Duration::from_secs(100));
        "survived"
    });
    gevent::sleep(Duration::ZERO);
    g.kill_nowait();
    gevent::sleep(Duration::ZERO); // the kill lands; it catches it and waits again
    assert!(!g.ready());
    g.kill_nowait();
    assert!(g.join_timeout(Duration::from_secs(5)));
    assert_eq!(g.get(), Err(GetError::Killed));
}
