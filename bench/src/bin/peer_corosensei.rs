//! Peer: corosensei, the switching primitive the project's greenlets are built on.
//!
//! Run: `cargo run -p bench --release --bin peer_corosensei -- [--group switch,lifecycle] [--quick] [--duration S]`
//!
//! - `switch/roundtrip`: `resume(())` + `suspend(())` of one coroutine, passing `()` each way as ours does
//!   (`g.switch(())` / `main.switch(())`): no value and no data dependency through the switches.
//! - `switch/create_run_finish`: `Coroutine::with_stack` on a reused stack, run to completion, `into_stack`.
//! - `lifecycle/parked_mem_<n>`, `maps_<n>`: `n` coroutines on `DefaultStack` (1 MiB reserved, guard page),
//!   each resumed once and suspended; RSS growth per coroutine and the mapping count. `n` is the guarded count
//!   (30k in a full run) because each guarded stack costs two mappings and `vm.max_map_count` is 65530.

use bench::{bb, counted, names, report, report_parked, rss_bytes, time_per_op, Opts};
use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult};

const PEER: &str = "corosensei";
/// Stack size for the create+run+finish loop (the stack is reused, so its size only costs once).
const STACK: usize = 64 * 1024;

fn roundtrip(o: &Opts) {
    // Bounded: the body returns once `stop` is set, which the driver does after timing.
    let stop = std::rc::Rc::new(std::cell::Cell::new(false));
    let stop_in = stop.clone();
    let mut co: Coroutine<(), (), ()> = Coroutine::new(move |y, ()| {
        while !stop_in.get() {
            y.suspend(());
        }
    });
    let ops = o.counts.ops;
    let ns = time_per_op(o.duration, ops, || {
        for _ in 0..ops {
            bb(co.resume(()));
        }
    });
    stop.set(true);
    assert!(
        matches!(co.resume(()), CoroutineResult::Return(())),
        "roundtrip coroutine did not finish"
    );
    report("switch", names::ROUNDTRIP, PEER, "ns_per_op", ns, ops);
}

fn create_run_finish(o: &Opts) {
    let mut stack = Some(DefaultStack::new(STACK).expect("corosensei stack"));
    let ops = o.counts.ops;
    let ns = time_per_op(o.duration, ops, || {
        for i in 0..ops as u64 {
            let s = stack.take().expect("stack is returned every iteration");
            let mut co: Coroutine<u64, (), u64, DefaultStack> =
                Coroutine::with_stack(s, |_y, x: u64| x.wrapping_mul(3));
            match co.resume(bb(i)) {
                CoroutineResult::Return(r) => {
                    bb(r);
                }
                CoroutineResult::Yield(()) => unreachable!("the body never suspends"),
            }
            stack = Some(co.into_stack());
        }
    });
    report(
        "switch",
        names::CREATE_RUN_FINISH,
        PEER,
        "ns_per_op",
        ns,
        ops,
    );
}

fn parked(n: usize) {
    let before = rss_bytes();
    let mut all: Vec<Coroutine<u64, u64, ()>> = Vec::with_capacity(n);
    for _ in 0..n {
        let stack = match DefaultStack::new(STACK.max(1024 * 1024)) {
            Ok(s) => s,
            Err(e) => {
                bench::skip(
                    "lifecycle",
                    &counted(names::PARKED_MEM, n),
                    PEER,
                    &format!("stack allocation failed after {} stacks: {e}", all.len()),
                );
                return;
            }
        };
        let mut co = Coroutine::with_stack(stack, |y, mut x: u64| {
            while x != u64::MAX {
                x = y.suspend(x);
            }
        });
        let _ = co.resume(1);
        all.push(co);
    }
    // The Vec itself is part of the cost a user pays to hold the handles.
    report_parked("lifecycle", PEER, n, before);
    for co in &mut all {
        let _ = co.resume(u64::MAX);
    }
    drop(all);
}

fn main() {
    let o = Opts::from_args();
    if let Some(n) = o.mem {
        parked(n);
        return;
    }
    if o.wants("switch") {
        roundtrip(&o);
        create_run_finish(&o);
    }
    if o.wants("lifecycle") {
        bench::parked_in_child(&o, "lifecycle", PEER, o.counts.parked_guarded);
    }
}
