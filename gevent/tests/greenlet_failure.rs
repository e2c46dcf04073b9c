//! How a greenlet that ends badly ends (issue 10, items 7 and 9):
//! - a panic payload whose own `Drop` panics still ends the greenlet failed and wakes its joiners,
//!   and the hub goes on;
//! - a failure says what happened: `Timeout: 10ms` for a `Timeout` nobody caught, the type name
//!   (and message, where there is one) for other non-string payloads; a plain kill stays a kill.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use gevent::{Failure, GetError, Timeout};

/// A panic payload whose `Drop` panics.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("Bomb's drop panicked");
    }
}

/// A payload whose `Drop` panics with another such payload: the chain never ends by itself.
struct Chain;

impl Drop for Chain {
    fn drop(&mut self) {
        std::panic::panic_any(Chain);
    }
}

fn failure<T: 'static + Clone>(g: &gevent::Greenlet<T>) -> Failure {
    match g.get() {
        Err(GetError::Panicked(f)) => f,
        Err(e) => panic!("expected a failure, got {e}"),
        Ok(_) => panic!("expected a failure, got a value"),
    }
}

/// The hub still runs greenlets and timers.
fn hub_survives() {
    let g = gevent::spawn(|| {
        gevent::sleep(Duration::from_millis(1));
        7
    });
    assert_eq!(g.get(), Ok(7));
}

#[test]
fn payload_with_panicking_drop_ends_failed_and_wakes_joiners() {
    let g = gevent::spawn(|| -> u8 { std::panic::panic_any(Bomb) });
    let g2 = g.clone();
    let joiner = gevent::spawn(move || g2.join_timeout(Duration::from_secs(5)));
    assert!(
        g.join_timeout(Duration::from_secs(5)),
        "never marked finished"
    );
    assert!(g.ready() && !g.successful());
    // Named by its type once some greenlet was killed with a `Bomb` (another test, maybe
    // already), else the placeholder.
    let m = failure(&g).message().to_owned();
    assert!(
        m == std::any::type_name::<Bomb>() || m == "<non-string panic payload>",
        "{m}"
    );
    assert_eq!(joiner.get(), Ok(true), "the joiner was not woken");
    hub_survives();
}

#[test]
fn endless_chain_of_panicking_drops_ends_failed() {
    let g = gevent::spawn(|| -> u8 { std::panic::panic_any(Chain) });
    assert!(g.join_timeout(Duration::from_secs(5)));
    assert!(matches!(g.get(), Err(GetError::Panicked(_))));
    hub_survives();
}

#[test]
fn kill_with_payload_with_panicking_drop() {
    // Running (parked) when killed.
    let g = gevent::spawn(|| gevent::sleep(Duration::from_secs(100)));
    gevent::sleep(Duration::ZERO);
    assert!(g.kill_with(Bomb, Some(Duration::from_secs(5))));
    assert_eq!(failure(&g).message(), std::any::type_name::<Bomb>());
    // Not started yet when killed: the killer does not get the drop's panic either.
    let g = gevent::spawn(|| ());
    assert!(g.kill_with(Bomb, Some(Duration::from_secs(5))));
    assert_eq!(failure(&g).message(), std::any::type_name::<Bomb>());
    hub_survives();
}

/// A greenlet ended by a `Timeout` it did not catch says so, with the duration.
#[test]
fn uncaught_timeout_is_named() {
    let g = gevent::spawn(|| {
        let _t = Timeout::start_new(Duration::from_millis(10));
        gevent::sleep(Duration::from_secs(10));
    });
    let f = failure(&g);
    assert_eq!(f.message(), "Timeout: 10ms");
    assert_eq!(f.to_string(), "Timeout: 10ms");
    assert_eq!(
        g.get().unwrap_err().to_string(),
        "the greenlet panicked: Timeout: 10ms"
    );
}

/// A payload type the user never mentioned to gevent, used to kill: its type name.
#[derive(Debug)]
struct Shutdown;

#[test]
fn kill_with_custom_payload_is_named() {
    let g = gevent::spawn(|| gevent::sleep(Duration::from_secs(100)));
    gevent::sleep(Duration::ZERO);
    assert!(g.kill_with(Shutdown, None));
    assert_eq!(failure(&g).message(), std::any::type_name::<Shutdown>());
    assert!(failure(&g)
        .message()
        .ends_with("greenlet_failure::Shutdown"));
    // Before it started: the same.
    let g = gevent::spawn(|| ());
    g.kill_with(Shutdown, None);
    assert_eq!(failure(&g).message(), std::any::type_name::<Shutdown>());
}

