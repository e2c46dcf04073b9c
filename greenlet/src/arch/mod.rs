//! The context switch: the only machine-specific code of the crate.
//!
//! # Contract
//! A suspended greenlet is one word, its saved stack pointer. The frame at that address is
//! `[resume address, saved rbx, saved rbp]` (on x86_64), pushed by [`switch`] itself; everything else
//! the suspended code needs was spilled to its stack by the compiler, because the switch declares every
//! other register clobbered. So a switch is: push the three words, store the stack pointer, load the
//! target's, pop its resume address and jump there. Nothing else is saved: not the x87 control word
//! nor MXCSR (like corosensei, this assumes the whole thread uses the default floating-point modes).
//!
//! Each greenlet stack starts with a small root frame (see [`init_stack`]): a *link slot* and the
//! address of the function the greenlet starts in. Its code, the trampoline, carries CFI that tells
//! unwinders "the caller of this frame is the frame saved at the address in the link slot". Whoever
//! switches to a greenlet writes its own saved frame into the target's link slot and the address of a
//! terminator frame (return address 0, where unwinders stop) into its own, so a backtrace taken in
//! a greenlet shows its frames, then those of the greenlet that switched to it, and stops there. Why
//! that is always sound: the switcher stays suspended, with its frames intact, for as long as the
//! target runs (anything that resumes it first suspends the target, and the next switch into the
//! target rewrites the slot); a greenlet that finishes writes the terminator into its target's slot
//! instead, since its own stack is about to be reused.
//!
//! Provided items, for each supported architecture:
//! - `Words`: the three machine words a switch carries, in registers.
//! - `Exit` and `Entry`: a greenlet's entry function receives the words of the switch that started it
//!   and returns, through an `Exit`, the context its last switch goes to and the words it carries.
//! - `unsafe fn init_stack(base, entry) -> usize`: prepares a fresh stack so that the first switch to it
//!   calls `entry` on it, and makes the `Exit`'s switch when `entry` returns; returns the initial
//!   saved context.
//! - `unsafe fn switch(save, to, target_link, own_link, words) -> Words` (always inlined): suspends the
//!   caller, saving its context in `*save`, and resumes the context `to` of a started greenlet, which
//!   receives `words`. Returns the words of whichever switch resumes the caller.
//! - `unsafe fn switch_call(...)`: the same, to a fresh stack (entered so that its last switch back is
//!   predicted by the CPU; see the x86_64 module docs).
//! - `link_slot(base)`: the address of the link slot of the stack whose top is `base`.
//! - `terminator()`: the value to store in a link slot to end backtraces there.
//!
//! Why not corosensei: it is asymmetric (resume/suspend), so a symmetric switch on it needs a
//! per-thread chain of resumers and a dispatch step on every switch; with that bookkeeping a round
//! trip cost 3.2x corosensei's own. A direct switch does the same work as one corosensei
//! resume or suspend, and carries the message in registers: a main <-> greenlet round trip passing
//! `()` costs about 1.9x corosensei's `resume(())` + `suspend(())` (`examples/switch_vs_corosensei.rs`),
//! instead of 3.2x. What it does beyond corosensei's, on each switch: the two link-slot stores for
//! backtraces (about 6% of a round trip), the thread's current greenlet (a thread-local store), the
//! tracer/keep and dense-stack canary tests, and the message's two words and flag bits. corosensei is still used for what it does well beside switching (registering
//! stacks with valgrind).

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub(crate) use self::x86_64::*;

#[cfg(not(target_arch = "x86_64"))]
compile_error!(
    "greenlet has a context switch for x86_64 only; port greenlet/src/arch/x86_64.rs (about 60 lines) \
     to this architecture"
);
