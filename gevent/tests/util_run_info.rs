//! `gevent::util::{format_run_info, print_run_info}`: the thread's hub and its greenlets, their state
//! and (with `set_track_waits`) where they wait.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use gevent::event::Event;
use gevent::util::{format_run_info, print_run_info, set_track_waits};

/// The line of `info` that describes the greenlet named `name`.
fn line_of<'a>(info: &'a str, name: &str) -> &'a str {
    let key = format!(" {name}: ");
    info.lines()
        .find(|l| l.contains(&key))
        .unwrap_or_else(|| panic!("no line for {name:?} in:\n{info}"))
}

#[test]
fn lists_the_hub_main_and_every_state() {
    let ev = Event::new();
    let waiting = {
        let ev = ev.clone();
        gevent::spawn(move || ev.wait())
    };
    waiting.set_name("waits-on-event");
    let done = gevent::spawn(|| 1);
    done.set_name("finished");
    gevent::sleep(Duration::ZERO); // both start; `finished` ends
    let pending = gevent::spawn(|| ());
    pending.set_name("not-started");

    let info = format_run_info();
    print_run_info();
    assert!(info.lines().next().unwrap().contains("Hub: "), "{info}");
    assert!(info.contains(" main greenlet: running\n"), "{info}");
    assert!(
        line_of(&info, "waits-on-event").contains(": waiting"),
        "{info}"
    );
    assert!(line_of(&info, "finished").ends_with(": dead"), "{info}");
    assert!(
        line_of(&info, "not-started").ends_with(": pending"),
        "{info}"
    );
    // Oldest first.
    let pos = |n: &str| info.find(&format!(" {n}: ")).unwrap();
    assert!(pos("waits-on-event") < pos("finished") && pos("finished") < pos("not-started"));

    ev.set();
    waiting.join();
    pending.join();
    let info = format_run_info();
    assert!(
        line_of(&info, "waits-on-event").ends_with(": dead"),
        "{info}"
    );
    assert!(line_of(&info, "not-started").ends_with(": dead"), "{info}");
}

#[test]
fn a_greenlet_sees_itself_running_and_main_waiting() {
    let g = gevent::spawn(format_run_info);
    g.set_name("looker");
    let info = g.get().unwrap();
    assert!(line_of(&info, "looker").ends_with(": running"), "{info}");
    assert!(info.contains(" main greenlet: waiting"), "{info}");
}

#[test]
fn from_a_hub_callback_the_hub_is_running() {
    let out = Rc::new(std::cell::RefCell::new(String::new()));
    let o = out.clone();
    gevent::get_hub().run_callback(move || *o.borrow_mut() = format_run_info());
    gevent::sleep(Duration::ZERO);
    let info = out.borrow().clone();
    assert!(info.lines().next().unwrap().ends_with("running"), "{info}");
    assert!(info.contains(" main greenlet: waiting"), "{info}");
}

#[test]
fn greenlets_no_one_holds_are_not_listed() {
    for _ in 0..3 {
        let gs: Vec<_> = (0..1000).map(|i| gevent::spawn(move || i)).collect();
        gevent::joinall(&gs);
    }
    let keep = gevent::spawn(|| ());
    keep.set_name("kept");
    let info = format_run_info();
    // The hub, main and `kept`.
    assert_eq!(info.lines().count(), 3, "{info}");
    assert!(line_of(&info, "kept").ends_with(": pending"), "{info}");
    keep.join();
}

#[test]
fn with_track_waits_a_waiting_greenlet_says_where() {
    set_track_waits(true);
    let ev = Event::new();
    let line = Rc::new(Cell::new(0));
    let g = {
        let (ev, line) = (ev.clone(), line.clone());
        gevent::spawn(move || {
            line.set(line!() + 1);
            ev.wait();
        })
    };
    g.set_name("tracked");
    let sleeper = gevent::spawn(|| gevent::sleep(Duration::from_secs(60)));
    sleeper.set_name("sleeper");
    gevent::sleep(Duration::ZERO);
    let info = format_run_info();
    set_track_waits(false);
    let want = format!("util_run_info.rs:{}", line.get());
    let l = line_of(&info, "tracked");
    assert!(
        l.contains(": waiting at ") && l.ends_with(&want),
        "want {want:?} in:\n{info}"
    );
    assert!(
        line_of(&info, "sleeper").contains(": waiting at ") && info.contains("util_run_info.rs:"),
        "{info}"
    );
    ev.set();
    g.join();
    sleeper.kill();
    let info = format_run_info();
    assert!(line_of(&info, "tracked").ends_with(": dead"), "{info}");
}
