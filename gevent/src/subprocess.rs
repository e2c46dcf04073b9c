//! Child processes with cooperative pipes and wait (gevent's `gevent.subprocess`).
//!
//! [`Command`] has `std::process::Command`'s shape; [`Command::spawn`] gives a [`Child`] whose
//! `stdin`/`stdout`/`stderr` pipes (when [`Stdio::piped`]) are non-blocking and registered with the
//! hub, so reading and writing them parks only the calling greenlet, and whose [`Child::wait`]
//! parks the greenlet until the child exits while the hub serves the others.
//!
//! # Ground rules
//! - Waiting uses a `pidfd` (`pidfd_open(2)`, Linux 5.3+) registered with the hub: it becomes
//!   readable when the child exits, and the exit status is then collected with std's `try_wait`
//!   (`waitpid(WNOHANG)`), so std's bookkeeping stays right. Where `pidfd_open` is missing, a thread
//!   of the default [`ThreadPool`](crate::threadpool::ThreadPool) blocks in
//!   `waitid(WEXITED | WNOWAIT)` (which does not reap) instead; each waiting greenlet then holds one
//!   pool thread until the child exits.
//! - No signal handler is installed: `SIGCHLD` keeps whatever disposition the program gave it.
//! - The pipes follow the sockets' rules ([`crate::net`]): one greenlet at a time may wait on each,
//!   a second gets `ResourceBusy`; the pipe fds are ours alone (the child holds the other ends), so
//!   making them non-blocking never affects the child.
//! - As with std, dropping a [`Child`] neither kills nor waits for it.
//!
//! # Examples
//! Three children at once: the whole run takes about 0.2 s, not 0.6 s.
//! ```
//! use std::time::{Duration, Instant};
//! use gevent::subprocess::Command;
//!
//! let t = Instant::now();
//! let runs: Vec<_> = (0..3)
//!     .map(|_| gevent::spawn(|| Command::new("sleep").arg("0.2").status().unwrap()))
//!     .collect();
//! gevent::joinall(&runs);
//! assert!(runs.iter().all(|g| g.value().unwrap().success()));
//! assert!(t.elapsed() < Duration::from_millis(550));
//!
//! let out = Command::new("echo").arg("hello").output().unwrap();
//! assert_eq!(out.stdout, b"hello\n");
//! ```

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

pub use std::process::{ExitStatus, Output, Stdio};

use crate::io::{Interest, IoSource};
use crate::net::socket::{impl_fd, Socket};

/// A process builder (`std::process::Command`'s shape) whose children are waited for and talked to
/// cooperatively.
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use gevent::subprocess::{Command, Stdio};
///
/// let mut child = Command::new("tr")
///     .args(["a-z", "A-Z"])
///     .stdin(Stdio::piped())
///     .stdout(Stdio::piped())
///     .spawn()
///     .unwrap();
/// child.stdin.take().unwrap().write_all(b"shout").unwrap(); // dropped: the child sees EOF
/// let mut out = String::new();
/// child.stdout.as_mut().unwrap().read_to_string(&mut out).unwrap();
/// assert_eq!(out, "SHOUT");
/// assert!(child.wait().unwrap().success());
/// ```
pub struct Command {
    inner: std::process::Command,
    /// Which of stdin, stdout, stderr were configured here (the others get [`Command::output`]'s
    /// defaults there).
    set: [bool; 3],
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl From<std::process::Command> for Command {
    /// Wraps a std command. Stdio set on it beforehand counts as not set for [`Command::output`]
    /// (std offers no way to read it back), so `output` pipes stdout and stderr regardless.
    fn from(inner: std::process::Command) -> Command {
        Command {
            inner,
            set: [false; 3],
        }
    }
}

impl Command {
    /// A command running `program` (looked up in `PATH` as std does), inheriting the environment,
    /// working directory and (for `spawn` and `status`) stdio.
    pub fn new<S: AsRef<OsStr>>(program: S) -> Command {
        Command::from(std::process::Command::new(program))
    }

    /// Adds an argument.
    pub fn arg<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env<K: AsRef<OsStr>, V: AsRef<OsStr>>(&mut self, key: K, val: V) -> &mut Command {
        self.inner.env(key, val);
        self
    }

