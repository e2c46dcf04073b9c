//! [`Value`]: what travels with every switch.
//!
//! greenlet passes arbitrary Python objects between greenlets; here that is a boxed `dyn Any`, with
//! checked ways to take a concrete type back out. A wrong type is an `Err` (or a panic that names both
//! types, for [`Value::take`]), never undefined behaviour.

use std::any::{Any, TypeId};
use std::fmt;

/// A dynamically typed value passed by [`switch`](crate::Greenlet::switch).
///
/// `()` is the "nothing" value (Python's `None`); it costs no allocation.
///
/// # Examples
/// ```
/// use greenlet::Value;
/// let v = Value::new(42_i32);
/// assert!(v.is::<i32>());
/// assert_eq!(v.take::<i32>(), 42);
/// ```
pub struct Value {
    inner: Box<dyn Payload>,
}

/// `Any` plus the type's name, so a `Value` stays two words (it travels in registers on a switch)
/// and can still name what it holds in errors.
trait Payload: Any {
    fn type_name(&self) -> &'static str;
}

impl<T: Any> Payload for T {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

impl Value {
    /// Wraps `x`. If `x` is already a `Value`, it is returned as is (no double wrapping).
    #[inline]
    pub fn new<T: 'static>(x: T) -> Value {
        if TypeId::of::<T>() == TypeId::of::<Value>() {
            let mut slot = Some(x);
            let slot: &mut dyn Any = &mut slot;
            if let Some(v) = slot.downcast_mut::<Option<Value>>() {
                // Cannot fail: the option was filled one line above and T is Value.
                return v.take().expect("value present");
            }
            unreachable!("TypeId said T is Value");
        }
        Value { inner: Box::new(x) }
    }

    /// The "nothing" value, `()`.
    #[inline]
    pub fn none() -> Value {
        Value::new(())
    }

    /// Whether this is the "nothing" value `()`.
    #[inline]
    pub fn is_none(&self) -> bool {
        self.is::<()>()
    }

    /// Whether the value holds a `T`.
    #[inline]
    pub fn is<T: 'static>(&self) -> bool {
        let any: &dyn Any = &*self.inner;
        any.is::<T>()
    }

    /// The name of the type held, as `std::any::type_name` gives it.
    pub fn type_name(&self) -> &'static str {
        (*self.inner).type_name()
    }

    /// Takes the `T` out.
    ///
    /// # Errors
    /// Gives the value back unchanged when it does not hold a `T`.
    #[inline]
    pub fn downcast<T: 'static>(self) -> Result<T, Value> {
        if !self.is::<T>() {
            return Err(self);
        }
        let any: Box<dyn Any> = self.inner;
        match any.downcast::<T>() {
            Ok(b) => Ok(*b),
            Err(_) => unreachable!("checked with is::<T>()"),
        }
    }

    /// Takes the `T` out.
    ///
    /// # Panics
    /// When the value does not hold a `T`; the message names both types.
    #[inline]
    #[track_caller]
    pub fn take<T: 'static>(self) -> T {
        match self.downcast::<T>() {
            Ok(x) => x,
            Err(v) => panic!(
                "greenlet::Value holds a {}, not a {}",
                v.type_name(),
                std::any::type_name::<T>()
            ),
        }
    }

    /// A reference to the `T` inside, if it holds one.
    #[inline]
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        let any: &dyn Any = &*self.inner;
        any.downcast_ref::<T>()
    }

    /// A mutable reference to the `T` inside, if it holds one.
    #[inline]
    pub fn downcast_mut<T: 'static>(&mut self) -> Option<&mut T> {
        let any: &mut dyn Any = &mut *self.inner;
        any.downcast_mut::<T>()
    }
}

impl Default for Value {
    fn default() -> Self {
        Value::none()
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        macro_rules! try_show {
            ($($t:ty),*) => {$(
                if let Some(x) = self.downcast_ref::<$t>() {
                    return write!(f, "Value({:?})", x);
                }
            )*};
        }
        try_show!(
            (),
            bool,
            i8,
            i16,
            i32,
            i64,
            i128,
            isize,
            u8,
            u16,
            u32,
            u64,
            u128,
            usize,
            f32,
            f64,
            char,
            &'static str,
            String
        );
        write!(f, "Value(<{}>)", self.type_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_two_words() {
        assert_eq!(
            std::mem::size_of::<Value>(),
            2 * std::mem::size_of::<usize>()
        );
        assert_eq!(
            std::mem::size_of::<Option<Value>>(),
            2 * std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn wrap_unwrap_and_no_double_wrapping() {
        let v = Value::new(Value::new("x"));
        assert_eq!(v.type_name(), "&str");
        assert_eq!(v.take::<&str>(), "x");
        let v = Value::new(5u8);
        let v = v.downcast::<i32>().unwrap_err();
        assert_eq!(v.downcast::<u8>().unwrap(), 5);
        assert!(Value::none().is_none());
        assert_eq!(format!("{:?}", Value::new(3)), "Value(3)");
    }

    #[test]
    #[should_panic(expected = "holds a i32, not a alloc::string::String")]
    fn take_wrong_type_names_both() {
        Value::new(1i32).take::<String>();
    }
}
