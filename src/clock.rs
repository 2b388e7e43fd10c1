//! The two clocks and the one time format: the wall clock for what is written down (the log,
//! request bodies, traces), a monotonic scheduling clock for due times and backoff, and RFC 3339
//! (rsyslog's receive time in, `2026-11-25T10:15:02.123Z` out). Dates are the `time` crate's,
//! so an impossible one (month 13, February 31, an offset of 99 hours) is refused, not
//! folded into another day.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch, now: the wall clock, for what is written down.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The clock that schedules (due times, backoff): [`now_ms`] at its first reading in this
/// process, then moving with the monotonic clock only. A step of the wall clock (NTP correcting
/// a drifted VM, a resumed snapshot) therefore neither holds keys back nor sends them early;
/// a restart anchors it to the wall clock again, which is what the log's times are in.
pub fn sched_now_ms() -> u64 {
    static ANCHOR: std::sync::OnceLock<(u64, std::time::Instant)> = std::sync::OnceLock::new();
    let (wall, at) = ANCHOR.get_or_init(|| (now_ms(), std::time::Instant::now()));
    wall + at.elapsed().as_millis() as u64
}

/// RFC 3339 in UTC with milliseconds: `2026-11-25T10:15:02.123Z` (what the log, request
/// bodies and dead letters have always carried).
pub fn rfc3339(ms: u64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// Parses an RFC 3339 time (rsyslog's `2026-11-25T10:15:02.123456+01:00`) to milliseconds
/// since the epoch; `None` for anything else, an impossible date or one before 1970.
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let at = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        for ms in [0, 1_764_065_702_123, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339_ms(&rfc3339(ms)), Some(ms), "{}", rfc3339(ms));
        }
        assert_eq!(rfc3339(1_764_065_702_123), "2025-11-25T10:15:02.123Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            parse_rfc3339_ms("2025-11-25T11:15:02.123456+01:00"),
            Some(1_764_065_702_123)
        );
        assert_eq!(
            parse_rfc3339_ms("2025-11-25T10:15:02Z"),
            Some(1_764_065_702_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2025-11-25T11:15:02.1+01:00"),
            Some(1_764_065_702_100)
        );
    }

    #[test]
    fn impossible_times_and_junk_are_refused() {
        for bad in [
            "yesterday",
            "2025-11-25T10:15:02",
            "2025-11-25T10:15:+2Z",
            "2025/11/25T10:15:02Z",
            "2025-11-25T10:15:02.5+0100",
            "",
            "2025-13-45T25:61:61Z",
            "2025-02-31T10:15:02Z",
            "2025-11-25T10:15:02+99:99",
            "2025-11-25T10:15:02Zjunk",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
        assert!(parse_rfc3339_ms("2024-02-29T00:00:00Z").is_some());
    }
}
