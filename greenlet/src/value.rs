//! [`Value`]: what travels with every switch.
//!
//! greenlet passes arbitrary Python objects between greenlets; here that is a boxed value of any
//! `'static` type with a pointer to its type's description (like a `Box<dyn Any>`, whose vtable it
//! replaces with a static `Meta` holding the `TypeId`), with checked ways to take a concrete type
//! back out. A wrong type is an `Err` (or a panic that names both
//! types, for [`Value::take`]), never undefined behaviour.

use std::any::{Any, TypeId};
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// A dynamically typed value passed by [`switch`](crate::Greenlet::switch).
///
/// `()` is the "nothing" value (Python's `None`); like every zero-sized type, it costs no allocation.
/// A `Value` is two words, a pointer to the boxed value and a pointer to a static
/// description of its type, so a switch carries it in two registers, and [`Value::is`] is a
/// comparison with a constant.
///
/// # Examples
/// ```
/// use greenlet::Value;
/// let v = Value::new(42_i32);
/// assert!(v.is::<i32>());
/// assert_eq!(v.take::<i32>(), 42);
/// ```
pub struct Value {
    /// # Invariant
    /// Points to a live `T` owned by this value, where `meta` describes `T`: allocated by `Box<T>`
    /// (dangling and aligned for a zero-sized `T`).
    data: NonNull<u8>,
    meta: &'static Meta,
    /// A `Value` owns a `dyn Any` (which is neither `Send` nor `Sync`).
    _owns: PhantomData<Box<dyn Any>>,
}

/// What a [`Value`] knows about the type it holds.
struct Meta {
    type_id: TypeId,
    type_name: fn() -> &'static str,
    /// Drops and frees the boxed value; `None` when that does nothing (a zero-sized type without
    /// drop glue, such as `()`), which saves a call on every switch that passes one.
    ///
    /// # Safety
    /// The pointer must be a `Value::data` of this type, used no more afterwards.
    drop: Option<unsafe fn(NonNull<u8>)>,
}

/// Carries the static [`Meta`] of each `T`.
struct MetaOf<T>(PhantomData<T>);

impl<T: 'static> MetaOf<T> {
    const META: Meta = Meta {
        type_id: TypeId::of::<T>(),
        type_name: std::any::type_name::<T>,
        drop: if std::mem::size_of::<T>() == 0 && !std::mem::needs_drop::<T>() {
            None
        } else {
            Some(drop_boxed::<T>)
        },
    };
}

/// # Safety
/// `p` comes from `Box::<T>::into_raw` and is not used afterwards.
unsafe fn drop_boxed<T>(p: NonNull<u8>) {
    // SAFETY: per the contract, this gives the box back its ownership.
    drop(unsafe { Box::from_raw(p.cast::<T>().as_ptr()) });
}

impl Drop for Value {
    #[inline]
    fn drop(&mut self) {
        if let Some(drop) = self.meta.drop {
            // SAFETY: `data` is a live value of the type `meta` describes (field invariant), dropped
            // once.
            unsafe { drop(self.data) }
        }
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
        let data = NonNull::from(Box::leak(Box::new(x))).cast::<u8>();
        Value {
            data,
            meta: &MetaOf::<T>::META,
            _owns: PhantomData,
        }
    }

    /// The two words of the value, to carry across a switch; [`Value::from_raw`] takes them back.
    #[inline(always)]
    pub(crate) fn into_raw(self) -> (usize, usize) {
        let this = std::mem::ManuallyDrop::new(self);
        (
            this.data.as_ptr() as usize,
            this.meta as *const Meta as usize,
        )
    }

    /// Rebuilds a value from [`Value::into_raw`]'s words.
    ///
    /// # Safety
    /// The words come from `into_raw` and are used to rebuild one value, once.
    #[inline(always)]
    pub(crate) unsafe fn from_raw(data: usize, meta: usize) -> Value {
        // SAFETY: per the contract these are the fields of a value that was taken apart.
        unsafe {
            Value {
                data: NonNull::new_unchecked(data as *mut u8),
                meta: &*(meta as *const Meta),
                _owns: PhantomData,
            }
        }
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
        self.meta.type_id == TypeId::of::<T>()
    }

    /// The name of the type held, as `std::any::type_name` gives it.
    pub fn type_name(&self) -> &'static str {
        (self.meta.type_name)()
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
        let (data, _) = self.into_raw();
        // SAFETY: the value holds a `T` (checked above), boxed; `into_raw` gave up its ownership.
        Ok(*unsafe { Box::from_raw(data as *mut T) })
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
        // SAFETY: a `T` lives at `data` while we do (checked by `is`, field invariant).
        self.is::<T>()
            .then(|| unsafe { self.data.cast::<T>().as_ref() })
    }

    /// A mutable reference to the `T` inside, if it holds one.
    #[inline]
    pub fn downcast_mut<T: 'static>(&mut self) -> Option<&mut T> {
        // SAFETY: as `downcast_ref`; `&mut self` makes the borrow unique.
        self.is::<T>()
            .then(|| unsafe { self.data.cast::<T>().as_mut() })
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
    fn drops_what_it_holds_once() {
        use std::rc::Rc;
        let rc = Rc::new(());
        let v = Value::new(rc.clone());
        assert_eq!(Rc::strong_count(&rc), 2);
        let (a, b) = v.into_raw();
        // SAFETY: the words of the value just taken apart, used once.
        let v = unsafe { Value::from_raw(a, b) };
        assert!(v.downcast_ref::<Rc<()>>().is_some());
        drop(v);
        assert_eq!(Rc::strong_count(&rc), 1);
        let v = Value::new(rc.clone());
        let back: Rc<()> = v.take();
        drop(back);
        assert_eq!(Rc::strong_count(&rc), 1);
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
