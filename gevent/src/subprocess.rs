//! Child processes with cooperative pipes and wait (gevent's `gevent.subprocess`) — **not written yet**.
//!
//! Planned shape: `gevent::subprocess::Command` wrapping `std::process::Command`, whose child's
//! stdin/stdout/stderr are non-blocking pipes registered with the hub (read and written like
//! [`gevent::net::UnixStream`](crate::net::UnixStream)), and a `wait()` that parks the greenlet on a
//! `pidfd` (Linux 5.3+) instead of blocking in `waitpid`. Until then, run the blocking parts on the
//! thread pool: `gevent::threadpool::default_pool().apply(move || child.wait())` keeps the hub
//! serving the other greenlets while the child runs.
