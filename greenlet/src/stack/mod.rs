//! Greenlet stacks: what they are made of, where they come from, and how overflow is caught.
//!
//! # Two kinds of stack
//!
//! **Guarded** (the default, [`StackConfig::guarded`]): one mapping per stack, with an inaccessible
//! guard page below the usable part. Each guarded stack costs two kernel memory mappings, and the
//! kernel allows `vm.max_map_count` (65530 by default) per process, so about 32,700 guarded
//! greenlets can be alive at once; past that, creating one returns a [`StackError`] that says so
//! ([`StackError::is_map_limit`]).
//!
//! ```text
//!   high  +------------------------+ <- base (stack grows down from here)
//!         |  usable, read-write    |
//!         |  (touched on demand)   |
//!         +------------------------+ <- limit
//!         |  guard page, PROT_NONE |
//!   low   +------------------------+ <- start of the mapping
//! ```
//!
//! **Dense** (opt-in, `unsafe`, [`StackConfig::dense`]): stacks carved side by side from large arenas
//! (64 MiB mappings), so a million greenlets fit on default kernel settings. On Linux 6.13 and later
//! each slot starts with a *light* guard page (`MADV_GUARD_INSTALL`: it faults like a `PROT_NONE`
//! page but splits no mapping, so it costs no `vm.max_map_count` entry and no memory; installed once
//! per slot, when the slot is first handed out, about 0.6 µs). On older kernels the slots have no
//! guard page of their own ([`dense_guard_pages`] says which). The bottom page of every arena is a
//! guard page either way. The 16 bytes just below each slot hold a canary word; they are the top of
//! the neighbouring slot, a page that neighbour touches anyway, so the canary costs no extra memory.
//!
//! ```text
//!   arena start                                                              arena end
//!   | guard | pad  [c0]|[g0][stack 0 ][c1]|[g1][stack 1 ][c2]|  ...  |[gn-1][stack n-1][  ]|
//!                       ^B0 ^limit 0                            (c_i: canary of slot i, at B_i - 8;
//!                                                                 g_i: its light guard page)
//! ```
//!
//! # What happens on overflow: the exact guarantee
//!
//! Every overflow that is detected prints `stack overflow in greenlet <name>` on stderr (the name
//! given by [`Builder::name`](crate::Builder::name), [`Builder::name_numbered`](crate::Builder::name_numbered)
//! or [`Greenlet::set_name`](crate::Greenlet::set_name), else `greenlet-<id>`; a scheduler such as
//! gevent sets its own task names there) and aborts the process (`SIGABRT`). The report is made by
//! the `SIGSEGV` handler, on an alternate signal stack, without allocating. The handler counts a
//! fault as the running greenlet's overflow when it hits that stack's guard page, or when the
//! interrupted stack pointer is below the stack's usable part (down to the guard at the bottom of
//! its arena, less 64 KiB); other faults go on to the previous handler or the default action.
//!
//! - **Guarded stacks**: the overflow faults on the guard page before anything outside the stack is
//!   written (frames larger than a page probe each page in order, as Rust's do; C code compiled
//!   without `-fstack-clash-protection` could skip past it). Nothing else is corrupted.
//! - **Dense stacks with guard pages** (Linux 6.13+): the same as guarded stacks. Also, the canary is
//!   checked each time the greenlet switches away, for frames that skipped the guard page.
//! - **Dense stacks without guard pages** (older kernels): the overflow writes into the neighbouring
//!   slots, below it in its arena, and is detected either when the greenlet next switches away (the
//!   canary below its slot was overwritten) or, if it keeps going, when it reaches the guard page at
//!   the bottom of the arena. Either way the process aborts with the report before any other
//!   greenlet runs again, so a corrupted neighbour never runs; but memory of up to the whole arena
//!   below the greenlet may have been overwritten by then (what a signal handler or destructor
//!   would see). Hence `unsafe`: the caller promises the stacks are big enough.
//!
//! Setting `GREENLET_NO_LIGHT_GUARDS=1` in the environment makes a process behave as on a kernel
//! without light guard pages (to test that case).
//!
//! # Sizes
//! Address space is cheap; only touched pages cost memory. A guarded stack is 256 KiB
//! ([`StackConfig::DEFAULT_SIZE`]) by default. A dense stack defaults to 32 KiB
//! ([`StackConfig::DEFAULT_DENSE_SIZE`]): a suspended greenlet touches about one page of it, but the
//! page tables that map touched pages cost 4 KiB per 2 MiB of address space in use, so 32 KiB stacks
//! (36 KiB slots with their guard page) keep that overhead near 72 bytes per greenlet (256 KiB
//! would make it 512 bytes), and a million of them take 36 GiB of address space, far below the
//! 128 TiB available.
//!
//! # Ground rules
//! - A `Stack` belongs to exactly one greenlet from allocation until the greenlet is dead; then it goes
//!   back to its thread's pool when dropped (`Stack::release`). Stacks never cross threads (`Stack`
//!   is `!Send`), so the pools are plain thread-locals.
//! - Guarded stacks are pooled per size, LIFO, at most 128 per size (`guarded::POOL_CAP`); beyond that they
//!   are unmapped. Creating and finishing greenlets in a steady state therefore maps nothing.
//! - Dense stacks go back to a per-size LIFO free list; arenas are never unmapped while the thread lives
//!   (a stack of another greenlet may sit next door), but the pages of an arena that has had no live
//!   stack for a second are given back to the kernel: checked every 16k releases, and whenever
//!   [`trim_idle`] is called (the gevent hub calls it before it sleeps, at the time [`trim_due`] names).
//! - All platform calls are in `crate::sys`.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use corosensei::stack::valgrind::ValgrindStackRegistration;

