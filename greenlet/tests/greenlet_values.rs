//! What a switch carries: values of any `'static` type, taken back out with a checked downcast.
//!
//! Ported from python-greenlet `src/greenlet/tests/test_greenlet.py` (the scenarios, not the code):
//! - `TestGreenlet.test_switch_kwargs`           -> `run_receives_compound_argument`
//! - `TestGreenlet.test_switch_kwargs_to_parent` -> `values_switched_to_parent`
//! - `TestGreenlet.test_tuple_subclass` (the argument passed on as is) -> `values_of_many_types_round_trip`
//! - `TestGreenlet.test_exception` (value of a switch that finds no pending receiver: `()`)
//!   -> `nothing_is_unit`
//!
//! Python passes any object; here a wrong type is an `Err` from `Value::downcast` (the value given
//! back intact) or a panic naming both types from `Value::take`, never undefined behaviour
//! (`wrong_type_*`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use greenlet::{getcurrent, panic_message, Greenlet, GreenletExit, Value};

fn parent_switch<V: 'static>(v: V) -> Value {
    let parent = getcurrent()
        .parent()
        .expect("called inside a child greenlet");
    parent.switch(v)
}

/// A greenlet that sends every value it receives straight back.
fn echo() -> Greenlet {
    let g = Greenlet::new(|v| {
        let mut v = v;
        loop {
            v = parent_switch(v);
        }
    });
    assert!(g.switch(()).is_none());
    g
}

#[derive(Debug, Clone, PartialEq)]
struct Point {
    x: i64,
    y: i64,
}

#[test]
fn values_of_many_types_round_trip() {
    let e = echo();
    macro_rules! round_trip {
        ($t:ty, $v:expr) => {{
            let v: $t = $v;
            let back = e.switch(v.clone());
            assert!(
                back.is::<$t>(),
                "{} came back as {}",
                stringify!($t),
                back.type_name()
            );
            assert_eq!(back.type_name(), std::any::type_name::<$t>());
            assert_eq!(back.take::<$t>(), v);
        }};
    }
    round_trip!(i32, -7);
    round_trip!(u64, u64::MAX);
    round_trip!(f64, 2.5);
    round_trip!(bool, true);
    round_trip!(char, 'é');
    round_trip!(&'static str, "static str");
    round_trip!(String, "owned".to_string());
    round_trip!(Vec<u8>, vec![1, 2, 3]);
    round_trip!((i32, String, bool), (1, "two".into(), false));
    round_trip!(Option<i32>, None);
    round_trip!(Result<u8, String>, Err("e".into()));
    round_trip!(Point, Point { x: 1, y: -1 });
    round_trip!(HashMap<String, i32>, HashMap::from([("k".to_string(), 1)]));
    round_trip!(GreenletExit, GreenletExit);
    round_trip!((), ());
    // Not Clone / not Send: moved through.
    let shared = Rc::new(RefCell::new(vec![1]));
    let back = e.switch(shared.clone()).take::<Rc<RefCell<Vec<i32>>>>();
    back.borrow_mut().push(2);
    assert_eq!(*shared.borrow(), [1, 2]);
    let f: Box<dyn Fn(i32) -> i32> = Box::new(|x| x * 3);
    let f = e.switch(f).take::<Box<dyn Fn(i32) -> i32>>();
    assert_eq!(f(14), 42);
    // A greenlet handle.
    let back = e.switch(e.clone()).take::<Greenlet>();
    assert_eq!(back, e);
    // A Value is passed as is, not wrapped again.
    let back = e.switch(Value::new(5u8));
    assert!(back.is::<u8>());
    assert_eq!(back.take::<u8>(), 5);
    assert!(e.throw().is::<GreenletExit>());
}

#[test]
fn run_receives_compound_argument() {
    // switch(a=4, b=2): several arguments travel as one tuple.
    let x = Greenlet::new(|args| {
        let (a, b) = args.take::<(i32, i32)>();
        assert_eq!((a, b), (4, 2));
        Value::new(42)
    })
    .switch((4, 2));
    assert_eq!(x.take::<i32>(), 42);
}

#[test]
fn values_switched_to_parent() {
    let g = Greenlet::new(|x| {
        let x = x.take::<i32>();
        parent_switch(HashMap::from([("x", x)]));
        parent_switch(((2,), HashMap::from([("x", 3)])));
        Value::new((x, x * x))
    });
    assert_eq!(
        g.switch(3).take::<HashMap<&str, i32>>(),
        HashMap::from([("x", 3)])
    );
    assert_eq!(
        g.switch(()).take::<((i32,), HashMap<&str, i32>)>(),
        ((2,), HashMap::from([("x", 3)]))
    );
    assert_eq!(g.switch(()).take::<(i32, i32)>(), (3, 9));
}

#[test]
fn nothing_is_unit() {
    assert!(Value::none().is_none());
    assert!(Value::default().is_none());
    assert!(Value::new(()).is_none());
    assert!(!Value::new(0).is_none());
    let g = Greenlet::new(|v| {
        assert!(v.is_none());
        Value::none()
    });
    assert!(g.switch(()).is_none());
    // A run returning () and a switch with ().
    let g = Greenlet::new(|_| {
        parent_switch(());
        Value::new(())
    });
    assert!(g.switch(()).is_none());
    assert!(g.switch(()).is_none());
}

#[test]
fn wrong_type_downcast_gives_the_value_back() {
    let v = Value::new(String::from("text"));
    let v = v.downcast::<i32>().unwrap_err();
    assert_eq!(v.type_name(), "alloc::string::String");
    let v = v.downcast::<&str>().unwrap_err();
    assert_eq!(v.downcast::<String>().unwrap(), "text");
    // downcast_ref / downcast_mut
    let mut v = Value::new(vec![1, 2]);
    assert!(v.downcast_ref::<Vec<u8>>().is_none());
    assert_eq!(v.downcast_ref::<Vec<i32>>(), Some(&vec![1, 2]));
    v.downcast_mut::<Vec<i32>>().unwrap().push(3);
    assert!(v.downcast_mut::<String>().is_none());
    assert_eq!(v.take::<Vec<i32>>(), [1, 2, 3]);
}

#[test]
fn wrong_type_take_panics_naming_both_types() {
    let err = catch_unwind(AssertUnwindSafe(|| Value::new(1u16).take::<i64>())).unwrap_err();
    assert_eq!(
        panic_message(&*err),
        "greenlet::Value holds a u16, not a i64"
    );
    // Inside a greenlet: the panic continues in the parent, at its switch.
    let g = Greenlet::new(|v| Value::new(v.take::<String>()));
    let err = catch_unwind(AssertUnwindSafe(|| g.switch(3.5f32))).unwrap_err();
    assert_eq!(
        panic_message(&*err),
        "greenlet::Value holds a f32, not a alloc::string::String"
    );
    assert!(g.is_dead());
}

#[test]
fn debug_formatting() {
    assert_eq!(format!("{:?}", Value::new(3)), "Value(3)");
    assert_eq!(format!("{:?}", Value::new("s")), "Value(\"s\")");
    assert_eq!(format!("{:?}", Value::none()), "Value(())");
    assert_eq!(
        format!("{:?}", Value::new(Point { x: 0, y: 0 })),
        format!("Value(<{}>)", std::any::type_name::<Point>())
    );
}
