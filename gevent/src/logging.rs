//! [`LogWriter`]: a log sink that never blocks the hub and never fails the caller (for servers'
//! per-request logging and access logs).
//!
//! `println!` from a greenlet is a blocking `write(2)` on the hub's thread: when stdout is a pipe
//! that nobody reads, the pipe fills and the whole hub (every greenlet) stops; once the reader is
//! gone, `println!` panics on `EPIPE` and takes the greenlet down with it. A `LogWriter` instead
//! copies each record into a bounded buffer and returns; a thread of its own writes the buffer to
//! the sink.
//!
//! # Ground rules
//! - A record (a line from [`LogWriter::write_line`], or one `write`/`write_fmt` call) is buffered
//!   whole or dropped whole: when it does not fit in what is left of the buffer's `capacity` (the
//!   sink is slower than the producers, or stuck), it is dropped and counted
//!   ([`LogWriter::dropped`]).
//!   Nothing ever waits for the sink, so the hub never stalls on it; the only lock is held for
//!   the copy (and the formatting) of one record.
//! - Sink errors never reach the callers. `EPIPE` (the reader is gone) and `EBADF` end the writer
//!   for good: what is buffered and everything after is dropped and counted. Other errors drop
//!   the batch being written (counted) and the writer goes on. A sink in non-blocking mode (someone
//!   set `O_NONBLOCK` on a shared stdout) is waited for with `poll(2)` on the writer's thread.
//! - [`LogWriter::stdout`] and [`LogWriter::stderr`] write to a duplicate of fd 1 / 2 (the same open
//!   file, whose flags are never changed), not through `std::io::Stdout`: lines written with
//!   `println!` elsewhere are not ordered with the writer's.
//! - Records reach the sink in the order they were buffered. Memory: at most `capacity` bytes
//!   buffered plus the batch being written (at most `capacity` too), and one thread per writer,
//!   which exits when every handle is dropped and the buffer is written (or the sink is broken).
//! - Before a program exits, [`LogWriter::flush_timeout`] waits (cooperatively) until what is
//!   buffered was written; records still buffered when the process exits are lost. A child made
//!   by `fork(2)` has no writer thread: its copy buffers until full, then drops (it never blocks);
//!   make a new writer there.
//!
//! # Examples
//! ```
//! use gevent::logging::LogWriter;
//! let log = LogWriter::stdout().unwrap();
//! let peer = "127.0.0.1:5000";
//! log.write_line(format_args!("{peer}: hello"));
//! assert!(log.flush_timeout(std::time::Duration::from_secs(5)));
//! assert_eq!(log.dropped(), 0);
//! ```

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The buffer size of [`LogWriter::new`], [`LogWriter::stdout`] and [`LogWriter::stderr`].
pub const DEFAULT_CAPACITY: usize = 256 * 1024;

/// Where a writer's bytes go.
enum Sink {
    /// A file descriptor of its own (waited for with `poll(2)` if it turns out non-blocking).
    Fd(File),
    Other(Box<dyn Write + Send>),
}

impl Sink {
    /// Writes all of `buf`; `Err` ends the batch (see the module docs).
    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let r = match self {
                Sink::Fd(f) => f.write(buf),
                Sink::Other(w) => w.write(buf),
            };
            match r {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => match self {
                    Sink::Fd(f) => wait_writable(f.as_raw_fd()),
                    Sink::Other(_) => std::thread::sleep(Duration::from_millis(10)),
                },
                Err(e) => return Err(e),
            }
        }
        if let Sink::Other(w) = self {
            w.flush()?;
        }
        Ok(())
    }
}

/// Blocks this (the writer's) thread until `fd` is writable, or 100 ms.
fn wait_writable(fd: RawFd) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd, exclusively borrowed for the call.
    unsafe {
        libc::poll(&mut p, 1, 100);
    }
}

/// The buffer between the producers and the writer thread.
struct State {
    buf: Vec<u8>,
    /// Records in `buf`.
    records: u64,
    /// The writer thread holds a batch it has not finished writing.
    writing: bool,
    /// Every handle is gone: write what is left, then end.
    closed: bool,
    /// The sink failed for good (`EPIPE`, `EBADF`): drop everything.
    broken: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when `buf` gets its first bytes, or `closed` is set.
    data: Condvar,
    /// Signalled when the writer finishes a batch.
    written: Condvar,
    dropped: AtomicU64,
    capacity: usize,
}

