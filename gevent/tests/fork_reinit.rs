//! A greenlet that forks (gevent::fork, or libc::fork under it) gives the child a hub of its own:
//! the parent's parked reader wakes when its data arrives while the child runs its hub, the child
//! sleeps and serves its own sockets, its thread pools work, and its copy of a greenlet parked on
//! I/O at the fork fails instead of taking the parent's data (issue 10, item 2; gevent's
//! `src/gevent/tests/test__core_fork.py` / `test__fork.py` check the same: a child's loop works
//! after `fork` + `reinit`).
//!
//! Every child ends with `_exit` (never returns into the test harness) and is reaped with a
//! bounded wait; every wait in parent and child is bounded.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

#[path = "support/fork.rs"]
mod fork;
use fork::{child_main, park_reader, reap};

use gevent::net::UnixStream;

fn gevent_fork() -> libc::pid_t {
    gevent::fork().expect("fork")
}

fn libc_fork() -> libc::pid_t {
    // SAFETY: fork(2); the child only runs `child_main` and ends with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    pid
}

/// The scenario of the issue: the parent's reader is parked, another greenlet forks, the child
/// sleeps cooperatively and serves a socket of its own until the parent says bye; meanwhile the
/// parent's data arrives and its reader must wake at once.
fn parent_keeps_its_events_scenario(fork: fn() -> libc::pid_t) {
    let (a, b) = UnixStream::pair().unwrap();
    let (ready_r, ready_w) = UnixStream::pair().unwrap(); // child -> parent: "my hub runs"
    let (bye_r, bye_w) = UnixStream::pair().unwrap(); // parent -> child: "exit now"
    ready_r
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    bye_r
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (reader, got) = park_reader(a);
    let got_in_child = got.clone();
    let forker = gevent::spawn(move || {
        let pid = fork();
        if pid != 0 {
            return pid;
        }
        child_main(|| {
            // A socket of its own, made after the fork, served by a greenlet: an echo.
            let (c1, c2) = UnixStream::pair().unwrap();
            c2.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            if let Err(code) = fork::echo_works(c1, &c2) {
                return code;
            }
            // Sleeps cooperatively (its hub polls meanwhile) while a greenlet waits for the
            // parent's bye on an fd inherited from it (registered again in the child's poller).
            if !fork::bye_arrives_while_sleeping(bye_r, &ready_w, gevent::sleep) {
                return 4;
            }
            // The child's copy of the parent's reader was woken with an error and read nothing.
            match got_in_child.borrow().as_ref() {
                Some((Err(e), _)) if e.to_string().contains("fork") => 0,
                Some((Err(_), _)) => 5,
                Some((Ok(_), _)) => 6, // it took the parent's data
                None => 7,             // still parked: would hang
            }
        })
    });
    let pid = forker.get().unwrap();
    assert!(pid > 0);
    fork::parent_keeps_its_events(pid, &ready_r, &b, &bye_w, &reader, &got);
}

#[test]
fn gevent_fork_parent_keeps_its_events_child_serves_its_own() {
    parent_keeps_its_events_scenario(gevent_fork);
}

#[test]
fn raw_libc_fork_parent_keeps_its_events_child_serves_its_own() {
    parent_keeps_its_events_scenario(libc_fork);
}

