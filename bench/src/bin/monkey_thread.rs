//! The `thread` group: `monkey::patch_thread` (issue 16, item 5) beside tokio and beside the same work
//! without the hook, same process, same run, interleaved.
//!
//! Run: `monkey_thread --group thread [--quick]` (as `bench/run` does); prints `RESULT group=thread ..`
//! lines for three columns: `ours` (under `patch_thread`), `tokio`, and `unpatched` (the same work without
//! the project's hook).
//!
//! - `std_mutex_uncontended`: `std::sync::Mutex` lock+unlock nobody else wants; ours after
//!   `patch_thread`, `unpatched` before it (no system call: unchanged);
//! - `mutex_handoff`: a contended hand-off of a std `Mutex` between two greenlets (each holds it across a
//!   yield, the other is parked in `lock()` by the futex hook), against tokio's `Mutex` between two tasks
//!   of a current-thread runtime (each holds it across `yield_now`); per lock;
//! - `futex_pingpong`: the futex hook's own cost per hand-off: two greenlets taking turns through a raw
//!   futex word (`FUTEX_WAIT` until it is their turn, then `FUTEX_WAKE` of 1), without std's spin (ours
//!   only: no peer parks a green thread on a futex word);
//! - `mpsc_xthread_roundtrip`: a round trip to an OS thread through `std::sync::mpsc` (the thread echoes
//!   a `u32`), the greenlet receiving the reply in a cooperative `recv()`, against a tokio task receiving
//!   it from a `tokio::sync::mpsc` channel (`blocking_send` on the thread); per round trip;
//! - `syscall_getrandom`: `syscall(SYS_getrandom, 16 bytes)` outside greenlets through the shim (ours)
//!   against glibc's `syscall` looked up in `libc.so.6` (`unpatched`): the shim's cost on other calls.
//!
//! Each figure is the best of the rounds (15 rounds; 3 with `--quick`, and 20x smaller counts), in ns
//! per operation; `--duration` is accepted and ignored (the counts fix the length).

use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use bench::names;

const GROUP: &str = "thread";

type SyscallFn = unsafe extern "C" fn(libc::c_long, ...) -> libc::c_long;

fn best(rounds: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..rounds).map(|_| f()).fold(f64::MAX, f64::min)
}

