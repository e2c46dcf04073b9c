//! Debugging helpers: what the hub of this thread and its greenlets are doing (gevent's
//! `gevent.util.print_run_info` / `format_run_info`).
//!
//! # What it shows
//! The thread's hub (its ready queue and timers), the thread's main greenlet, then every gevent
//! [`Greenlet`](crate::Greenlet) of the thread that is still referenced, oldest first, with its name
//! and state:
//! - `pending`: spawned, not started yet;
//! - `running`: it is the current greenlet (the one calling [`format_run_info`]);
//! - `waiting`: started and suspended (parked on the hub, or woken and about to run again);
//! - `dead`: finished, still held by a handle.
//!
//! With [`set_track_waits`]`(true)`, each wait that begins afterwards also records where it was
//! called from, and a waiting greenlet's line ends with `at file:line` (the first frame of the
//! wait's backtrace outside gevent, greenlet and the standard library, e.g. the line that called
//! `event.wait()`). That costs a backtrace capture (a few microseconds) per wait, so it is off by
//! default; off, a wait pays one relaxed atomic load for it.
//!
//! # Ground rules
//! - Every gevent greenlet is registered, per thread, when it is created (a weak reference put in a
//!   slab) and unregistered when its state is dropped (its slot freed): O(1) each, nothing when it
//!   switches or waits. The registry never keeps a greenlet alive.
//! - `spawn_raw` greenlets have no [`Greenlet`](crate::Greenlet) object and are not listed; greenlets
//!   of other threads are not listed (each thread has its own hub).
//! - Formatting only reads state; it never switches, so it can be called anywhere, also from a hub
//!   callback or a `Drop`.

use std::fmt::Write as _;

use crate::greenlet::{registered, Tracked};
pub use crate::hub::registry::{set_track_waits, track_waits};
use crate::hub::registry::{with_wait_site, Phase, Snapshot};

/// Crates whose frames are the machinery of a wait, not the place that waits.
const INTERNAL: &[&str] = &[
    "gevent",
    "greenlet",
    "std",
    "core",
    "alloc",
    "backtrace",
    "corosensei",
];

/// The first frame of `bt` outside [`INTERNAL`] crates, as `file:line`; failing that (an optimised
/// build may keep no frame of a small closure that only calls, say, `gevent::sleep`), the gevent
/// function the wait was entered through, as `file:line (function)`.
fn user_frame(bt: &mut backtrace::Backtrace) -> Option<String> {
    bt.resolve();
    // The outermost gevent frame of the innermost run of gevent frames: the API the user called.
    let mut api: Option<String> = None;
    let mut api_done = false;
    for frame in bt.frames() {
        for sym in frame.symbols() {
            let Some(name) = sym.name() else { continue };
            let name = format!("{name:#}");
            // The crate: from the file when it is some crate's `src/` (builds with line tables only
            // name inlined frames by their bare function name), else from the symbol's path.
            let krate = sym.filename().and_then(crate_of_file).unwrap_or_else(|| {
                name.trim_start_matches('<')
                    .split("::")
                    .next()
                    .unwrap_or("")
            });
            if krate == "gevent" && !api_done {
                if let Some(file) = sym.filename() {
                    let line = sym.lineno().unwrap_or(0);
                    api = Some(format!("{}:{line} ({name})", short_path(file)));
                }
            } else if api.is_some() {
                api_done = true;
            }
            if INTERNAL.contains(&krate) || name.starts_with("__") {
                continue;
            }
            let Some(file) = sym.filename() else { continue };
            let line = sym.lineno().unwrap_or(0);
            return Some(format!("{}:{line}", short_path(file)));
        }
    }
    api
}

/// The crate whose source `file` is, when it lies in a `<crate>/src/` folder: a workspace member
/// (`gevent/src/hub/waiter.rs`), a registry download (`gevent-0.1.0/src/...`: the version is
/// dropped) or the standard library (`library/std/src/...`). `None` for anything else (tests,
/// examples, build output).
fn crate_of_file(file: &std::path::Path) -> Option<&str> {
    let parts: Vec<&str> = file.iter().filter_map(|c| c.to_str()).collect();
    let src = parts.iter().rposition(|c| *c == "src")?;
    let dir = *parts.get(src.checked_sub(1)?)?;
    // `name-1.2.3` -> `name`: cut at the last `-` followed by a version (a digit, and a dot).
    Some(match dir.rfind('-') {
        Some(i)
            if dir[i + 1..].starts_with(|c: char| c.is_ascii_digit()) && dir[i..].contains('.') =>
        {
            &dir[..i]
        }
        _ => dir,
    })
}

