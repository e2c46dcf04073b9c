//! Unix: `mmap`-family memory calls, `/proc` limits, stderr and abort. See the contract in `sys/mod.rs`.

use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicUsize, Ordering};

mod signal;
pub(crate) use self::signal::{ensure_alt_stack, install_fault_handler};

/// Flags shared by every stack mapping. `MAP_STACK` also keeps transparent huge pages away from
/// stacks on recent Linux (a 2 MiB page per stack would defeat the dense mode).
#[cfg(any(target_os = "linux", target_os = "android"))]
const STACK_FLAGS: libc::c_int =
    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK;
#[cfg(any(target_os = "freebsd", target_os = "openbsd", target_os = "netbsd"))]
const STACK_FLAGS: libc::c_int = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK;
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd"
)))]
const STACK_FLAGS: libc::c_int = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;

/// The VM page size, read once.
pub(crate) fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let p = PAGE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let p = if p > 0 && (p as usize).is_power_of_two() {
        p as usize
    } else {
        4096
    };
    PAGE.store(p, Ordering::Relaxed);
    p
}

/// `mmap` of `len` anonymous bytes with `prot`.
///
/// # Safety
/// Creates a new mapping at an address the kernel picks, so it cannot clobber memory; it is `unsafe`
/// only because its caller owns the mapping from then on and must unmap it exactly once.
unsafe fn map(len: usize, prot: libc::c_int) -> io::Result<NonNull<u8>> {
    // SAFETY: a fresh anonymous mapping at a kernel-chosen address (no MAP_FIXED).
    let p = unsafe { libc::mmap(ptr::null_mut(), len, prot, STACK_FLAGS, -1, 0) };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast()).ok_or_else(|| io::Error::from(io::ErrorKind::AddrNotAvailable))
}

/// Reserves `len` bytes of inaccessible address space.
///
/// # Safety
/// As `map`: the caller owns the returned range and must [`unmap`] it exactly once.
pub(crate) unsafe fn reserve(len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: forwarded to the caller.
    unsafe { map(len, libc::PROT_NONE) }
}

/// Maps `len` bytes of zeroed read-write memory, charged as touched.
///
/// # Safety
/// As `map`: the caller owns the returned range and must [`unmap`] it exactly once.
pub(crate) unsafe fn map_rw(len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: forwarded to the caller.
    unsafe { map(len, libc::PROT_READ | libc::PROT_WRITE) }
}

/// Makes `[addr, addr + len)` readable and writable.
///
/// # Safety
/// The range must lie inside a mapping the caller owns; `addr` must be page-aligned.
pub(crate) unsafe fn protect_rw(addr: *mut u8, len: usize) -> io::Result<()> {
    // SAFETY: the caller owns the range (only its protection changes).
    unsafe {
        syscall!(mprotect(
            addr.cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE
        ))
    }
    .map(drop)
}

/// Unmaps `[addr, addr + len)`.
///
/// # Safety
/// The caller owns the range, and nothing refers to memory in it any more.
pub(crate) unsafe fn unmap(addr: *mut u8, len: usize) -> io::Result<()> {
    // SAFETY: the caller owns the range and no longer uses it.
    unsafe { syscall!(munmap(addr.cast(), len)) }.map(drop)
}

/// Makes `[addr, addr + len)` inaccessible (`PROT_NONE`). Splits the mapping (one more kernel
/// mapping, or two in the middle of one).
///
/// # Safety
/// The range must lie inside a mapping the caller owns, hold nothing anyone uses, and `addr` must be
/// page-aligned.
pub(crate) unsafe fn protect_none(addr: *mut u8, len: usize) -> io::Result<()> {
    // SAFETY: the caller owns the range and nothing in it is used.
    unsafe { syscall!(mprotect(addr.cast(), len, libc::PROT_NONE)) }.map(drop)
}

