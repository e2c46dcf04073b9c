//! `Child::communicate`, `Command::run` / `check_output` (and their text forms), `TimeoutExpired`
//! and `CalledProcessError`.
//!
//! Upstream: gevent `src/gevent/tests/test__subprocess.py` (`TestPopen.test_communicate`,
//! `test_communicate_undecodable`, `test_check_output_keyword_error`,
//! `test_exit_stops_communicating_greenlets_before_closing`, `test_default_mode_no_output_is_always_str`),
//! and CPython's `Lib/test/test_subprocess.py` that gevent runs against its module
//! (`test_check_output_timeout`, `test_communicate_timeout`, `test_communicate_pipe_buf`,
//! `test_run_kills_on_timeout`'s premise: `run` kills the child at the timeout).

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use gevent::subprocess::{Command, Stdio, SubprocessError};

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", script]);
    c
}

/// test__subprocess.py `test_communicate`: input in, stdout and stderr out.
#[test]
fn communicate_feeds_stdin_and_collects_both_pipes() {
    let mut child = sh("printf pineapple >&2; cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.communicate(Some(b"banana"), None).unwrap();
    assert_eq!(out.stdout, b"banana");
    assert_eq!(out.stderr, b"pineapple");
    assert!(out.status.success());
    // `test_default_mode_no_output_is_always_str`'s premise: nothing piped, nothing collected.
    let mut quiet = Command::new("true").spawn().unwrap();
    let out = quiet.communicate(None, None).unwrap();
    assert!(out.stdout.is_empty() && out.stderr.is_empty() && out.status.success());
    // Input for a child whose stdin is not piped: a clear error.
    let mut c = Command::new("true").stdout(Stdio::piped()).spawn().unwrap();
    match c.communicate(Some(b"x"), None) {
        Err(SubprocessError::Io(e)) => assert_eq!(e.kind(), ErrorKind::InvalidInput),
        other => panic!("{other:?}"),
    }
    c.wait().unwrap();
}

/// CPython `test_communicate_pipe_buf`: several pipe buffers' worth each way, the child writing
/// both outputs while we still write its input: no deadlock. Other greenlets run meanwhile.
#[test]
fn communicate_big_io_both_ways_without_deadlock() {
    const N: usize = 4 << 20;
    let ticks = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let t2 = ticks.clone();
    let ticker = gevent::spawn(move || {
        for _ in 0..1000 {
            t2.set(t2.get() + 1);
            gevent::sleep(Duration::from_millis(1));
        }
    });
    let input = vec![b'z'; N];
    // stderr gets a copy of everything too (tee to the stderr fd).
    let out = sh("tee /dev/stderr")
        .run(Some(&input), Some(Duration::from_secs(60)))
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), N);
    assert_eq!(out.stderr.len(), N);
    assert!(out.stdout.iter().all(|&b| b == b'z'));
    assert!(ticks.get() > 0, "the hub ran other greenlets meanwhile");
    ticker.kill();
}