use crate::sys;

mod dense;
mod guarded;

/// How a greenlet's stack is made: its size and whether it has a guard page.
///
/// Set it per greenlet with [`Builder::stack`](crate::Builder::stack) or per thread with
/// [`set_thread_default`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackConfig {
    size: usize,
    dense: bool,
}

impl StackConfig {
    /// Default usable size of a guarded stack: 256 KiB (address space only; pages are touched on use).
    pub const DEFAULT_SIZE: usize = 256 * 1024;

    /// Default size of a dense stack: 32 KiB (see the [module docs](self) for why).
    pub const DEFAULT_DENSE_SIZE: usize = 32 * 1024;

    /// A stack of at least `size` usable bytes (rounded up to whole pages, at least one) with a guard
    /// page below it.
    pub fn guarded(size: usize) -> Self {
        StackConfig { size, dense: false }
    }

    /// A dense stack: `size` bytes (rounded up to whole pages, at least two) in a slot of a shared
    /// arena, below a light guard page where the kernel has them (Linux 6.13+, see
    /// [`dense_guard_pages`]). The top 16 bytes of each slot hold the canary of the slot above, so
    /// `size - 16` bytes are usable.
    ///
    /// Use this for very many greenlets (a million fit on default kernel settings, where guarded
    /// stacks stop near 32,700).
    ///
    /// # Safety
    /// With guard pages an overflow is stopped and reported like a guarded stack's. Without them
    /// (older kernels) it writes into the stacks of the neighbouring greenlets until it is detected
    /// (when it switches away, or at the guard page at the bottom of its arena) and the process
    /// aborts: a neighbour never runs corrupted, but what runs before the abort (signal handlers)
    /// may see it. The caller promises that every greenlet given this stack fits in it (including
    /// whatever the code it calls, and signal handlers, put on the stack). See the
    /// [module docs](self#what-happens-on-overflow-the-exact-guarantee).
    ///
    /// # Examples
    /// ```
    /// use greenlet::{Builder, StackConfig};
    /// // SAFETY: the closure needs a few hundred bytes of stack.
    /// let cfg = unsafe { StackConfig::dense(StackConfig::DEFAULT_DENSE_SIZE) };
    /// let g = Builder::new().stack(cfg).build(|v| v).unwrap();
    /// assert_eq!(g.switch(3).take::<i32>(), 3);
    /// ```
    pub unsafe fn dense(size: usize) -> Self {
        StackConfig { size, dense: true }
    }

    /// The size in bytes, as given.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether this is a dense (unguarded) stack.
    pub fn is_dense(&self) -> bool {
        self.dense
    }
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig::guarded(Self::DEFAULT_SIZE)
    }
}

