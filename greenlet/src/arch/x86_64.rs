//! The x86_64 (System V) context switch. See the [parent module](super) for the contract.
//!
//! A fresh stack, from its top (`base`, 16-byte aligned) down:
//!
//! ```text
//!   base - 8    0                      (padding)
//!   base - 16   link slot              <- rbp of the root frame; CFI reads the caller's frame here
//!   base - 24   entry function
//!   base - 32   address of trampoline  <- initial saved stack pointer
//! ```
//!
//! The first switch to it pops the trampoline's address and jumps there; the trampoline pops the
//! entry function, points `rbp` at the link slot and calls it with the switch's words as arguments and
//! the stack 16-byte aligned.

use std::arch::{asm, naked_asm};

/// A frame whose return address is 0: unwinders stop there.
static TERMINATOR_FRAME: [usize; 3] = [0; 3];

/// The value to store in a link slot to end backtraces at that greenlet's root frame.
#[inline(always)]
pub(crate) fn terminator() -> usize {
    TERMINATOR_FRAME.as_ptr() as usize
}

/// The address of the link slot of the stack whose top is `base`.
#[inline(always)]
pub(crate) fn link_slot(base: usize) -> *mut usize {
    (base - 16) as *mut usize
}

/// The root frame of every greenlet stack (see the module docs for the layout it starts with).
///
/// Its CFI: the canonical frame address is the word in the link slot (`[rbp]`) plus 24, and the
/// caller's `rip`, `rbx` and `rbp` are the three words saved there by [`switch`]: exactly the state
/// of the suspended switcher at its resume address, which its own function's CFI then unwinds. It is
/// a signal frame (`S`) because that resume address does not follow a call instruction.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() {
    naked_asm!(
        ".cfi_startproc",
        ".cfi_signal_frame",
        // Not yet a frame unwinders can walk (nothing interrupts these two instructions but an
        // asynchronous signal, and nothing unwinds from one of those).
        "pop rax",
        "mov rbp, rsp",
        // DW_CFA_def_cfa_expression: DW_OP_breg6 (rbp) 0; DW_OP_deref; DW_OP_plus_uconst 24.
        ".cfi_escape 0x0f, 5, 0x76, 0x00, 0x06, 0x23, 0x18",
        ".cfi_offset rip, -24",
        ".cfi_offset rbx, -16",
        ".cfi_offset rbp, -8",
        // rdi, rsi and rdx hold the switch's words (the entry function's arguments); rsp is base - 16, so the callee sees the usual alignment.
        "call rax",
        // The entry function never returns (it leaves with `switch_final`).
        "ud2",
        ".cfi_endproc",
    )
}

/// Prepares the stack whose top is `base` so that the first [`switch`] to the returned stack pointer
/// calls `entry(words)` on it.
///
/// # Safety
/// `base` must be 16-byte aligned, and the 32 bytes below it writable memory owned by the caller,
/// which stays a stack for `entry` (nothing else writes it) until that greenlet is finished.
pub(crate) unsafe fn init_stack(
    base: usize,
    entry: unsafe extern "C" fn(usize, usize, usize) -> !,
) -> usize {
    debug_assert_eq!(base % 16, 0, "stack base must be 16-byte aligned");
    let words = (base - 32) as *mut usize;
    // SAFETY: the caller gives us the 32 bytes below `base`, aligned (base is).
    unsafe {
        words.write(trampoline as *const () as usize);
        words.add(1).write(entry as *const () as usize);
        words.add(2).write(terminator());
        words.add(3).write(0);
    }
    base - 32
}

/// The three words a switch carries: `arg` (rdi) and a message (rsi, rdx). The first switch to a
/// fresh stack passes them as the entry function's three arguments.
pub(crate) type Words = (usize, usize, usize);

/// Suspends the calling context, saving its stack pointer in `*save`, and resumes the context whose
/// saved stack pointer is `to`, handing it `words`. Returns the words of the switch that resumes us.
///
/// Before leaving, the caller's saved frame is written to `*target_link` (the target's link slot)
/// and the terminator into `*own_link` (see the parent module for why).
///
/// # Safety
/// - `to` is the saved stack pointer of a suspended context (from an earlier `switch`'s `*save` or
///   from [`init_stack`]) whose stack is still allocated, and is resumed only this once per save;
/// - `save`, `target_link` and `own_link` are valid for writes; `*save` must stay readable until
///   someone resumes us through it, and the stack we run on must stay allocated until then;
/// - nothing may unwind across this call: it has no unwind information for the other side.
#[inline(always)]
pub(crate) unsafe fn switch(
    save: *mut usize,
    to: usize,
    target_link: *mut usize,
    own_link: *mut usize,
    words: Words,
) -> Words {
    let (r0, r1, r2): Words;
    // SAFETY: per the contract. rbx and rbp (which asm! operands cannot name) are saved on our own
    // stack and restored on return; every other register is declared clobbered, because the code
    // that runs before we are resumed may change any of them. The stack pointer we store points at
    // our three saved words and stays valid: nothing runs on this stack until we are resumed. The
    // link slots are written before the pushes (measured: a store between the pushes and the stack
    // switch cost a nanosecond per round trip here), with the address the pushes will leave.
    unsafe {
        asm!(
            "lea rax, [rsp - 24]",
            "mov [{tlink}], rax",
            "mov [{olink}], {term}",
            "push rbp",
            "push rbx",
            "lea rax, [rip + 2f]",
            "push rax",
            "mov [{save}], rsp",
            "mov rsp, {to}",
            "pop rax",
            "jmp rax",
            "2:",
            "pop rbx",
            "pop rbp",
            save = in(reg) save,
            tlink = in(reg) target_link,
            olink = in(reg) own_link,
            to = in(reg) to,
            term = in(reg) terminator(),
            inout("rdi") words.0 => r0,
            inout("rsi") words.1 => r1,
            inout("rdx") words.2 => r2,
            out("rax") _,
            out("r12") _,
            out("r13") _,
            out("r14") _,
            out("r15") _,
            clobber_abi("sysv64"),
        );
    }
    (r0, r1, r2)
}

/// Resumes the context saved at `to`, handing it `words`, and abandons the current one for good.
///
/// # Safety
/// As [`switch`] for `to`; the caller's stack is never used again by this context (whatever still
/// lives on it is leaked, not dropped), and the terminator must already be in the target's link slot.
#[inline(always)]
pub(crate) unsafe fn switch_final(to: usize, words: Words) -> ! {
    // SAFETY: per the contract; the target pops its resume address and continues as from `switch`.
    unsafe {
        asm!(
            "mov rsp, {to}",
            "pop rax",
            "jmp rax",
            to = in(reg) to,
            in("rdi") words.0,
            in("rsi") words.1,
            in("rdx") words.2,
            options(noreturn),
        )
    }
}