/// `MADV_GUARD_INSTALL` (Linux 6.13): guard pages that cost no mapping of their own.
#[cfg(any(target_os = "linux", target_os = "android"))]
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Turns the pages of `[addr, addr + len)` into light guard pages: any access faults (`SIGSEGV`),
/// yet the mapping is not split, so they cost no entry against `vm.max_map_count`. They stay in
/// place when the pages are discarded ([`discard`]); unmapping removes them. Fails (`EINVAL`) on
/// kernels without them (before Linux 6.13) and elsewhere; see [`light_guards`].
///
/// # Safety
/// The range must lie inside a private anonymous mapping the caller owns and hold nothing anyone
/// uses (its contents are dropped); `addr` must be page-aligned.
pub(crate) unsafe fn install_guard(addr: *mut u8, len: usize) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: the caller owns the range and nothing in it is used; the advice only replaces its
    // page-table entries with guard markers.
    return unsafe { syscall!(madvise(addr.cast(), len, MADV_GUARD_INSTALL)) }.map(drop);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (addr, len);
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// Whether [`install_guard`] works on this kernel; tried once per process on a scratch mapping.
/// The environment variable `GREENLET_NO_LIGHT_GUARDS=1` makes it false (to see what older kernels
/// do).
pub(crate) fn light_guards() -> bool {
    /// 0: not tried yet; 1: supported; 2: not supported.
    static STATE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
    match STATE.load(Ordering::Relaxed) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    let page = page_size();
    let disabled = std::env::var_os("GREENLET_NO_LIGHT_GUARDS").is_some_and(|v| v == "1");
    let ok = if disabled {
        false
    } else {
        // SAFETY: a scratch mapping, owned here and unmapped below; nothing else knows of it.
        match unsafe { map_rw(2 * page) } {
            Ok(p) => {
                // SAFETY: the first page of the scratch mapping, holding nothing.
                let ok = unsafe { install_guard(p.as_ptr(), page) }.is_ok();
                // SAFETY: ours, used by nobody.
                let _ = unsafe { unmap(p.as_ptr(), 2 * page) };
                ok
            }
            // No room to try (at the mapping limit): no guard pages now, ask again next time.
            Err(_) => return false,
        }
    };
    STATE.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
    ok
}

/// Gives the pages of `[addr, addr + len)` back to the kernel; they read as zero afterwards and cost
/// nothing until touched again.
///
/// # Safety
/// The caller owns the range and holds nothing in it that must survive.
pub(crate) unsafe fn discard(addr: *mut u8, len: usize) -> io::Result<()> {
    // SAFETY: the caller owns the range and has nothing live in it; on private anonymous memory
    // MADV_DONTNEED only drops the pages (they come back zero-filled).
    unsafe { syscall!(madvise(addr.cast(), len, libc::MADV_DONTNEED)) }.map(drop)
}

/// Whether an error from `reserve`, `map_rw` or `protect_rw` means the kernel refused to create one
/// more mapping (or to split one): `ENOMEM`.
pub(crate) fn is_out_of_mappings(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::ENOMEM)
}

/// The kernel's limit on memory mappings per process (`/proc/sys/vm/max_map_count`), if readable.
pub(crate) fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// How many memory mappings this process has now (lines of `/proc/self/maps`), if readable.
///
/// Reads through a buffer on the stack: at the mapping limit, `malloc` may be unable to grow.
pub(crate) fn map_count() -> Option<usize> {
    use std::io::Read;
    let mut f = std::fs::File::open("/proc/self/maps").ok()?;
    let mut buf = [0u8; 8192];
    let mut lines = 0;
    loop {
        match f.read(&mut buf) {
            Ok(0) => return Some(lines),
            Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Writes all of `bytes` to stderr with `write(2)`, ignoring errors. Async-signal-safe.
pub(crate) fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid readable buffer of its length for the duration of the call.
        match unsafe {
            syscall!(write(
                libc::STDERR_FILENO,
                bytes.as_ptr().cast(),
                bytes.len()
            ))
        } {
            Ok(n) if n > 0 => bytes = &bytes[n as usize..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            _ => return,
        }
    }
}

/// Aborts the process (`SIGABRT`). Async-signal-safe.
pub(crate) fn abort() -> ! {
    // SAFETY: abort has no preconditions and never returns.
    unsafe { libc::abort() }
}

/// Asks the kernel not to back `[addr, addr + len)` with transparent huge pages (a 2 MiB page under a
/// dense arena would make every greenlet in it cost far more than the page it touches).
pub(crate) fn no_huge_pages(addr: *mut u8, len: usize) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: MADV_NOHUGEPAGE only changes how the kernel backs the range, never its contents; on a
    // range that is not mapped it fails with ENOMEM.
    return unsafe { syscall!(madvise(addr.cast(), len, libc::MADV_NOHUGEPAGE)) }.map(drop);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (addr, len);
        Ok(())
    }
}
