//! Runs the `async_bridge` example: 50 hyper clients against its hyper server (all greenlets on
//! one hub) must all get their page, concurrently; then its tokio-postgres query against a server
//! started by `support/pg.rs` (or, without PostgreSQL, it must report the skip cleanly).

#[path = "support/pg.rs"]
mod pg;

#[path = "support/example.rs"]
mod example;

use std::process::Command;

#[test]
fn async_bridge_example_runs() {
    let exe = example::example_binary_with("async_bridge", &["hyper", "tokio"]);

    let server = pg::PgServer::start();
    let mut cmd = Command::new(&exe);
    match &server {
        Ok(s) => {
            cmd.args(["--pg", &s.conn]);
        }
        Err(why) => {
            println!("no PostgreSQL for the example's query: {why}");
            // Nothing listens on port 1: the example must say it skipped.
            cmd.args(["--pg", "host=127.0.0.1 port=1 user=postgres"]);
        }
    }
    let out = cmd.output().expect("run the example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("listening on 127.0.0.1:"));
    let ms: u64 = lines[1]
        .strip_prefix("fetched 50/50 pages in ")
        .and_then(|s| s.strip_suffix(" ms"))
        .expect(lines[1])
        .parse()
        .unwrap();
    // 50 requests whose handler sleeps 50 ms each, served concurrently.
    assert!(ms < 1000, "{ms} ms");
    if server.is_ok() {
        assert_eq!(lines[2], "postgres: answer 42");
    } else {
        assert!(lines[2].starts_with("postgres: skipped ("), "{}", lines[2]);
    }
}
