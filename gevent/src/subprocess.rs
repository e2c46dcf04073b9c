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
//! - Python's conveniences: [`Child::communicate`] (input in, both outputs out, all at once, with a
//!   timeout), [`Command::run`] and [`Command::check_output`] (a timeout kills the child:
//!   [`TimeoutExpired`]; a failed exit: [`CalledProcessError`]), and text mode
//!   ([`Command::run_text`], [`Command::check_output_text`]); their error is [`SubprocessError`].
//!
//! # From `gevent.subprocess`
//! | gevent (Python's `subprocess`) | here |
//! |---|---|
//! | `Popen(args, stdin=PIPE, ...)` | [`Command::new`]`(prog).args(..).stdin(`[`Stdio::piped`]`()).spawn()` |
//! | `p.communicate(input, timeout)` | [`Child::communicate`] |
//! | `p.wait(timeout)` / `p.poll()` / `p.kill()` | [`Child::wait_timeout`] / [`Child::try_wait`] / [`Child::kill`] |
//! | `run(args, input=, capture_output=True, timeout=)` | [`Command::run`] |
//! | `check_output(args, input=, timeout=)` | [`Command::check_output`] |
//! | `text=True` | [`Command::run_text`], [`Command::check_output_text`] |
//! | `call(args)` | [`Command::status`] |
//! | `CompletedProcess.check_returncode()` | [`SubprocessError::check`] on an [`Output`] |
//! | `TimeoutExpired`, `CalledProcessError` | [`TimeoutExpired`], [`CalledProcessError`] in [`SubprocessError`] |
//!
//! # Examples
//! Three children at once: the whole run takes about 0.2 s, not 0.6 s.
//! ```
//! use std::time::{Duration, Instant};
//! use gevent::subprocess::Command;
//!
//! let t = Instant::now();
//! let runs: Vec<_> = (0..5)
//!     .map(|_| gevent::spawn(|| Command::new("sleep").arg("0.4").status().unwrap()))
//!     .collect();
//! gevent::joinall(&runs);
//! assert!(runs.iter().all(|g| g.value().unwrap().success()));
//! assert!(t.elapsed() < Duration::from_millis(1200)); // one after the other: 2 s
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
        self.force_stdio(0, cfg.into())
    }

    /// The child's stdout ([`Stdio::piped`] gives a cooperative [`ChildStdout`]).
    pub fn stdout<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.force_stdio(1, cfg.into())
    }

    /// The child's stderr ([`Stdio::piped`] gives a cooperative [`ChildStderr`]).
    pub fn stderr<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.force_stdio(2, cfg.into())
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
        self.spawn_with([Stdio::null, Stdio::piped, Stdio::piped])?
            .wait_with_output()
    }

    /// Spawns with `defaults` for the stdio not set here (restored afterwards, as `output` does).
    fn spawn_with(&mut self, defaults: [fn() -> Stdio; 3]) -> io::Result<Child> {
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
        Child::from_std(child?)
    }

    /// The command as in error messages.
    fn describe(&self) -> String {
        format!("{:?}", self.inner)
    }

    /// Runs the child to completion (Python's `subprocess.run(..., capture_output=True,
    /// input=input, timeout=timeout)`): writes `input` to its stdin (then closes it), collects
    /// stdout and stderr, all three at once ([`Child::communicate`]: a child that fills one pipe
    /// while we write the other never deadlocks), and waits for it. Unless set here, stdin is
    /// piped when `input` is given and [`Stdio::null`] otherwise; stdout and stderr are piped. A
    /// non-zero exit is not an error here (see [`Command::check_output`] or
    /// [`SubprocessError::check`]).
    ///
    /// # Examples
    /// ```
    /// use gevent::subprocess::Command;
    /// let out = Command::new("tr").args(["a-z", "A-Z"]).run(Some(b"shout"), None).unwrap();
    /// assert_eq!(out.stdout, b"SHOUT");
    /// ```
    ///
    /// # Errors
    /// [`SubprocessError::Io`] as [`Command::spawn`] and reading the pipes (the child is then
    /// killed); [`SubprocessError::Timeout`] when `timeout` passes first: the child is killed
    /// (`SIGKILL`) and reaped, and the error holds the output read until then.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it; the child is killed (`SIGKILL`) on the
    /// way out, as Python's `run` does.
    pub fn run(
        &mut self,
        input: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<Output, SubprocessError> {
        let stdin = if input.is_some() {
            Stdio::piped
        } else {
            Stdio::null
        };
        self.run_with([stdin, Stdio::piped, Stdio::piped], input, timeout)
    }

    fn run_with(
        &mut self,
        defaults: [fn() -> Stdio; 3],
        input: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<Output, SubprocessError> {
        let child = self.spawn_with(defaults)?;
        /// Kills the child unless the run finished: an unwind out of `communicate`, or an error
        /// (as Python's `run`: `except: process.kill(); raise`).
        struct KillUnlessDone(Child, bool);
        impl Drop for KillUnlessDone {
            fn drop(&mut self) {
                if !self.1 {
                    let _ = self.0.kill();
                    let _ = self.0.try_wait();
                }
            }
        }
        let mut guard = KillUnlessDone(child, false);
        let r = guard.0.communicate(input, timeout);
        if let Err(SubprocessError::Timeout(_)) = r {
            let _ = guard.0.kill();
            // SIGKILL cannot be caught: the exit follows at once.
            let _ = guard.0.wait();
        }
        // On success the child was reaped by `communicate`.
        guard.1 = r.is_ok();
        r.map_err(|e| e.with_command(self.describe()))
    }

    /// Runs the child and returns its stdout (Python's `subprocess.check_output(...,
    /// input=input, timeout=timeout)`): as [`Command::run`], but stderr is inherited unless set
    /// here (set [`Stdio::piped`] to have it in the error), and an unsuccessful exit is an error.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use gevent::subprocess::{Command, SubprocessError};
    /// let out = Command::new("echo").arg("hi").check_output(None, None).unwrap();
    /// assert_eq!(out, b"hi\n");
    /// match Command::new("false").check_output(None, None) {
    ///     Err(SubprocessError::Failed(e)) => assert_eq!(e.status.code(), Some(1)),
    ///     other => panic!("{other:?}"),
    /// }
    /// let slow = Command::new("sleep").arg("10").check_output(None, Some(Duration::from_millis(50)));
    /// assert!(matches!(slow, Err(SubprocessError::Timeout(_))));
    /// ```
    ///
    /// # Errors
    /// As [`Command::run`], and [`SubprocessError::Failed`] ([`CalledProcessError`], with the
    /// status and the output) when the child did not exit with status 0.
    ///
    /// # Cancel safety
    /// As [`Command::run`].
    pub fn check_output(
        &mut self,
        input: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, SubprocessError> {
        let stdin = if input.is_some() {
            Stdio::piped
        } else {
            Stdio::null
        };
        let out = self.run_with([stdin, Stdio::piped, Stdio::inherit], input, timeout)?;
        Ok(SubprocessError::check(out, self.describe())?.stdout)
    }

    /// [`Command::check_output`] in text mode (Python's `text=True`): `input` as a `&str`,
    /// stdout as a `String`.
    ///
    /// # Errors
    /// As [`Command::check_output`], and [`SubprocessError::NotUtf8`] (with the bytes) when
    /// stdout is not UTF-8.
    ///
    /// # Cancel safety
    /// As [`Command::run`].
    pub fn check_output_text(
        &mut self,
        input: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<String, SubprocessError> {
        let out = self.check_output(input.map(str::as_bytes), timeout)?;
        text("stdout", out)
    }

    /// [`Command::run`] in text mode (Python's `text=True`): `input` as a `&str`, stdout and
    /// stderr as `String`s.
    ///
    /// # Examples
    /// ```
    /// use gevent::subprocess::Command;
    /// let out = Command::new("sh").args(["-c", "cat; echo oops >&2"]).run_text(Some("hé"), None).unwrap();
    /// assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("hé", "oops\n"));
    /// assert!(out.status.success());
    /// ```
    ///
    /// # Errors
    /// As [`Command::run`], and [`SubprocessError::NotUtf8`] when stdout or stderr is not UTF-8.
    ///
    /// # Cancel safety
    /// As [`Command::run`].
    pub fn run_text(
        &mut self,
        input: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<TextOutput, SubprocessError> {
        let out = self.run(input.map(str::as_bytes), timeout)?;
        Ok(TextOutput {
            status: out.status,
            stdout: text("stdout", out.stdout)?,
            stderr: text("stderr", out.stderr)?,
        })
    }

    /// Sets stdio `i` (0 stdin, 1 stdout, 2 stderr) as the caller asked: kept by `output`/`run`.
    fn force_stdio(&mut self, i: usize, cfg: Stdio) -> &mut Command {
        self.set_stdio(i, cfg);
        self.set[i] = true;
        self
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

    /// Writes `input` to the child's stdin and closes it, reads stdout and stderr to the end and
    /// waits for the child, all at once (Python's `Popen.communicate(input, timeout)`): a helper
    /// greenlet per pipe, so a child that fills one pipe while the others wait never deadlocks,
    /// whatever the sizes. Pipes that are not piped are skipped (their output is empty). A broken
    /// stdin (the child exited without reading it all) is not an error, as in Python.
    ///
    /// # Examples
    /// ```
    /// use gevent::subprocess::{Command, Stdio};
    /// let mut child = Command::new("cat")
    ///     .stdin(Stdio::piped())
    ///     .stdout(Stdio::piped())
    ///     .spawn()
    ///     .unwrap();
    /// let big = vec![b'x'; 1 << 20]; // more than a pipe holds, both ways
    /// let out = child.communicate(Some(&big), None).unwrap();
    /// assert_eq!(out.stdout.len(), 1 << 20);
    /// ```
    ///
    /// # Errors
    /// [`SubprocessError::Io`]: `InvalidInput` for `input` without a piped stdin; as reading
    /// the pipes and [`Child::wait`]. [`SubprocessError::Timeout`] when `timeout` passes first,
    /// with the output read so far; the child is NOT killed (as in Python): stdout and stderr are
    /// back in the `Child` (call `communicate` again to read on, or [`Child::kill`] and
    /// [`Child::wait`]), stdin is closed and the part of `input` not yet written is dropped.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of it: the helpers are killed, the pipes are
    /// closed and the child keeps running.
    pub fn communicate(
        &mut self,
        input: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<Output, SubprocessError> {
        use std::cell::RefCell;
        use std::rc::Rc;
        let deadline = timeout.map(|t| Instant::now() + t);
        if input.is_some_and(|i| !i.is_empty()) && self.stdin.is_none() {
            return Err(SubprocessError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "communicate: input given, but the child's stdin is not piped",
            )));
        }
        /// Kills the helpers that are still running if this unwinds or returns early.
        struct Helpers(Vec<crate::Greenlet<io::Result<()>>>);
        impl Drop for Helpers {
            fn drop(&mut self) {
                for g in &self.0 {
                    if !g.ready() {
                        g.kill_nowait();
                    }
                }
            }
        }
        let mut helpers = Helpers(Vec::new());
        if let Some(stdin) = self.stdin.take() {
            let data = input.unwrap_or_default().to_vec();
            helpers.0.push(crate::spawn(move || {
                let r = match (&stdin).write_all(&data) {
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                    r => r,
                };
                drop(stdin); // EOF for the child
                r
            }));
        }
        let out_buf = Rc::new(RefCell::new(Vec::new()));
        let err_buf = Rc::new(RefCell::new(Vec::new()));
        fn reader<P: 'static>(
            pipe: &Rc<P>,
            buf: &Rc<RefCell<Vec<u8>>>,
        ) -> crate::Greenlet<io::Result<()>>
        where
            for<'a> &'a P: Read,
        {
            let (pipe, buf) = (pipe.clone(), buf.clone());
            crate::spawn(move || {
                let mut chunk = vec![0u8; 64 * 1024];
                loop {
                    match (&*pipe).read(&mut chunk) {
                        Ok(0) => return Ok(()),
                        Ok(n) => buf.borrow_mut().extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            })
        }
        let stdout = self.stdout.take().map(Rc::new);
        let stderr = self.stderr.take().map(Rc::new);
        if let Some(p) = &stdout {
            helpers.0.push(reader(p, &out_buf));
        }
        if let Some(p) = &stderr {
            helpers.0.push(reader(p, &err_buf));
        }
        let mut timed_out = false;
        for g in &helpers.0 {
            let done = match deadline {
                None => {
                    g.join();
                    true
                }
                Some(d) => g.join_timeout(d.saturating_duration_since(Instant::now())),
            };
            if !done {
                timed_out = true;
                break;
            }
            match g.take_value() {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(SubprocessError::Io(e)),
                None => {
                    return Err(SubprocessError::Io(io::Error::other(
                        "communicate: a pipe helper failed",
                    )))
                }
            }
        }
        let status = if timed_out {
            None
        } else {
            self.wait_deadline(deadline)?
        };
        let Some(status) = status else {
            // Stop the helpers (each dies at its pipe wait, consuming nothing more), then hand
            // the read pipes back for a later call.
            for g in &helpers.0 {
                g.kill();
            }
            self.stdout = stdout.and_then(|p| Rc::try_unwrap(p).ok());
            self.stderr = stderr.and_then(|p| Rc::try_unwrap(p).ok());
            return Err(SubprocessError::Timeout(TimeoutExpired {
                command: String::new(),
                timeout: timeout.unwrap_or_default(),
                stdout: out_buf.take(),
                stderr: err_buf.take(),
            }));
        };
        Ok(Output {
            status,
            stdout: out_buf.take(),
            stderr: err_buf.take(),
        })
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

/// What [`Command::run_text`] returns: [`Output`] with text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextOutput {
    /// How the child exited.
    pub status: ExitStatus,
    /// Its stdout, decoded as UTF-8.
    pub stdout: String,
    /// Its stderr, decoded as UTF-8.
    pub stderr: String,
}

/// A child outlived its timeout (Python's `subprocess.TimeoutExpired`), with what it wrote
/// until then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutExpired {
    /// The command (`Debug` of the std command); empty from [`Child::communicate`].
    pub command: String,
    /// The timeout that passed.
    pub timeout: Duration,
    /// The stdout read before the timeout.
    pub stdout: Vec<u8>,
    /// The stderr read before the timeout.
    pub stderr: Vec<u8>,
}

/// A child exited unsuccessfully (Python's `subprocess.CalledProcessError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalledProcessError {
    /// The command (`Debug` of the std command).
    pub command: String,
    /// How it exited: `code()` for an exit status, `ExitStatusExt::signal()` for a signal.
    pub status: ExitStatus,
    /// Its stdout (if captured).
    pub stdout: Vec<u8>,
    /// Its stderr (if captured).
    pub stderr: Vec<u8>,
}

/// The error of [`Command::run`], [`Command::check_output`], [`Child::communicate`] and their
/// text forms. Converts into `io::Error` (`TimedOut`, `Other`, `InvalidData`) for `?` in an
/// `io::Result` function.
#[derive(Debug)]
pub enum SubprocessError {
    /// Starting the child, or reading or writing its pipes, failed.
    Io(io::Error),
    /// The timeout passed first.
    Timeout(TimeoutExpired),
    /// The child exited unsuccessfully (only from the `check_*` calls).
    Failed(CalledProcessError),
    /// Text mode: `stream` (`"stdout"` or `"stderr"`) is not UTF-8; the bytes are in `error`.
    NotUtf8 {
        /// `"stdout"` or `"stderr"`.
        stream: &'static str,
        /// Where the decoding failed, and the bytes (`into_bytes()`).
        error: std::string::FromUtf8Error,
    },
}

impl SubprocessError {
    /// `Ok(output)` if it exited with status 0, else [`SubprocessError::Failed`] with it
    /// (Python's `CompletedProcess.check_returncode`); `command` names it in the error.
    ///
    /// # Errors
    /// [`SubprocessError::Failed`] for an unsuccessful exit.
    pub fn check(output: Output, command: impl Into<String>) -> Result<Output, SubprocessError> {
        if output.status.success() {
            return Ok(output);
        }
        Err(SubprocessError::Failed(CalledProcessError {
            command: command.into(),
            status: output.status,
            stdout: output.stdout,
            stderr: output.stderr,
        }))
    }

    fn with_command(mut self, command: String) -> SubprocessError {
        match &mut self {
            SubprocessError::Timeout(t) => t.command = command,
            SubprocessError::Failed(f) => f.command = command,
            _ => {}
        }
        self
    }
}

fn text(stream: &'static str, bytes: Vec<u8>) -> Result<String, SubprocessError> {
    String::from_utf8(bytes).map_err(|error| SubprocessError::NotUtf8 { stream, error })
}

impl fmt::Display for SubprocessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubprocessError::Io(e) => write!(f, "{e}"),
            SubprocessError::Timeout(t) => write!(
                f,
                "command {} timed out after {:?} ({} bytes of stdout, {} of stderr so far)",
                t.command,
                t.timeout,
                t.stdout.len(),
                t.stderr.len()
            ),
            SubprocessError::Failed(e) => {
                write!(
                    f,
                    "command {} returned non-zero exit status: {}",
                    e.command, e.status
                )
            }
            SubprocessError::NotUtf8 { stream, error } => write!(
                f,
                "the child's {stream} is not UTF-8 text ({error}); use the byte form of the call"
            ),
        }
    }
}

impl std::error::Error for SubprocessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SubprocessError::Io(e) => Some(e),
            SubprocessError::NotUtf8 { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for SubprocessError {
    fn from(e: io::Error) -> SubprocessError {
        SubprocessError::Io(e)
    }
}

impl From<SubprocessError> for io::Error {
    fn from(e: SubprocessError) -> io::Error {
        match e {
            SubprocessError::Io(e) => e,
            SubprocessError::Timeout(_) => io::Error::new(io::ErrorKind::TimedOut, e),
            SubprocessError::Failed(_) => io::Error::other(e),
            SubprocessError::NotUtf8 { .. } => io::Error::new(io::ErrorKind::InvalidData, e),
        }
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
        // Five 0.3 s children waited for together; one after the other they would take 1.5 s.
        let runs: Vec<_> = (0..5)
            .map(|_| gevent_spawn(move || spawn_thread_watched("0.3").wait().unwrap()))
            .collect();
        crate::joinall(&runs);
        assert!(runs.iter().all(|g| g.value().unwrap().success()));
        assert!(
            t.elapsed() < Duration::from_millis(1000),
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