/// A stack could not be allocated.
///
/// Its message names the cause; at the kernel's limit on memory mappings it names `vm.max_map_count`,
/// its value, and dense stacks as the way out ([`StackError::is_map_limit`]).
#[derive(Debug)]
pub struct StackError {
    size: usize,
    dense: bool,
    /// # Invariant
    /// `Some` iff the kernel refused a new mapping (`ENOMEM`) and the process is at (or the count was
    /// unreadable, presumably at) `vm.max_map_count`.
    map_limit: Option<MapLimit>,
    source: io::Error,
}

#[derive(Debug, Clone, Copy)]
struct MapLimit {
    max: Option<u64>,
    count: Option<usize>,
}

impl StackError {
    /// Classifies an OS error from allocating a stack of `size` bytes.
    #[cold]
    fn from_os(cfg: StackConfig, source: io::Error) -> StackError {
        let map_limit = if sys::is_out_of_mappings(&source) {
            classify_enomem()
        } else {
            None
        };
        StackError {
            size: cfg.size,
            dense: cfg.dense,
            map_limit,
            source,
        }
    }

    /// Whether the process ran into the kernel's limit on memory mappings (`vm.max_map_count`).
    /// Guarded stacks take two mappings each; dense stacks ([`StackConfig::dense`]) almost none.
    pub fn is_map_limit(&self) -> bool {
        self.map_limit.is_some()
    }

    /// The stack size that was asked for.
    pub fn size(&self) -> usize {
        self.size
    }
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.dense { "dense" } else { "guarded" };
        write!(
            f,
            "cannot allocate a {kind} greenlet stack of {} bytes: ",
            self.size
        )?;
        let Some(limit) = self.map_limit else {
            return write!(f, "{}", self.source);
        };
        f.write_str(
            "the process reached the kernel's limit on memory mappings (vm.max_map_count = ",
        )?;
        match limit.max {
            Some(max) => write!(f, "{max}")?,
            None => f.write_str("unknown")?,
        }
        if let Some(count) = limit.count {
            write!(f, "; this process has {count} mappings")?;
        }
        f.write_str(
            "). Each guarded stack takes 2 mappings, so about 32,700 guarded greenlets fit at the \
             default limit. For more greenlets use dense stacks (unsafe StackConfig::dense: no guard \
             page, a million fit), or raise vm.max_map_count (sysctl)",
        )
    }
}

impl std::error::Error for StackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// How long a classification of `ENOMEM` is reused at most (see [`classify_enomem`]).
const CLASSIFY_TTL: Duration = Duration::from_secs(5);

/// The classification of the first `ENOMEM` of a burst of failures, and when it was made.
///
/// # Invariant
/// `Some` only while no stack mapping has succeeded since it was made ([`mapped`] clears it);
/// [`CLASSIFIED`] is true whenever it is `Some`.
static CLASSIFICATION: Mutex<Option<(Instant, Option<MapLimit>)>> = Mutex::new(None);
/// Whether [`CLASSIFICATION`] may be `Some`: one relaxed load on a successful mapping.
static CLASSIFIED: AtomicBool = AtomicBool::new(false);

/// Whether a refused mapping (`ENOMEM`) means the process is at `vm.max_map_count`, and the numbers
/// for the message.
///
/// Counting the mappings reads all of `/proc/self/maps` (about 24 ms at 65,000 mappings), so it is
/// done once per burst of failures: the answer is reused by every failure that follows until a
/// stack mapping succeeds again (the burst is over) or [`CLASSIFY_TTL`] has passed. A flood of
/// failed spawns at the limit thus costs two failed system calls each, not a scan of the maps.
#[cold]
fn classify_enomem() -> Option<MapLimit> {
    let mut cached = CLASSIFICATION.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    if let Some((at, limit)) = *cached {
        if now.duration_since(at) < CLASSIFY_TTL {
            return limit;
        }
    }
    let max = sys::max_map_count();
    let mappings = sys::map_count();
    count(|s| s.map_scans += 1);
    let limit = match (max, mappings) {
        // Far below the limit: plain out-of-memory, not the mapping limit.
        (Some(max), Some(n)) if (n as u64).saturating_add(16) < max => None,
        _ => Some(MapLimit {
            max,
            count: mappings,
        }),
    };
    *cached = Some((now, limit));
    CLASSIFIED.store(true, Ordering::Relaxed);
    limit
}

