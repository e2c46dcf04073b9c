//! `gevent::logging::LogWriter`: records reach the sink whole and in order; a stuck sink never
//! blocks the caller (records beyond the buffer are dropped whole and counted); a sink whose reader
//! is gone (`EPIPE`) ends quietly; stdout's file flags are never touched.

use std::fmt;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use gevent::logging::LogWriter;

/// A sink that collects what it is given; with a gate, each write first waits for it to open.
#[derive(Clone)]
struct Collect {
    got: Arc<Mutex<Vec<u8>>>,
    gate: Option<Arc<Mutex<mpsc::Receiver<()>>>>,
}

impl Write for Collect {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(g) = &self.gate {
            // Bounded: the test opens it (or drops the sender) well within this.
            let _ = g.lock().unwrap().recv_timeout(Duration::from_secs(20));
        }
        self.got.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn records_arrive_whole_and_in_order() {
    let sink = Collect {
        got: Arc::default(),
        gate: None,
    };
    let log = LogWriter::new(sink.clone()).unwrap();
    let log2 = log.clone();
    let g = gevent::spawn(move || {
        for i in 0..500 {
            assert!(log2.write_line(format_args!("greenlet line {i}")));
        }
    });
    for i in 0..500 {
        writeln!(&log, "main line {i}").unwrap();
    }
    g.join();
    assert!(log.flush_timeout(Duration::from_secs(10)));
    let got = String::from_utf8(sink.got.lock().unwrap().clone()).unwrap();
    let main: Vec<&str> = got.lines().filter(|l| l.starts_with("main")).collect();
    let green: Vec<&str> = got.lines().filter(|l| l.starts_with("greenlet")).collect();
    assert_eq!(main.len(), 500);
    assert_eq!(green.len(), 500);
    for i in 0..500 {
        assert_eq!(main[i], format!("main line {i}"));
        assert_eq!(green[i], format!("greenlet line {i}"));
    }
    assert_eq!(log.dropped(), 0);
}

#[test]
fn a_stuck_sink_never_blocks_and_drops_whole_records() {
    let (open, gate) = mpsc::channel();
    let sink = Collect {
        got: Arc::default(),
        gate: Some(Arc::new(Mutex::new(gate))),
    };
    let log = LogWriter::with_capacity(sink.clone(), 1000).unwrap();
    // Meanwhile other greenlets keep running: the hub is never blocked.
    let ticks = Arc::new(Mutex::new(0u32));
    let t2 = ticks.clone();
    let ticker = gevent::spawn(move || {
        for _ in 0..5 {
            gevent::sleep(Duration::from_millis(2));
            *t2.lock().unwrap() += 1;
        }
    });
    let t = Instant::now();
    let mut kept = Vec::new();
    for i in 0..10_000 {
        // 50 bytes a line: at most 20 fit in the buffer (plus a batch held by the stuck sink).
        if log.write_line(format_args!("{i:049}")) {
            kept.push(i);
        }
        if i % 1000 == 0 {
            gevent::sleep(Duration::ZERO);
        }
    }
    ticker.join();
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(*ticks.lock().unwrap(), 5);
    assert!(!kept.is_empty() && kept.len() <= 40, "{}", kept.len());
    assert_eq!(log.dropped(), 10_000 - kept.len() as u64);
    // A record larger than the whole buffer is dropped whole too.
    assert!(!log.write_record(&[b'x'; 2000]));
    drop(open); // the sink is unstuck
    assert!(log.flush_timeout(Duration::from_secs(10)));
    let got = String::from_utf8(sink.got.lock().unwrap().clone()).unwrap();
    let want: String = kept.iter().map(|i| format!("{i:049}\n")).collect();
    assert_eq!(got, want);
}

#[test]
fn a_sink_whose_reader_is_gone_ends_quietly() {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds were just made by pipe2 and are owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(r);
    let log = LogWriter::new(std::fs::File::from(w)).unwrap();
    for i in 0..100 {
        log.write_line(format_args!("line {i}"));
    }
    let t = Instant::now();
    while !log.is_broken() && t.elapsed() < Duration::from_secs(10) {
        gevent::sleep(Duration::from_millis(5));
    }
    assert!(log.is_broken());
    assert!(!log.write_line(format_args!("after")));
    assert_eq!(log.dropped(), 101);
    // Never an error for the caller.
    writeln!(&log, "still fine").unwrap();
    assert!(log.flush_timeout(Duration::from_secs(1)));
}

#[test]
fn stdout_writer_leaves_the_file_flags_alone() {
    // SAFETY: F_GETFL takes no memory.
    let before = unsafe { libc::fcntl(std::io::stdout().as_raw_fd(), libc::F_GETFL) };
    let log = LogWriter::stdout().unwrap();
    log.write_line(format_args!("a line from the log writer test"));
    assert!(log.flush_timeout(Duration::from_secs(10)));
    // SAFETY: as above.
    let after = unsafe { libc::fcntl(std::io::stdout().as_raw_fd(), libc::F_GETFL) };
    assert_eq!(before, after);
    assert_eq!(log.dropped(), 0);
}

#[test]
fn a_panicking_display_leaves_no_partial_record() {
    struct Bad;
    impl fmt::Display for Bad {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("half a rec")?;
            panic!("Display failed");
        }
    }
    let sink = Collect {
        got: Arc::default(),
        gate: None,
    };
    let log = LogWriter::new(sink.clone()).unwrap();
    log.write_line(format_args!("before"));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        log.write_line(format_args!("{}", Bad));
    }));
    assert!(r.is_err());
    log.write_line(format_args!("after"));
    assert!(log.flush_timeout(Duration::from_secs(10)));
    assert_eq!(&*sink.got.lock().unwrap(), b"before\nafter\n");
}
