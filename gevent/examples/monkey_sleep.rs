//! The seed's monkey-patching example: after `monkey::patch_all()`, the plain blocking
//! `std::thread::sleep` (Python's `time.sleep`) lets the other greenlet run, so the two interleave and
//! the program takes about 1.5 s, not 3 s.
//!
//! Run: `cargo run -p gevent --features monkey --example monkey_sleep`
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
        std::thread::sleep(Duration::from_millis(500)); // time.sleep(0.5)
    }
}

fn play(n: &str) {
    for i in 0..3 {
        println!("{n} is play...{i}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn main() {
    gevent::monkey::patch_all(); // from gevent import monkey; monkey.patch_all()
    let g1 = gevent::spawn(|| eat("noah"));
    let g2 = gevent::spawn(|| play("bobo"));
    gevent::joinall([&g1, &g2]);
    println!("主...");
}
