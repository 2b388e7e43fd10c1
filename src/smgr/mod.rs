//! System Manager's client: the one way the module reaches SMGR, shared by delivery, the HA
//! watch, the element list's refresher and `omcmsync check`. A resync request goes out by the
//! configured [`Transport`] (HTTP, or the site's program: `smgr.transport`); GETs (the element
//! list, the HA role, check's probes) always by the [`Api`] over HTTP. What an answer means
//! for the queue: [`Outcome`].

mod client;
mod command;
mod http;
mod outcome;

pub use client::{SharedClient, SmgrClient, LOAD_RETRY};
pub use command::RETRY_EXIT;
pub use http::{Api, GetError};
pub use outcome::{retry_after, Outcome, ANSWER_BYTES};

/// One request as a transport hands it on.
pub struct Delivery<'a> {
    pub element: &'a str,
    /// The body's JSON (`deliver::ResyncBody`).
    pub body: &'a str,
    pub idempotency_key: &'a str,
    /// The element's tries in a row, from 1.
    pub attempt: u32,
}

/// How a resync request reaches System Manager (`smgr.transport`): never panics, never
/// blocks longer than `smgr.timeout.ms`.
pub trait Transport: Send + Sync {
    fn deliver(&self, request: &Delivery) -> Outcome;
    /// Where requests go, for log lines: `POST {url}` or `smgr.command {program}`.
    fn target(&self, element: &str) -> String;
    /// What a permanent refusal with `status` was, for log lines.
    fn refusal(&self, status: u16) -> String;
}

/// An element name as one path segment: every byte but A-Z a-z 0-9 - . _ ~ percent-encoded,
/// so no name can add a segment, a query or a fragment (`..` itself is refused by
/// [`crate::elements::check_name`]).
pub fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
