//! Dense stacks: carved side by side from large arenas, no guard pages, a canary below each stack.
//!
//! # Layout
//! An arena is one read-write mapping (`MAP_NORESERVE`: charged only as touched) of a guard page, a
//! pad page, then `n` slots of `slot` bytes. Slot `i` starts at `B_i = arena + 2 * page + i * slot`:
//! - its first `guard` bytes are a light guard page (`sys::install_guard`, installed when the slot is
//!   first carved, kept through reuse and trimming), or nothing where the kernel lacks them;
//! - its stack is `[limit, base) = [B_i + guard, B_i + slot - 16)`;
//! - its canary word is at `B_i - 8`, inside the 16 bytes at the top of slot `i - 1` (or of the pad
//!   page for slot 0). The top page of a slot is the one page a suspended greenlet always touches, so
//!   writing and checking a neighbour's canary there costs no extra page.
//!
//! The arena's first page is a guard page (a light one, or `PROT_NONE` — one more kernel mapping per
//! arena — where light ones are missing): an overflow that runs through the slots below it stops
//! there, and the fault handler sees the stack pointer below the running stack (`StackBounds`).
//!
//! The canary value is `secret ^ address`, `secret` random per thread with its top bit set, so it is
//! never zero and differs from slot to slot.
//!
//! # Ground rules
//! - Everything is per thread (`Stack` is `!Send`), in one `RefCell` thread-local.
//! - Freed slots go on a per-size LIFO free list. Arenas are never unmapped while the thread lives
//!   (their neighbours' canaries, and every free slot, point into them); at thread exit, arenas
//!   without live stacks are unmapped and the others are leaked (their greenlets may still be dropped
//!   later).
//! - The pages of an arena with no live stack are given back to the kernel (`MADV_DONTNEED`) once it
//!   has stayed idle for [`TRIM_DELAY`], so a burst of a million greenlets does not pin gigabytes
//!   after it ends. Checked every [`TRIM_EVERY`] releases, and by whoever calls [`trim_idle`] (the
//!   gevent hub does when it is about to sleep and [`trim_due`] says one is due). Never one per greenlet.
//! - Why the delay: giving pages back as an arena empties puts the `madvise` (about 140 ns a page)
//!   in the middle of the burst of exits that emptied it, and the next burst pays a page fault (about
//!   1.6 µs) per page to touch them again. Measured on `event_set_100k` (100k waiters woken and
//!   finishing): a third of the time from `set()` to the last exit was `madvise`. Arenas reused
//!   within [`TRIM_DELAY`] keep their pages.

use std::cell::{Cell, RefCell};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::time::{Duration, Instant};

use super::count;
use crate::sys;

/// Address space per arena.
const ARENA_BYTES: usize = 64 << 20;
/// Bytes at the top of each slot that hold the canary of the slot above.
const CANARY_SPACE: usize = 16;
/// Where a stack's canary word is, below the start of its slot.
pub(super) const CANARY_OFFSET: usize = 8;
/// Releases between two passes that give idle arenas' pages back.
const TRIM_EVERY: usize = 16 * 1024;
/// How long an arena must have had no live stack before its pages are given back.
const TRIM_DELAY: Duration = Duration::from_secs(1);

/// One arena.
struct Arena {
    start: usize,
    len: usize,
    /// Index of the size class whose slots it holds.
    class: usize,
    /// Stacks of this arena currently allocated.
    live: u32,
    /// When `live` last dropped to 0, while its pages have not been given back since: `Some` iff
    /// `live == 0` and the arena holds touched pages not yet trimmed.
    idle_since: Option<Instant>,
}

/// A free slot: its start (`B_i`) and its arena.
#[derive(Clone, Copy)]
struct Free {
    start: usize,
    arena: u32,
}

/// A dense stack handed out by [`alloc`].
pub(super) struct Slot {
    /// Top of the usable stack.
    pub(super) base: usize,
    /// Lowest usable address: `start`, plus the light guard page when there is one.
    pub(super) limit: usize,
    /// The slot's start (`B_i`).
    pub(super) start: usize,
    /// The start of the arena: its guard page, the lowest address an overflow can reach.
    pub(super) floor: usize,
    pub(super) arena: u32,
}

/// The arenas and free slots of one slot size.
struct Class {
    slot: usize,
    /// # Invariant
    /// Slots of this class's arenas that no `Stack` owns.
    free: Vec<Free>,
    /// The arena being carved: `(arena, next slot's start, end of arena)`; slots from `next` up
    /// have never been handed out.
    bump: Option<(u32, usize, usize)>,
}