/// `file` relative to the current directory when it is under it.
fn short_path(file: &std::path::Path) -> String {
    let rel = std::env::current_dir()
        .ok()
        .and_then(|d| file.strip_prefix(d).ok().map(std::path::Path::to_path_buf));
    rel.as_deref().unwrap_or(file).display().to_string()
}

/// Where the raw greenlet `id` waits, if recorded.
fn wait_place(id: u64) -> Option<String> {
    with_wait_site(id, user_frame)
}

/// The state word of a started raw greenlet.
fn raw_state(raw: &greenlet::Greenlet) -> &'static str {
    if raw.is_current() {
        "running"
    } else if raw.is_dead() {
        "dead"
    } else {
        "waiting"
    }
}

/// `state` plus ` at file:line` when the greenlet waits and its place was recorded.
fn state_and_place(out: &mut String, raw: &greenlet::Greenlet) {
    let state = raw_state(raw);
    out.push_str(state);
    if state == "waiting" {
        if let Some(place) = wait_place(raw.id()) {
            let _ = write!(out, " at {place}");
        }
    }
}

/// The run info of this thread: its hub, its main greenlet and its gevent greenlets (see the
/// [module docs](self)), one per line.
///
/// # Examples
/// ```
/// let g = gevent::spawn(|| ());
/// g.set_name("worker");
/// let info = gevent::util::format_run_info();
/// assert!(info.contains("worker: pending"), "{info}");
/// g.join();
/// assert!(gevent::util::format_run_info().contains("worker: dead"));
/// ```
pub fn format_run_info() -> String {
    let mut out = String::new();
    let thread = std::thread::current();
    let tname = thread.name().unwrap_or("<unnamed>");
    let _ = write!(out, "thread {tname:?} ({:?}): ", thread.id());
    match crate::hub::try_hub() {
        None => out.push_str("no hub\n"),
        Some(hub) => {
            let (ready, timers) = hub.run_counts();
            let _ = write!(out, "Hub: {ready} ready, {timers} timer(s), ");
            out.push_str(raw_state(hub.greenlet()));
            out.push('\n');
        }
    }
    let mut main = greenlet::getcurrent();
    while let Some(p) = main.parent() {
        main = p;
    }
    out.push_str(" main greenlet: ");
    state_and_place(&mut out, &main);
    out.push('\n');

    let live: Vec<std::rc::Rc<dyn Tracked>> = registered();
    let mut snaps: Vec<Snapshot> = live.iter().map(|g| g.snapshot()).collect();
    drop(live); // outside the registry's borrow: the last handle may be dropped here
    snaps.sort_by_key(|s| s.ident);
    for s in snaps {
        let _ = write!(out, " #{} {}: ", s.ident, s.name);
        match (s.phase, &s.raw) {
            (Phase::Pending, _) => out.push_str("pending"),
            (Phase::Dead, _) => out.push_str("dead"),
            (Phase::Started, Some(raw)) => state_and_place(&mut out, raw),
            (Phase::Started, None) => out.push_str("running"),
        }
        out.push('\n');
    }
    out
}

/// Prints [`format_run_info`] to stderr (gevent's `print_run_info`).
pub fn print_run_info() {
    eprint!("{}", format_run_info());
}

#[cfg(test)]
mod tests {
    use super::crate_of_file;
    use std::path::Path;

    #[test]
    fn a_file_names_its_crate_by_the_folder_above_src() {
        fn krate(p: &str) -> Option<&str> {
            crate_of_file(Path::new(p))
        }
        assert_eq!(krate("/w/main/gevent/src/hub/waiter.rs"), Some("gevent"));
        assert_eq!(
            krate("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/gevent-0.1.0/src/hub/waiter.rs"),
            Some("gevent")
        );
        assert_eq!(
            krate("/rustc/59807616/library/std/src/thread/mod.rs"),
            Some("std")
        );
        assert_eq!(krate("/home/u/app-2/src/main.rs"), Some("app-2"));
        assert_eq!(
            krate("/home/u/gevent-demo/src/main.rs"),
            Some("gevent-demo")
        );
        assert_eq!(krate("gevent/tests/util_run_info.rs"), None);
    }
}
