//! Calibration: what this machine's basic operations cost, so results from two machines can be compared.
//!
//! Run: `cargo run -p bench --release --bin calibrate -- [--quick] [--duration S]`
//!
//! - `calibration/syscall`: `syscall(SYS_getppid)`, ns (a raw syscall, not cached by libc).
//! - `calibration/page_fault`: first touch of one 4 KiB page of a fresh anonymous mapping, ns per page
//!   (mmap + touch + munmap, divided by pages).
//! - `calibration/core_clock`: a chain of dependent 1-cycle `add` instructions, GHz (x86_64 only; the
//!   effective clock under turbo/throttling, higher is better).

use bench::{bb, report, time_per_op, Opts};

const PEER: &str = "machine";

fn syscall(o: &Opts) {
    let ops = o.counts.ops;
    let ns = time_per_op(o.duration, ops, || {
        for _ in 0..ops {
            // SAFETY: getppid takes no arguments, has no side effects and cannot fail.
            bb(unsafe { libc::syscall(libc::SYS_getppid) });
        }
    });
    report(
        "calibration",
        bench::names::SYSCALL,
        PEER,
        "ns_per_op",
        ns,
        ops,
    );
}

fn page_fault(o: &Opts) {
    let pages: usize = if o.quick { 2048 } else { 16384 };
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    let len = pages * page;
    let ns = time_per_op(o.duration, pages, || {
        // SAFETY: a fresh private anonymous mapping; checked for MAP_FAILED before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap of {len} bytes failed");
        let base = p.cast::<u8>();
        for i in 0..pages {
            // SAFETY: i * page < len, inside the mapping made above, which is writable.
            unsafe { base.add(i * page).write_volatile(1) };
        }
        // SAFETY: unmapping exactly the mapping made above; nothing refers to it any more.
        unsafe { libc::munmap(p, len) };
    });
    report(
        "calibration",
        bench::names::PAGE_FAULT,
        PEER,
        "ns_per_page",
        ns,
        pages,
    );
}

#[cfg(target_arch = "x86_64")]
fn core_clock(o: &Opts) {
    const ADDS_PER_ITER: usize = 16;
    let iters = o.counts.ops * 50;
    let ns_per_add = time_per_op(o.duration, iters * ADDS_PER_ITER, || {
        let mut x: u64 = bb(0);
        let mut n: u64 = iters as u64;
        // SAFETY: pure register arithmetic on the two operands; no memory, stack or flags contract beyond
        // what `asm!` assumes by default (flags are clobbered, which is the default).
        unsafe {
            std::arch::asm!(
                "2:",
                "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                "dec {n}",
                "jnz 2b",
                x = inout(reg) x,
                n = inout(reg) n,
                options(nomem, nostack),
            );
        }
        bb((x, n));
    });
    report(
        "calibration",
        bench::names::CORE_CLOCK,
        PEER,
        "ghz",
        1.0 / ns_per_add,
        iters * ADDS_PER_ITER,
    );
}

#[cfg(not(target_arch = "x86_64"))]
fn core_clock(_o: &Opts) {
    bench::skip("calibration", bench::names::CORE_CLOCK, PEER, "x86_64 only");
}

fn main() {
    let o = Opts::from_args();
    syscall(&o);
    page_fault(&o);
    core_clock(&o);
}