/// A registered `Display` payload: type name and message.
struct Maintenance(u32);

impl fmt::Display for Maintenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "back in {} minutes", self.0)
    }
}

#[test]
fn registered_display_payload_has_its_message() {
    gevent::greenlets::register_panic_payload::<Maintenance>();
    let g = gevent::spawn(|| std::panic::panic_any(Maintenance(5)));
    let want = format!(
        "{}: back in 5 minutes",
        std::any::type_name::<Maintenance>()
    );
    assert_eq!(failure(&g).message(), want);
    let g = gevent::spawn(|| gevent::sleep(Duration::from_secs(100)));
    gevent::sleep(Duration::ZERO);
    g.kill_with(Maintenance(9), None);
    assert!(failure(&g)
        .message()
        .ends_with("Maintenance: back in 9 minutes"));
}

#[test]
fn error_payloads_have_their_message() {
    let g = gevent::spawn(|| {
        std::panic::panic_any(std::io::Error::new(
            std::io::ErrorKind::BrokenPipe,
            "peer went away",
        ))
    });
    assert_eq!(failure(&g).message(), "std::io::Error: peer went away");
    let g = gevent::spawn(|| {
        let e: Box<dyn Error + Send + Sync> = "bad input".into();
        std::panic::panic_any(e)
    });
    assert_eq!(
        failure(&g).message(),
        "Box<dyn Error + Send + Sync>: bad input"
    );
    // Strings stay as they were.
    let g = gevent::spawn(|| panic!("plain {}", 42));
    assert_eq!(failure(&g).message(), "plain 42");
    let g = gevent::spawn(|| std::panic::panic_any("static str"));
    assert_eq!(failure(&g).message(), "static str");
}

/// A plain kill is no failure: `get()` says killed, no exception.
#[test]
fn plain_kill_stays_silent() {
    let g = gevent::spawn(|| gevent::sleep(Duration::from_secs(100)));
    gevent::sleep(Duration::ZERO);
    g.kill();
    assert_eq!(g.get(), Err(GetError::Killed));
    assert!(g.exception().is_none() && g.successful());
}

/// `Failure` is a `std::error::Error`, usable with `?` into `Box<dyn Error>`.
#[test]
fn failure_is_an_error() {
    fn first_failure(gs: &[gevent::Greenlet<()>]) -> Result<(), Box<dyn Error>> {
        for g in gs {
            g.join();
            if let Some(f) = g.exception() {
                return Err(f.into());
            }
        }
        Ok(())
    }
    let gs = vec![gevent::spawn(|| ()), gevent::spawn(|| panic!("second"))];
    let e = first_failure(&gs).unwrap_err();
    assert_eq!(e.to_string(), "second");
    assert!(e.source().is_none());
}

const CHILD: &str = "GEVENT_TEST_GREENLET_FAILURE_CHILD";

/// The report on stderr names the failure as its `Failure` does (in a re-executed test binary, to
/// read its stderr): `<name> failed with Timeout: 10ms`, the kill payload's type name; a plain kill
/// prints nothing.
#[test]
fn stderr_report_names_the_failure() {
    if std::env::var_os(CHILD).is_some() {
        let g = gevent::spawn(|| {
            let _t = Timeout::start_new(Duration::from_millis(10));
            gevent::sleep(Duration::from_secs(10));
        });
        g.set_name("sleepy");
        let k = gevent::spawn(|| gevent::sleep(Duration::from_secs(100)));
        k.set_name("shut-down");
        let p = gevent::spawn(|| gevent::sleep(Duration::from_secs(100)));
        p.set_name("plainly-killed");
        gevent::sleep(Duration::ZERO);
        k.kill_with(Shutdown, None);
        p.kill();
        g.join();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "stderr_report_names_the_failure", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("<sleepy> failed with Timeout: 10ms"), "{err}");
    let shut = format!(
        "<shut-down> failed with {}",
        std::any::type_name::<Shutdown>()
    );
    assert!(err.contains(&shut), "{err}");
    assert!(!err.contains("plainly-killed"), "{err}");
    assert!(!err.contains("non-string"), "{err}");
}

/// A hub callback that panics with such a payload: the hub reports it and goes on.
#[test]
fn hub_callback_payload_with_panicking_drop() {
    gevent::get_hub().run_callback(|| std::panic::panic_any(Bomb));
    gevent::get_hub().run_callback(|| std::panic::panic_any(Chain));
    gevent::sleep(Duration::ZERO);
    hub_survives();
}
