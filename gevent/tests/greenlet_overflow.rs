//! Issue 10.4: a stack overflow in a gevent greenlet is reported with its gevent name
//! (`Greenlet-N`, or what `set_name` set, before or after the start), on dense stacks with parked
//! neighbours too, and the process dies by `SIGABRT`. Issue 10.8: spawns failing at the mapping
//! limit stay cheap. Each case runs in a re-executed child.

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

const CHILD_ENV: &str = "GEVENT_OVERFLOW_TEST_CHILD";

/// Recurses forever (as far as the compiler can tell), about 1 KiB of stack per level.
#[inline(never)]
fn recurse_forever(n: u64) -> u64 {
    let buf = black_box([n; 128]);
    if black_box(n) == u64::MAX {
        return 0;
    }
    black_box(recurse_forever(buf[3] + 1)).wrapping_add(buf[7])
}

fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).as_deref() == Ok(name)
}

fn run_child(name: &str) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

fn describe(out: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Dense stacks for this thread's greenlets, and 50 gevent greenlets parked on an event (the
/// neighbours the overflow must not silently run through).
fn dense_with_parked_neighbours() -> (gevent::event::Event, Vec<gevent::Greenlet<()>>) {
    // SAFETY: the one greenlet that does not fit overflows on purpose, in a child that aborts.
    let cfg = unsafe { greenlet::StackConfig::dense(greenlet::StackConfig::DEFAULT_DENSE_SIZE) };
    greenlet::stack::set_thread_default(cfg);
    let never = gevent::event::Event::new();
    let parked = (0..50)
        .map(|_| {
            let never = never.clone();
            gevent::spawn(move || {
                never.wait();
            })
        })
        .collect();
    gevent::sleep(std::time::Duration::ZERO);
    (never, parked)
}

/// Asserts the child died of SIGABRT after reporting `want`.
fn assert_overflow_report(out: &Output, want: &str) {
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        describe(out)
    );
    let line = format!("stack overflow in greenlet {want}\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&line),
        "want {line:?}\n{}",
        describe(out)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("survived"),
        "{}",
        describe(out)
    );
}

/// An overflow in a greenlet spawned with `gevent::spawn` is reported with the greenlet's gevent
/// name, `Greenlet-<minimal ident>`; the test `name` runs it in a child process, on the dense
/// layout with parked neighbours if `dense`, else on the default guarded stack.
fn overflow_names_the_gevent_greenlet_scenario(name: &str, dense: bool) {
    if is_child(name) {
        let _neighbours = dense.then(dense_with_parked_neighbours);
        let g = gevent::spawn(|| {
            recurse_forever(0);
        });
        println!("\nident={}", g.minimal_ident());
        g.join();
        println!("survived");
        return;
    }
    let out = run_child(name);
    let ident = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("ident=").map(str::to_string))
        .unwrap_or_else(|| panic!("{}", describe(&out)));
    assert_overflow_report(&out, &format!("Greenlet-{ident}"));
}

#[test]
fn overflow_names_the_gevent_greenlet() {
    overflow_names_the_gevent_greenlet_scenario("overflow_names_the_gevent_greenlet", true);
}

#[test]
fn overflow_names_the_name_set_before_start() {
    const NAME: &str = "overflow_names_the_name_set_before_start";
    if is_child(NAME) {
        let _neighbours = dense_with_parked_neighbours();
        let g = gevent::Greenlet::new(|| {
            recurse_forever(0);
        });
        g.set_name("crawler");
        g.start();
        g.join();
        println!("survived");
        return;
    }
    assert_overflow_report(&run_child(NAME), "crawler");
}

#[test]
fn overflow_names_the_name_set_while_running() {
    const NAME: &str = "overflow_names_the_name_set_while_running";
    if is_child(NAME) {
        let _neighbours = dense_with_parked_neighbours();
        let go = gevent::event::Event::new();
        let g = gevent::spawn({
            let go = go.clone();
            move || {
                go.wait();
                recurse_forever(0);
            }
        });
        gevent::sleep(std::time::Duration::ZERO);
        assert!(g.started());
        g.set_name("renamed-late");
        go.set();
        g.join();
        println!("survived");
        return;
    }
    assert_overflow_report(&run_child(NAME), "renamed-late");
}

/// A guarded stack (the default) reports the gevent name too.
#[test]
fn guarded_overflow_names_the_gevent_greenlet() {
    overflow_names_the_gevent_greenlet_scenario(
        "guarded_overflow_names_the_gevent_greenlet",
        false,
    );
}

/// Issue 10.8: past `vm.max_map_count`, every spawn fails with the clear error, but only the first
/// failure of the burst reads `/proc/self/maps` (24 ms at the limit, on the hub); the flood after it
/// reads it no more.
#[test]
fn spawns_failing_at_the_map_limit_scan_the_maps_once() {
    const NAME: &str = "spawns_failing_at_the_map_limit_scan_the_maps_once";
    if is_child(NAME) {
        use std::time::Duration;
        greenlet::stack::set_thread_default(greenlet::StackConfig::guarded(16 * 1024));
        let never = gevent::event::Event::new();
        // Room reserved up front: at the limit, a growing Vec could not map more memory.
        let mut alive: Vec<gevent::Greenlet<()>> = Vec::with_capacity(40_000);
        let scans0 = greenlet::stack::stats().map_scans;
        loop {
            for _ in 0..1_000 {
                let never = never.clone();
                alive.push(gevent::spawn(move || {
                    never.wait();
                }));
            }
            gevent::sleep(Duration::ZERO);
            if alive.iter().rev().take(1_000).any(|g| g.ready()) {
                break;
            }
            assert!(alive.len() < 39_000, "no failure after {}", alive.len());
        }
        let scans1 = greenlet::stack::stats().map_scans;
        let flood: Vec<_> = (0..300).map(|_| gevent::spawn(|| ())).collect();
        gevent::joinall(&flood);
        for g in &flood {
            let f = g.exception().expect("failed to start");
            assert!(f.message().contains("vm.max_map_count"), "{f}");
        }
        let scans2 = greenlet::stack::stats().map_scans;
        println!(
            "\nfill_scans={}\nflood_scans={}",
            scans1 - scans0,
            scans2 - scans1
        );
        std::process::exit(0); // the parked greenlets are not worth unwinding
    }
    let out = run_child(NAME);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {}", describe(&out)))
    };
    assert_eq!(field("fill_scans"), 1, "{}", describe(&out));
    assert_eq!(field("flood_scans"), 0, "{}", describe(&out));
}