    /// Removes an environment variable for the child.
    pub fn env_remove<K: AsRef<OsStr>>(&mut self, key: K) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Starts the child with an empty environment.
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir<P: AsRef<Path>>(&mut self, dir: P) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// The child's stdin ([`Stdio::piped`] gives a cooperative [`ChildStdin`]).
    pub fn stdin<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stdin(cfg);
        self.set[0] = true;
        self
    }

    /// The child's stdout ([`Stdio::piped`] gives a cooperative [`ChildStdout`]).
    pub fn stdout<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stdout(cfg);
        self.set[1] = true;
        self
    }

    /// The child's stderr ([`Stdio::piped`] gives a cooperative [`ChildStderr`]).
    pub fn stderr<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stderr(cfg);
        self.set[2] = true;
        self
    }

    /// The std command, for settings not mirrored here (`std::os::unix::process::CommandExt`, ...).
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.inner
    }

    /// Starts the child.
    ///
    /// `fork`/`exec` itself happens on the calling thread (as in gevent); it is quick and does not
    /// wait for the child to run.
    ///
    /// # Errors
    /// As `std::process::Command::spawn` (`NotFound` for a missing program, ...); registering the
    /// pipes with the hub.
    pub fn spawn(&mut self) -> io::Result<Child> {
        Child::from_std(self.inner.spawn()?)
    }

    /// Runs the child to completion, collecting its stdout and stderr (read concurrently, so a
    /// child filling one pipe while we read the other never deadlocks). Unless set here, stdin is
    /// [`Stdio::null`] and stdout and stderr are piped, as in std.
    ///
    /// # Errors
    /// As [`Command::spawn`] and [`Child::wait_with_output`].
    ///
    /// # Cancel safety
    /// As [`Child::wait_with_output`]: a kill or Timeout leaves the child running.
    pub fn output(&mut self) -> io::Result<Output> {
        let defaults = [Stdio::null, Stdio::piped, Stdio::piped];
        let forced = self.set;
        for (i, make) in defaults.into_iter().enumerate() {
            if !forced[i] {
                self.set_stdio(i, make());
            }
        }
        let child = self.inner.spawn();
        // Back to what `spawn` does when nothing was set.
        for (i, was_set) in forced.into_iter().enumerate() {
            if !was_set {
                self.set_stdio(i, Stdio::inherit());
            }
        }
        Child::from_std(child?)?.wait_with_output()
    }

    fn set_stdio(&mut self, i: usize, cfg: Stdio) {
        match i {
            0 => self.inner.stdin(cfg),
            1 => self.inner.stdout(cfg),
            _ => self.inner.stderr(cfg),
        };
    }

    /// Runs the child to completion with inherited stdio (unless set here); returns its status.
    ///
    /// # Errors
    /// As [`Command::spawn`] and [`Child::wait`].
    ///
    /// # Cancel safety
    /// As [`Child::wait`]: a kill or Timeout leaves the child running.
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }
}

/// How a [`Child`]'s exit is waited for.
enum ExitWatch {
    /// A pidfd registered with the hub (readable once the child has exited).
    PidFd {
        /// # Invariant
        /// Registers `_fd`; declared first so it is deregistered before `_fd` closes.
        src: IoSource,
        /// Held only to keep the pidfd open while `src` is registered.
        _fd: OwnedFd,
    },
    /// No pidfd: a pool thread blocks in `waitid(WNOWAIT)`.
    Thread,
}

/// Opens a pidfd for `pid` (close-on-exec, as `pidfd_open(2)` always makes it).
fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: pidfd_open(pid_t, unsigned int) takes no pointers; it returns a new fd or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(r).map_err(io::Error::other)?;
    // SAFETY: `fd` was just opened by pidfd_open and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Blocks the calling (pool) thread until `pid` has exited, without reaping it.
