//! At the kernel's mapping limit, creating a guarded greenlet returns an error that names
//! `vm.max_map_count` and the dense mode; in dense mode very many greenlets are alive at once.

mod stack_util;

use std::time::Instant;

use greenlet::{Builder, Greenlet, StackConfig};
use stack_util::{describe, is_child, run_child};

#[test]
fn map_limit_error_names_vm_max_map_count_and_dense() {
    const NAME: &str = "map_limit_error_names_vm_max_map_count_and_dense";
    if is_child(NAME) {
        let max: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let cfg = StackConfig::guarded(16 * 1024);
        let mut alive: Vec<Greenlet> = Vec::with_capacity(max / 2 + 1);
        let err = loop {
            match Builder::new().stack(cfg).build(|v| v) {
                Ok(g) => alive.push(g),
                Err(e) => break e,
            }
            assert!(
                alive.len() <= max,
                "no error after {} greenlets",
                alive.len()
            );
        };
        let created = alive.len();
        let msg = err.to_string();
        let is_limit = err.is_map_limit();
        drop(alive);
        // Everything works again once the greenlets are gone.
        let g = Builder::new().stack(cfg).build(|v| v).unwrap();
        assert_eq!(g.switch(5).take::<i32>(), 5);
        eprintln!("at the limit: {msg}");
        println!("\ncreated={created}\nmax={max}\nis_map_limit={is_limit}\nmessage={msg}");
        return;
    }
    let out = run_child(NAME);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k} in {}", describe(&out)))
            .to_string()
    };
    let created: usize = field("created").parse().unwrap();
    let max = field("max");
    let msg = field("message");
    assert_eq!(field("is_map_limit"), "true", "{}", describe(&out));
    assert!(msg.contains("vm.max_map_count"), "{msg}");
    assert!(msg.contains(&format!("vm.max_map_count = {max}")), "{msg}");
    assert!(msg.contains("dense"), "{msg}");
    // Two mappings per guarded stack: about half the limit, less what the process already uses.
    let max: usize = max.parse().unwrap();
    assert!(
        created > max / 2 - 1_000 && created <= max / 2,
        "{created} of {max}"
    );
}

