//! The x86_64 (System V) context switch. See the [parent module](super) for the contract.
//!
//! # Saved context
//! A suspended context is the address `S` of three words on its stack: `[S]` its resume address,
//! `[S + 8]` its `rbx`, `[S + 16]` its `rbp`. Whoever resumes it loads `S` into `rcx`, reads the
//! resume address at `[S]` (before saving its own context, so the jump's target is ready early), sets
//! `rsp = S + 8` and jumps there ([`switch`]), or returns to it (the last switch of a finished
//! greenlet, made by the trampoline, with `rsp = S`); either way it resumes with `rsp = S + 8`. A fresh
//! stack's context is entered with a call instead ([`switch_call`]).
//!
//! # Why a call and a return for short-lived greenlets
//! After a stack switch, every `ret` that returns through frames made before the switch is
//! mispredicted (about 15 cycles each): the CPU's return-stack buffer holds the other stack's
//! addresses. A fresh greenlet is entered with a `call` whose return address is the switcher's resume
//! address, and when it finishes, the trampoline leaves with a `ret`: if it finishes into the greenlet
//! that started it (a hub running a short task, a loop creating greenlets), that `ret` and every `ret`
//! the switcher then executes are predicted. Measured: gevent's spawn + join 208 -> 177 ns per task,
//! greenlet create + run + finish 45 -> 33 ns. Ordinary switches use a load and a jump: a `call` there
//! made the ping-pong round trip 60% slower on this machine, for nothing in return.
//!
//! # A fresh stack
//! From its top (`base`, 16-byte aligned) down:
//!
//! ```text
//!   base - 8    0                      (padding)
//!   base - 16   link slot              <- rbp of the root frame; CFI reads the caller's frame here
//!   base - 24   entry function
//!   base - 32   address of trampoline  <- initial saved context
//! ```
//!
//! The first switch to it calls the trampoline, which points `rsp` and `rbp` at the link slot,
//! reserves four words and calls `entry(out, words)`. When `entry` returns, `out` holds the saved
//! context to go to and the three words to carry; the trampoline goes there with `ret`.

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

/// What a greenlet's entry function leaves for the trampoline: the saved context to resume and the
/// three words to carry there.
#[repr(C)]
pub(crate) struct Exit {
    pub(crate) to: usize,
    pub(crate) words: [usize; 3],
}

/// The signature of a greenlet's entry function: it receives the words of the switch that started
/// it, and writes where to go when it is done into `out`.
pub(crate) type Entry = unsafe extern "C" fn(out: *mut Exit, arg: usize, w0: usize, w1: usize);

/// The root frame of every greenlet stack (see the module docs for the layout it starts with).
///
/// Its CFI: the canonical frame address is the word in the link slot (`[rbp]`) plus 24, and the
/// caller's `rip`, `rbx` and `rbp` are the three words saved there by [`switch`]: exactly the state
/// of the suspended switcher at its resume address, which its own function's CFI then unwinds. It is
/// a signal frame (`S`) so that unwinders look that resume address up as it is.
///
/// `$before_exit` are instructions run after `entry` returned, before the last switch (a call to
/// the sanitizer's hook in a `greenlet_asan` build, nothing otherwise); `rsp` is 16-byte aligned
/// there and `out` at `[rsp]`.
macro_rules! trampoline {
    ($($before_exit:literal),* $(; $($operands:tt)*)?) => {
        #[unsafe(naked)]
        unsafe extern "C" fn trampoline() {
            naked_asm!(
                ".cfi_startproc",
                ".cfi_signal_frame",
                // Arrived by a call with rcx = the initial context (base - 32). Until rbp points at
                // the link slot this is no frame to walk: say so, so that an unwinder run from a
                // signal handler (a sampling profiler) stops here instead of reading the switcher's
                // return address as ours.
                ".cfi_undefined rip",
                "lea rsp, [rcx + 16]",
                "mov rbp, rsp",
                // DW_CFA_def_cfa_expression: DW_OP_breg6 (rbp) 0; DW_OP_deref; DW_OP_plus_uconst 24.
                ".cfi_escape 0x0f, 5, 0x76, 0x00, 0x06, 0x23, 0x18",
                ".cfi_offset rip, -24",
                ".cfi_offset rbx, -16",
                ".cfi_offset rbp, -8",
                // `out` below the link slot; rsp = base - 48 keeps the call 16-byte aligned.
                "sub rsp, 32",
                // entry(out, arg, w0, w1) from the switch's words (rdi, rsi, rdx).
                "mov rcx, rdx",
                "mov rdx, rsi",
                "mov rsi, rdi",
                "mov rdi, rsp",
                "call qword ptr [rbp - 8]",
                $($before_exit,)*
                // Leave for good: rcx and rsp = the context to resume, words in rdi, rsi, rdx.
                "mov rdi, [rsp + 8]",
                "mov rsi, [rsp + 16]",
                "mov rdx, [rsp + 24]",
                "mov rcx, [rsp]",
                "mov rsp, rcx",
                "ret",
                ".cfi_endproc",
                $($($operands)*)?
            )
        }
    };
}

#[cfg(not(greenlet_asan))]
trampoline!();
// The last switch of a greenlet, told to AddressSanitizer (see `crate::sanitizer`).
#[cfg(greenlet_asan)]
trampoline!("call {exit}"; exit = sym crate::sanitizer::exit_switch);

