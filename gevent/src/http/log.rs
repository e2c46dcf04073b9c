//! The `Date` header (formatted once per second) and [`AccessLog`], a writer of log lines that never
//! blocks the hub.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::http::{HeaderValue, StatusCode};

thread_local! {
    /// The second and its `date: ...\r\n` line.
    static DATE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

/// Appends `date: <IMF-fixdate>\r\n`.
pub(crate) fn append_date_header(w: &mut Vec<u8>) {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != secs {
            d.1.clear();
            d.1.extend_from_slice(b"date: ");
            d.1.extend_from_slice(httpdate::fmt_http_date(now).as_bytes());
            d.1.extend_from_slice(b"\r\n");
            d.0 = secs;
        }
        w.extend_from_slice(&d.1);
    });
}

/// Lines waiting for the writer thread; beyond this they are dropped (and counted).
const QUEUE: usize = 4096;

/// Where an [`http::Server`](super::Server) writes one line per response, in the combined log
/// format (Apache's, as pywsgi's) followed by the seconds taken:
///
/// `127.0.0.1 - - [07/Dec/2026:08:55:24 +0000] "GET / HTTP/1.1" 200 13 "-" "curl/7.88.1" 0.000120`
///
/// The lines go through a bounded queue to an OS thread that writes them, so a slow writer (a
/// full pipe, a slow disk) never blocks the hub: when the queue is full, lines are dropped and
/// counted ([`AccessLog::dropped`]). Cloning gives another handle to the same writer; the thread
/// ends when the last handle drops.
#[derive(Clone, Debug)]
pub struct AccessLog {
    tx: SyncSender<String>,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// Writes lines to `w` from a thread of its own.
    ///
    /// # Panics
    /// If the thread cannot be started.
    pub fn new(mut w: impl Write + Send + 'static) -> AccessLog {
        let (tx, rx) = mpsc::sync_channel::<String>(QUEUE);
        std::thread::Builder::new()
            .name("gevent-access-log".to_owned())
            .spawn(move || {
                while let Ok(line) = rx.recv() {
                    let _ = w.write_all(line.as_bytes());
                    while let Ok(line) = rx.try_recv() {
                        let _ = w.write_all(line.as_bytes());
                    }
                    let _ = w.flush();
                }
            })
            .expect("start the access log thread");
        AccessLog {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Writes lines to stderr (as pywsgi does by default).
    pub fn stderr() -> AccessLog {
        AccessLog::new(std::io::stderr())
    }

    /// Queues one line (a `\n` is added); never blocks.
    pub fn write_line(&self, mut line: String) {
        line.push('\n');
        match self.tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// How many lines were dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The line for one response.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn request(
        &self,
        peer: SocketAddr,
        request_line: &str,
        status: StatusCode,
        bytes: u64,
        referer: Option<&HeaderValue>,
        user_agent: Option<&HeaderValue>,
        took: Duration,
    ) {
        let mut line = String::with_capacity(128);
        let _ = write!(line, "{} - - [", peer.ip());
        clf_time(&mut line, SystemTime::now());
        let _ = write!(line, "] \"{}\" {} ", escape(request_line), status.as_str());
        if bytes == 0 {
            line.push('-');
        } else {
            let _ = write!(line, "{bytes}");
        }
        let quoted = |v: Option<&HeaderValue>| {
            v.map_or_else(
                || "-".to_owned(),
                |v| escape(&String::from_utf8_lossy(v.as_bytes())),
            )
        };
        let _ = write!(
            line,
            " \"{}\" \"{}\" {:.6}",
            quoted(referer),
            quoted(user_agent),
            took.as_secs_f64()
        );
        self.write_line(line);
    }
}

/// `"` and `\` escaped, control characters as `\xNN` (Apache's escaping).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// `10/Oct/2000:13:55:36 +0000` (UTC).
fn clf_time(out: &mut String, t: SystemTime) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86400) as i64);
    let s = secs % 86400;
    let _ = write!(
        out,
        "{d:02}/{}/{y:04}:{:02}:{:02}:{:02} +0000",
        MONTHS[(m - 1) as usize],
        s / 3600,
        s / 60 % 60,
        s % 60
    );
}

/// The proleptic Gregorian date of a day number counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11016), (2000, 2, 29));
        let mut s = String::new();
        clf_time(&mut s, UNIX_EPOCH + Duration::from_secs(971_186_136));
        assert_eq!(s, "10/Oct/2000:13:55:36 +0000");
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a\"b\\c\n"), "a\\\"b\\\\c\\x0a");
    }
}
