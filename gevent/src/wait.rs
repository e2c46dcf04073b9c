//! Waiting on several things at once, and sleeping: `joinall`, `wait`, `iwait`, `killall`, `sleep`,
//! `idle` (gevent's module-level functions).

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::greenlet::{Greenlet, Waitable};
use crate::hub::{get_hub, LoopExit, TimerGuard, Waiter};

/// Waits on `w` until woken or `deadline`.
///
/// # Errors
/// [`LoopExit`] when nothing can ever wake it.
#[inline(always)]
pub(crate) fn wait_with_deadline(
    w: &Rc<Waiter>,
    deadline: Option<Instant>,
) -> Result<(), LoopExit> {
    let hub = get_hub();
    let timer = deadline.map(|d| {
        let w2 = w.clone();
        hub.add_timer(d, move || {
            w2.wake();
        })
    });
    // Disarmed however the wait ends, a kill or Timeout unwinding out of it included.
    let _timer = TimerGuard::new(&hub, timer);
    w.wait_in(&hub)
}

/// Suspends the current greenlet for `d`, letting the others run (gevent's `sleep`).
///
/// `Duration::ZERO` yields once to every other greenlet that is ready, then returns.
///
/// # Examples
/// ```
/// use std::time::{Duration, Instant};
/// let t = Instant::now();
/// let a = gevent::spawn(|| gevent::sleep(Duration::from_millis(50)));
/// let b = gevent::spawn(|| gevent::sleep(Duration::from_millis(50)));
/// gevent::joinall([&a, &b]);
/// assert!(t.elapsed() < Duration::from_millis(95)); // the two sleeps overlapped
/// ```
///
/// # Cancel safety
/// A kill or Timeout landing here unwinds out of it; the timer is cancelled.
pub fn sleep(d: Duration) {
    if d.is_zero() {
        crate::hub::yield_now();
        return;
    }
    let w = Waiter::new();
    if let Err(e) = wait_with_deadline(&w, Some(Instant::now() + d)) {
        panic!("{e}");
    }
}

/// Waits until the hub has nothing else ready to run (gevent's `idle`).
pub fn idle() {
    let w = Waiter::new();
    get_hub().add_idle(w.clone());
    if let Err(e) = w.wait() {
        panic!("{e}");
    }
}

/// Waits until every greenlet has finished (gevent's `joinall`).
///
/// # Panics
/// With [`LoopExit`]'s message if some can never finish.
pub fn joinall<'a, W: Waitable + ?Sized + 'a>(items: impl IntoIterator<Item = &'a W>) {
    for g in items {
        wait_one(g, None).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Waits at most `timeout` for every greenlet; returns how many had finished by then.
pub fn joinall_timeout<'a, W: Waitable + ?Sized + 'a>(
    items: impl IntoIterator<Item = &'a W>,
    timeout: Duration,
) -> usize {
    let items: Vec<&W> = items.into_iter().collect();
    wait(items.iter().copied(), Some(timeout), None).len()
}

/// Unsubscribes a waiter from every item when dropped: on every way out of a wait, a kill or
/// Timeout unwinding out of it included, so nothing waited on keeps a trace of it.
struct Unsubscribe<'a, W: Waitable + ?Sized>(&'a [&'a W], &'a Rc<Waiter>);

impl<W: Waitable + ?Sized> Drop for Unsubscribe<'_, W> {
    fn drop(&mut self) {
        for it in self.0 {
            it.unsubscribe(self.1);
        }
    }
}

fn wait_one<W: Waitable + ?Sized>(g: &W, deadline: Option<Instant>) -> Result<(), LoopExit> {
    if g.is_ready() {
        return Ok(());
    }
    let w = Waiter::new();
    g.subscribe(&w);
    let _unsubscribe = Unsubscribe(std::slice::from_ref(&g), &w);
    wait_with_deadline(&w, deadline)
}

/// Waits until `count` of `items` (all, with `None`) are ready or `timeout` passes; returns the
/// indices of the ready ones, in order (gevent's `wait`).
///
/// # Panics
/// With [`LoopExit`]'s message if the count can never be reached and there is no timeout.
pub fn wait<'a, W: Waitable + ?Sized + 'a>(
    items: impl IntoIterator<Item = &'a W>,
    timeout: Option<Duration>,
    count: Option<usize>,
) -> Vec<usize> {
    let items: Vec<&W> = items.into_iter().collect();
    let want = count.unwrap_or(items.len()).min(items.len());
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let ready: Vec<usize> = (0..items.len()).filter(|&i| items[i].is_ready()).collect();
        if ready.len() >= want || deadline.is_some_and(|d| Instant::now() >= d) {
            return ready;
        }
        let w = Waiter::new();
        for it in items.iter().filter(|it| !it.is_ready()) {
            it.subscribe(&w);
        }
        let unsubscribe = Unsubscribe(&items, &w);
        let r = wait_with_deadline(&w, deadline);
        drop(unsubscribe);
        if let Err(e) = r {
            if deadline.is_none() {
                panic!("{e}");
            }
            return (0..items.len()).filter(|&i| items[i].is_ready()).collect();
        }
    }
}

/// Yields the indices of `items` as each becomes ready (gevent's `iwait`), until all are or
/// `timeout` passes.
pub fn iwait<'a, W: Waitable + ?Sized + 'a>(
    items: &'a [&'a W],
    timeout: Option<Duration>,
) -> impl Iterator<Item = usize> + 'a {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut done = vec![false; items.len()];
    std::iter::from_fn(move || loop {
        if let Some(i) = (0..items.len()).find(|&i| !done[i] && items[i].is_ready()) {
            done[i] = true;
            return Some(i);
        }
        if done.iter().all(|d| *d) || deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let w = Waiter::new();
        for (i, it) in items.iter().enumerate() {
            if !done[i] {
                it.subscribe(&w);
            }
        }
        let unsubscribe = Unsubscribe(items, &w);
        let r = wait_with_deadline(&w, deadline);
        drop(unsubscribe);
        if r.is_err() {
            return None;
        }
    })
}

/// Kills every greenlet and waits until all are dead (gevent's `killall`).
pub fn killall<T: 'static>(greenlets: &[Greenlet<T>]) {
    for g in greenlets {
        g.kill_nowait();
    }
    for g in greenlets {
        g.join();
    }
}
