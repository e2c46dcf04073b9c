//! The switch round trip against corosensei's, in one process, interleaved: main <-> g passing `()`
//! both ways (ours: `g.switch(())` / `main.switch(())`; corosensei: `resume(())` / `suspend(())`), as the
//! bench's `switch/roundtrip` rows do.
//! Each round times a batch of each side in turn, so both see the same machine load; the report is
//! the median per side, the median of the per-round ratios, their spread (min..max), and the ratio of each side's
//! fastest round (the least disturbed by other load).
//!
//! Run: `cargo run -p greenlet --release --example switch_vs_corosensei -- [ROUNDS] [OPS]`

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::Instant;

use corosensei::{Coroutine, CoroutineResult};
use greenlet::{Greenlet, Value};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(21, |a| a.parse().expect("ROUNDS"));
    let ops: usize = args.next().map_or(2_000_000, |a| a.parse().expect("OPS"));

    // Both bodies loop on the same stop flag, set after timing.
    let stop = Rc::new(Cell::new(false));
    let main = greenlet::getcurrent();
    let stop_in = stop.clone();
    let g = Greenlet::new(move |_: Value| {
        while !stop_in.get() {
            main.switch(());
        }
        Value::none()
    });
    let stop_in = stop.clone();
    let mut co: Coroutine<(), (), ()> = Coroutine::new(move |y, ()| {
        while !stop_in.get() {
            y.suspend(());
        }
    });

    let ours_batch = || {
        let t = Instant::now();
        for _ in 0..ops {
            black_box(g.switch(()));
        }
        t.elapsed().as_nanos() as f64 / ops as f64
    };
    let mut coro_batch = || {
        let t = Instant::now();
        for _ in 0..ops {
            black_box(co.resume(()));
        }
        t.elapsed().as_nanos() as f64 / ops as f64
    };
    // Warm up both.
    ours_batch();
    coro_batch();
    let (mut ours, mut coro, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        // Alternate which side goes first, so neither always follows the other.
        let (a, b) = if r % 2 == 0 {
            let a = ours_batch();
            (a, coro_batch())
        } else {
            let b = coro_batch();
            (ours_batch(), b)
        };
        ours.push(a);
        coro.push(b);
        ratio.push(a / b);
    }
    let spread = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        format!("{lo:.2}..{hi:.2}")
    };
    let (so, sc, sr) = (spread(&ours), spread(&coro), spread(&ratio));
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let best_ratio = best(&ours) / best(&coro);
    println!(
        "ours {:.2} ns ({so})  corosensei {:.2} ns ({sc})  ratio {:.2} ({sr}), of the fastest rounds \
         {best_ratio:.2}  [{rounds} rounds x {ops}]",
        median(&mut ours),
        median(&mut coro),
        median(&mut ratio),
    );
    stop.set(true);
    g.switch(());
    assert!(g.is_dead());
    assert!(matches!(co.resume(()), CoroutineResult::Return(())));
}