impl Shared {
    /// The lock, also after a panic elsewhere (the state is consistent between statements).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn drop_records(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// The writer thread's loop.
    fn run(&self, mut sink: Sink) {
        let mut batch: Vec<u8> = Vec::with_capacity(self.capacity.min(DEFAULT_CAPACITY));
        loop {
            let records = {
                let mut st = self.lock();
                while st.buf.is_empty() && !st.closed {
                    st = self.data.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                if st.buf.is_empty() {
                    return; // closed, and everything written
                }
                std::mem::swap(&mut st.buf, &mut batch);
                st.writing = true;
                std::mem::take(&mut st.records)
            };
            let r = sink.write_all(&batch);
            batch.clear();
            let mut st = self.lock();
            st.writing = false;
            if let Err(e) = r {
                self.drop_records(records);
                if e.kind() == io::ErrorKind::BrokenPipe || e.raw_os_error() == Some(libc::EBADF) {
                    st.broken = true;
                    self.drop_records(std::mem::take(&mut st.records));
                    st.buf = Vec::new();
                    drop(st);
                    self.written.notify_all();
                    return;
                }
            }
            drop(st);
            self.written.notify_all();
        }
    }
}

/// The handles' common part: when the last one goes, the writer thread is told to finish.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.data.notify_all();
    }
}

/// A log sink that buffers records and writes them from a thread of its own, so that logging
/// never blocks the hub and never fails; see the [module docs](self).
///
/// `Clone` gives another handle to the same buffer and thread; `Send` and `Sync`, so any thread or
/// hub may log through it. `io::Write` is implemented for `&LogWriter` and `LogWriter`: each
/// `write` and each `write!`/`writeln!` is one record, and never fails.
#[derive(Clone)]
pub struct LogWriter {
    handle: Arc<Handle>,
}

impl fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LogWriter(capacity {}, {} dropped)",
            self.handle.shared.capacity,
            self.dropped()
        )
    }
}

impl LogWriter {
    /// A writer to `sink` with a [`DEFAULT_CAPACITY`] buffer.
    ///
    /// # Errors
    /// If the writer thread cannot be started.
    pub fn new(sink: impl Write + Send + 'static) -> io::Result<LogWriter> {
        LogWriter::with_capacity(sink, DEFAULT_CAPACITY)
    }

    /// A writer to `sink` buffering at most `capacity` bytes (at least 1); records that do not fit
    /// are dropped and counted.
    ///
    /// # Errors
    /// If the writer thread cannot be started.
    pub fn with_capacity(
        sink: impl Write + Send + 'static,
        capacity: usize,
    ) -> io::Result<LogWriter> {
        LogWriter::start(Sink::Other(Box::new(sink)), capacity)
    }

    /// A writer to this process's stdout (a duplicate of fd 1: its flags are left alone).
    ///
    /// # Errors
    /// As `fcntl(F_DUPFD_CLOEXEC)` (`EBADF` if fd 1 is closed); if the thread cannot be started.
    pub fn stdout() -> io::Result<LogWriter> {
        LogWriter::start(Sink::Fd(dup(1)?), DEFAULT_CAPACITY)
    }

    /// A writer to this process's stderr (a duplicate of fd 2).
    ///
    /// # Errors
    /// As [`LogWriter::stdout`].
    pub fn stderr() -> io::Result<LogWriter> {
        LogWriter::start(Sink::Fd(dup(2)?), DEFAULT_CAPACITY)
    }

