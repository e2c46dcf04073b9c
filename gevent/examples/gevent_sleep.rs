//! The seed's gevent example 1: `eat` and `play` each print three lines, sleeping 0.5 s between
//! them with `gevent::sleep`, which lets the other run. `joinall` waits for both; the run takes about
//! 1.5 s, not 3 s.
//!
//! Run: `cargo run -p gevent --example gevent_sleep`
//!
//! Prints:
//! ```text
//! noah is eat...0
//! bobo is play...0
//! noah is eat...1
//! bobo is play...1
//! noah is eat...2
//! bobo is play...2
//! 主...
//! ```

use std::time::Duration;

fn eat(n: &str) {
    for i in 0..3 {
        println!("{n} is eat...{i}");
        gevent::sleep(Duration::from_millis(500));
    }
}

fn play(n: &str) {
    for i in 0..3 {
        println!("{n} is play...{i}");
        gevent::sleep(Duration::from_millis(500));
    }
}

fn main() {
    let g1 = gevent::spawn(|| eat("noah"));
    let g2 = gevent::spawn(|| play("bobo"));
    gevent::joinall([&g1, &g2]);
    println!("主...");
}