fn wait_exited_nowait(pid: u32) -> io::Result<()> {
    loop {
        // SAFETY: siginfo_t is plain old data, for which all-zero bytes are a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is valid for writes for the duration of the call; P_PID takes `pid` as id.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A running (or finished) child process (`std::process::Child`'s shape).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use gevent::subprocess::Command;
///
/// let mut child = Command::new("sleep").arg("10").spawn().unwrap();
/// assert!(child.wait_timeout(Duration::from_millis(20)).unwrap().is_none());
/// child.kill().unwrap();
/// let status = child.wait().unwrap();
/// assert!(!status.success());
/// ```
pub struct Child {
    inner: std::process::Child,
    watch: ExitWatch,
    /// The child's stdin, if piped. Taken and dropped by [`Child::wait`] (the child sees EOF).
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, if piped.
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, if piped.
    pub stderr: Option<ChildStderr>,
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.inner.id())
            .field("pidfd", &matches!(self.watch, ExitWatch::PidFd { .. }))
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}

impl Child {
    /// Takes over a std child: its piped stdio becomes cooperative and its exit is watched by the
    /// hub.
    ///
    /// # Errors
    /// If a pipe cannot be made non-blocking or registered.
    pub fn from_std(mut inner: std::process::Child) -> io::Result<Child> {
        let watch = match pidfd_open(inner.id()) {
            Ok(fd) => ExitWatch::PidFd {
                src: IoSource::new(std::os::fd::AsRawFd::as_raw_fd(&fd))?,
                _fd: fd,
            },
            Err(_) => ExitWatch::Thread,
        };
        Ok(Child {
            stdin: inner.stdin.take().map(ChildStdin::new).transpose()?,
            stdout: inner.stdout.take().map(ChildStdout::new).transpose()?,
            stderr: inner.stderr.take().map(ChildStderr::new).transpose()?,
            inner,
            watch,
        })
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    /// Sends `SIGKILL` (std's `kill`); does nothing if the child was already waited for.
    ///
    /// # Errors
    /// As `kill(2)`.
    pub fn kill(&mut self) -> io::Result<()> {
        self.inner.kill()
    }

    /// The exit status if the child has exited (collecting it), without waiting.
    ///
    /// # Errors
    /// As `waitpid(2)`.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.inner.try_wait()
    }

    /// Closes stdin (if still held here) and parks the calling greenlet until the child exits; the
    /// hub serves the other greenlets meanwhile.
    ///
    /// # Errors
    /// As `waitpid(2)`.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it; the child keeps running and can be
    /// waited for again.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(s) = self.wait_deadline(None)? {
                return Ok(s);
            }
        }
    }

    /// As [`Child::wait`], giving up after `timeout` with `Ok(None)` (the child keeps running).
    ///
    /// # Errors
    /// As [`Child::wait`].
    ///
    /// # Cancel safety
    /// As [`Child::wait`].
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        self.wait_deadline(Some(Instant::now() + timeout))
    }

    fn wait_deadline(&mut self, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
        drop(self.stdin.take());
        match &self.watch {
            ExitWatch::PidFd { src, .. } => loop {
                // Clear first, then look: an exit after the look brings a fresh edge.
                src.clear_ready(Interest::Read);
                if let Some(s) = self.inner.try_wait()? {
                    return Ok(Some(s));
                }
                match src.wait(Interest::Read, deadline) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                        return self.inner.try_wait();
                    }
                    Err(e) => return Err(e),
                }
            },
            ExitWatch::Thread => {
                if let Some(s) = self.inner.try_wait()? {
                    return Ok(Some(s));
                }
                let pid = self.inner.id();
                let pool = crate::threadpool::default_pool();
                let block = move || pool.spawn(move || wait_exited_nowait(pid)).join();
                let r = match deadline {
                    None => block(),
                    Some(d) => match d.checked_duration_since(Instant::now()) {
                        Some(left) if !left.is_zero() => match crate::with_timeout(left, block) {
                            Ok(r) => r,
                            Err(_) => return self.inner.try_wait(),
                        },
                        _ => return self.inner.try_wait(),
                    },
                };
                match r {
                    Ok(r) => r?,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
                self.inner.try_wait()
            }
        }
    }

    /// Closes stdin, reads stdout and stderr to the end concurrently (stderr in a helper greenlet),
    /// then waits for the child (std's `wait_with_output`).
    ///
    /// # Errors
    /// As reading the pipes and [`Child::wait`].
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it; the helper greenlet is killed, the pipes
    /// are closed and the child keeps running (it gets `EPIPE`/`SIGPIPE` if it writes on).
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        /// Kills the helper if the caller unwinds (or returns early) before it finished.
        struct KillOnDrop(crate::Greenlet<io::Result<Vec<u8>>>);
        impl Drop for KillOnDrop {
            fn drop(&mut self) {
                if !self.0.ready() {
                    self.0.kill_nowait();
                }
            }
        }
        let err_reader = self.stderr.take().map(|mut e| {
            KillOnDrop(crate::spawn(move || {
                let mut v = Vec::new();
                e.read_to_end(&mut v).map(|_| v)
            }))
        });
        let mut stdout = Vec::new();
        if let Some(mut o) = self.stdout.take() {
            o.read_to_end(&mut stdout)?;
        }
        let stderr = match err_reader {
            None => Vec::new(),
            Some(g) => {
                g.0.join();
                g.0.take_value()
                    .unwrap_or_else(|| Err(io::Error::other("the stderr reader failed")))?
            }
        };
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

