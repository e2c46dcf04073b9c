//! The seed's first program: two greenlets, `eat` and `play`, handing control to each other with
//! `switch`. The first switch passes `"noah"` to `eat`; later switches need no argument.
//!
//! Run: `cargo run -p greenlet --example greenlet_switch`
//!
//! Prints (the seed's spelling `paly` kept):
//! ```text
//! noah is eat...0
//! noah is paly...0
//! noah is eat...1
//! noah is paly...1
//! noah is eat...2
//! noah is paly...2
//! ```

use std::cell::OnceCell;

use greenlet::{Greenlet, Value};

thread_local! {
    // The seed's module globals g1 and g2: each greenlet switches to the other by name.
    static G1: OnceCell<Greenlet> = const { OnceCell::new() };
    static G2: OnceCell<Greenlet> = const { OnceCell::new() };
}

fn g1() -> Greenlet {
    G1.with(|g| g.get().expect("g1 is created in main").clone())
}

fn g2() -> Greenlet {
    G2.with(|g| g.get().expect("g2 is created in main").clone())
}

fn eat(n: Value) -> Value {
    let n = n.take::<&str>();
    for i in 0..3 {
        println!("{n} is eat...{i}");
        g2().switch("noah");
    }
    Value::none()
}

fn play(n: Value) -> Value {
    let n = n.take::<&str>();
    for i in 0..3 {
        println!("{n} is paly...{i}");
        g1().switch(());
    }
    Value::none()
}

fn main() {
    G1.with(|g| g.set(Greenlet::new(eat)).ok());
    G2.with(|g| g.set(Greenlet::new(play)).ok());
    g1().switch("noah"); // the first switch passes the argument; later ones need none
}