#[test]
fn thread_pools_and_the_resolver_work_in_the_child() {
    let pool = gevent::threadpool::ThreadPool::new(2);
    assert_eq!(pool.apply(|| 1), 1); // the parent's threads exist
    assert_eq!(gevent::threadpool::default_pool().apply(|| 2), 2);
    // A greenlet waits for a job that runs on one of the parent's threads when the fork happens.
    let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
    let p2 = pool.clone();
    let waiting = gevent::spawn(move || {
        p2.spawn(move || {
            let _ = gate_rx.recv_timeout(Duration::from_secs(10));
            7
        })
        .join()
        .map_err(|p| greenlet::panic_message(&*p).to_string())
    });
    gevent::sleep(Duration::ZERO);
    assert!(!waiting.ready());
    let pool_in_child = pool.clone();
    let waiting_in_child = waiting.clone();
    let forker = gevent::spawn(move || {
        let pid = gevent::fork().unwrap();
        if pid != 0 {
            return pid;
        }
        child_main(move || {
            // The parent's job never comes back here: its waiter is told so, not left hanging.
            if !waiting_in_child.join_timeout(Duration::from_secs(5)) {
                return 2;
            }
            match waiting_in_child.value() {
                Some(Err(m)) if m.contains("fork") => {}
                _ => return 3,
            }
            // Pools made in the parent (and the default one) run jobs on threads of the child's.
            if pool_in_child.apply(|| 40 + 2) != 42 {
                return 4;
            }
            if gevent::threadpool::default_pool().apply(|| 5) != 5 {
                return 5;
            }
            match gevent::net::resolve(("localhost", 80)) {
                Ok(a) if !a.is_empty() => {}
                _ => return 6,
            }
            0
        })
    });
    let pid = forker.get().unwrap();
    let code = reap(pid, Duration::from_secs(15));
    // The parent's job finishes on the parent's thread as if nothing happened.
    gate_tx.send(()).unwrap();
    assert!(waiting.join_timeout(Duration::from_secs(5)));
    assert_eq!(waiting.get().unwrap(), Ok(7));
    assert_eq!(code, 0, "the child's check failed (code {code})");
}

#[test]
fn job_handles_of_the_parent_never_hang_in_the_child() {
    type Slot = Rc<Cell<Option<gevent::threadpool::JobHandle<i32>>>>;
    let pool = gevent::threadpool::ThreadPool::new(2);
    pool.set_maxsize(3).unwrap();
    let done = pool.spawn(|| 5);
    assert!(done.wait_timeout(Duration::from_secs(5)));
    let done: Slot = Rc::new(Cell::new(Some(done)));
    let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
    let running: Slot = Rc::new(Cell::new(Some(pool.spawn(move || {
        let _ = gate_rx.recv_timeout(Duration::from_secs(10));
        7
    }))));
    // A greenlet waits (with a long timeout) on the job in flight when the fork happens.
    let (r2, (event_tx, event_rx)) = (running.clone(), std::sync::mpsc::channel::<()>());
    let waiter = gevent::spawn(move || {
        let h = r2.take().unwrap();
        let _ = event_tx.send(());
        let woke = h.wait_timeout(Duration::from_secs(10));
        r2.set(Some(h));
        woke
    });
    gevent::sleep(Duration::ZERO);
    event_rx.try_recv().expect("the waiter is parked");
    assert!(!waiter.ready());
    let (p2, d2, r3, w2) = (pool.clone(), done.clone(), running.clone(), waiter.clone());
    let forker = gevent::spawn(move || {
        let pid = gevent::fork().unwrap();
        if pid != 0 {
            return pid;
        }
        child_main(move || {
            let t0 = Instant::now();
            // Woken when the hub is rebuilt, not after its 10 s.
            if !w2.join_timeout(Duration::from_secs(5)) {
                return 2;
            }
            if !matches!(w2.get(), Ok(false)) {
                return 3;
            }
            // The job in flight at the fork: an error saying so, at once.
            match r3.take().unwrap().join() {
                Err(p) if greenlet::panic_message(&*p).contains("fork") => {}
                _ => return 4,
            }
            if t0.elapsed() > Duration::from_secs(5) {
                return 5;
            }
            // A job finished before the fork keeps its result.
            if d2.take().unwrap().join().ok() != Some(5) {
                return 6;
            }
            // The child's pool has the size the parent's had at the fork, and runs jobs.
            if p2.maxsize() != 3 || p2.spawn(|| 6).join().ok() != Some(6) {
                return 7;
            }
            0
        })
    });
    let pid = forker.get().unwrap();
    let code = reap(pid, Duration::from_secs(15));
    // The parent's job finishes on the parent's thread as if nothing happened.
    gate_tx.send(()).unwrap();
    assert!(waiter.join_timeout(Duration::from_secs(5)));
    assert!(
        waiter.get().unwrap(),
        "the parent's waiter saw its job finish"
    );
    assert_eq!(running.take().unwrap().join().unwrap(), 7);
    assert_eq!(done.take().unwrap().join().unwrap(), 5);
    assert_eq!(code, 0, "the child's check failed (code {code})");
}

