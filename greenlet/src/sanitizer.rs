//! AddressSanitizer's view of greenlet stacks: every hook the sanitizer needs, in one place.
//!
//! Only a build with `--cfg greenlet_asan` (set, with `-Zsanitizer=address`, by `.ci/sanitize`)
//! compiles the real hooks; otherwise every function here is an empty `#[inline(always)]` one and a
//! [`Leaving`] is a zero-sized value, so the switch is unchanged.
//!
//! # Why
//! ASan tracks one stack per thread: its bounds decide what `__asan_handle_no_return` (called before
//! every unwind) unpoisons, and which addresses its reports call "stack". A greenlet switch moves the
//! stack pointer to another stack behind its back; without these hooks an unwind in a greenlet
//! skips the cleanup ("ASan is ignoring requested `__asan_handle_no_return`") and the redzones of the
//! frames it unwound stay poisoned, to be reported as false `stack-buffer-underflow`s later.
//! The fiber API tells it about each switch:
//!
//! - [`leave`] before a switch (`__sanitizer_start_switch_fiber`): the stack we go to, and where to
//!   save our fake stack (the frames that `detect_stack_use_after_return` keeps off the real stack);
//! - [`arrive`] after the switch resumes us (`__sanitizer_finish_switch_fiber`): our fake stack back;
//! - [`first_arrival`] at the start of a new greenlet: it has no fake stack yet;
//! - [`leave_for_good`] in a finishing greenlet, then `exit_switch`, called by the root frame (the
//!   arch trampoline) after the greenlet's last Rust frame has returned: the fake stack dies with it.
//!
//! A greenlet's stack is `[limit, base)` (its `StackBounds`, through `StackRange`); the main
//! greenlet's is the thread's own, which ASan reports to the first greenlet a thread switches to
//! (every thread's first switch leaves its main greenlet), and which is remembered per thread.
//!
//! LeakSanitizer scans thread stacks, globals and the heap, not other mappings: what only a suspended
//! greenlet's stack refers to would be reported as leaked. So the stack module registers each stack
//! as a root region while a greenlet owns it (`register_stack`, `unregister_stack`); a stack back
//! in the pool is not scanned, so what a finished greenlet leaked is still reported.

pub(crate) use self::imp::*;

#[cfg(greenlet_asan)]
mod imp {
    use std::cell::Cell;
    use std::ffi::c_void;
    use std::ptr;

    unsafe extern "C" {
        fn __sanitizer_start_switch_fiber(
            fake_stack_save: *mut *mut c_void,
            bottom: *const c_void,
            size: usize,
        );
        fn __sanitizer_finish_switch_fiber(
            fake_stack_save: *mut c_void,
            bottom_old: *mut *const c_void,
            size_old: *mut usize,
        );
        fn __lsan_register_root_region(p: *const c_void, size: usize);
        fn __lsan_unregister_root_region(p: *const c_void, size: usize);
    }

    thread_local! {
        /// The thread's own stack (the main greenlet's), as ASan knows it: `(bottom, size)`.
        static THREAD_STACK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
        /// The stack a finishing greenlet's last switch goes to, for [`exit_switch`].
        static EXIT_TO: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    }

    /// A greenlet's stack, as the fiber API takes it (implemented by `stack::StackBounds`, so that
    /// this module needs nothing from the modules that call it).
    pub(crate) trait StackRange {
        /// `(lowest usable address, size)`.
        fn range(&self) -> (usize, usize);
    }

    /// What a switch saved of the switcher for ASan: its fake stack.
    pub(crate) struct Leaving(*mut c_void);

    /// The stack of the greenlet with these bounds (`None`: the main greenlet, the thread's stack).
    fn range<B: StackRange>(target: Option<&B>) -> (usize, usize) {
        match target {
            Some(b) => b.range(),
            None => {
                let r = THREAD_STACK.with(Cell::get);
                debug_assert_ne!(
                    r.1, 0,
                    "a switch back to the main greenlet before any switch from it"
                );
                r
            }
        }
    }

    /// Remembers the thread's stack the first time ASan reports the stack we came from.
    fn learn(bottom: *const c_void, size: usize) {
        THREAD_STACK.with(|t| {
            if t.get().1 == 0 {
                t.set((bottom as usize, size));
            }
        });
    }

    /// Just before the switch to the greenlet whose stack `target` describes.
    #[inline(always)]
    pub(crate) fn leave<B: StackRange>(target: Option<&B>) -> Leaving {
        let (bottom, size) = range(target);
        let mut fake = ptr::null_mut();
        // SAFETY: ASan's fiber API; `[bottom, bottom + size)` is the stack the switch goes to.
        unsafe { __sanitizer_start_switch_fiber(&mut fake, bottom as *const c_void, size) };
        Leaving(fake)
    }

    /// Just after a switch resumed the greenlet that made `leaving`.
    #[inline(always)]
    pub(crate) fn arrive(leaving: Leaving) {
        let (mut bottom, mut size) = (ptr::null(), 0);
        // SAFETY: ASan's fiber API, with what our own `leave` saved.
        unsafe { __sanitizer_finish_switch_fiber(leaving.0, &mut bottom, &mut size) };
        learn(bottom, size);
    }

    /// At the start of a new greenlet, on its stack.
    #[inline(always)]
    pub(crate) fn first_arrival() {
        let (mut bottom, mut size) = (ptr::null(), 0);
        // SAFETY: ASan's fiber API; a new greenlet has no fake stack to restore.
        unsafe { __sanitizer_finish_switch_fiber(ptr::null_mut(), &mut bottom, &mut size) };
        learn(bottom, size);
    }

    /// In a finishing greenlet: its last switch goes to the stack `target` describes.
    pub(crate) fn leave_for_good<B: StackRange>(target: Option<&B>) {
        EXIT_TO.with(|e| e.set(range(target)));
    }

    /// Called by the root frame after the greenlet's last Rust frame returned, just before its last
    /// switch: tells ASan about that switch, and that the greenlet's fake stack can go.
    pub(crate) extern "C" fn exit_switch() {
        let (bottom, size) = EXIT_TO.with(Cell::get);
        // SAFETY: ASan's fiber API; a null save destroys the current fake stack, which nothing uses
        // any more (only the trampoline's asm runs before the switch).
        unsafe { __sanitizer_start_switch_fiber(ptr::null_mut(), bottom as *const c_void, size) };
    }

    /// A greenlet's stack, `[bottom, bottom + size)`, is now in use: LeakSanitizer scans it.
    pub(crate) fn register_stack(bottom: usize, size: usize) {
        // SAFETY: LSan's interface; the region is mapped while registered.
        unsafe { __lsan_register_root_region(bottom as *const c_void, size) };
    }

    /// The stack registered with [`register_stack`] goes back to the pool.
    pub(crate) fn unregister_stack(bottom: usize, size: usize) {
        // SAFETY: LSan's interface, with a region registered before.
        unsafe { __lsan_unregister_root_region(bottom as *const c_void, size) };
    }
}

#[cfg(not(greenlet_asan))]
mod imp {
    /// Nothing to save without the sanitizer.
    pub(crate) struct Leaving;

    #[inline(always)]
    pub(crate) fn leave<B>(_target: Option<&B>) -> Leaving {
        Leaving
    }

    #[inline(always)]
    pub(crate) fn arrive(_leaving: Leaving) {}

    #[inline(always)]
    pub(crate) fn first_arrival() {}

    #[inline(always)]
    pub(crate) fn leave_for_good<B>(_target: Option<&B>) {}

    #[inline(always)]
    pub(crate) fn register_stack(_bottom: usize, _size: usize) {}
}