/// Prepares the stack whose top is `base` so that the first [`switch`] to the returned context calls
/// `entry` on it with the switch's words, then resumes whatever `entry` leaves in its `out`.
///
/// # Safety
/// `base` must be 16-byte aligned, and the 64 bytes below it writable memory owned by the caller,
/// which stays a stack for `entry` (nothing else writes it) until that greenlet is finished.
pub(crate) unsafe fn init_stack(base: usize, entry: Entry) -> usize {
    debug_assert_eq!(base % 16, 0, "stack base must be 16-byte aligned");
    let words = (base - 32) as *mut usize;
    // SAFETY: the caller gives us the bytes below `base`, aligned (base is).
    unsafe {
        words.write(trampoline as *const () as usize);
        words.add(1).write(entry as *const () as usize);
        words.add(2).write(terminator());
        words.add(3).write(0);
    }
    base - 32
}

/// The three words a switch carries: `arg` (rdi) and a message (rsi, rdx). The first switch to a
/// fresh stack passes them to its entry function.
pub(crate) type Words = (usize, usize, usize);

/// The switch shared by [`switch`] and [`switch_call`]: `$pre` runs first (it may read the target's
/// saved context, in rcx, into r11), `$enter` is how control goes to the target once our context is
/// saved (rcx holds the target's).
macro_rules! switch_asm {
    ($save:expr, $to:expr, $tlink:expr, $olink:expr, $words:expr, [$($pre:literal),*], [$($extra:tt)*], $($enter:literal),+) => {{
        let (r0, r1, r2): Words;
        asm!(
            $($pre,)*
            "lea rax, [rsp - 24]",
            "mov [{tlink}], rax",
            "mov [{olink}], {term}",
            "push rbp",
            "push rbx",
            "lea rax, [rip + 2f]",
            "push rax",
            "mov [{save}], rsp",
            $($enter,)+
            // Our resume address; resumed with rsp just above it (by a `ret`, or a load and a jump).
            "2:",
            "pop rbx",
            "pop rbp",
            save = in(reg) $save,
            tlink = in(reg) $tlink,
            olink = in(reg) $olink,
            term = in(reg) terminator(),
            inout("rcx") $to => _,
            inout("rdi") $words.0 => r0,
            inout("rsi") $words.1 => r1,
            inout("rdx") $words.2 => r2,
            out("rax") _,
            $($extra)*
            out("r12") _,
            out("r13") _,
            out("r14") _,
            out("r15") _,
            clobber_abi("sysv64"),
        );
        (r0, r1, r2)
    }};
}

/// Suspends the calling context, saving it in `*save`, and resumes the context `to`, handing it
/// `words`. Returns the words of the switch that resumes us.
///
/// Before leaving, the caller's saved frame is written to `*target_link` (the target's link slot)
/// and the terminator into `*own_link` (see the parent module for why).
///
/// # Safety
/// - `to` is a saved context of a started greenlet (from an earlier `switch`'s `*save`) whose stack
///   is still allocated, and is resumed only this once per save;
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
    // SAFETY: per the contract. rbx and rbp (which asm! operands cannot name) are saved on our own
    // stack and restored on return; every other register is declared clobbered, because the code
    // that runs before we are resumed may change any of them. The saved context points at our three
    // words and stays valid: nothing runs on this stack until we are resumed. The link slots are
    // written before the pushes (measured: a store between the pushes and the stack switch cost a
    // nanosecond per round trip here), with the address the pushes will leave.
    //
    // The target's resume address is loaded first, before our pushes, so the jump's target is known
    // early; the stack pointer is then set to where a pop of it would have left it.
    //
    // A sanitizer build keeps the plain pop and jump: its instrumented frames leave too few free
    // registers for the early load's extra one (r11 written before the inputs are read).
    #[cfg(not(greenlet_asan))]
    // SAFETY: as above.
    unsafe {
        switch_asm!(
            save,
            to,
            target_link,
            own_link,
            words,
            ["mov r11, [rcx]"],
            [out("r11") _,],
            "lea rsp, [rcx + 8]",
            "jmp r11"
        )
    }
    #[cfg(greenlet_asan)]
    // SAFETY: as above, resuming with the pop and jump the saved context's layout describes.
    unsafe {
        switch_asm!(
            save,
            to,
            target_link,
            own_link,
            words,
            [],
            [],
            "mov rsp, rcx",
            "pop rax",
            "jmp rax"
        )
    }
}

/// [`switch`] to a fresh stack (from [`init_stack`]), entering its trampoline with a `call`: the
/// trampoline's final `ret` comes back here predicted when the greenlet finishes into us (see the
/// module docs). Keep the caller out of line, so that what it returns through is balanced too.
///
/// # Safety
/// As [`switch`], with `to` a context from [`init_stack`] never resumed before.
#[inline(always)]
pub(crate) unsafe fn switch_call(
    save: *mut usize,
    to: usize,
    target_link: *mut usize,
    own_link: *mut usize,
    words: Words,
) -> Words {
    // SAFETY: as in `switch`. The call pushes its return address (our resume address `2:`, which
    // follows it) just below the fresh stack's initial words, where it is free; the trampoline sets
    // its own stack pointer from rcx.
    unsafe {
        switch_asm!(
            save,
            to,
            target_link,
            own_link,
            words,
            [],
            [],
            "mov rsp, rcx",
            "call qword ptr [rcx]"
        )
    }
}