#[test]
fn sleeping_greenlets_and_timers_carry_over_into_the_child() {
    let done = Rc::new(Cell::new(0));
    let d2 = done.clone();
    let sleeper = gevent::spawn(move || {
        gevent::sleep(Duration::from_millis(50));
        d2.set(d2.get() + 1);
    });
    gevent::sleep(Duration::ZERO);
    let sleeper_in_child = sleeper.clone();
    let done_in_child = done.clone();
    let forker = gevent::spawn(move || {
        let pid = gevent::fork().unwrap();
        if pid != 0 {
            return pid;
        }
        child_main(move || {
            if !sleeper_in_child.join_timeout(Duration::from_secs(5)) {
                return 2;
            }
            if done_in_child.get() != 1 {
                return 3;
            }
            0
        })
    });
    let pid = forker.get().unwrap();
    assert!(sleeper.join_timeout(Duration::from_secs(5)));
    assert_eq!(done.get(), 1);
    assert_eq!(reap(pid, Duration::from_secs(15)), 0);
}

#[test]
fn a_child_can_fork_again() {
    let (a, b) = UnixStream::pair().unwrap();
    let (reader, got) = park_reader(a);
    let forker = gevent::spawn(|| {
        let pid = gevent::fork().unwrap();
        if pid != 0 {
            return pid;
        }
        child_main(|| {
            // The grandchild serves a socket of its own too.
            let (c1, c2) = UnixStream::pair().unwrap();
            c2.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let pid = match gevent::fork() {
                Ok(p) => p,
                Err(_) => return 2,
            };
            if pid == 0 {
                child_main(|| {
                    gevent::sleep(Duration::from_millis(1));
                    match (&c1).write_all(b"gc") {
                        Ok(()) => 0,
                        Err(_) => 3,
                    }
                })
            }
            let mut buf = [0u8; 2];
            if (&c2).read_exact(&mut buf).is_err() || &buf != b"gc" {
                return 4;
            }
            reap(pid, Duration::from_secs(10))
        })
    });
    let pid = forker.get().unwrap();
    assert_eq!(reap(pid, Duration::from_secs(15)), 0);
    (&b).write_all(b"x").unwrap();
    assert!(reader.join_timeout(Duration::from_secs(3)));
    assert_eq!(got.borrow_mut().take().unwrap().0.unwrap(), b"x");
}

#[test]
fn commands_with_and_without_pre_exec_leave_the_parents_hub_alone() {
    use std::os::unix::process::CommandExt;
    let (a, b) = UnixStream::pair().unwrap();
    let (reader, got) = park_reader(a);
    let mut cmd = std::process::Command::new("true");
    // SAFETY: the closure does nothing (async-signal-safe); it makes std fork rather than
    // posix_spawn, so gevent's atfork handler runs in that child before exec.
    unsafe { cmd.pre_exec(|| Ok(())) };
    let child = cmd.spawn().unwrap();
    let status = gevent::subprocess::Child::from_std(child)
        .unwrap()
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("`true` exits");
    assert!(status.success());
    // Without pre_exec std uses posix_spawn (clone with CLONE_VM | CLONE_VFORK: the parent's own
    // memory): no atfork handler runs there, so the parent's hub must not think it forked.
    let status = gevent::subprocess::Command::new("true").status().unwrap();
    assert!(status.success());
    (&b).write_all(b"y").unwrap();
    assert!(reader.join_timeout(Duration::from_secs(3)));
    assert_eq!(got.borrow_mut().take().unwrap().0.unwrap(), b"y");
}

