//! Runs `greenlet/examples/greenlet_switch.rs`, the seed's first program, and checks its output
//! byte for byte (the seed's spelling `paly` included).
//!
//! No upstream test file: this is the seed's own program (eat / play, `g1.switch("noah")`).

use std::process::Command;

const SEED_OUTPUT: &str = "\
noah is eat...0
noah is paly...0
noah is eat...1
noah is paly...1
noah is eat...2
noah is paly...2
";

#[test]
fn greenlet_switch_example_prints_the_seed_output() {
    // The cargo that runs this test builds and runs the example (a no-op build when `cargo test`
    // already built the examples).
    let out = Command::new(env!("CARGO"))
        .args([
            "run",
            "-q",
            "-p",
            "greenlet",
            "--example",
            "greenlet_switch",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "example failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), SEED_OUTPUT);
    assert_eq!(out.stdout, SEED_OUTPUT.as_bytes());
}