/// Records that a stack mapping succeeded: a burst of failures is over, so the next failure is
/// classified afresh. Called on the (cold) path that made a new mapping.
fn mapped() {
    if CLASSIFIED.load(Ordering::Relaxed) {
        CLASSIFIED.store(false, Ordering::Relaxed);
        *CLASSIFICATION.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Counters of this thread's stack allocator, for tests, benchmarks and monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Mappings created (one per fresh guarded stack, one per dense arena).
    pub maps: u64,
    /// Mappings removed (guarded stacks beyond the pool's cap, pools emptied at thread exit).
    pub unmaps: u64,
    /// Stacks handed out again from the pool or a free list instead of being freshly made.
    pub reused: u64,
    /// Guarded stacks cached in this thread's pool now.
    pub pooled: usize,
    /// Dense stacks allocated (in use) now.
    pub dense_live: usize,
    /// Dense arenas mapped now.
    pub dense_arenas: usize,
    /// Times this thread read `/proc/self/maps` to explain a failed allocation (once per burst of
    /// failures at the mapping limit, not once per failure).
    pub map_scans: u64,
}

thread_local! {
    static STATS: std::cell::Cell<Stats> = const {
        std::cell::Cell::new(Stats {
            maps: 0, unmaps: 0, reused: 0, pooled: 0, dense_live: 0, dense_arenas: 0, map_scans: 0,
        })
    };
}

/// Updates this thread's counters (ignored while the thread is being torn down).
fn count(f: impl FnOnce(&mut Stats)) {
    let _ = STATS.try_with(|s| {
        let mut v = s.get();
        f(&mut v);
        s.set(v);
    });
}

/// This thread's stack allocator counters.
///
/// # Examples
/// ```
/// let before = greenlet::stack::stats();
/// for _ in 0..10 {
///     greenlet::Greenlet::new(|v| v).switch(());
/// }
/// // At most one fresh mapping: later greenlets reuse the first one's stack.
/// assert!(greenlet::stack::stats().maps - before.maps <= 1);
/// ```
pub fn stats() -> Stats {
    STATS.try_with(std::cell::Cell::get).unwrap_or_default()
}

/// Which allocator a [`Stack`] came from.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Its own mapping `[limit, base)`, guard page at the bottom.
    Guarded,
    /// A slot of this thread's dense arena number `arena`.
    Dense { arena: u32 },
}

/// A greenlet's stack, owned by the greenlet's coroutine; dropping it gives it back to the pool.
///
/// # Invariant
/// `[start, base)` is memory this value owns exclusively, that stays mapped until it is dropped
/// (its usable part and guard are described by the [`StackBounds`] made with it):
/// - `Kind::Guarded`: the whole of one mapping, its lowest page `PROT_NONE`, the rest read-write;
/// - `Kind::Dense`: a slot of arena `arena` of this thread's dense allocator, minus the slot's top 16
///   bytes; the word at `start - 8` holds this stack's canary.
///
/// `base` is 16-byte aligned. The value is `!Send`: it must go back to the pool of the thread that
/// allocated it.
pub(crate) struct Stack {
    base: usize,
    start: usize,
    kind: Kind,
    valgrind: ManuallyDrop<ValgrindStackRegistration>,
    /// Lowest usable address (what the sanitizer registered, `[limit, base)`).
    #[cfg(greenlet_asan)]
    limit: usize,
    _not_send: PhantomData<*const ()>,
}

impl Stack {
    /// Allocates a stack as `cfg` says, from this thread's pool when it can; returns it with where
    /// it is, which the greenlet keeps so overflow can be checked without the `Stack` itself (which
    /// the coroutine owns).
    ///
    /// # Errors
    /// When the kernel refuses the memory; at the mapping limit the error says so.
    #[inline]
    pub(crate) fn alloc(cfg: StackConfig) -> Result<(Stack, StackBounds), StackError> {
        let (base, limit, start, floor, kind) = if cfg.dense {
            let d = dense::alloc(cfg.size).map_err(|e| StackError::from_os(cfg, e))?;
            (
                d.base,
                d.limit,
                d.start,
                d.floor,
                Kind::Dense { arena: d.arena },
            )
        } else {
            let (start, len) = guarded::alloc(cfg.size).map_err(|e| StackError::from_os(cfg, e))?;
            let limit = start + sys::page_size();
            (start + len, limit, start, start, Kind::Guarded)
        };
        let (canary, canary_value) = match kind {
            Kind::Guarded => (0, 0),
            Kind::Dense { .. } => {
                let at = start - dense::CANARY_OFFSET;
                (at, dense::canary_value(at))
            }
        };
        let bounds = StackBounds {
            limit,
            guard: start,
            floor,
            canary,
            canary_value,
            #[cfg(greenlet_asan)]
            base,
        };
        let valgrind = ValgrindStackRegistration::new(limit as *mut u8, base - limit);
        crate::sanitizer::register_stack(limit, base - limit);
        let stack = Stack {
            base,
            start,
            kind,
            valgrind: ManuallyDrop::new(valgrind),
            #[cfg(greenlet_asan)]
            limit,
            _not_send: PhantomData,
        };
        Ok((stack, bounds))
    }