/// test__subprocess.py `test_check_output_keyword_error`: a non-zero exit is a
/// `CalledProcessError` with the status (and whatever was captured).
#[test]
fn check_output_fails_with_called_process_error() {
    match sh("echo partial; exit 44").check_output(None, None) {
        Err(SubprocessError::Failed(e)) => {
            assert_eq!(e.status.code(), Some(44));
            assert_eq!(e.stdout, b"partial\n");
            assert!(e.command.contains("exit 44"), "{}", e.command);
            let msg = SubprocessError::Failed(e).to_string();
            assert!(msg.contains("non-zero exit status"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        Command::new("echo")
            .arg("ok")
            .check_output(None, None)
            .unwrap(),
        b"ok\n"
    );
    // `?` into io::Result.
    fn as_io() -> std::io::Result<Vec<u8>> {
        Ok(Command::new("false").check_output(None, None)?)
    }
    assert_eq!(as_io().unwrap_err().kind(), ErrorKind::Other);
}

/// CPython `test_check_output_timeout`: the child is killed at the timeout and the error holds
/// what it wrote before.
#[test]
fn check_output_timeout_kills_the_child_and_keeps_partial_output() {
    let t = Instant::now();
    let r = sh("echo started; exec sleep 30").check_output(None, Some(Duration::from_millis(300)));
    let elapsed = t.elapsed();
    match r {
        Err(SubprocessError::Timeout(e)) => {
            assert_eq!(e.stdout, b"started\n");
            assert_eq!(e.timeout, Duration::from_millis(300));
            assert!(e.command.contains("sleep 30"));
        }
        other => panic!("{other:?}"),
    }
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}: not killed");
    let e: std::io::Error = sh("exec sleep 30")
        .run(None, Some(Duration::from_millis(50)))
        .unwrap_err()
        .into();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
}

/// CPython `test_communicate_timeout`: `communicate`'s timeout does not kill the child; the output
/// so far comes with the error and a second call reads on to the end.
#[test]
fn communicate_timeout_leaves_the_child_and_can_resume() {
    let mut child = sh("echo one; read _; echo two")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep stdin open (so the child waits in `read`) by taking it out of the child.
    let stdin = child.stdin.take().unwrap();
    match child.communicate(None, Some(Duration::from_millis(200))) {
        Err(SubprocessError::Timeout(e)) => assert_eq!(e.stdout, b"one\n"),
        other => panic!("{other:?}"),
    }
    assert!(child.try_wait().unwrap().is_none(), "not killed");
    assert!(child.stdout.is_some(), "stdout handed back");
    drop(stdin); // the child's `read` gets EOF and it goes on
    let out = child
        .communicate(None, Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(out.stdout, b"two\n");
    assert!(out.status.success());
}

/// The pipe behind `fd`: its inode, if `fd` is open.
fn inode(fd: std::os::fd::RawFd) -> Option<u64> {
    // SAFETY: all-zero bytes are a valid `stat` (plain integers).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is valid for writes for the call; a closed `fd` is reported as EBADF.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st.st_ino)
}

/// test__subprocess.py `test_exit_stops_communicating_greenlets_before_closing`: a greenlet
/// killed inside `communicate` leaves no helper parked in the pipes: both pipes are closed (no
/// helper holds them) though the child still runs.
#[test]
fn killing_a_communicating_greenlet_stops_its_helpers() {
    use std::os::fd::AsRawFd;
    let mut child = sh("exec sleep 30")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out_fd = child.stdout.as_ref().unwrap().as_raw_fd();
    let err_fd = child.stderr.as_ref().unwrap().as_raw_fd();
    let (out_ino, err_ino) = (inode(out_fd).unwrap(), inode(err_fd).unwrap());
    let pid = child.id();
    let g = gevent::spawn(move || {
        let _ = child.communicate(None, None);
        child
    });
    gevent::sleep(Duration::from_millis(50));
    assert!(!g.ready());
    g.kill();
    assert!(g.ready());
    // Let the helpers' kills land (they were asked to die as `communicate` unwound).
    gevent::sleep(Duration::from_millis(20));
    assert_ne!(inode(out_fd), Some(out_ino), "a helper still holds stdout");
    assert_ne!(inode(err_fd), Some(err_ino), "a helper still holds stderr");
    // SAFETY: kill(2) takes no memory; `pid` is our child (its `Child` was dropped unreaped).
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    let mut status = 0;
    // SAFETY: `status` is valid for writes; `pid` is our child.
    let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
    assert_eq!(r, pid as libc::pid_t);
}

/// test__subprocess.py `test_communicate_undecodable`: text mode on bytes that are not UTF-8 is a
/// clear error that keeps the bytes; valid text comes back as `String`s.
#[test]
fn text_mode() {
    let out = sh("cat; printf 'é\\n' >&2")
        .run_text(Some("banané"), None)
        .unwrap();
    assert_eq!(out.stdout, "banané");
    assert_eq!(out.stderr, "é\n");
    assert_eq!(
        Command::new("echo")
            .arg("hi")
            .check_output_text(None, None)
            .unwrap(),
        "hi\n"
    );
    match sh("printf '\\377'").check_output_text(None, None) {
        Err(SubprocessError::NotUtf8 { stream, error }) => {
            assert_eq!(stream, "stdout");
            assert_eq!(error.as_bytes(), b"\xff");
            let msg = SubprocessError::NotUtf8 { stream, error }.to_string();
            assert!(msg.contains("not UTF-8"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}
