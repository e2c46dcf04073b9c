//! [`Builder`]: a greenlet with a name, a parent or a stack other than the defaults.

use crate::stack::{StackConfig, StackError};
use crate::switch::{new_greenlet, Greenlet, Name, RunFn};
use crate::value::Value;

/// Builds a greenlet with a name, a parent or a stack other than the defaults.
///
/// # Examples
/// ```
/// use greenlet::{Builder, StackConfig, Value};
/// let g = Builder::new()
///     .name("worker")
///     .stack(StackConfig::guarded(64 * 1024))
///     .build(|v| v)
///     .expect("stack");
/// assert_eq!(g.name(), "worker");
/// assert_eq!(g.switch(7).take::<i32>(), 7);
/// ```
#[derive(Default)]
pub struct Builder {
    name: Option<Name>,
    parent: Option<Greenlet>,
    stack: Option<StackConfig>,
}

impl Builder {
    /// A builder with every default: unnamed, parent = the current greenlet, the thread's default stack.
    pub fn new() -> Self {
        Builder::default()
    }

    /// Names the greenlet (shown by `Debug`, in overflow reports and traces).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(Name::Owned(name.into().into_boxed_str()));
        self
    }

    /// Names the greenlet `<prefix><n>` (`Greenlet-7`), formatted only when the name is shown: a
    /// scheduler can give every task its own name without an allocation per task.
    ///
    /// # Examples
    /// ```
    /// let g = greenlet::Builder::new().name_numbered("task-", 7).build(|v| v).unwrap();
    /// assert_eq!(g.name(), "task-7");
    /// ```
    pub fn name_numbered(mut self, prefix: &'static str, n: u64) -> Self {
        self.name = Some(Name::Numbered(prefix, n));
        self
    }

    /// Sets the parent (default: the greenlet current when it is built).
    pub fn parent(mut self, parent: &Greenlet) -> Self {
        self.parent = Some(parent.clone());
        self
    }

    /// Sets the stack (default: [`crate::stack::thread_default`]).
    pub fn stack(mut self, cfg: StackConfig) -> Self {
        self.stack = Some(cfg);
        self
    }

    /// Builds the greenlet with its `run`.
    ///
    /// # Errors
    /// When no stack can be allocated (for example past the kernel's limit on memory mappings).
    pub fn build<F>(self, run: F) -> Result<Greenlet, StackError>
    where
        F: FnOnce(Value) -> Value + 'static,
    {
        self.build_inner(Some(Box::new(run)))
    }

    /// Builds the greenlet without a `run`; give it one with [`Greenlet::set_run`] before it starts.
    ///
    /// # Errors
    /// As [`Builder::build`].
    pub fn build_unbound(self) -> Result<Greenlet, StackError> {
        self.build_inner(None)
    }

    fn build_inner(self, run: Option<RunFn>) -> Result<Greenlet, StackError> {
        let cfg = self.stack.unwrap_or_else(crate::stack::thread_default);
        new_greenlet(cfg, self.parent, self.name.unwrap_or(Name::Default), run)
    }
}