fn per_op(n: u32, t: Instant) -> f64 {
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

fn uncontended(n: u32) -> f64 {
    let m = Mutex::new(0u64);
    let t = Instant::now();
    for _ in 0..n {
        *std::hint::black_box(&m).lock().unwrap() += 1;
    }
    per_op(n, t)
}

/// Two greenlets alternate holding a std Mutex across a yield: every lock() of the other parks.
fn greenlet_handoff(n: u32) -> f64 {
    let m = Arc::new(Mutex::new(0u64));
    let t = Instant::now();
    let gs: Vec<_> = (0..2)
        .map(|_| {
            let m = m.clone();
            gevent::spawn(move || {
                for _ in 0..n / 2 {
                    let mut g = m.lock().unwrap();
                    *g += 1;
                    gevent::sleep(std::time::Duration::ZERO);
                }
            })
        })
        .collect();
    gevent::joinall(&gs);
    per_op(n, t)
}

/// Two greenlets take turns through a raw futex word: each waits until the word is its number,
/// then sets the other's and wakes it.
fn greenlet_futex_pingpong(n: u32) -> f64 {
    use std::sync::atomic::{AtomicU32, Ordering};
    let w = Arc::new(AtomicU32::new(0));
    let t = Instant::now();
    let gs: Vec<_> = (0..2u32)
        .map(|me| {
            let w = w.clone();
            gevent::spawn(move || {
                let word = &*w as *const AtomicU32;
                for _ in 0..n / 2 {
                    loop {
                        let v = w.load(Ordering::Acquire);
                        if v == me {
                            break;
                        }
                        // SAFETY: a futex wait on a live, aligned word, without a timeout.
                        unsafe {
                            libc::syscall(
                                libc::SYS_futex,
                                word,
                                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                                v,
                                std::ptr::null::<libc::timespec>(),
                            )
                        };
                    }
                    w.store(1 - me, Ordering::Release);
                    // SAFETY: a futex wake on a live, aligned word.
                    unsafe {
                        libc::syscall(
                            libc::SYS_futex,
                            word,
                            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                            1,
                        )
                    };
                }
            })
        })
        .collect();
    gevent::joinall(&gs);
    per_op(n, t)
}

fn tokio_handoff(rt: &tokio::runtime::Runtime, n: u32) -> f64 {
    let m = Arc::new(tokio::sync::Mutex::new(0u64));
    let t = Instant::now();
    rt.block_on(async {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let m = m.clone();
                tokio::task::spawn(async move {
                    for _ in 0..n / 2 {
                        let mut g = m.lock().await;
                        *g += 1;
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    });
    per_op(n, t)
}

/// Round trips to an OS thread: std mpsc there, std mpsc back into a greenlet's `recv()`.
fn greenlet_mpsc(n: u32) -> f64 {
    let (req_tx, req_rx) = mpsc::channel::<u32>();
    let (resp_tx, resp_rx) = mpsc::channel::<u32>();
    let echo = std::thread::spawn(move || {
        while let Ok(v) = req_rx.recv() {
            if resp_tx.send(v).is_err() {
                break;
            }
        }
    });
    let g = gevent::spawn(move || {
        let t = Instant::now();
        for i in 0..n {
            req_tx.send(i).unwrap();
            assert_eq!(resp_rx.recv().unwrap(), i);
        }
        per_op(n, t)
    });
    let r = g.get().unwrap();
    echo.join().unwrap();
    r
}

fn tokio_mpsc(rt: &tokio::runtime::Runtime, n: u32) -> f64 {
    let (req_tx, req_rx) = mpsc::channel::<u32>();
    let (resp_tx, mut resp_rx) = tokio::sync::mpsc::channel::<u32>(1);
    let echo = std::thread::spawn(move || {
        while let Ok(v) = req_rx.recv() {
            if resp_tx.blocking_send(v).is_err() {
                break;
            }
        }
    });
    let r = rt.block_on(async move {
        tokio::task::spawn(async move {
            let t = Instant::now();
            for i in 0..n {
                req_tx.send(i).unwrap();
                assert_eq!(resp_rx.recv().await.unwrap(), i);
            }
            per_op(n, t)
        })
        .await
        .unwrap()
    });
    echo.join().unwrap();
    r
}

fn getrandom(n: u32, f: SyscallFn) -> f64 {
    let mut buf = [0u8; 16];
    let t = Instant::now();
    for _ in 0..n {
        // SAFETY: `buf` is valid for writes of its length.
        std::hint::black_box(unsafe { f(libc::SYS_getrandom, buf.as_mut_ptr(), buf.len(), 0) });
    }
    per_op(n, t)
}

fn main() {
    let o = bench::Opts::from_args();
    if !o.wants(GROUP) {
        return;
    }
    let (rounds, k) = if o.quick { (3, 1) } else { (15, 20) };
    let before = best(rounds, || uncontended(200_000 * k));
    gevent::monkey::patch_thread();
    let after = best(rounds, || uncontended(200_000 * k));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (mut ours_h, mut tokio_h, mut ours_m, mut tokio_m, mut ours_f) =
        (f64::MAX, f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..rounds {
        ours_h = ours_h.min(greenlet_handoff(2_000 * k));
        ours_f = ours_f.min(greenlet_futex_pingpong(2_000 * k));
        tokio_h = tokio_h.min(tokio_handoff(&rt, 2_000 * k));
        ours_m = ours_m.min(greenlet_mpsc(500 * k));
        tokio_m = tokio_m.min(tokio_mpsc(&rt, 500 * k));
    }
    // SAFETY: dlopen/dlsym with valid C strings; a non-null "syscall" in libc.so.6 is glibc's
    // variadic syscall(2).
    let glibc: SyscallFn = unsafe {
        let h = libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
        assert!(!h.is_null());
        let p = libc::dlsym(h, c"syscall".as_ptr());
        assert!(!p.is_null());
        std::mem::transmute::<*mut libc::c_void, SyscallFn>(p)
    };
    let (mut shim, mut plain) = (f64::MAX, f64::MAX);
    for _ in 0..rounds * 3 {
        shim = shim.min(getrandom(20_000 * k, libc::syscall));
        plain = plain.min(getrandom(20_000 * k, glibc));
    }
    let k = k as usize;
    for (name, peer, v, n) in [
        (
            names::STD_MUTEX_UNCONTENDED,
            "unpatched",
            before,
            200_000 * k,
        ),
        (names::STD_MUTEX_UNCONTENDED, "ours", after, 200_000 * k),
        (names::MUTEX_HANDOFF, "ours", ours_h, 2_000 * k),
        (names::MUTEX_HANDOFF, "tokio", tokio_h, 2_000 * k),
        (names::FUTEX_PINGPONG, "ours", ours_f, 2_000 * k),
        (names::MPSC_XTHREAD_ROUNDTRIP, "ours", ours_m, 500 * k),
        (names::MPSC_XTHREAD_ROUNDTRIP, "tokio", tokio_m, 500 * k),
        (names::SYSCALL_GETRANDOM, "ours", shim, 20_000 * k),
        (names::SYSCALL_GETRANDOM, "unpatched", plain, 20_000 * k),
    ] {
        bench::report(GROUP, name, peer, "ns_per_op", v, n);
    }
}