#[test]
fn signals_in_the_child_run_the_childs_handlers_not_the_parents() {
    use gevent::event::Event;
    let count = Rc::new(Cell::new(0));
    let got = Rc::new(Event::new());
    let (c2, got2) = (count.clone(), got.clone());
    let guard = gevent::signal::handle(libc::SIGUSR1, move || {
        c2.set(c2.get() + 1);
        got2.set();
    })
    .unwrap();
    gevent::sleep(Duration::ZERO); // the signal reader parks on its pipe
    let (count_in_child, got_in_child) = (count.clone(), got.clone());
    let forker = gevent::spawn(move || {
        let pid = gevent::fork().unwrap();
        if pid != 0 {
            return pid;
        }
        child_main(move || {
            // SAFETY: raise(3); SIGUSR1 is handled (by the handler inherited from the parent).
            unsafe { libc::raise(libc::SIGUSR1) };
            if !got_in_child.wait_timeout(Duration::from_secs(5)) {
                return 2; // went to the parent's pipe
            }
            match count_in_child.get() {
                1 => 0,
                _ => 3,
            }
        })
    });
    let pid = forker.get().unwrap();
    assert_eq!(reap(pid, Duration::from_secs(15)), 0);
    // The child's signal never reached the parent's pipe: its own is the first the parent sees.
    // SAFETY: as above.
    unsafe { libc::raise(libc::SIGUSR1) };
    assert!(got.wait_timeout(Duration::from_secs(5)));
    for _ in 0..3 {
        gevent::sleep(Duration::ZERO); // a second byte in the pipe would run a second handler
    }
    assert_eq!(count.get(), 1);
    drop(guard);
}

#[test]
fn a_started_stream_server_keeps_serving_in_the_child() {
    use gevent::event::Event;
    // The pre-fork server: started (its accept loop parked) before the fork.
    let served = Rc::new(Event::new());
    let s2 = served.clone();
    let server = gevent::server::StreamServer::bind("127.0.0.1:0", move |conn, _| {
        let _ = (&conn).write_all(b"served");
        s2.set();
    })
    .unwrap();
    server.start();
    gevent::sleep(Duration::ZERO);
    let addr = server.local_addr();
    let served_in_child = served.clone();
    let forker = gevent::spawn(move || {
        let pid = gevent::fork().unwrap();
        if pid != 0 {
            return pid;
        }
        child_main(move || {
            // Its copy of the accept loop retries after the fork and serves the connection.
            if served_in_child.wait_timeout(Duration::from_secs(10)) {
                0
            } else {
                2
            }
        })
    });
    let pid = forker.get().unwrap();
    // The parent stops (closing its own copy of the listening socket): only the child accepts.
    server.stop(Duration::from_secs(1));
    let c = gevent::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let r = (&c).read_to_end(&mut buf);
    let code = reap(pid, Duration::from_secs(15));
    assert_eq!(code, 0, "the child did not serve (code {code})");
    r.unwrap();
    assert_eq!(buf, b"served");
    assert!(!served.is_set(), "the parent's stopped server served");
}

#[test]
fn os_waitpid_waits_cooperatively_and_reports_the_exit_code() {
    let forker = gevent::spawn(|| {
        let pid = gevent::fork().unwrap();
        if pid != 0 {
            return pid;
        }
        child_main(|| {
            gevent::sleep(Duration::from_millis(150));
            3
        })
    });
    let pid = forker.get().unwrap();
    // Still running: the bounded wait says so and leaves it unreaped.
    assert!(gevent::os::waitpid(pid, Some(Duration::from_millis(10)))
        .unwrap()
        .is_none());
    let ticks = Rc::new(Cell::new(0));
    let t2 = ticks.clone();
    let ticker = gevent::spawn(move || {
        for _ in 0..5 {
            gevent::sleep(Duration::from_millis(10));
            t2.set(t2.get() + 1);
        }
    });
    let status = gevent::os::waitpid(pid, Some(Duration::from_secs(10)))
        .unwrap()
        .expect("the child exits within 10 s");
    assert_eq!(status.code(), Some(3));
    // The child sleeps 150 ms, the ticker ticks every 10 ms: a waitpid that blocked the thread
    // would return with no tick at all.
    assert!(
        ticks.get() >= 1,
        "the other greenlets ran while waitpid waited"
    );
    ticker.join();
    // Reaped: a second wait is an error (ECHILD), and a bad pid is refused.
    assert_eq!(
        gevent::os::waitpid(pid, Some(Duration::ZERO))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ECHILD)
    );
    assert_eq!(
        gevent::os::waitpid(0, None).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}
