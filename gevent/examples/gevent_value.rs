//! The seed's usage notes: `spawn(func, args)`, `join`, `joinall`, and `g.value` to get what `func`
//! returned.
//!
//! Run: `cargo run -p gevent --example gevent_value`
//!
//! Prints:
//! ```text
//! g1.value = 15
//! g2.value = noah is done
//! ```

use std::time::Duration;

fn add(a: i32, b: i32, c: i32, x: i32, y: i32) -> i32 {
    gevent::sleep(Duration::from_millis(100));
    a + b + c + x + y
}

fn finish(name: &str) -> String {
    gevent::sleep(Duration::from_millis(50));
    format!("{name} is done")
}

fn main() {
    // gevent.spawn(func, 1, 2, 3, x=4, y=5): a closure carries the arguments.
    let g1 = gevent::spawn(|| add(1, 2, 3, 4, 5));
    let g2 = gevent::spawn(|| finish("noah"));
    g1.join(); // wait for g1 alone
    gevent::joinall([&g2]); // or for several at once
    println!("g1.value = {}", g1.value().expect("g1 finished"));
    println!("g2.value = {}", g2.value().expect("g2 finished"));
}
