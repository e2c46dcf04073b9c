//! Stack overflow is never silent: a guard-page hit and a dense canary hit both print
//! `stack overflow in greenlet <name>` and abort. Each test runs the overflow in a child process.

mod stack_util;

use std::hint::black_box;
use std::process::Output;

use std::sync::atomic::{AtomicUsize, Ordering};

use greenlet::{Builder, StackConfig, Value};
use stack_util::{describe, is_child, run_child, run_child_with_env, signal_of};

/// Recurses forever (as far as the compiler can tell), using about 1 KiB of stack per level.
#[inline(never)]
fn recurse_forever(n: u64) -> u64 {
    let buf = black_box([n; 128]);
    if black_box(n) == u64::MAX {
        return 0;
    }
    black_box(recurse_forever(buf[3] + 1)).wrapping_add(buf[7])
}

/// Recurses `depth` levels of about 1 KiB each, then returns.
#[inline(never)]
fn recurse_to(depth: u64) -> u64 {
    let buf = black_box([depth; 128]);
    if depth == 0 {
        return buf[0];
    }
    black_box(recurse_to(buf[5] - 1)).wrapping_add(buf[9])
}

/// The child in `out` aborted (SIGABRT) after reporting `stack overflow in greenlet <name>`.
fn assert_overflow_abort(out: &Output, name: &str) {
    assert_eq!(signal_of(out), Some(libc::SIGABRT), "{}", describe(out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("stack overflow in greenlet {name}\n")),
        "{}",
        describe(out)
    );
}

#[test]
fn guarded_overflow_is_reported_and_aborts() {
    const NAME: &str = "guarded_overflow_is_reported_and_aborts";
    if is_child(NAME) {
        let g = Builder::new()
            .name("deep-guarded")
            .stack(StackConfig::guarded(64 * 1024))
            .build(|_| Value::new(recurse_forever(0)))
            .unwrap();
        g.switch(());
        unreachable!("the overflow must abort");
    }
    let out = run_child(NAME);
    assert!(!out.status.success(), "{}", describe(&out));
    assert_overflow_abort(&out, "deep-guarded");
}

#[test]
fn guarded_overflow_of_unnamed_greenlet_names_it_by_id() {
    const NAME: &str = "guarded_overflow_of_unnamed_greenlet_names_it_by_id";
    if is_child(NAME) {
        let g = Builder::new()
            .build(|_| Value::new(recurse_forever(0)))
            .unwrap();
        println!("id={}", g.id());
        g.switch(());
        unreachable!("the overflow must abort");
    }
    let out = run_child(NAME);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let id = stdout
        .lines()
        .find_map(|l| l.split("id=").nth(1))
        .map(str::trim)
        .unwrap_or_else(|| panic!("{}", describe(&out)));
    assert_overflow_abort(&out, &format!("greenlet-{id}"));
}

#[test]
fn dense_overflow_is_detected_at_next_switch() {
    const NAME: &str = "dense_overflow_is_detected_at_next_switch";
    if is_child(NAME) {
        // SAFETY: this test overflows on purpose, in a child process, and the victims below it are
        // never run again.
        let cfg = unsafe { StackConfig::dense(16 * 1024) };
        // Neighbours below the victim (slots are carved upwards), suspended inside their run.
        let neighbours: Vec<_> = (0..4)
            .map(|i| {
                let g = Builder::new()
                    .name(format!("neighbour-{i}"))
                    .stack(cfg)
                    .build(|_| stack_util::to_parent(()))
                    .unwrap();
                g.switch(());
                g
            })
            .collect();
        let victim = Builder::new()
            .name("dense-victim")
            .stack(cfg)
            .build(|_| {
                // About 24 KiB deep in a 16 KiB slot: runs into the neighbour's slot, then returns.
                let r = recurse_to(black_box(24));
                stack_util::to_parent(r);
                Value::none()
            })
            .unwrap();
        eprintln!("switching to the victim");
        victim.switch(());
        eprintln!("the overflow was not detected");
        std::mem::forget(neighbours);
        std::process::exit(0);
    }
    let out = run_child(NAME);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("switching to the victim"),
        "{}",
        describe(&out)
    );
    assert!(!out.status.success(), "{}", describe(&out));
    assert_overflow_abort(&out, "dense-victim");
}

