//! Waiting on several things at once, and sleeping: `joinall`, `wait`, `iwait`, `killall`, `sleep`,
//! `idle` (gevent's module-level functions).

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::greenlet::{Failure, Greenlet, Waitable};
/// The deadline wait lives with [`Waiter`] in the hub; re-exported for the primitives that import it from here.
pub(crate) use crate::hub::wait_with_deadline;
use crate::hub::{get_hub, LoopExit, Waiter};

/// Suspends the current greenlet for `d`, letting the others run (gevent's `sleep`).
///
/// `Duration::ZERO` yields once to every other greenlet that is ready, then returns.
///
/// # Examples
/// ```
/// use std::time::{Duration, Instant};
/// let t = Instant::now();
/// let sleepers: Vec<_> = (0..10)
///     .map(|_| gevent::spawn(|| gevent::sleep(Duration::from_millis(200))))
///     .collect();
/// gevent::joinall(&sleepers);
/// // The ten sleeps overlapped: one after the other they would take 2 s.
/// assert!(t.elapsed() < Duration::from_secs(1));
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

/// Waits until every greenlet has finished (gevent's `joinall`). For gevent's `raise_error`,
/// `count` and the list of finished greenlets, see [`JoinAll`].
///
/// # Panics
/// With [`LoopExit`]'s message if some can never finish.
pub fn joinall<'a, W: Waitable + ?Sized + 'a>(items: impl IntoIterator<Item = &'a W>) {
    for g in items {
        wait_one(g, None).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// gevent's `joinall` with all its options: a timeout, a count, and `raise_error`.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let a = gevent::spawn(|| gevent::sleep(Duration::from_millis(30)));
/// let b = gevent::spawn(|| -> () { panic!("second") });
/// // raise_error: the first failure, in the order the greenlets finished, ends the wait.
/// let r = gevent::JoinAll::new().raise_error().run([&a, &b]);
/// assert_eq!(r.unwrap_err().message(), "second");
/// // The finished ones, in the order they finished.
/// let done = gevent::JoinAll::new().run([&a, &b]).unwrap();
/// assert_eq!(done.len(), 2);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct JoinAll {
    timeout: Option<Duration>,
    count: Option<usize>,
    raise_error: bool,
}

impl JoinAll {
    /// Wait for all, forever, not raising (gevent's `joinall(greenlets)`).
    pub fn new() -> JoinAll {
        JoinAll::default()
    }

    /// Stop waiting after `timeout` (gevent's `timeout=`).
    pub fn timeout(mut self, timeout: Duration) -> JoinAll {
        self.timeout = Some(timeout);
        self
    }

    /// Stop once `count` have finished (gevent's `count=`).
    pub fn count(mut self, count: usize) -> JoinAll {
        self.count = Some(count);
        self
    }

    /// Return the failure of the first item that finishes failed, as soon as it does (gevent's
    /// `raise_error=True`): a greenlet's panic, an `AsyncResult`'s exception. A kill is not a
    /// failure (as in gevent: `GreenletExit` counts as success).
    pub fn raise_error(mut self) -> JoinAll {
        self.raise_error = true;
        self
    }

    /// Waits; returns the items that finished, in the order they did (gevent returns them too).
    ///
    /// # Errors
    /// With [`JoinAll::raise_error`], the first failure (the items may still be running).
    ///
    /// # Panics
    /// With [`LoopExit`]'s message if some can never finish and there is no timeout.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it and leaves nothing registered.
    pub fn run<'a, W: Waitable + ?Sized + 'a>(
        self,
        items: impl IntoIterator<Item = &'a W>,
    ) -> Result<Vec<&'a W>, Failure> {
        let items: Vec<&'a W> = items.into_iter().collect();
        let want = self.count.unwrap_or(items.len()).min(items.len());
        let mut done = Vec::with_capacity(want);
        if want == 0 {
            return Ok(done);
        }
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let mut seen = vec![false; items.len()];
        loop {
            // The newly finished, in the order they finished (greenlets know it; others, and
            // ties, in the order given).
            let mut ready: Vec<usize> = (0..items.len())
                .filter(|&i| !seen[i] && items[i].is_ready())
                .collect();
            ready.sort_by_key(|&i| (items[i].finish_order().unwrap_or(u64::MAX), i));
            for i in ready {
                seen[i] = true;
                if self.raise_error {
                    if let Some(f) = items[i].failure() {
                        return Err(f);
                    }
                }
                done.push(items[i]);
                if done.len() >= want {
                    return Ok(done);
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(done);
            }
            let w = Waiter::new();
            let pending: Vec<&W> = (0..items.len())
                .filter(|&i| !seen[i])
                .map(|i| items[i])
                .collect();
            for it in &pending {
                it.subscribe(&w);
            }
            let unsubscribe = Unsubscribe(&pending, &w);
            let r = wait_with_deadline(&w, deadline);
            drop(unsubscribe);
            if let Err(e) = r {
                if deadline.is_none() {
                    panic!("{e}");
                }
            }
        }
    }
}

/// Runs the hub until nothing is left to do: no greenlet ready or waiting on a timer, an fd or
/// another thread (gevent's `wait()` with no objects, `hub.join()`). Call it at the end of
/// `main` to let every spawned greenlet finish.
///
/// # Panics
/// When called from a greenlet other than the thread's main greenlet (only the main greenlet is
/// told that the loop has emptied; anywhere else this would wait forever).
///
/// # Examples
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// let n = Rc::new(Cell::new(0));
/// for _ in 0..3 {
///     let n = n.clone();
///     gevent::spawn(move || {
///         gevent::sleep(std::time::Duration::from_millis(5));
///         n.set(n.get() + 1);
///     });
/// }
/// gevent::wait_all();
/// assert_eq!(n.get(), 3);
/// ```
///
/// # Cancel safety
/// Nothing can kill the main greenlet but a [`Timeout`](crate::Timeout), which unwinds out of
/// it.
pub fn wait_all() {
    assert!(
        greenlet::getcurrent().is_main(),
        "gevent::wait_all() waits for the loop to empty, which only the main greenlet is told"
    );
    let w = Waiter::new();
    // Nothing wakes it: it returns with LoopExit when the loop has nothing left.
    let _ = w.wait();
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
/// indices of the ready ones, in order (gevent's `wait`). gevent's `wait()` with no objects
/// (run the loop until nothing is left) is [`wait_all`].
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
///
/// # Cancel safety
/// A kill or Timeout landing here unwinds out of it; the kills already asked for still happen.
pub fn killall<T: 'static>(greenlets: &[Greenlet<T>]) {
    killall_nowait(greenlets);
    for g in greenlets {
        g.join();
    }
}

/// Kills every greenlet, waiting at most `timeout` for them to die (gevent's
/// `killall(timeout=)`); returns whether all are dead. The kills stand either way.
///
/// # Cancel safety
/// As [`killall`].
pub fn killall_timeout<T: 'static>(greenlets: &[Greenlet<T>], timeout: Duration) -> bool {
    killall_nowait(greenlets);
    let deadline = Instant::now() + timeout;
    greenlets.iter().all(|g| {
        let left = deadline.saturating_duration_since(Instant::now());
        g.ready() || (!left.is_zero() && g.join_timeout(left))
    })
}

/// Asks every greenlet to die and returns at once (gevent's `killall(block=False)`): ones not
/// started yet are dead on return; running ones die on the hub's next turn.
pub fn killall_nowait<T: 'static>(greenlets: &[Greenlet<T>]) {
    for g in greenlets {
        g.kill_nowait();
    }
}
