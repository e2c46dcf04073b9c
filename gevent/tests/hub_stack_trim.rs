//! The hub gives back the pages of dense stack arenas once they have been idle for a second, when it
//! sleeps: a burst of greenlets that ended does not stay resident while the thread waits.

use std::time::{Duration, Instant};

#[test]
fn a_sleeping_hub_trims_idle_dense_arenas() {
    // SAFETY: the greenlets below need a few hundred bytes of stack.
    let cfg = unsafe { greenlet::StackConfig::dense(greenlet::StackConfig::DEFAULT_DENSE_SIZE) };
    gevent::sleep(Duration::ZERO); // the hub keeps its own guarded stack
    let old = greenlet::stack::thread_default();
    greenlet::stack::set_thread_default(cfg);
    let gs: Vec<_> = (0..3000)
        .map(|i| gevent::spawn(move || std::hint::black_box(i)))
        .collect();
    gevent::joinall(&gs);
    greenlet::stack::set_thread_default(old);
    let due = greenlet::stack::trim_due().expect("the arena went idle");
    assert!(due > Instant::now(), "not given back during the burst");
    // The hub sleeps through the due time (one timer, 1.5 s): it wakes then and trims.
    gevent::sleep(Duration::from_millis(1500));
    assert_eq!(greenlet::stack::trim_due(), None);
}