#[test]
fn other_faults_in_a_greenlet_are_passed_on() {
    const NAME: &str = "other_faults_in_a_greenlet_are_passed_on";
    if is_child(NAME) {
        let g = Builder::new()
            .name("wild-pointer")
            .build(|_| {
                let p = black_box(64usize) as *const u8;
                // SAFETY: not safe at all: this reads an unmapped address on purpose, to check
                // that a fault which is not an overflow reaches the default action (SIGSEGV).
                Value::new(unsafe { p.read_volatile() })
            })
            .unwrap();
        g.switch(());
        unreachable!("the fault must kill the process");
    }
    let out = run_child(NAME);
    assert_eq!(signal_of(&out), Some(libc::SIGSEGV), "{}", describe(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("stack overflow"),
        "{}",
        describe(&out)
    );
}

#[test]
fn thread_overflow_outside_greenlets_still_reaches_std() {
    const NAME: &str = "thread_overflow_outside_greenlets_still_reaches_std";
    if is_child(NAME) {
        // Install our handler first (it is installed with the first guarded stack).
        let g = Builder::new().build(|v| v).unwrap();
        g.switch(());
        std::thread::Builder::new()
            .name("plain-thread".into())
            .stack_size(256 * 1024)
            .spawn(|| recurse_forever(0))
            .unwrap()
            .join()
            .unwrap();
        unreachable!("the overflow must abort");
    }
    let out = run_child(NAME);
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'plain-thread'") && stderr.contains("has overflowed its stack"),
        "{}",
        describe(&out)
    );
    assert!(!stderr.contains("in greenlet"), "{}", describe(&out));
}

/// Where the parked neighbour just below the victim keeps its [`PATTERN`] words (0: not yet).
static NEIGHBOUR_WORDS: AtomicUsize = AtomicUsize::new(0);
const PATTERN: u64 = 0xA5A5_5A5A_C3C3_3C3C;
const WORDS: usize = 64;