#[test]
fn failures_at_the_map_limit_scan_the_maps_once_per_burst() {
    const NAME: &str = "failures_at_the_map_limit_scan_the_maps_once_per_burst";
    const FAILURES: usize = 500;
    if is_child(NAME) {
        let cfg = StackConfig::guarded(16 * 1024);
        let mut alive: Vec<Greenlet> = Vec::new();
        let fill = |alive: &mut Vec<Greenlet>| loop {
            match Builder::new().stack(cfg).build(|v| v) {
                Ok(g) => alive.push(g),
                Err(e) => break e,
            }
            assert!(
                alive.len() < 40_000,
                "no error after {} greenlets",
                alive.len()
            );
        };
        let scans = || greenlet::stack::stats().map_scans;
        let before = scans();
        let first = fill(&mut alive);
        assert!(first.is_map_limit(), "{first}");
        // A flood of failures: each one keeps the clear error, none reads /proc/self/maps again.
        for _ in 0..FAILURES {
            let e = Builder::new().stack(cfg).build(|v| v).unwrap_err();
            assert!(e.is_map_limit(), "{e}");
            assert!(e.to_string().contains("vm.max_map_count"), "{e}");
        }
        let burst1 = scans() - before;
        // Make room: some stacks go back to the pool, the rest are unmapped. Refilling maps fresh
        // stacks again (the burst is over), so the next failure is classified afresh, once.
        alive.truncate(alive.len() - 1_000);
        let second = fill(&mut alive);
        assert!(second.is_map_limit(), "{second}");
        for _ in 0..FAILURES {
            assert!(Builder::new()
                .stack(cfg)
                .build(|v| v)
                .unwrap_err()
                .is_map_limit());
        }
        let burst2 = scans() - before - burst1;
        drop(alive);
        println!("\nburst1={burst1}\nburst2={burst2}");
        return;
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
    // One scan of /proc/self/maps per burst of failures, however many failures it has.
    assert_eq!(field("burst1"), 1, "{}", describe(&out));
    assert_eq!(field("burst2"), 1, "{}", describe(&out));
}

/// RSS is per process: tests that measure it take turns.
static RSS_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The most RSS growth per suspended greenlet these tests accept. Optimised builds need about one
/// page of stack per suspended greenlet plus its heap state (the bar is 5 KiB); unoptimised frames
/// on the switch path are bigger and take a second page.
const MAX_RSS_PER_GREENLET: f64 = if cfg!(debug_assertions) {
    12.0 * 1024.0
} else {
    5.0 * 1024.0
};

/// Creates `n` dense greenlets, each suspended inside its `run`, and returns the RSS growth per
/// greenlet in bytes.
fn dense_alive(n: usize) -> f64 {
    let _turn = RSS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // On a thread of its own, joined under the lock: the pages of idle dense arenas are given back
    // only after a second, so they leave RSS when that thread exits (its arenas are unmapped), and
    // the next test that measures RSS must not see that happen meanwhile.
    std::thread::scope(|s| {
        s.spawn(|| dense_alive_here(n))
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

fn dense_alive_here(n: usize) -> f64 {
    // SAFETY: the closures need well under a page of stack.
    let cfg = unsafe { StackConfig::dense(StackConfig::DEFAULT_DENSE_SIZE) };
    let t0 = Instant::now();
    let rss0 = stack_util::rss_bytes();
    let pte0 = stack_util::status_bytes("VmPTE");
    let mut gs: Vec<Greenlet> = Vec::with_capacity(n);
    for i in 0..n {
        let g = Builder::new()
            .stack(cfg)
            .build(move |_| {
                stack_util::to_parent(i);
                greenlet::Value::none()
            })
            .unwrap();
        assert_eq!(g.switch(()).take::<usize>(), i);
        gs.push(g);
    }
    let rss1 = stack_util::rss_bytes();
    let pte1 = stack_util::status_bytes("VmPTE");
    let created = t0.elapsed();
    assert_eq!(greenlet::stack::stats().dense_live, n);
    // Every one of them is still alive and resumable.
    for g in gs.iter().step_by(n / 100) {
        assert!(g.is_active());
    }
    let t1 = Instant::now();
    drop(gs);
    let per = (rss1 - rss0) as f64 / n as f64;
    eprintln!(
        "{n} dense greenlets alive: RSS +{} MiB = {per:.0} bytes each (page tables, not in RSS: \
         {} bytes each); created in {created:?}, dropped in {:?}",
        (rss1 - rss0) >> 20,
        (pte1 - pte0) / n,
        t1.elapsed()
    );
    assert_eq!(greenlet::stack::stats().dense_live, 0);
    per
}

#[test]
fn dense_100k_alive_at_once() {
    let per = dense_alive(100_000);
    assert!(per <= MAX_RSS_PER_GREENLET, "{per} bytes per greenlet");
}

/// 400k at once: as many as a test may hold under its 2 GB budget (about 1.7 GB in release). The
/// million-greenlet row of `bench/run` (lifecycle group) measures the full million.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "peaks at several GB in a debug build (bigger frames); .ci/test runs it in release"
)]
fn dense_400k_alive_at_once() {
    let per = dense_alive(400_000);
    assert!(per <= MAX_RSS_PER_GREENLET, "{per} bytes per greenlet");
}

#[test]
fn guarded_30k_alive_at_once() {
    const NAME: &str = "guarded_30k_alive_at_once";
    const N: usize = 30_000;
    if is_child(NAME) {
        let rss0 = stack_util::rss_bytes();
        let pte0 = stack_util::status_bytes("VmPTE");
        let gs: Vec<Greenlet> = (0..N)
            .map(|i| {
                let g = Builder::new()
                    .build(move |_| {
                        stack_util::to_parent(i);
                        greenlet::Value::none()
                    })
                    .unwrap();
                assert_eq!(g.switch(()).take::<usize>(), i);
                g
            })
            .collect();
        let rss1 = stack_util::rss_bytes();
        println!("\nper={}", (rss1 - rss0) / N);
        eprintln!(
            "{N} guarded greenlets alive: RSS +{} MiB = {} bytes each (page tables, not in RSS: \
             {} bytes each), {} mappings",
            (rss1 - rss0) >> 20,
            (rss1 - rss0) / N,
            (stack_util::status_bytes("VmPTE") - pte0) / N,
            stack_util::map_count()
        );
        drop(gs);
        return;
    }
    let out = run_child(NAME);
    assert!(out.status.success(), "{}", describe(&out));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let per: f64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("per="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{}", describe(&out)));
    // Guarded stacks are 260 KiB apart, so each also needs its own page-table page share (~512 B).
    assert!(
        per <= MAX_RSS_PER_GREENLET + 1024.0,
        "{per} bytes per greenlet"
    );
}
