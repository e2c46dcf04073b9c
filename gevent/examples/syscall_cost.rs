//! What the `monkey` feature's `syscall` shim costs a program outside greenlets.
//!
//! Built with the feature (`patch_thread` on), `libc::syscall` binds to gevent's shim; glibc's own
//! `syscall` is looked up in `libc.so.6` and timed in the same process, in alternating rounds (the
//! system call itself dominates and varies with the machine's load: the minimum over many rounds
//! is compared). Built without the feature, both are glibc's (the difference is the noise).
//!
//! ```text
//! cargo run --release -p gevent --features monkey --example syscall_cost [-- --quick]
//! cargo run --release -p gevent --example syscall_cost [-- --quick]
//! ```

use std::time::Instant;

type SyscallFn = unsafe extern "C" fn(libc::c_long, ...) -> libc::c_long;

/// One round of `n` calls of `f`, in ns per call.
fn round(n: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() {
    #[cfg(feature = "monkey")]
    gevent::monkey::patch_thread();
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, n) = if quick { (11, 20_000) } else { (41, 100_000) };
    // SAFETY: dlopen/dlsym with valid C strings; a non-null result for "syscall" is glibc's
    // variadic syscall(2).
    let glibc: SyscallFn = unsafe {
        let h = libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
        assert!(!h.is_null(), "libc.so.6 is not loaded");
        let p = libc::dlsym(h, c"syscall".as_ptr());
        assert!(!p.is_null());
        std::mem::transmute::<*mut libc::c_void, SyscallFn>(p)
    };
    let mut buf = [0u8; 16];
    let (mut ours_pid, mut theirs_pid) = (f64::MAX, f64::MAX);
    let (mut ours_rnd, mut theirs_rnd) = (f64::MAX, f64::MAX);
    for _ in 0..rounds {
        // SAFETY (all four): getpid takes no arguments; getrandom writes `buf.len()` bytes to `buf`.
        ours_pid = ours_pid.min(round(n, || {
            std::hint::black_box(unsafe { libc::syscall(libc::SYS_getpid) });
        }));
        theirs_pid = theirs_pid.min(round(n, || {
            std::hint::black_box(unsafe { glibc(libc::SYS_getpid) });
        }));
        ours_rnd = ours_rnd.min(round(n, || {
            std::hint::black_box(unsafe {
                libc::syscall(libc::SYS_getrandom, buf.as_mut_ptr(), buf.len(), 0)
            });
        }));
        theirs_rnd = theirs_rnd.min(round(n, || {
            std::hint::black_box(unsafe {
                glibc(libc::SYS_getrandom, buf.as_mut_ptr(), buf.len(), 0)
            });
        }));
    }
    let m = std::sync::Mutex::new(0u64);
    let lock = (0..rounds)
        .map(|_| {
            round(n * 10, || {
                *m.lock().unwrap() += 1;
            })
        })
        .fold(f64::MAX, f64::min);
    let what = if cfg!(feature = "monkey") {
        "libc::syscall = gevent's shim (patch_thread on)"
    } else {
        "libc::syscall = glibc's (no monkey feature)"
    };
    println!("{what}; minimum of {rounds} rounds of {n} calls:");
    println!(
        "  syscall(SYS_getpid):         libc::syscall {ours_pid:6.1} ns, glibc's {theirs_pid:6.1} ns, difference {:+.1} ns",
        ours_pid - theirs_pid
    );
    println!(
        "  syscall(SYS_getrandom, 16):  libc::syscall {ours_rnd:6.1} ns, glibc's {theirs_rnd:6.1} ns, difference {:+.1} ns",
        ours_rnd - theirs_rnd
    );
    println!("  uncontended Mutex lock+unlock: {lock:.2} ns");
}
