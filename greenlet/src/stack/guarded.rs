//! Guarded stacks: one mapping each, a `PROT_NONE` guard page at the bottom, pooled per thread.
//!
//! # Ground rules
//! - The pool is a thread-local: only the owning thread touches it, so a `RefCell` suffices, and a
//!   stack is always released on the thread that allocated it (`Stack` is `!Send`).
//! - Per mapping length, the pool keeps at most [`POOL_CAP`] stacks, LIFO (the most recently used
//!   stack, whose top pages are still hot in cache and resident, is handed out first); beyond the cap
//!   a released stack is unmapped.
//! - Pooled stacks keep whatever pages their last greenlet touched: a deep recursion leaves its pages
//!   resident until the stack is unmapped (at most `POOL_CAP` stacks' worth per size).
//! - At thread exit the pool unmaps what it holds; stacks released later are unmapped directly.

use std::cell::RefCell;
use std::io;

use super::count;
use crate::sys;

/// Most stacks kept per mapping length (and at most [`POOL_BYTES`] of address space).
pub(crate) const POOL_CAP: usize = 128;
/// Address-space budget of the pool per mapping length.
const POOL_BYTES: usize = 64 << 20;
/// Smallest usable size (corosensei's `MIN_STACK_SIZE`).
const MIN_USABLE: usize = 4096;

/// Cached stacks of one mapping length.
struct Class {
    len: usize,
    cap: usize,
    /// # Invariant
    /// Start addresses of mappings of `len` bytes owned by the pool, laid out as a guarded stack
    /// (lowest page `PROT_NONE`, the rest read-write) and used by nobody.
    free: Vec<usize>,
}

/// This thread's pool.
struct Pool {
    classes: Vec<Class>,
}

impl Drop for Pool {
    fn drop(&mut self) {
        for class in &mut self.classes {
            for start in class.free.drain(..) {
                // SAFETY: the pool owns the mapping and nobody uses it (invariant of `free`).
                let _ = unsafe { sys::unmap(start as *mut u8, class.len) };
                count(|s| {
                    s.unmaps += 1;
                    s.pooled -= 1;
                });
            }
        }
    }
}

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { classes: Vec::new() }) };
}

/// The mapping length for `size` usable bytes: whole pages, plus the guard page.
fn mapping_len(size: usize) -> usize {
    let page = sys::page_size();
    (size.max(MIN_USABLE).saturating_add(page - 1) & !(page - 1)) + page
}

/// A guarded stack of at least `size` usable bytes: `(start, len)` of its mapping, guard page first.
#[inline]
pub(super) fn alloc(size: usize) -> io::Result<(usize, usize)> {
    let len = mapping_len(size);
    let pooled = POOL
        .try_with(|p| {
            let mut p = p.borrow_mut();
            p.classes
                .iter_mut()
                .find(|c| c.len == len)
                .and_then(|c| c.free.pop())
        })
        .ok()
        .flatten();
    if let Some(start) = pooled {
        count(|s| {
            s.reused += 1;
            s.pooled -= 1;
        });
        return Ok((start, len));
    }
    fresh(len)
}

/// Maps a fresh guarded stack of `len` bytes (guard page included).
#[cold]
fn fresh(len: usize) -> io::Result<(usize, usize)> {
    super::prepare_thread();
    let page = sys::page_size();
    // SAFETY: a new mapping, owned from here on by the returned stack (or unmapped below).
    let start = unsafe { sys::reserve(len) }?.as_ptr();
    // SAFETY: `[start + page, start + len)` lies inside the mapping just made.
    if let Err(e) = unsafe { sys::protect_rw(start.add(page), len - page) } {
        // SAFETY: nobody else knows about the mapping. If unmapping fails (it cannot split a merged
        // neighbour at the limit) the reservation stays, inaccessible and unused.
        let _ = unsafe { sys::unmap(start, len) };
        return Err(e);
    }
    count(|s| s.maps += 1);
    super::mapped();
    Ok((start as usize, len))
}

/// Gives the guarded stack mapped at `[start, start + len)` back to the pool, or unmaps it.
///
/// # Safety
/// The caller owned the mapping (a guarded stack from [`alloc`]) and no longer uses it.
#[inline]
pub(super) unsafe fn release(start: usize, len: usize) {
    let kept = POOL
        .try_with(|p| {
            let mut p = p.borrow_mut();
            let i = match p.classes.iter().position(|c| c.len == len) {
                Some(i) => i,
                None => {
                    p.classes.push(Class {
                        len,
                        cap: (POOL_BYTES / len).clamp(8, POOL_CAP),
                        free: Vec::new(),
                    });
                    p.classes.len() - 1
                }
            };
            let class = &mut p.classes[i];
            if class.free.len() < class.cap {
                class.free.push(start);
                true
            } else {
                false
            }
        })
        .unwrap_or(false);
    if kept {
        count(|s| s.pooled += 1);
    } else {
        // SAFETY: the caller gave up the mapping and the pool did not take it.
        let _ = unsafe { sys::unmap(start as *mut u8, len) };
        count(|s| s.unmaps += 1);
    }
}
