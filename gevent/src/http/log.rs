//! The `Date` header (formatted once per second) and the access log's lines, written through a
//! [`LogWriter`] (which never blocks the hub).

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::http::{HeaderValue, StatusCode};

use crate::logging::LogWriter;

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

/// Writes one response's line to the access log ([`Config::access_log`](super::Config)), in the
/// combined log format (Apache's, as pywsgi's) followed by the seconds taken:
///
/// `127.0.0.1 - - [07/Dec/2026:08:55:24 +0000] "GET / HTTP/1.1" 200 13 "-" "curl/7.88.1" 0.000120`
///
/// The line is formatted straight into the [`LogWriter`]'s buffer, never waits for its sink.
#[allow(clippy::too_many_arguments)]
pub(crate) fn access_line(
    log: &LogWriter,
    peer: SocketAddr,
    request_line: &str,
    status: StatusCode,
    bytes: u64,
    referer: Option<&HeaderValue>,
    user_agent: Option<&HeaderValue>,
    took: Duration,
) {
    let referer = header_text(referer);
    let user_agent = header_text(user_agent);
    log.write_line(format_args!(
        "{} - - [{}] \"{}\" {} {} \"{}\" \"{}\" {:.6}",
        peer.ip(),
        Clf(SystemTime::now()),
        Escaped(request_line),
        status.as_str(),
        Bytes(bytes),
        Escaped(&referer),
        Escaped(&user_agent),
        took.as_secs_f64()
    ));
}

/// A header's value as text (`-` when absent).
fn header_text(v: Option<&HeaderValue>) -> Cow<'_, str> {
    v.map_or(Cow::Borrowed("-"), |v| {
        String::from_utf8_lossy(v.as_bytes())
    })
}

/// A byte count, `-` for none.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            f.write_str("-")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// `"` and `\` escaped, control characters as `\xNN` (Apache's escaping).
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if c.is_control() => write!(f, "\\x{:02x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// A time as `10/Oct/2000:13:55:36 +0000` (UTC).
struct Clf(SystemTime);

impl fmt::Display for Clf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let secs = self.0.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (y, m, d) = civil_from_days((secs / 86400) as i64);
        let s = secs % 86400;
        write!(
            f,
            "{d:02}/{}/{y:04}:{:02}:{:02}:{:02} +0000",
            MONTHS[(m - 1) as usize],
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    }
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
        let s = Clf(UNIX_EPOCH + Duration::from_secs(971_186_136)).to_string();
        assert_eq!(s, "10/Oct/2000:13:55:36 +0000");
    }

    #[test]
    fn escaping() {
        assert_eq!(Escaped("a\"b\\c\n").to_string(), "a\\\"b\\\\c\\x0a");
        assert_eq!(Bytes(0).to_string(), "-");
        assert_eq!(Bytes(13).to_string(), "13");
    }
}
