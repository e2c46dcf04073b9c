//! The project's own column: runs every measurement of `bench::ours` and prints `RESULT` or `SKIP` lines.
//!
//! Run: `cargo run -p bench --release --bin ours -- [--group switch,lifecycle,hub] [--quick] [--duration S]`
//!
//! Internal modes: `--mem N --stack dense|guarded` (the fresh child that measures parked memory) and
//! `--serve echo|http --port-file F` (the io group's server).

use bench::ours::{self, Run, StackKind};
use bench::{counted, parked_in_child_with, report, skip, Opts};

fn main() {
    let o = Opts::from_args();
    if let Some(s) = &o.serve {
        if !ours::serve(s) {
            eprintln!("ours: the io server is not written yet (bench/src/ours.rs: serve)");
            std::process::exit(3);
        }
        return;
    }
    if let Some(n) = o.mem {
        let kind = o.stack.as_deref().unwrap_or("guarded");
        let kind = StackKind::from_arg(kind)
            .unwrap_or_else(|| panic!("--stack takes dense or guarded, not {kind:?}"));
        ours::parked(kind, n);
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
        match m.run {
            Run::Here(f) => match f(&o, n) {
                Some(v) => report(m.group, &name, "ours", m.metric, v, n),
                None => skip(m.group, &name, "ours", "not yet"),
            },
            Run::Parked(kind) => {
                parked_in_child_with(&o, m.group, "ours", n, &["--stack", kind.arg()]);
            }
        }
    }
    if o.wants("hub") {
        ours::gevent_timers(&o);
    }
}
