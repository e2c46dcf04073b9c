//! [`Timeout`] and [`with_timeout`]: bound how long a piece of code may wait.
//!
//! A started `Timeout` arms a hub timer; when it fires, the greenlet that started it is resumed with a
//! private panic payload at whatever it waits on, so destructors run on the way out. [`with_timeout`]
//! catches exactly its own payload and turns it into `Err`; anything else keeps unwinding.
//! Nested timeouts are independent: each catches only its own.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::hub::{get_hub, TimerId};

thread_local! {
    static NEXT: Cell<u64> = const { Cell::new(1) };
}

/// A timeout expired: returned by [`with_timeout`], and the payload a [`Timeout`] raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutError {
    id: u64,
    after: Duration,
}

impl TimeoutError {
    /// How long the timeout was.
    pub fn duration(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:?}", self.after)
    }
}

impl std::error::Error for TimeoutError {}

/// A deadline for the greenlet that starts it (gevent's `Timeout`).
///
/// Dropping it cancels it. One that fires inside a call made cooperative by `monkey` (a C caller,
/// which cannot unwind) makes that call fail with `ETIMEDOUT` and is raised at the greenlet's next
/// gevent wait; cancelling or dropping it before then forgets it (see [`with_timeout`]).
///
/// Not `Send` (nor `Sync`): a started timeout is a timer on the hub of the thread that started it,
/// aimed at one of that thread's greenlets; cancelled (or dropped) on another thread it would name
/// another hub's timer. Make it on the thread that uses it:
/// ```compile_fail
/// fn is_send<T: Send>() {}
/// is_send::<gevent::Timeout>();
/// ```
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let r = gevent::with_timeout(Duration::from_millis(20), || {
///     gevent::sleep(Duration::from_secs(10));
/// });
/// assert!(r.is_err());
/// ```
pub struct Timeout {
    err: TimeoutError,
    timer: Cell<Option<TimerId>>,
    /// Makes the payload raised when it fires, if not the [`TimeoutError`] (gevent's
    /// `Timeout(seconds, exception)`).
    payload: Option<Rc<dyn Fn() -> Box<dyn Any + Send>>>,
    /// `!Send`: `timer` belongs to this thread's hub.
    _thread: std::marker::PhantomData<*const ()>,
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Timeout({:?}, pending: {})",
            self.err.after,
            self.pending()
        )
    }
}

impl Timeout {
    /// A timeout of `after`, not yet started.
    pub fn new(after: Duration) -> Timeout {
        let id = NEXT.with(|n| {
            let i = n.get();
            n.set(i + 1);
            i
        });
        Timeout {
            err: TimeoutError { id, after },
            timer: Cell::new(None),
            payload: None,
            _thread: std::marker::PhantomData,
        }
    }

    /// A timeout of `after` that raises a clone of `payload` instead of a [`TimeoutError`]
    /// (gevent's `Timeout(seconds, exception)`), not yet started. The greenlet unwinds with it as
    /// with a panic of it: `catch_unwind` can catch it; uncaught, the greenlet fails with it (see
    /// [`describe_panic`](crate::greenlets::describe_panic), which names its type).
    /// [`with_timeout`] does not catch it (it is not this timeout's [`TimeoutError`]). One that
    /// fires inside a `monkey` hook is kept and raised at the next gevent wait, even if the
    /// timeout is cancelled meanwhile (only a [`TimeoutError`] can be told apart and forgotten).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// #[derive(Clone, Debug, PartialEq)]
    /// struct TooSlow(&'static str);
    /// let g = gevent::spawn(|| {
    ///     let _t = gevent::Timeout::with_payload(Duration::from_millis(10), TooSlow("db"));
    ///     _t.start();
    ///     gevent::sleep(Duration::from_secs(10));
    /// });
    /// g.join();
    /// assert!(g.exception().unwrap().message().ends_with("TooSlow"));
    /// ```
    pub fn with_payload<P: Any + Send + Clone>(after: Duration, payload: P) -> Timeout {
        let mut t = Timeout::new(after);
        crate::greenlet::name_payload_type::<P>(None);
        t.payload = Some(Rc::new(move || Box::new(payload.clone())));
        t
    }

    /// A started timeout.
    pub fn start_new(after: Duration) -> Timeout {
        let t = Timeout::new(after);
        t.start();
        t
    }

    /// Arms it for the current greenlet (re-arms it if already started).
    pub fn start(&self) {
        self.cancel();
        let target = greenlet::getcurrent();
        let err = self.err;
        let payload = self.payload.clone();
        let id = get_hub().add_timer(Instant::now() + self.err.after, move || {
            let p: Box<dyn Any + Send> = match &payload {
                Some(make) => make(),
                None => Box::new(err),
            };
            crate::hub::throw_into(&target, p);
        });
        self.timer.set(Some(id));
    }

