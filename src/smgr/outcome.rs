//! What an answer from System Manager means for the queue, whatever carried the request.

use std::time::Duration;

use crate::text::truncate_at_char;

/// How a POST ended, for the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: SMGR has the requests.
    Done,
    /// Try again later (connection, TLS, timeout, and the statuses of `smgr.retrycodes`:
    /// 408, 425, 429, 5xx by default, and anything not 2xx nor permanent); `after` from
    /// Retry-After.
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// 401 or 403 among the retry codes (the default): the credentials or their rights need
    /// fixing, not the request. Retried like `Retry`; the element is marked unauthorized.
    Unauthorized {
        status: u16,
        after: Option<Duration>,
    },
    /// SMGR refused these requests for good (`smgr.permanentcodes`: the other 4xx by default).
    /// `body`: the start of its answer, as text, credentials redacted.
    Permanent { status: u16, body: String },
}

/// At most this much of an answer's body is kept (dead-letter file, logs).
pub const ANSWER_BYTES: usize = 2000;

/// The start of an answer's body as text, whatever its bytes and length: reads at most
/// [`ANSWER_BYTES`], invalid UTF-8 replaced, cut at a character boundary.
pub(super) fn answer_text(resp: ureq::Response) -> String {
    use std::io::Read;
    let mut bytes = Vec::new();
    let _ = resp
        .into_reader()
        .take(ANSWER_BYTES as u64)
        .read_to_end(&mut bytes);
    truncate_at_char(&String::from_utf8_lossy(&bytes), ANSWER_BYTES).to_owned()
}

/// Retry-After as seconds or as an HTTP-date (RFC 9110 allows both); a date in the past is 0.
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}
