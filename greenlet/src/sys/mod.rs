//! Platform code: memory mappings, process limits and the fault handler.
//!
//! # Contract
//! Everything above this module (`crate::stack`) is portable; everything that names an OS call lives
//! here, one directory per platform family, selected by the `cfg` chain below (which ends in
//! `compile_error!`). Each platform provides the same items:
//!
//! - `page_size() -> usize`: the VM page size (a power of two).
//! - `unsafe fn reserve(len) -> io::Result<NonNull<u8>>`: `len` bytes of inaccessible address space,
//!   private to the process, never charged against commit (`PROT_NONE`, `MAP_NORESERVE`, `MAP_STACK`).
//! - `unsafe fn map_rw(len) -> io::Result<NonNull<u8>>`: `len` bytes of zeroed, readable and writable
//!   memory, charged only as pages are touched.
//! - `unsafe fn protect_rw(addr, len)`, `unsafe fn unmap(addr, len)`, `unsafe fn discard(addr, len)`
//!   (give the pages back; they read as zero afterwards).
//! - `unsafe fn protect_none(addr, len)`: a classic guard (`PROT_NONE`, splits the mapping).
//! - `unsafe fn install_guard(addr, len)` and `light_guards() -> bool`: guard pages that split no
//!   mapping (Linux 6.13's `MADV_GUARD_INSTALL`), and whether the kernel has them.
//! - `max_map_count()` / `map_count()`: the kernel's limit on mappings per process and how many this
//!   process has (`None` where the platform has no such limit or it cannot be read).
//! - `is_out_of_mappings(err)`: whether an error from `reserve`/`map_rw`/`protect_rw` means the kernel
//!   refused a new mapping (`ENOMEM`).
//! - `write_stderr(bytes)` and `abort()`: async-signal-safe.
//! - `install_fault_handler(hook)`: once per process, a `SIGSEGV`/`SIGBUS` handler running on the
//!   alternate signal stack that calls `hook(fault_address, interrupted_stack_pointer)` first (the
//!   stack pointer is 0 where the platform's context is not decoded) and, if `hook` returns, hands the
//!   fault to whichever handler was installed before (or to the default action).
//! - `ensure_alt_stack()`: gives the calling thread an alternate signal stack if it has none.
//!
//! Every function that returns `io::Result` turns the OS's `-1` into `io::Error::last_os_error()`
//! through [`syscall!`]; nothing here panics.

/// Calls a libc function, turning a `-1` return into `Err(io::Error::last_os_error())`.
///
/// The call is not wrapped in `unsafe`: the caller writes the `unsafe` block (and its `SAFETY:`
/// comment) around the macro, so no unsafe call is hidden behind a safe-looking macro.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        let res = libc::$fn($($arg),*);
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use self::unix::*;

#[cfg(not(unix))]
compile_error!("greenlet supports unix platforms only (mmap, sigaction, sigaltstack)");
