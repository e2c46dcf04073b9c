//! `Group::kill()` / `Pool::kill()` (blocking) return with the group empty, members that had not
//! started included (issue 15, item 1). Follows gevent's `src/gevent/pool.py` `Group.kill` (it loops
//! `while self.greenlets`) and `src/gevent/tests/test__pool.py` `TestPool.test_terminate` (kill of
//! a pool with running and queued work returns at once) and `TestJoinEmpty` (join of an empty
//! pool); a join also leaves the group empty (gevent's join waits for the group to be empty).

use std::time::Duration;

use gevent::pool::{Group, Pool};
use gevent::GetError;

#[test]
fn group_kill_empties_the_group_unstarted_members_included() {
    let group = Group::new();
    // Two that run (parked), then three that have not started when the kill comes.
    let running: Vec<_> = (0..2)
        .map(|_| group.spawn(|| gevent::sleep(Duration::from_secs(100))))
        .collect();
    gevent::sleep(Duration::ZERO);
    let unstarted: Vec<_> = (0..3).map(|_| group.spawn(|| unreachable!())).collect();
    assert!(unstarted.iter().all(|g| !g.started()));
    assert_eq!(group.len(), 5);
    group.kill();
    assert_eq!(group.len(), 0, "kill() returned with members left");
    assert!(group.is_empty());
    for g in running.iter().chain(&unstarted) {
        assert_eq!(g.get(), Err(GetError::Killed));
    }
    // The links that would have removed them later find nothing to do.
    gevent::sleep(Duration::ZERO);
    assert!(group.is_empty());
}

#[test]
fn group_kill_of_only_unstarted_members() {
    let group = Group::new();
    let g = group.spawn(|| -> i32 { unreachable!() });
    group.kill();
    assert!(group.is_empty());
    assert_eq!(g.get(), Err(GetError::Killed));
}

/// test__pool.py TestPool.test_terminate: a full pool with work waiting; kill returns at once,
/// with every slot free again.
#[test]
fn pool_kill_frees_every_slot_at_once() {
    let pool = Pool::new(2);
    let a = pool.spawn(|| gevent::sleep(Duration::from_secs(100)));
    let b = pool.spawn(|| gevent::sleep(Duration::from_secs(100)));
    assert_eq!(pool.free_count(), 0);
    gevent::sleep(Duration::ZERO);
    let t = std::time::Instant::now();
    pool.kill();
    assert!(t.elapsed() < Duration::from_millis(500));
    assert_eq!((pool.len(), pool.free_count()), (0, 2));
    assert!(a.ready() && b.ready());
    // The pool is usable again at its full size.
    let c = pool.spawn(|| 3);
    let d = pool.spawn(|| 4);
    assert_eq!((c.get(), d.get()), (Ok(3), Ok(4)));
}

/// After `join()` the group is empty (and an empty pool joins at once: TestJoinEmpty).
#[test]
fn join_leaves_the_group_empty() {
    let group = Group::new();
    group.join();
    let gs: Vec<_> = (0..3).map(|i| group.spawn(move || i)).collect();
    group.join();
    assert!(group.is_empty());
    assert_eq!(gs[2].get(), Ok(2));
    // A member that finished (killed before it started) but whose link has not run yet.
    let g = group.spawn(|| -> i32 { unreachable!() });
    g.kill_nowait();
    assert!(g.ready());
    group.join();
    assert!(group.is_empty());
    let pool = Pool::new(1);
    pool.spawn(|| ());
    pool.join();
    assert_eq!((pool.len(), pool.free_count()), (0, 1));
}
