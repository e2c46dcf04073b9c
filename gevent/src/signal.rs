//! Signal handlers that run in a greenlet (gevent's `gevent.signal_handler`) — **not written yet**.
//!
//! Planned shape: `gevent::signal::handler(signum, f)` installs a process-wide handler that writes
//! the signal number to a self-pipe (the only async-signal-safe step); the hub registers the pipe's
//! read end once and spawns `f` in a greenlet for each signal read, so handlers may block, sleep
//! and do I/O like any greenlet. Until then: block the signal and read a `signalfd(2)` with
//! [`gevent::io::wait_read`](crate::io::wait_read), or use `gevent::select` on a self-pipe.