    /// Gives the stack back for reuse (same as dropping it).
    #[inline]
    pub(crate) fn release(self) {
        drop(self);
    }

    /// The highest address of the stack (it grows down from here); 16-byte aligned.
    #[inline]
    pub(crate) fn base(&self) -> usize {
        self.base
    }
}

impl Drop for Stack {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: dropped exactly once, here; the registration is not used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.valgrind) };
        #[cfg(greenlet_asan)]
        crate::sanitizer::unregister_stack(self.limit, self.base - self.limit);
        match self.kind {
            // SAFETY: by the type's invariant we own the whole mapping and, being dropped, no longer
            // use it.
            Kind::Guarded => unsafe { guarded::release(self.start, self.base - self.start) },
            // SAFETY: as above, for the dense slot.
            Kind::Dense { arena } => unsafe { dense::release(self.start, arena) },
        }
    }
}

/// Faults with the stack pointer this far below the lowest address an overflow can reach are still
/// reported as the running greenlet's overflow (a frame bigger than a page may skip past a guard).
const FAULT_WINDOW: usize = 64 * 1024;

/// The addresses of a stack, copied out of it.
///
/// # Invariant
/// Made with a live [`Stack`]: `[guard, limit)` is its guard (empty for a dense stack without a
/// light guard page) and `floor <= guard` the lowest address an overflow reaches before it faults.
/// `canary` is 0 for a guarded stack, otherwise the address of the dense stack's canary word, which
/// stays mapped for as long as the thread lives and holds `canary_value` unless the stack overflowed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StackBounds {
    /// Lowest usable address.
    limit: usize,
    guard: usize,
    floor: usize,
    canary: usize,
    canary_value: usize,
    /// The top of the stack, for the sanitizer.
    #[cfg(greenlet_asan)]
    base: usize,
}

impl StackBounds {
    /// Whether a dense stack's canary was overwritten (always false for guarded stacks).
    ///
    /// Must only be called while the stack is still allocated.
    #[inline]
    pub(crate) fn overflowed(&self) -> bool {
        if self.canary == 0 {
            return false;
        }
        // SAFETY: a non-zero `canary` is the address of a mapped, aligned word (field invariant); it
        // is read volatile because an overflow writes it behind the compiler's back.
        let word = unsafe { (self.canary as *const usize).read_volatile() };
        word != self.canary_value
    }

    /// The address of a dense stack's canary word; 0 for a guarded stack.
    #[inline]
    pub(crate) fn canary_addr(&self) -> usize {
        self.canary
    }

    /// Whether a fault at `addr` with the stack pointer at `sp`, taken while this stack was running,
    /// is an overflow of it: a hit on its guard, or any fault with the stack pointer below the usable
    /// stack (down to the lowest address an overflow can reach, less [`FAULT_WINDOW`]) — what a
    /// dense stack without a guard page of its own sees when its overflow, having run through its
    /// neighbours, reaches the guard page at the bottom of its arena.
    fn is_overflow_fault(&self, addr: usize, sp: usize) -> bool {
        (self.guard..self.limit).contains(&addr)
            || (self.floor.saturating_sub(FAULT_WINDOW)..self.limit).contains(&sp)
    }
}

/// The usable stack, as the sanitizer's fiber API takes it.
#[cfg(greenlet_asan)]
impl crate::sanitizer::StackRange for StackBounds {
    fn range(&self) -> (usize, usize) {
        (self.limit, self.base - self.limit)
    }
}

