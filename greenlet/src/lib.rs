//! Symmetric stackful greenlets: several tasks in one thread, switched explicitly, passing a value on
//! every switch — Python's `greenlet`, in Rust.
//!
//! # The seed's first program
//!
//! Two greenlets hand control to each other with [`Greenlet::switch`]; the first switch passes the
//! argument to `run`, later ones resume the pending `switch`:
//!
//! ```
//! use std::cell::RefCell;
//! use greenlet::{Greenlet, Value};
//!
//! thread_local! {
//!     static G1: RefCell<Option<Greenlet>> = RefCell::new(None);
//!     static G2: RefCell<Option<Greenlet>> = RefCell::new(None);
//! }
//! fn g(slot: &'static std::thread::LocalKey<RefCell<Option<Greenlet>>>) -> Greenlet {
//!     slot.with(|s| s.borrow().clone().unwrap())
//! }
//!
//! let out = std::rc::Rc::new(RefCell::new(Vec::new()));
//! let (o1, o2) = (out.clone(), out.clone());
//! let eat = move |n: Value| {
//!     let n = n.take::<&str>();
//!     for i in 0..3 {
//!         o1.borrow_mut().push(format!("{n} is eat...{i}"));
//!         g(&G2).switch("noah");
//!     }
//!     Value::none()
//! };
//! let play = move |n: Value| {
//!     let n = n.take::<&str>();
//!     for i in 0..3 {
//!         o2.borrow_mut().push(format!("{n} is paly...{i}"));
//!         g(&G1).switch(());
//!     }
//!     Value::none()
//! };
//! G1.with(|s| *s.borrow_mut() = Some(Greenlet::new(eat)));
//! G2.with(|s| *s.borrow_mut() = Some(Greenlet::new(play)));
//! g(&G1).switch("noah");
//! assert_eq!(out.borrow()[..2], ["noah is eat...0", "noah is paly...0"]);
//! assert_eq!(out.borrow().len(), 6);
//! # G1.with(|s| s.borrow_mut().take()); G2.with(|s| s.borrow_mut().take());
//! ```
//!
//! # What lives where
//! - [`Greenlet`], [`Builder`], [`getcurrent`]: creating and switching ([`greenlet`](mod@greenlet)).
//! - `switch` (private): the switch engine behind [`Greenlet::switch`]: the thread's switching state,
//!   the fast and slow paths, a greenlet's first and last switch.
//! - [`Value`]: what a switch carries.
//! - [`stack`]: stack sizes, guard pages, the dense mode for a million greenlets.
//! - [`settrace`]: watch every switch.
//! - `arch` (private): the context switch itself, about 60 lines of x86_64 assembly.
//!
//! # Platform
//! Linux (any unix with `mmap` and `sigaltstack`) on x86_64, Rust 1.91 or later. A switch is one
//! machine-level context switch carrying the message in registers (a round trip passing `()` costs
//! about 1.9x corosensei's `resume(())` + `suspend(())` here); other architectures need a port of
//! `greenlet/src/arch/x86_64.rs`, and the crate refuses to build without one.
//!
//! # Stacks
//! Each greenlet runs on its own stack, by default [`StackConfig::DEFAULT_SIZE`] (256 KiB of address
//! space, touched only as used) with a guard page below it; an overflow prints
//! `stack overflow in greenlet <name>` and aborts. Change it per greenlet with [`Builder::stack`], or
//! per thread with [`stack::set_thread_default`]. Stacks are reused from a per-thread pool.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, missing_docs)]

mod arch;
mod builder;
mod error;
pub mod greenlet;
mod sanitizer;
pub mod stack;
mod switch;
mod sys;
mod trace;
mod value;

pub use crate::error::{Error, GreenletExit};
pub use crate::greenlet::{getcurrent, Builder, Greenlet};
pub use crate::stack::{StackConfig, StackError};
pub use crate::trace::{is_tracing, settrace, Event, Tracer};
pub use crate::value::Value;

/// The message of a panic payload (`&str` or `String`), or a placeholder naming its kind.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if payload.is::<GreenletExit>() {
        "GreenletExit".to_string()
    } else {
        "<non-string panic payload>".to_string()
    }
}
