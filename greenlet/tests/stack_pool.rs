//! Stacks come from a per-thread pool: creating and finishing greenlets in a steady state maps
//! nothing, the pool is capped, and dense neighbours never trip each other's canary.

mod stack_util;

use std::hint::black_box;

use greenlet::stack::stats;
use greenlet::{Builder, Greenlet, StackConfig, Value};

#[test]
fn guarded_create_run_finish_reuses_one_stack() {
    // In a child process, so that no other test changes the mapping count meanwhile.
    const NAME: &str = "guarded_create_run_finish_reuses_one_stack";
    if !stack_util::is_child(NAME) {
        let out = stack_util::run_child(NAME);
        assert!(out.status.success(), "{}", stack_util::describe(&out));
        return;
    }
    // Warm up: the first greenlet maps its stack.
    Builder::new().build(|v| v).unwrap().switch(());
    let before = stats();
    let maps_before = stack_util::map_count();
    for i in 0..10_000 {
        let g = Builder::new().build(|v| v).unwrap();
        assert_eq!(g.switch(i).take::<i32>(), i);
        assert!(g.is_dead());
    }
    let after = stats();
    let maps_after = stack_util::map_count();
    assert_eq!(after.maps, before.maps, "steady state must not mmap");
    assert_eq!(after.unmaps, before.unmaps);
    assert!(after.reused - before.reused >= 10_000, "{after:?}");
    assert_eq!(maps_before, maps_after, "mappings in /proc/self/maps");
}

#[test]
fn guarded_pool_serves_many_alive_then_reuses_them() {
    let cfg = StackConfig::guarded(32 * 1024);
    let make = || {
        (0..100)
            .map(|_| {
                let g = Builder::new()
                    .stack(cfg)
                    .build(|_| stack_util::to_parent(()))
                    .unwrap();
                g.switch(());
                g
            })
            .collect::<Vec<Greenlet>>()
    };
    drop(make()); // dropping suspended greenlets unwinds them and pools their stacks
    let before = stats();
    for _ in 0..20 {
        drop(make());
    }
    let after = stats();
    assert_eq!(after.maps, before.maps, "{before:?} -> {after:?}");
    assert_eq!(after.reused - before.reused, 2_000);
}

#[test]
fn guarded_pool_is_capped() {
    let cfg = StackConfig::guarded(16 * 1024);
    let before = stats();
    let many: Vec<Greenlet> = (0..1_000)
        .map(|_| Builder::new().stack(cfg).build(|v| v).unwrap())
        .collect();
    drop(many);
    let after = stats();
    assert!(after.pooled - before.pooled <= 128, "{after:?}");
    assert!(after.unmaps - before.unmaps >= 1_000 - 128, "{after:?}");
}

#[test]
fn dense_create_run_finish_reuses_one_slot() {
    // SAFETY: the closures need a few hundred bytes of stack.
    let cfg = unsafe { StackConfig::dense(StackConfig::DEFAULT_DENSE_SIZE) };
    Builder::new().stack(cfg).build(|v| v).unwrap().switch(());
    let before = stats();
    for i in 0..10_000 {
        let g = Builder::new().stack(cfg).build(|v| v).unwrap();
        assert_eq!(g.switch(i).take::<i32>(), i);
    }
    let after = stats();
    assert_eq!(after.maps, before.maps);
    assert_eq!(after.dense_live, before.dense_live);
    assert!(after.reused - before.reused >= 10_000);
}

/// Uses about `kib` KiB of stack, touching all of it, then returns.
#[inline(never)]
fn use_stack(kib: u32) -> u64 {
    let buf = black_box([u64::from(kib); 128]);
    if kib == 0 {
        return buf[1];
    }
    black_box(use_stack(kib - 1)).wrapping_add(buf[2])
}

#[test]
fn dense_neighbours_within_bounds_never_trip_canaries() {
    // SAFETY: each greenlet below uses at most about 12 KiB of its 32 KiB slot.
    let cfg = unsafe { StackConfig::dense(32 * 1024) };
    let gs: Vec<Greenlet> = (0..500)
        .map(|i| {
            Builder::new()
                .name(format!("n{i}"))
                .stack(cfg)
                .build(move |_| {
                    for round in 0..5 {
                        use_stack(8 + (i + round) % 4);
                        stack_util::to_parent(round);
                    }
                    Value::new(i)
                })
                .unwrap()
        })
        .collect();
    for round in 0..5 {
        for g in &gs {
            assert_eq!(g.switch(()).take::<u32>(), round);
        }
    }
    for (i, g) in gs.iter().enumerate() {
        assert_eq!(g.switch(()).take::<u32>(), i as u32);
    }
}

#[test]
fn threads_have_their_own_pools() {
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                // SAFETY: tiny closures.
                let dense = unsafe { StackConfig::dense(16 * 1024) };
                for i in 0..1_000 {
                    let cfg = if i % 2 == 0 {
                        StackConfig::default()
                    } else {
                        dense
                    };
                    let g = Builder::new().stack(cfg).build(|v| v).unwrap();
                    assert_eq!(g.switch(t * 10_000 + i).take::<i32>(), t * 10_000 + i);
                }
                // A suspended greenlet left for thread exit to clean up.
                let g = Builder::new()
                    .stack(dense)
                    .build(|_| stack_util::to_parent(()))
                    .unwrap();
                g.switch(());
                std::mem::forget(g);
                stats()
            })
        })
        .collect();
    for h in handles {
        let s = h.join().unwrap();
        assert!(s.maps <= 3, "{s:?}");
    }
}

#[test]
fn dense_pages_are_given_back_after_a_second_idle_not_during_the_burst() {
    // In a child process: RSS is process-wide and other tests' greenlets would move it.
    const NAME: &str = "dense_pages_are_given_back_after_a_second_idle_not_during_the_burst";
    if !stack_util::is_child(NAME) {
        let out = stack_util::run_child(NAME);
        assert!(out.status.success(), "{}", stack_util::describe(&out));
        return;
    }
    // SAFETY: the closures need a few hundred bytes of stack.
    let cfg = unsafe { StackConfig::dense(StackConfig::DEFAULT_DENSE_SIZE) };
    let n = 20_000; // more than one trim interval (16k releases), about ten arenas
    let burst = || {
        let gs: Vec<Greenlet> = (0..n)
            .map(|_| {
                let g = Builder::new()
                    .stack(cfg)
                    .build(|_| {
                        // Touch a few pages of the stack, as a real greenlet would.
                        black_box([0u8; 8192]);
                        stack_util::to_parent(())
                    })
                    .unwrap();
                g.switch(());
                g
            })
            .collect();
        for g in &gs {
            g.switch(());
        }
    };
    burst();
    let resident = stack_util::rss_bytes();
    // Nothing was given back while the burst ended: the next burst finds its pages.
    let due = greenlet::stack::trim_due().expect("idle arenas wait to be trimmed");
    assert_eq!(greenlet::stack::trim_idle(), Some(due), "not due yet");
    assert!(stack_util::rss_bytes() + n * 4096 / 2 > resident);
    // Reused within the delay: still nothing given back.
    burst();
    assert!(stack_util::rss_bytes() + n * 4096 / 2 > resident);
    // Idle for a second: given back.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(greenlet::stack::trim_idle(), None);
    assert_eq!(greenlet::stack::trim_due(), None);
    let after = stack_util::rss_bytes();
    assert!(
        after + n * 4096 < resident,
        "RSS {resident} -> {after} after trimming {n} idle dense stacks"
    );
}