/// What the fault handler asks the layer that runs greenlets: calls `f` with the running greenlet's
/// stack bounds and name, or does nothing on a main greenlet (or before any greenlet exists).
///
/// # Safety
/// Called only on the thread whose running greenlet it reads, from a signal handler: it must be
/// async-signal-safe (no allocation, no lock) and must not panic.
pub(crate) type FaultContext = unsafe fn(f: &mut dyn FnMut(&StackBounds, &dyn fmt::Display));

/// The running greenlet's fault context, installed by the layer above ([`set_fault_context`]); the
/// stack code never names that layer.
static FAULT_CONTEXT: OnceLock<FaultContext> = OnceLock::new();

/// Installs how the fault handler finds the running greenlet's stack and name. Only the first call
/// counts (every thread passes the same function); call it before any greenlet stack is made.
pub(crate) fn set_fault_context(f: FaultContext) {
    let _ = FAULT_CONTEXT.set(f);
}

/// The fault hook: called by the platform's `SIGSEGV`/`SIGBUS` handler with the fault address and
/// the interrupted stack pointer, on the faulting thread. Aborts with the overflow message if the
/// running greenlet overflowed its stack; returns otherwise (the handler then passes the fault on).
fn on_fault(addr: usize, sp: usize) {
    // A lock-free load once initialized: usable from the signal handler.
    let Some(context) = FAULT_CONTEXT.get() else {
        return; // no greenlet layer yet, so no greenlet stack to overflow
    };
    // SAFETY: a synchronous fault is delivered to the thread that faulted, which is the one whose
    // current greenlet the context reads.
    unsafe {
        context(&mut |bounds, name| {
            if bounds.is_overflow_fault(addr, sp) {
                overflow_abort(name);
            }
        });
    }
}

/// Makes sure overflows of stacks used on this thread are reported: the process-wide fault handler
/// and this thread's alternate signal stack. Called before a thread's first fresh stack.
fn prepare_thread() {
    sys::install_fault_handler(on_fault);
    sys::ensure_alt_stack();
}

thread_local! {
    static THREAD_DEFAULT: std::cell::Cell<StackConfig> = const {
        std::cell::Cell::new(StackConfig { size: StackConfig::DEFAULT_SIZE, dense: false })
    };
}

/// The stack new greenlets of this thread get unless their [`Builder`](crate::Builder) says otherwise.
pub fn thread_default() -> StackConfig {
    THREAD_DEFAULT.with(std::cell::Cell::get)
}

/// Sets the stack new greenlets of this thread get by default.
pub fn set_thread_default(cfg: StackConfig) {
    THREAD_DEFAULT.with(|d| d.set(cfg));
}

/// Whether dense stacks have a guard page each in this process: on Linux 6.13 and later, whose light
/// guard pages (`MADV_GUARD_INSTALL`) cost no memory mapping. See the [module docs](self) for what
/// each answer guarantees.
pub fn dense_guard_pages() -> bool {
    sys::light_guards()
}

/// When this thread's next idle dense arena is due to give its pages back to the kernel, if any is
/// waiting for that (an arena that has had no live stack for one second).
///
/// Cheap (one thread-local read), so an event loop can ask before it sleeps and call [`trim_idle`]
/// at that time. The time may be early (the arena was reused meanwhile), never late.
pub fn trim_due() -> Option<std::time::Instant> {
    dense::trim_due()
}

/// Gives back to the kernel the pages of this thread's dense arenas that have had no live stack for
/// a second; returns when the next one is due ([`trim_due`]).
///
/// Releases do this too, every 16k of them; call it from an event loop that goes idle after a burst,
/// so the burst's stacks do not stay resident while no greenlet ends.
pub fn trim_idle() -> Option<std::time::Instant> {
    dense::trim_idle()
}

/// A fixed buffer that `write!` fills without allocating, truncating what does not fit.
struct StackBuf {
    buf: [u8; 512],
    len: usize,
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Reports an overflow of the named greenlet's stack on stderr and aborts the process.
///
/// Allocates nothing and uses only `write(2)` and `abort`, so the fault handler may call it.
#[cold]
pub(crate) fn overflow_abort(name: &dyn fmt::Display) -> ! {
    use fmt::Write as _;
    let mut out = StackBuf {
        buf: [0; 512],
        len: 0,
    };
    let _ = write!(out, "stack overflow in greenlet {name}");
    if out.len == out.buf.len() {
        out.len -= 1;
    }
    out.buf[out.len] = b'\n';
    sys::write_stderr(&out.buf[..=out.len]);
    sys::abort()
}
