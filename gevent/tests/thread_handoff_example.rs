//! The `thread_handoff` example: an OS thread hands work to a hub on another thread and waits for
//! the results (one-off jobs run concurrently on the hub, requests through a channel come back).

use std::process::Command;

#[path = "support/example.rs"]
mod example;

#[test]
fn thread_handoff_example_runs() {
    let exe = example::example_binary("thread_handoff");
    let out = Command::new(exe).output().expect("run thread_handoff");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    for (i, l) in lines[..3].iter().enumerate() {
        assert_eq!(*l, format!("job {i} done on thread hub"));
    }
    assert!(
        lines[3].starts_with("3 jobs of 100 ms took ") && lines[3].ends_with(": concurrent"),
        "{}",
        lines[3]
    );
    assert_eq!(lines[4], "squares: [1, 4, 9, 16, 25]");
    assert_eq!(lines[5], "hub stopped");
}