/// Runs at the abort that reports the overflow: says on stderr whether the neighbour's frame still
/// holds its pattern. Async-signal-safe (volatile reads and `write(2)`).
extern "C" fn report_neighbour(_: libc::c_int) {
    let p = NEIGHBOUR_WORDS.load(Ordering::SeqCst) as *const u64;
    if p.is_null() {
        return;
    }
    // SAFETY: the neighbour is parked with the pattern live in its frame, in a dense slot that
    // stays mapped; nothing else runs while the process aborts.
    let intact = (0..WORDS).all(|i| unsafe { p.add(i).read_volatile() } == PATTERN);
    let msg: &[u8] = if intact {
        b"neighbour intact\n"
    } else {
        b"neighbour corrupted\n"
    };
    // SAFETY: writing a static buffer to stderr.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

/// The child of the tests below: 64 dense greenlets parked inside their `run`, then one above
/// them that recurses without bound. With `trimmed`, their slots were used, freed and given back to
/// the kernel first (the guard pages must survive that).
fn overflow_above_parked_neighbours(trimmed: bool) -> ! {
    // SAFETY: this test overflows on purpose, in a child process that aborts.
    let cfg = unsafe { StackConfig::dense(16 * 1024) };
    if trimmed {
        let mut warm: Vec<_> = (0..65)
            .map(|_| {
                let g = Builder::new()
                    .stack(cfg)
                    .build(|_| stack_util::to_parent(()))
                    .unwrap();
                g.switch(());
                g
            })
            .collect();
        // Freed from the top, so the free list hands the slots out again from the bottom up.
        while let Some(g) = warm.pop() {
            drop(g);
        }
        // The arena's pages go back to the kernel once it has been idle for a second.
        let due = greenlet::stack::trim_due().expect("an idle arena waits for trimming");
        std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
        assert_eq!(greenlet::stack::trim_idle(), None);
        assert_eq!(greenlet::stack::trim_due(), None, "the arena was trimmed");
    }
    let neighbours: Vec<_> = (0..64)
        .map(|i| {
            let g = Builder::new()
                .name(format!("neighbour-{i}"))
                .stack(cfg)
                .build(move |_| {
                    let words = black_box([PATTERN; WORDS]);
                    if i == 63 {
                        NEIGHBOUR_WORDS.store(words.as_ptr() as usize, Ordering::SeqCst);
                    }
                    stack_util::to_parent(());
                    black_box(&words);
                    Value::none()
                })
                .unwrap();
            g.switch(());
            g
        })
        .collect();
    // The SIGABRT handler runs nested in the SIGSEGV handler, on the alternate signal stack: give
    // the thread one big enough for both (leaked: the process aborts).
    let alt = vec![0u8; 256 * 1024].leak();
    let ss = libc::stack_t {
        ss_sp: alt.as_mut_ptr().cast(),
        ss_flags: 0,
        ss_size: alt.len(),
    };
    // SAFETY: `alt` lives for the rest of the process; the handler only does async-signal-safe work.
    unsafe {
        assert_eq!(libc::sigaltstack(&ss, std::ptr::null_mut()), 0);
        libc::signal(
            libc::SIGABRT,
            report_neighbour as *const () as libc::sighandler_t,
        );
    }
    // Slots are carved upwards: the victim's slot is right above the last neighbour's.
    let victim = Builder::new()
        .name("runaway")
        .stack(cfg)
        .build(|_| Value::new(recurse_forever(0)))
        .unwrap();
    eprintln!(
        "dense guard pages: {}",
        greenlet::stack::dense_guard_pages()
    );
    victim.switch(());
    eprintln!("the overflow went unnoticed");
    std::mem::forget(neighbours);
    std::process::exit(0);
}

/// The test `name`: in a child, unbounded recursion on a dense stack above parked neighbours (the
/// arena's pages given back to the kernel first if `trimmed`) is reported by name and aborts; with
/// a guard page per dense stack (Linux 6.13+) it stops before touching the neighbour.
fn overflow_stops_at_the_guard_page(name: &str, trimmed: bool) {
    if is_child(name) {
        overflow_above_parked_neighbours(trimmed);
    }
    let out = run_child(name);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_overflow_abort(&out, "runaway");
    if stderr.contains("dense guard pages: false") {
        eprintln!("skip the neighbour check: this kernel has no light guard pages (Linux < 6.13)");
        return;
    }
    assert!(
        stderr.contains("dense guard pages: true"),
        "{}",
        describe(&out)
    );
    assert!(stderr.contains("neighbour intact\n"), "{}", describe(&out));
}

/// Issue 10.4: unbounded recursion on a dense stack with parked neighbours is reported by name and
/// aborts; with a guard page per dense stack (Linux 6.13+) it stops before touching the neighbour.
#[test]
fn dense_unbounded_recursion_stops_at_its_guard_page() {
    overflow_stops_at_the_guard_page("dense_unbounded_recursion_stops_at_its_guard_page", false);
}

/// Issue 10.4, on kernels without light guard pages (forced here): the overflow runs through the
/// neighbours' slots, but the arena's bottom guard page stops it and the fault handler, seeing the
/// stack pointer below the running greenlet's stack, reports it by name instead of a bare SIGSEGV.
#[test]
fn dense_unbounded_recursion_without_guard_pages_is_reported() {
    const NAME: &str = "dense_unbounded_recursion_without_guard_pages_is_reported";
    if is_child(NAME) {
        overflow_above_parked_neighbours(false);
    }
    let out = run_child_with_env(NAME, &[("GREENLET_NO_LIGHT_GUARDS", "1")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("dense guard pages: false"),
        "{}",
        describe(&out)
    );
    assert_overflow_abort(&out, "runaway");
    assert!(!stderr.contains("unnoticed"), "{}", describe(&out));
}

/// The name a scheduler gives (`Builder::name_numbered`, `Greenlet::set_name` while it runs) is the
/// one an overflow report says.
#[test]
fn overflow_report_uses_the_name_set_while_running() {
    const NAME: &str = "overflow_report_uses_the_name_set_while_running";
    if is_child(NAME) {
        // SAFETY: overflows on purpose, in a child process that aborts.
        let cfg = unsafe { StackConfig::dense(16 * 1024) };
        let g = Builder::new()
            .name_numbered("Task-", 41)
            .stack(cfg)
            .build(|_| {
                stack_util::to_parent(());
                Value::new(recurse_forever(0))
            })
            .unwrap();
        assert_eq!(g.name(), "Task-41");
        g.switch(());
        g.set_name("renamed-task");
        g.switch(());
        unreachable!("the overflow must abort");
    }
    let out = run_child(NAME);
    assert_overflow_abort(&out, "renamed-task");
}

/// The guard pages of dense slots survive the arena's pages being given back to the kernel (and the
/// slots being reused afterwards).
#[test]
fn dense_guard_pages_survive_trimming() {
    overflow_stops_at_the_guard_page("dense_guard_pages_survive_trimming", true);
}
