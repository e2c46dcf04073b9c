//! Runs the seed's gevent examples and checks their output byte for byte (and the timing the seed
//! promises: two greenlets sleeping 3 x 0.5 s take about 1.5 s together, not 3 s).

use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/example.rs"]
mod example;

fn run_example(name: &str) -> (String, Duration) {
    let exe = example::example_binary(name);
    let t = Instant::now();
    let out = Command::new(&exe).output().expect("run example");
    let elapsed = t.elapsed();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (String::from_utf8(out.stdout).expect("utf-8"), elapsed)
}

#[test]
fn gevent_sleep_prints_the_seed_lines_in_about_1_5_s() {
    let (out, elapsed) = run_example("gevent_sleep");
    assert_eq!(
        out,
        "noah is eat...0\nbobo is play...0\nnoah is eat...1\nbobo is play...1\n\
         noah is eat...2\nbobo is play...2\n主...\n"
    );
    assert!(elapsed >= Duration::from_millis(1400), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
}

#[test]
fn gevent_value_collects_return_values() {
    let (out, _) = run_example("gevent_value");
    assert_eq!(out, "g1.value = 15\ng2.value = noah is done\n");
}