/// The child's stdin: a non-blocking pipe registered with the hub; `Write` parks while it is full.
///
/// Dropping it closes the pipe (the child reads EOF).
///
/// # Errors
/// Writes fail with `BrokenPipe` once the child closed its end; `ResourceBusy` when another
/// greenlet already waits to write.
///
/// # Cancel safety
/// A kill or Timeout landing in a write unwinds out of it; a `write_all` may have sent a prefix.
pub struct ChildStdin {
    sock: Socket<mio::unix::pipe::Sender>,
}

impl ChildStdin {
    fn new(s: std::process::ChildStdin) -> io::Result<ChildStdin> {
        Ok(ChildStdin {
            sock: Socket::from_std(mio::unix::pipe::Sender::from(s))?,
        })
    }
}

impl fmt::Debug for ChildStdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChildStdin({:?})", self.sock)
    }
}

impl Write for &ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write_buf(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.sock.write_bufs(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write_buf(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.sock.write_bufs(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl From<ChildStdin> for Stdio {
    /// The pipe, back in blocking mode, as another child's stdio.
    fn from(s: ChildStdin) -> Stdio {
        Stdio::from(OwnedFd::from(s.sock.into_std()))
    }
}

impl_fd!(ChildStdin);

/// The read side of a child's pipe: [`ChildStdout`] and [`ChildStderr`].
macro_rules! pipe_reader {
    ($t:ident, $std:ty, $name:literal) => {
        #[doc = concat!("The child's ", $name, ": a non-blocking pipe registered with the hub; ")]
        /// `Read` parks while it is empty and returns 0 at EOF (the child closed it or exited).
        ///
        /// # Errors
        /// `ResourceBusy` when another greenlet already waits to read.
        ///
        /// # Cancel safety
        /// A kill or Timeout landing in a read unwinds out of it; nothing was consumed.
        pub struct $t {
            sock: Socket<mio::unix::pipe::Receiver>,
        }

        impl $t {
            fn new(s: $std) -> io::Result<$t> {
                Ok($t {
                    sock: Socket::from_std(mio::unix::pipe::Receiver::from(s))?,
                })
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($t), "({:?})"), self.sock)
            }
        }

        impl Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.sock.read_buf(buf)
            }

            fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
                self.sock.read_bufs(bufs)
            }
        }

        impl Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.sock.read_buf(buf)
            }

            fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
                self.sock.read_bufs(bufs)
            }
        }

        impl From<$t> for Stdio {
            /// The pipe, back in blocking mode, as another child's stdio (a shell pipeline).
            fn from(s: $t) -> Stdio {
                Stdio::from(OwnedFd::from(s.sock.into_std()))
            }
        }

        impl_fd!($t);
    };
}

pipe_reader!(ChildStdout, std::process::ChildStdout, "stdout");
pipe_reader!(ChildStderr, std::process::ChildStderr, "stderr");

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback without a pidfd: a pool thread in `waitid(WNOWAIT)`, std reaps.
    #[test]
    fn thread_fallback_waits_cooperatively() {
        let spawn_thread_watched = |secs: &str| {
            let mut c = Child::from_std(
                std::process::Command::new("sleep")
                    .arg(secs)
                    .spawn()
                    .unwrap(),
            )
            .unwrap();
            c.watch = ExitWatch::Thread;
            c
        };
        let t = Instant::now();
        let runs: Vec<_> = (0..2)
            .map(|_| gevent_spawn(move || spawn_thread_watched("0.2").wait().unwrap()))
            .collect();
        crate::joinall(&runs);
        assert!(runs.iter().all(|g| g.value().unwrap().success()));
        assert!(
            t.elapsed() < Duration::from_millis(390),
            "{:?}",
            t.elapsed()
        );

        let mut c = spawn_thread_watched("5");
        assert!(c.wait_timeout(Duration::from_millis(30)).unwrap().is_none());
        c.kill().unwrap();
        let st = c.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&st),
            Some(libc::SIGKILL)
        );
    }

    fn gevent_spawn<T: 'static>(f: impl FnOnce() -> T + 'static) -> crate::Greenlet<T> {
        crate::spawn(f)
    }
}
