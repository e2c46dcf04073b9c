//! A panic in a signal handler reaches the main greenlet, where it waits.
//!
//! Upstream: gevent `src/gevent/tests/test__signal.py`, `TestSignal.test_alarm`: a handler for
//! `SIGALRM` raises `Expected('TestSignal')`, and the main greenlet's `gevent.sleep(2)` raises it
//! (gevent's hub hands a signal handler's exception to its parent, `handle_system_error`). A kill
//! of a handler is not an error, and the other greenlets keep running.
//!
//! One test in its own binary: dispositions are process-wide.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use gevent::signal::handle;

#[derive(Debug, PartialEq)]
struct Expected(&'static str);

#[test]
fn a_handler_panic_is_raised_in_the_main_greenlet() {
    // Not printed as a test failure: the payload is ours, caught below.
    let _sig = handle(libc::SIGALRM, || {
        std::panic::panic_any(Expected("TestSignal"))
    })
    .unwrap();
    // A bystander greenlet is not disturbed.
    let ticks = Rc::new(Cell::new(0u32));
    let t2 = ticks.clone();
    let bystander = gevent::spawn(move || {
        for _ in 0..400 {
            t2.set(t2.get() + 1);
            gevent::sleep(Duration::from_millis(5));
        }
    });
    // As upstream: alarm(1), then the main greenlet sleeps 2 s and must get Expected.
    // SAFETY: alarm(2) takes no memory; SIGALRM is handled above.
    unsafe { libc::alarm(1) };
    let t = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| gevent::sleep(Duration::from_secs(2))));
    let elapsed = t.elapsed();
    let p = r.expect_err("must raise Expected");
    assert_eq!(p.downcast_ref::<Expected>(), Some(&Expected("TestSignal")));
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(1900),
        "{elapsed:?}: raised at the alarm, not at the end of the sleep"
    );
    let before = ticks.get();
    gevent::sleep(Duration::from_millis(30));
    assert!(ticks.get() > before, "the bystander still runs");
    assert!(!bystander.ready());

    // The main greenlet waiting in a join gets it too; a handler that finishes normally or is
    // killed raises nothing.
    let calls = Rc::new(Cell::new(0u32));
    let c2 = calls.clone();
    let _ok = handle(libc::SIGUSR2, move || c2.set(c2.get() + 1)).unwrap();
    // A handler that ends with a kill's payload: GreenletExit is not an error.
    let _killed = handle(libc::SIGURG, || {
        std::panic::panic_any(greenlet::GreenletExit)
    })
    .unwrap();
    // SAFETY: raise(3) takes no memory; both signals are handled above.
    unsafe {
        libc::raise(libc::SIGUSR2);
        libc::raise(libc::SIGURG);
    }
    let waiter = gevent::spawn(|| gevent::sleep(Duration::from_millis(100)));
    let r = catch_unwind(AssertUnwindSafe(|| waiter.join()));
    assert!(r.is_ok(), "nothing raised for a normal or killed handler");
    assert_eq!(calls.get(), 1);

    let _boom = handle(libc::SIGWINCH, || panic!("handler failed")).unwrap();
    let long = gevent::spawn(|| gevent::sleep(Duration::from_secs(5)));
    // SAFETY: as above.
    unsafe { libc::raise(libc::SIGWINCH) };
    let r = catch_unwind(AssertUnwindSafe(|| long.join()));
    let p = r.expect_err("the join must raise the handler's panic");
    assert_eq!(p.downcast_ref::<&str>(), Some(&"handler failed"));
    long.kill();
    bystander.kill();
}
