//! The `gevent::monkey` hooks' cost on a call outside any greenlet (the bar: <= 5 ns).
//!
//! Run: `cargo run --release -p bench --bin monkey_overhead`
//!
//! After `patch_all()`, on a thread with no hub, it times `recv(.., MSG_DONTWAIT)` and `recv(.., 0)`
//! on an empty non-blocking socket pair (both fail with `EAGAIN`) and `poll(.., 0)` through the
//! hooks, against the same system calls made directly (`libc::syscall`) and through glibc's own
//! functions (`dlsym(RTLD_NEXT)`), in interleaved rounds; each figure is the best round's ns per call.
//! The hook's overhead is hooked minus raw; for `poll(0)` the raw call is the one the hook makes
//! (`SYS_poll` on x86_64, as glibc's `poll` there; `SYS_ppoll` elsewhere). Also timed: a bare
//! `extern "C"` function that only makes that system call (what any interposed function costs at
//! least: one more call and return) and glibc's own `poll` (what the program paid unpatched). The
//! hooks make their fast-path system calls with the `syscall` instruction (as glibc does), not
//! through `syscall(3)` as the "raw syscall" rows here do.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Instant;

/// The least any interposed function costs: a separate function that makes the raw system call
/// (what the `poll` hook's fast path is, minus its compare and load).
#[inline(never)]
extern "C" fn wrapper_poll(fds: *mut libc::pollfd, nfds: libc::nfds_t, timeout: i32) -> i32 {
    // SAFETY: the caller's arguments, forwarded.
    unsafe { raw_poll(fds, nfds, timeout) }
}

/// The system call `poll` makes (`SYS_poll` on x86_64, `SYS_ppoll` elsewhere).
#[inline(always)]
unsafe fn raw_poll(fds: *mut libc::pollfd, nfds: libc::nfds_t, timeout: i32) -> i32 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller's arguments, forwarded.
    unsafe {
        libc::syscall(libc::SYS_poll, fds, nfds, timeout) as i32
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let ts = libc::timespec {
            tv_sec: (timeout / 1000) as libc::time_t,
            tv_nsec: (timeout % 1000) as libc::c_long * 1_000_000,
        };
        // SAFETY: the caller's arguments and a valid timespec.
        unsafe { libc::syscall(libc::SYS_ppoll, fds, nfds, &ts as *const _, 0usize, 8usize) as i32 }
    }
}

type RecvFn = unsafe extern "C" fn(i32, *mut libc::c_void, usize, i32) -> isize;
type PollFn = unsafe extern "C" fn(*mut libc::pollfd, libc::nfds_t, i32) -> i32;

fn time(iters: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_nanos() as f64 / iters as f64
}

fn main() {
    gevent::monkey::patch_all();
    assert!(gevent::monkey::is_patched());
    let (a, _b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let fd = a.as_raw_fd();
    let mut buf = [0u8; 16];
    let p = buf.as_mut_ptr().cast::<libc::c_void>();
    // SAFETY: a valid symbol name; RTLD_NEXT finds glibc's recv after the executable's hook.
    let glibc_recv = unsafe { libc::dlsym(libc::RTLD_NEXT, c"recv".as_ptr()) };
    assert!(!glibc_recv.is_null());
    // SAFETY: dlsym gave glibc's recv, which has this type.
    let glibc_recv: RecvFn = unsafe { std::mem::transmute(glibc_recv) };
    // SAFETY: as above, for glibc's poll.
    let glibc_poll = unsafe { libc::dlsym(libc::RTLD_NEXT, c"poll".as_ptr()) };
    assert!(!glibc_poll.is_null());
    // SAFETY: dlsym gave glibc's poll, which has this type.
    let glibc_poll: PollFn = unsafe { std::mem::transmute(glibc_poll) };

    let iters = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000u32);
    let names = [
        "raw syscall recvfrom(MSG_DONTWAIT)",
        "glibc recv(MSG_DONTWAIT) (unpatched)",
        "hooked recv(MSG_DONTWAIT)",
        "hooked recv(0) on a non-blocking fd",
        "raw syscall ppoll(timeout 0)",
        "hooked poll(timeout 0)",
        "raw syscall poll(timeout 0)",
        "a bare wrapper function around it",
        "glibc poll(timeout 0) (unpatched)",
    ];
    let mut best = [f64::MAX; 9];
    for _round in 0..15 {
        let r = [
            time(iters, || {
                // SAFETY: valid fd and buffer.
                std::hint::black_box(unsafe {
                    libc::syscall(
                        libc::SYS_recvfrom,
                        fd,
                        p,
                        16usize,
                        libc::MSG_DONTWAIT,
                        0usize,
                        0usize,
                    )
                });
            }),
            time(iters, || {
                // SAFETY: valid fd and buffer.
                std::hint::black_box(unsafe { glibc_recv(fd, p, 16, libc::MSG_DONTWAIT) });
            }),
            time(iters, || {
                // SAFETY: valid fd and buffer.
                std::hint::black_box(unsafe { libc::recv(fd, p, 16, libc::MSG_DONTWAIT) });
            }),
            time(iters, || {
                // SAFETY: valid fd and buffer.
                std::hint::black_box(unsafe { libc::recv(fd, p, 16, 0) });
            }),
            time(iters, || {
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                let ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                // SAFETY: valid pollfd and timespec.
                std::hint::black_box(unsafe {
                    libc::syscall(
                        libc::SYS_ppoll,
                        &mut pfd as *mut _,
                        1,
                        &ts as *const _,
                        0usize,
                        8usize,
                    )
                });
            }),
            time(iters, || {
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: valid pollfd.
                std::hint::black_box(unsafe { libc::poll(&mut pfd, 1, 0) });
            }),
            time(iters, || {
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: valid pollfd.
                std::hint::black_box(unsafe { raw_poll(&mut pfd, 1, 0) });
            }),
            time(iters, || {
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                std::hint::black_box(wrapper_poll(&mut pfd, 1, 0));
            }),
            time(iters, || {
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: valid pollfd.
                std::hint::black_box(unsafe { glibc_poll(&mut pfd, 1, 0) });
            }),
        ];
        for (b, x) in best.iter_mut().zip(r) {
            *b = b.min(x);
        }
    }
    for (n, b) in names.iter().zip(best) {
        println!("{n:40} {b:8.1} ns/call");
    }
    println!(
        "hook overhead outside greenlets: recv(MSG_DONTWAIT) {:+.1} ns, recv(0) {:+.1} ns, poll(0) {:+.1} ns (vs raw syscall; bar <= 5 ns)",
        best[2] - best[0],
        best[3] - best[0],
        best[5] - best[6]
    );
    println!(
        "any interposed function's least cost (a bare extern fn around the raw syscall): {:+.1} ns",
        best[7] - best[6]
    );
    println!(
        "poll(0): hook {:+.1} ns over glibc's own poll (what the program paid before patch_all)",
        best[5] - best[8]
    );
}
