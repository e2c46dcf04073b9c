//! The project's own column: runs every function of `bench::ours` and prints `RESULT` or `SKIP` lines.
//!
//! Run: `cargo run -p bench --release --bin ours -- [--group switch,lifecycle,hub] [--quick] [--duration S]`

use bench::{counted, ours, report, skip, Opts};

fn main() {
    let o = Opts::from_args();
    if let Some(s) = &o.serve {
        if !ours::serve(s) {
            eprintln!("ours: the io server is not written yet (bench/src/ours.rs: serve)");
            std::process::exit(3);
        }
        return;
    }
    for m in ours::all() {
        if !o.wants(m.group) {
            continue;
        }
        let (name, n) = match m.counted {
            Some(count) => {
                let n = count(&o);
                (counted(m.name, n), n)
            }
            None => (m.name.to_owned(), o.counts.ops),
        };
        match (m.run)(&o, n) {
            Some(v) => report(m.group, &name, "ours", m.metric, v, n),
            None => skip(m.group, &name, "ours", "not yet"),
        }
    }
}