/// This thread's dense allocator.
struct Dense {
    /// # Invariant
    /// Mappings owned by this value, unmapped only in `drop` (and only those with `live == 0`).
    arenas: Vec<Arena>,
    classes: Vec<Class>,
    released: usize,
}

thread_local! {
    static DENSE: RefCell<Dense> = const {
        RefCell::new(Dense { arenas: Vec::new(), classes: Vec::new(), released: 0 })
    };
    /// This thread's canary secret; 0 until first used.
    static SECRET: Cell<usize> = const { Cell::new(0) };
    /// The earliest time an idle arena of this thread may be due for trimming (`None`: no idle
    /// untrimmed arena). Outside the `RefCell` so [`trim_due`] is one thread-local read. It may be
    /// early (an arena was reused meanwhile), never late.
    static NEXT_DUE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The canary value for the canary word at `addr` on this thread.
pub(super) fn canary_value(addr: usize) -> usize {
    let s = SECRET.with(|s| {
        let mut v = s.get();
        if v == 0 {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(s as *const Cell<usize> as usize);
            v = (h.finish() as usize) | (1 << (usize::BITS - 1));
            s.set(v);
        }
        v
    });
    s ^ addr
}

/// Writes the canary of the stack whose slot starts at `start`.
///
/// # Safety
/// `start` is the start of a slot of a live arena, so `start - 8` is a mapped, aligned word that
/// belongs to no stack.
unsafe fn write_canary(start: usize) {
    let addr = start - CANARY_OFFSET;
    // SAFETY: guaranteed by the caller.
    unsafe { (addr as *mut usize).write_volatile(canary_value(addr)) };
}

/// The size of each slot's light guard page: a page where the kernel has them, else 0 (asked once
/// per process; see `sys::light_guards`).
fn guard_len() -> usize {
    if sys::light_guards() {
        sys::page_size()
    } else {
        0
    }
}

/// A dense stack of `size` bytes (rounded up to pages, at least two), plus its light guard page.
pub(super) fn alloc(size: usize) -> io::Result<Slot> {
    let page = sys::page_size();
    let guard = guard_len();
    let slot = (size.max(2 * page).saturating_add(page - 1) & !(page - 1)) + guard;
    DENSE
        .try_with(|d| d.borrow_mut().alloc(slot, guard))
        .unwrap_or_else(|_| Err(io::Error::other("the thread is exiting")))
}

impl Dense {
    fn alloc(&mut self, slot: usize, guard: usize) -> io::Result<Slot> {
        let ci = match self.classes.iter().position(|c| c.slot == slot) {
            Some(i) => i,
            None => {
                self.classes.push(Class {
                    slot,
                    free: Vec::new(),
                    bump: None,
                });
                self.classes.len() - 1
            }
        };
        let (start, arena) = if let Some(f) = self.classes[ci].free.pop() {
            count(|s| s.reused += 1);
            (f.start, f.arena)
        } else {
            self.carve(ci, guard)?
        };
        let a = &mut self.arenas[arena as usize];
        a.live += 1;
        a.idle_since = None;
        // SAFETY: `start` is a slot of arena `arena`, which is mapped (invariant of `arenas`); its
        // canary word is in the slot below or the pad page, owned by no stack.
        unsafe { write_canary(start) };
        count(|s| s.dense_live += 1);
        Ok(Slot {
            base: start + slot - CANARY_SPACE,
            limit: start + guard,
            start,
            floor: self.arenas[arena as usize].start,
            arena,
        })
    }

    /// Hands out a never-used slot of class `ci` (with its light guard page of `guard` bytes
    /// installed), mapping a new arena when the current one is full.
    fn carve(&mut self, ci: usize, guard: usize) -> io::Result<(usize, u32)> {
        let slot = self.classes[ci].slot;
        let (arena, next, end) = match self.classes[ci].bump {
            Some((a, next, end)) if next + slot <= end => (a, next, end),
            _ => {
                let page = sys::page_size();
                let n = ((ARENA_BYTES - 2 * page) / slot).max(1);
                let len = 2 * page + n * slot;
                if self.arenas.is_empty() {
                    super::prepare_thread();
                }
                // SAFETY: a new mapping, owned by `self.arenas` from here on (or unmapped below).
                let start = unsafe { sys::map_rw(len) }?.as_ptr() as usize;
                let _ = sys::no_huge_pages(start as *mut u8, len);
                // The arena's bottom page is a guard: an overflow that runs through the slots
                // below it stops there instead of running on into whatever is mapped below.
                // SAFETY: the first page of the mapping just made, used by nobody.
                let guarded = unsafe {
                    if guard > 0 {
                        sys::install_guard(start as *mut u8, page)
                    } else {
                        sys::protect_none(start as *mut u8, page)
                    }
                };
                if let Err(e) = guarded {
                    // SAFETY: nobody else knows about the mapping.
                    let _ = unsafe { sys::unmap(start as *mut u8, len) };
                    return Err(e);
                }
                super::mapped();
                count(|s| {
                    s.maps += 1;
                    s.dense_arenas += 1;
                });
                let a = u32::try_from(self.arenas.len())
                    .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
                self.arenas.push(Arena {
                    start,
                    len,
                    class: ci,
                    live: 0,
                    idle_since: None,
                });
                (a, start + 2 * page, start + len)
            }
        };
        // Recorded first, so a failure below leaves the new arena in use for the next attempt.
        self.classes[ci].bump = Some((arena, next, end));
        if guard > 0 {
            // Once per slot, when it is first handed out: the guard stays through reuse and
            // trimming (`MADV_DONTNEED` keeps it) until the arena is unmapped.
            // SAFETY: the bottom page of a never-used slot of a live arena.
            unsafe { sys::install_guard(next as *mut u8, guard) }?;
        }
        self.classes[ci].bump = Some((arena, next + slot, end));
        Ok((next, arena))
    }

    fn release(&mut self, start: usize, arena: u32) {
        let a = &mut self.arenas[arena as usize];
        a.live -= 1;
        if a.live == 0 {
            // Once per arena emptying (thousands of releases), not per release.
            let now = Instant::now();
            a.idle_since = Some(now);
            if NEXT_DUE.get().is_none() {
                NEXT_DUE.set(Some(now + TRIM_DELAY));
            }
        }
        let ci = a.class;
        self.classes[ci].free.push(Free { start, arena });
        count(|s| s.dense_live -= 1);
        self.released += 1;
        if self.released >= TRIM_EVERY {
            self.released = 0;
            if let Some(due) = NEXT_DUE.get() {
                let now = Instant::now();
                if due <= now {
                    self.trim(now);
                }
            }
        }
    }

    /// Gives back the pages of every arena idle for at least [`TRIM_DELAY`] at `now`; returns when
    /// the next of the others is due (and records it in `NEXT_DUE`).
    #[cold]
    fn trim(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for a in &mut self.arenas {
            let Some(since) = a.idle_since else { continue };
            debug_assert_eq!(a.live, 0);
            let due = since + TRIM_DELAY;
            if due <= now {
                // SAFETY: the arena is ours (invariant of `arenas`) and no stack lives in it, so
                // nothing in it must survive (free slots' canaries are rewritten on allocation).
                let _ = unsafe { sys::discard(a.start as *mut u8, a.len) };
                a.idle_since = None;
            } else {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        NEXT_DUE.set(next);
        next
    }
}

impl Drop for Dense {
    fn drop(&mut self) {
        for a in &self.arenas {
            if a.live == 0 {
                // SAFETY: ours, and no stack lives in it (free slots are never used again: the
                // thread-local is gone, so `release`/`alloc` cannot reach them).
                let _ = unsafe { sys::unmap(a.start as *mut u8, a.len) };
                count(|s| {
                    s.unmaps += 1;
                    s.dense_arenas -= 1;
                });
            }
        }
    }
}

/// Gives the dense stack whose slot starts at `start`, in arena `arena`, back to the free list.
///
/// # Safety
/// The caller owned that slot (a stack from [`alloc`] on this thread) and no longer uses it.
pub(super) unsafe fn release(start: usize, arena: u32) {
    // When the thread-local is gone the slot is simply never reused (its arena was leaked).
    let _ = DENSE.try_with(|d| d.borrow_mut().release(start, arena));
}

/// When the next idle dense arena of this thread is due to give its pages back (`None`: no arena
/// waits for that). One thread-local read; may be early, never late.
pub(super) fn trim_due() -> Option<Instant> {
    NEXT_DUE.try_with(Cell::get).ok().flatten()
}

/// Gives back the pages of this thread's dense arenas that have had no live stack for at least
/// [`TRIM_DELAY`]; returns when the next one is due.
pub(super) fn trim_idle() -> Option<Instant> {
    trim_due()?;
    DENSE
        .try_with(|d| {
            d.try_borrow_mut()
                .ok()
                .and_then(|mut d| d.trim(Instant::now()))
        })
        .ok()
        .flatten()
}