    /// Disarms it. Harmless if it already fired or was never started.
    pub fn cancel(&self) {
        if let Some(id) = self.timer.take() {
            if let Some(hub) = crate::hub::try_hub() {
                if !hub.cancel_timer(id) {
                    // It fired; if its payload is still waiting to be raised (deferred), drop it.
                    self.take_deferred();
                }
            }
        }
    }

    /// Takes this timeout's payload if it fired where it could not unwind (inside a `monkey` hook)
    /// and is still kept to be raised: true then.
    fn take_deferred(&self) -> bool {
        let found = Cell::new(false);
        crate::hub::forget_deferred(|p| {
            let mine = self.is_mine(p);
            found.set(found.get() | mine);
            mine
        });
        found.get()
    }

    /// Whether it is armed and has not fired.
    pub fn pending(&self) -> bool {
        match self.timer.get() {
            Some(id) => crate::hub::try_hub().is_some_and(|h| h.timer_pending(id)),
            None => false,
        }
    }

    /// Whether `payload` (from `catch_unwind`) is this timeout firing.
    pub fn is_mine(&self, payload: &(dyn std::any::Any + Send)) -> bool {
        payload
            .downcast_ref::<TimeoutError>()
            .is_some_and(|e| e.id == self.err.id)
    }

    /// The error this timeout raises.
    pub fn error(&self) -> TimeoutError {
        self.err
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Runs `f`, giving up after `after`; `None` if it timed out: the block ends silently (gevent's
/// `with Timeout(seconds, False):`). The same as `with_timeout(after, f).ok()`.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let r = gevent::with_timeout_silent(Duration::from_millis(10), || {
///     gevent::sleep(Duration::from_secs(10));
///     "finished"
/// });
/// assert_eq!(r, None);
/// ```
///
/// # Cancel safety
/// As [`with_timeout`].
pub fn with_timeout_silent<T>(after: Duration, f: impl FnOnce() -> T) -> Option<T> {
    with_timeout(after, f).ok()
}

/// Runs `f`; if it is still running after `after`, unwinds it and returns `timeout_value`
/// (gevent's `with_timeout(seconds, function, timeout_value=...)`).
///
/// # Cancel safety
/// As [`with_timeout`].
pub fn with_timeout_or<T>(after: Duration, timeout_value: T, f: impl FnOnce() -> T) -> T {
    with_timeout(after, f).unwrap_or(timeout_value)
}

/// Runs `f`, giving up after `after` (gevent's `with_timeout`).
///
/// # Errors
/// [`TimeoutError`] if `f` was still running (waiting) at the deadline; `f` was unwound.
///
/// # Timeouts inside C callers (`monkey`)
/// A timeout cannot unwind through C code, so when it fires while `f` is parked inside a call that
/// `monkey::patch_all()` made cooperative (`std::thread::sleep`, a std
/// `TcpStream` read, a C library's `recv`), that call returns instead: sleeps as if completed,
/// everything else with `-1` and `errno` `ETIMEDOUT` (an [`std::io::Error`] of kind
/// [`TimedOut`](std::io::ErrorKind::TimedOut)); a name lookup with `EAI_SYSTEM` and `ETIMEDOUT`.
/// The timeout is kept and raised at the next gevent wait of the greenlet (every later cooperative
/// call then fails the same way at once), and at the latest here: if `f` returns normally after
/// its timeout fired, the result is dropped and this returns `Err(TimeoutError)` all the same. So
/// `with_timeout(d, || std::thread::sleep(long))` and `with_timeout(d, || ureq::get(url).call())`
/// both give `Err`. A kill landing in such a call is reported to the C caller as `ECANCELED` and
/// ends the greenlet at its next wait (or when it returns), never as a timeout. See the `monkey`
/// module docs ("Kills, timeouts and signals in hooked calls").
///
/// # Examples
/// ```
/// # #[cfg(feature = "monkey")] {
/// use std::time::Duration;
/// gevent::monkey::patch_all();
/// let g = gevent::spawn(|| {
///     gevent::with_timeout(Duration::from_millis(20), || {
///         std::thread::sleep(Duration::from_secs(10)); // cut short: C cannot unwind
///     })
/// });
/// assert!(g.get().unwrap().is_err());
/// # }
/// ```
pub fn with_timeout<T>(after: Duration, f: impl FnOnce() -> T) -> Result<T, TimeoutError> {
    let t = Timeout::start_new(after);
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) if !t.take_deferred() => Ok(v),
        Ok(_) => {
            // It fired inside a C caller (see above) and was kept: this is its boundary.
            crate::hub::done_unwinding();
            Err(t.error())
        }
        Err(p) if t.is_mine(&*p) => {
            crate::hub::done_unwinding();
            Err(t.error())
        }
        Err(p) => {
            drop(t);
            resume_unwind(p)
        }
    }
}
