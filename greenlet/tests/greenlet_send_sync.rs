//! Thread-safety markers, checked at compile time.
//!
//! No upstream test file: in python-greenlet the equivalent rules are run-time errors
//! ("cannot switch to a different thread", `test_greenlet.py::TestGreenlet.test_switch_to_another_thread`,
//! `TestGreenletSetParentErrors.test_threaded_reparent`). Here they are types:
//! - `Value` is `!Send`/`!Sync`: `Value::new` accepts any `'static` type, including `Rc`, so a
//!   `Value` that could cross threads would be unsound. (`Greenlet`'s `!Send`/`!Sync` are
//!   `compile_fail` doctests in `src/switch.rs`, where the type is defined; they are asserted here again, the same way.)
//! - The payloads that travel as panics (`GreenletExit`, `Error`) are `Send + Sync + 'static`.
//!
//! Each `assert_not_impl!` is a compile-time check: if the type implemented the trait, the call
//! below would be ambiguous and this file would not compile.

use greenlet::{Error, Event, Greenlet, GreenletExit, Value};

/// Compiles only if `$t` does not implement `$tr` (the two blanket impls otherwise overlap for
/// type inference, making `_` ambiguous).
macro_rules! assert_not_impl {
    ($t:ty, $tr:path) => {{
        trait AmbiguousIfImpl<A> {
            fn some_item() {}
        }
        impl<T: ?Sized> AmbiguousIfImpl<()> for T {}
        #[allow(dead_code)]
        struct Invalid;
        impl<T: ?Sized + $tr> AmbiguousIfImpl<Invalid> for T {}
        let _ = <$t as AmbiguousIfImpl<_>>::some_item;
    }};
}

fn assert_send_sync<T: Send + Sync + 'static>() {}

#[test]
fn value_and_greenlet_stay_on_their_thread() {
    assert_not_impl!(Value, Send);
    assert_not_impl!(Value, Sync);
    assert_not_impl!(Greenlet, Send);
    assert_not_impl!(Greenlet, Sync);
    assert_not_impl!(Event, Send);
    assert_not_impl!(Event, Sync);
}

#[test]
fn panic_payloads_can_travel() {
    assert_send_sync::<GreenletExit>();
    assert_send_sync::<Error>();
    // And they can be thrown into a greenlet (throw_with needs Any + Send).
    let g = Greenlet::new(|_| {
        let parent = greenlet::getcurrent().parent().unwrap();
        parent.switch(());
        Value::none()
    });
    g.switch(());
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        g.throw_with(Error::CyclicParent)
    }))
    .unwrap_err();
    assert_eq!(
        err.downcast::<Error>().ok().map(|b| *b),
        Some(Error::CyclicParent)
    );
}
