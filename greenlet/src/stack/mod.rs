//! Greenlet stacks: what they are made of, where they come from, and how overflow is caught.
//!
//! # Ground rules
//! - A [`Stack`] belongs to exactly one greenlet from allocation until the greenlet is dead; then it goes
//!   back to the per-thread pool ([`Stack::release`]). Stacks never cross threads.
//! - Guarded stacks (the default) have a `PROT_NONE` guard page below the limit: an overflow faults.
//! - Dense stacks (opt-in, `unsafe`) have no guard page; a canary below the limit is checked at every
//!   switch away from the greenlet.

use std::fmt;
use std::io;

/// How a greenlet's stack is made: its size and whether it has a guard page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackConfig {
    size: usize,
    dense: bool,
}

impl StackConfig {
    /// Default usable size of a guarded stack: 256 KiB (address space only; pages are touched on use).
    pub const DEFAULT_SIZE: usize = 256 * 1024;

    /// A stack of at least `size` usable bytes with a guard page below it.
    pub fn guarded(size: usize) -> Self {
        StackConfig { size, dense: false }
    }

    /// The usable size in bytes.
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
#[derive(Debug)]
pub struct StackError {
    size: usize,
    source: io::Error,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot allocate a greenlet stack of {} bytes: {}",
            self.size, self.source
        )
    }
}

impl std::error::Error for StackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A greenlet's stack (placeholder implementation: one guarded mmap per stack, no pool).
pub(crate) struct Stack {
    inner: corosensei::stack::DefaultStack,
}

impl Stack {
    /// Allocates a stack as `cfg` says.
    pub(crate) fn alloc(cfg: StackConfig) -> Result<Stack, StackError> {
        corosensei::stack::DefaultStack::new(cfg.size)
            .map(|inner| Stack { inner })
            .map_err(|source| StackError {
                size: cfg.size,
                source,
            })
    }

    /// Gives the stack back for reuse.
    pub(crate) fn release(self) {}

    /// Where the stack is; kept by the greenlet so overflow can be checked without the `Stack` itself
    /// (which the coroutine owns).
    pub(crate) fn bounds(&self) -> StackBounds {
        use corosensei::stack::Stack as _;
        StackBounds {
            base: self.base().get(),
            limit: self.limit().get(),
            canary: 0,
        }
    }
}

/// The addresses of a stack, copied out of it.
///
/// # Invariant
/// `canary` is 0 for a guarded stack, otherwise the address of the dense stack's canary word, which
/// stays mapped for as long as the stack is allocated.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StackBounds {
    /// Highest address (stacks grow down).
    pub(crate) base: usize,
    /// Lowest usable address, guard page included for guarded stacks.
    pub(crate) limit: usize,
    canary: usize,
}

impl StackBounds {
    /// Whether a dense stack's canary was overwritten (always false for guarded stacks).
    ///
    /// Must only be called while the stack is still allocated.
    pub(crate) fn overflowed(&self) -> bool {
        self.canary != 0
    }
}

// SAFETY: delegates to corosensei's DefaultStack, which upholds the contract (guard page, >= 4096 bytes).
unsafe impl corosensei::stack::Stack for Stack {
    fn base(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::Stack::base(&self.inner)
    }
    fn limit(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::Stack::limit(&self.inner)
    }
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

/// Reports an overflow of the named greenlet's stack on stderr and aborts the process.
#[cold]
pub(crate) fn overflow_abort(name: &dyn std::fmt::Display) -> ! {
    eprintln!("stack overflow in greenlet {name}");
    std::process::abort()
}