    fn start(sink: Sink, capacity: usize) -> io::Result<LogWriter> {
        let capacity = capacity.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buf: Vec::with_capacity(capacity.min(DEFAULT_CAPACITY)),
                records: 0,
                writing: false,
                closed: false,
                broken: false,
            }),
            data: Condvar::new(),
            written: Condvar::new(),
            dropped: AtomicU64::new(0),
            capacity,
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("gevent-log".into())
            .spawn(move || s.run(sink))?;
        Ok(LogWriter {
            handle: Arc::new(Handle { shared }),
        })
    }

    /// Buffers one record made by `fill` (which appends to the buffer), or drops it; see the
    /// module docs. Returns whether it was kept.
    fn record(&self, fill: impl FnOnce(&mut Vec<u8>)) -> bool {
        let shared = &self.handle.shared;
        let mut st = shared.lock();
        if st.broken {
            drop(st);
            shared.drop_records(1);
            return false;
        }
        let start = st.buf.len();
        /// Takes a partial record back out if `fill` panics (a `Display` impl that panics).
        struct Undo<'a, 'b>(&'a mut MutexGuard<'b, State>, usize);
        impl Drop for Undo<'_, '_> {
            fn drop(&mut self) {
                let at = self.1;
                self.0.buf.truncate(at);
            }
        }
        let undo = Undo(&mut st, start);
        fill(&mut undo.0.buf);
        std::mem::forget(undo);
        if st.buf.len() > shared.capacity || st.buf.len() == start {
            let kept = st.buf.len() == start; // an empty record: nothing to write
            st.buf.truncate(start);
            drop(st);
            if !kept {
                shared.drop_records(1);
            }
            return kept;
        }
        st.records += 1;
        let first = start == 0;
        drop(st);
        if first {
            shared.data.notify_one();
        }
        true
    }

    /// Buffers `bytes` as one record (written as they are); returns `false` if it was dropped.
    /// Never waits, never fails.
    pub fn write_record(&self, bytes: &[u8]) -> bool {
        self.record(|buf| buf.extend_from_slice(bytes))
    }

    /// Formats `args` and a newline into the buffer as one record (no allocation besides the
    /// buffer's own); returns `false` if it was dropped. Never waits, never fails.
    ///
    /// # Examples
    /// ```
    /// let log = gevent::logging::LogWriter::new(std::io::sink()).unwrap();
    /// assert!(log.write_line(format_args!("{} + {} = {}", 1, 2, 1 + 2)));
    /// ```
    pub fn write_line(&self, args: fmt::Arguments<'_>) -> bool {
        self.record(|buf| {
            let _ = buf.write_fmt(args);
            buf.push(b'\n');
        })
    }

    /// How many records were dropped so far: refused because the buffer was full or the sink was
    /// broken, or lost to a sink error.
    pub fn dropped(&self) -> u64 {
        self.handle.shared.dropped.load(Ordering::Relaxed)
    }

    /// Whether the sink failed for good (`EPIPE`: its reader is gone; `EBADF`): every record is
    /// dropped from then on.
    pub fn is_broken(&self) -> bool {
        self.handle.shared.lock().broken
    }

    /// Waits until the buffer is empty and its last batch handed to the sink (or the sink broke),
    /// at most `timeout`; returns whether it is. Inside a greenlet only the caller
    /// waits (on the hub's thread pool); the hub runs the others meanwhile.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it; the writer goes on.
    pub fn flush_timeout(&self, timeout: Duration) -> bool {
        let shared = self.handle.shared.clone();
        let wait = move || {
            let deadline = Instant::now() + timeout;
            let mut st = shared.lock();
            while (st.writing || !st.buf.is_empty()) && !st.broken {
                let now = Instant::now();
                if now >= deadline {
                    return false;
                }
                st = shared
                    .written
                    .wait_timeout(st, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            true
        };
        match crate::threadpool::default_pool().spawn(wait).join() {
            Ok(done) => done,
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

impl Write for &LogWriter {
    /// Buffers all of `buf` as one record, or drops it; always `Ok(buf.len())`.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_record(buf);
        Ok(buf.len())
    }

    /// Does nothing (never waits); see [`LogWriter::flush_timeout`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// One record for the whole formatted text (so a `writeln!` is never split or half-dropped).
    fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        self.record(|buf| {
            let _ = buf.write_fmt(args);
        });
        Ok(())
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        (&*self).write_fmt(args)
    }
}

/// A close-on-exec duplicate of `fd`, owned.
fn dup(fd: RawFd) -> io::Result<File> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) takes no memory; an fd that is not open is an error.
    let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if d < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `d` was just returned by fcntl, is open and owned by nobody else.
    Ok(unsafe { File::from_raw_fd(d) })
}
