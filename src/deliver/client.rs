//! The System Manager client: one POST per batch of resync requests for one element, and what
//! its answer means for the queue (docs/smgr-api.md).

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::command::{self, Delivery};
pub use crate::config::{Auth, ClientSettings, StatusCodes, Transport};
use crate::problems::Problems;
use crate::program::ProcessGroups;
use crate::tls::client_config;

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

pub use crate::text::truncate_at_char;

/// The start of an answer's body as text, whatever its bytes and length: reads at most
/// [`ANSWER_BYTES`], invalid UTF-8 replaced, cut at a character boundary.
fn answer_text(resp: ureq::Response) -> String {
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

/// `text` with credentials blanked: the configured secrets wherever they appear, and whatever
/// follows `Bearer`, `Basic` or `Authorization` (an SMGR that echoes request headers).
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret, "<redacted>");
    }
    let lower = out.to_ascii_lowercase();
    let bytes = out.as_bytes();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for word in ["authorization", "bearer", "basic"] {
        let mut from = 0;
        while let Some(i) = lower[from..].find(word).map(|i| i + from) {
            from = i + word.len();
            if i > 0 && bytes[i - 1].is_ascii_alphanumeric() {
                continue;
            }
            let mut start = from;
            while start < bytes.len() && matches!(bytes[start], b' ' | b'\t' | b':' | b'=' | b'"') {
                start += 1;
            }
            if start == from {
                continue; // a word that only begins like one of ours
            }
            // The value: up to the end of the line or of a JSON string (a header's whole value
            // after `Authorization`, the one token after a scheme).
            let stop: &[u8] = if word == "authorization" {
                b"\"\r\n"
            } else {
                b"\" \t\r\n,;"
            };
            let mut end = start;
            while end < bytes.len() && !stop.contains(&bytes[end]) {
                end += 1;
            }
            if end > start {
                cuts.push((start, end));
            }
        }
    }
    cuts.sort_unstable();
    let mut result = String::with_capacity(out.len());
    let mut at = 0;
    for (start, end) in cuts {
        if start < at {
            at = at.max(end);
            continue;
        }
        result.push_str(&out[at..start]);
        result.push_str("<redacted>");
        at = end;
    }
    result.push_str(&out[at.min(out.len())..]);
    result
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

/// The client the lanes, the HA watcher and the element-list fetch share, replaced as a whole
/// when its files are read again (HUP). None while what the settings name on the host is
/// missing or broken (a certificate, a secret, the delivery program): the action runs
/// degraded, queueing what arrives and posting nothing, and the files are looked for again
/// every [`LOAD_RETRY`] until they load ([`SharedClient::retry_if_missing`]).
pub struct SharedClient {
    configured: ClientSettings,
    /// `smgr.command`'s runs, whichever client started them: killed at stop.
    programs: Arc<ProcessGroups>,
    current: RwLock<Option<Arc<SmgrClient>>>,
    problems: Arc<Problems>,
    last_try: Mutex<Instant>,
}

/// How often a client that could not be built is tried again.
pub const LOAD_RETRY: Duration = Duration::from_secs(1);

impl SharedClient {
    /// Builds the client from `settings` now, or reports why it cannot be yet.
    pub fn new(settings: ClientSettings, problems: Arc<Problems>) -> Self {
        let shared = SharedClient {
            configured: settings,
            programs: Arc::default(),
            current: RwLock::default(),
            problems,
            last_try: Mutex::new(Instant::now()),
        };
        if let Ok(client) = shared.load() {
            *shared.current.write().unwrap_or_else(|e| e.into_inner()) = Some(client);
        }
        shared
    }

    /// The client in force, if one could be built.
    pub fn get(&self) -> Option<Arc<SmgrClient>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the files and builds a client; a failure is reported (once) under the parameter
    /// that names the file, a success clears what was reported.
    fn load(&self) -> Result<Arc<SmgrClient>, String> {
        *self.last_try.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        let loaded = self.configured.load().map_err(|e| (e.param, e.to_string()));
        let built = loaded.and_then(|s| SmgrClient::new(s).map_err(|e| ("smgr.url", e)));
        let built = built.map(|mut client| {
            client.programs = self.programs.clone();
            client
        });
        for param in CLIENT_PARAMS {
            if built.as_ref().err().is_none_or(|(p, _)| *p != param) {
                self.problems.clear(param);
            }
        }
        built.map(Arc::new).map_err(|(param, why)| {
            let meanwhile = if self.get().is_some() {
                "credentials not reloaded: the ones in force are kept (read again at the next HUP)"
            } else {
                "nothing is posted meanwhile: changes are queued and kept, and delivered once it is fixed"
            };
            self.problems.report(param, &format!("{why}; {meanwhile}"));
            why
        })
    }

    /// Rebuilds the client from its files (HUP); a file that is missing or broken is reported
    /// by name and the client in force, if any, is kept.
    pub fn reload(&self) {
        if let Ok(client) = self.load() {
            let had = self
                .current
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .replace(client)
                .is_some();
            if had {
                crate::logging::info("HUP: System Manager credentials and TLS files read again");
            }
        }
    }

    /// Kills every `smgr.command` still running (the module stops).
    pub fn kill_programs(&self) {
        self.programs.kill_all();
    }

    /// Tries again, at most every [`LOAD_RETRY`], while no client could be built: a file
    /// that appears is noticed within seconds, without a HUP.
    pub fn retry_if_missing(&self) {
        let due = self
            .last_try
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            >= LOAD_RETRY;
        if due && self.get().is_none() {
            self.reload();
        }
    }
}

/// The parameters whose files or program the client needs.
const CLIENT_PARAMS: [&str; 7] = [
    "smgr.url",
    "smgr.tls.cacert",
    "smgr.tls.mycert",
    "smgr.tls.myprivkey",
    "smgr.tokenfile",
    "smgr.passwordfile",
    "smgr.command",
];

pub struct SmgrClient {
    agent: ureq::Agent,
    settings: ClientSettings,
    programs: Arc<ProcessGroups>,
}

impl SmgrClient {
    pub fn new(settings: ClientSettings) -> Result<Self, String> {
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(settings.timeout.min(Duration::from_secs(10)))
            .timeout(settings.timeout)
            .redirects(0)
            .user_agent(concat!("omcmsync/", env!("CARGO_PKG_VERSION")));
        if settings.base_url.scheme() == "https" {
            // Built when the configuration was read; settings made by hand build it here.
            let tls = match &settings.tls_config {
                Some(tls) => tls.clone(),
                None => client_config(&settings.tls)?,
            };
            builder = builder.tls_config(tls.0);
        }
        Ok(SmgrClient {
            agent: builder.build(),
            settings,
            programs: Arc::default(),
        })
    }

    /// `{smgr.url}{path}`: the one place a System Manager URL is joined.
    pub fn url(&self, path: &str) -> String {
        let base = self.settings.base_url.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    /// `{smgr.url}{smgr.resyncpath}` for one element, its name one encoded path segment.
    pub fn resync_url(&self, element: &str) -> String {
        self.url(
            &self
                .settings
                .resync_path
                .replace("{element}", &path_segment(element)),
        )
    }

    /// `text` with this client's credentials and any other recognisable ones blanked.
    pub fn redact(&self, text: &str) -> String {
        let basic;
        let secrets: Vec<&str> = match &self.settings.auth {
            Auth::None => Vec::new(),
            Auth::Bearer(token) => vec![token],
            Auth::Basic { password, .. } => {
                basic = self.settings.auth.header().unwrap_or_default();
                vec![password, basic.trim_start_matches("Basic ")]
            }
        };
        redact(text, &secrets)
    }

    /// Delivers one request body by the configured transport (`attempt`: the element's tries
    /// in a row, from 1); never panics, never blocks longer than `smgr.timeout.ms`.
    pub fn deliver(&self, element: &str, body: &str, key: &str, attempt: u32) -> Outcome {
        match &self.settings.transport {
            Transport::Http => self.post(element, body, key),
            Transport::Command(program) => {
                let d = Delivery {
                    element,
                    idempotency_key: key,
                    attempt,
                    smgr_url: self.settings.base_url.as_str(),
                };
                command::deliver(
                    program,
                    body.as_bytes(),
                    &d,
                    self.settings.timeout,
                    &self.programs,
                )
            }
        }
    }

    /// Where requests go, for log lines: `POST {url}` or `smgr.command {program}`.
    pub fn target(&self, element: &str) -> String {
        match &self.settings.transport {
            Transport::Http => format!("POST {}", self.resync_url(element)),
            Transport::Command(program) => format!("smgr.command {}", program.display()),
        }
    }

    /// An outcome in a few words, for `omcmsync status`.
    pub fn describe(&self, outcome: &Outcome) -> String {
        match outcome {
            Outcome::Done => "accepted".into(),
            Outcome::Retry { why, .. } => format!("retry: {why}"),
            Outcome::Unauthorized { status, .. } => format!("HTTP {status}: credentials refused"),
            Outcome::Permanent { status, body } => format!(
                "{}: {}",
                self.refusal(*status),
                truncate_at_char(body.trim(), 200)
            ),
        }
    }

    /// What a permanent refusal with `status` was, for log lines.
    pub fn refusal(&self, status: u16) -> String {
        match &self.settings.transport {
            Transport::Http => format!("System Manager refused a request with HTTP {status}"),
            Transport::Command(_) => format!("smgr.command refused a request (exit {status})"),
        }
    }

    /// `request` with System Manager's credentials, if any: the one place they are sent from.
    fn authorized(&self, request: ureq::Request) -> ureq::Request {
        match self.settings.auth.header() {
            Some(auth) => request.set("Authorization", &auth),
            None => request,
        }
    }

    /// POSTs one body; never panics, never blocks longer than the timeout.
    pub fn post(&self, element: &str, body: &str, idempotency_key: &str) -> Outcome {
        let request = self.authorized(
            self.agent
                .post(&self.resync_url(element))
                .set("Content-Type", "application/json")
                .set("Idempotency-Key", idempotency_key),
        );
        match request.send_string(body) {
            Ok(resp) if (200..300).contains(&resp.status()) => Outcome::Done,
            Ok(resp) => Outcome::Retry {
                why: format!("HTTP {} (redirects are not followed)", resp.status()),
                after: None,
            },
            Err(ureq::Error::Status(status, resp)) => {
                let codes = &self.settings.codes;
                let after = resp.header("Retry-After").and_then(retry_after);
                if codes.is_permanent(status) {
                    Outcome::Permanent {
                        status,
                        body: self.redact(&answer_text(resp)),
                    }
                } else if matches!(status, 401 | 403) {
                    Outcome::Unauthorized { status, after }
                } else {
                    Outcome::Retry {
                        why: format!("HTTP {status}"),
                        after,
                    }
                }
            }
            Err(ureq::Error::Transport(t)) => Outcome::Retry {
                why: t.to_string(),
                after: None,
            },
        }
    }

    /// The status System Manager answers a GET of `url` with, credentials sent: what
    /// `omcmsync check` learns about authentication. Transport errors are `Err`.
    pub fn get_status(&self, url: &str) -> Result<u16, String> {
        match self.authorized(self.agent.get(url)).call() {
            Ok(resp) => Ok(resp.status()),
            Err(ureq::Error::Status(status, _)) => Ok(status),
            Err(ureq::Error::Transport(t)) => Err(self.redact(&t.to_string())),
        }
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// GETs a JSON document under the base URL (elements list, HA role), within `limit` (and
    /// `smgr.timeout.ms`).
    pub fn get_json(&self, url: &str, limit: Duration) -> Result<Value, String> {
        let text = self.get_text(url, limit)?;
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }

    /// GETs a document under the base URL as text, within `limit` (and `smgr.timeout.ms`).
    pub fn get_text(&self, url: &str, limit: Duration) -> Result<String, String> {
        let request = self
            .agent
            .get(url)
            .timeout(limit.min(self.settings.timeout));
        self.authorized(request)
            .call()
            .map_err(|e| e.to_string())?
            .into_string()
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_smgr_is_a_retry() {
        let settings = ClientSettings {
            transport: Transport::Http,
            base_url: url::Url::parse("http://127.0.0.1:9").unwrap(),
            resync_path: "/inventory/cm/v1/elements/{element}/resync".into(),
            tls: crate::tls::TlsFiles::default(),
            tls_config: None,
            auth: Auth::None,
            secret_file: None,
            timeout: Duration::from_secs(2),
            codes: StatusCodes::default(),
        };
        let c = SmgrClient::new(settings).unwrap();
        assert_eq!(
            c.resync_url("cm-east"),
            "http://127.0.0.1:9/inventory/cm/v1/elements/cm-east/resync"
        );
        assert!(matches!(
            c.post("cm-east", "{}", "k"),
            Outcome::Retry { .. }
        ));
    }

    #[test]
    fn a_character_across_the_cut_is_left_whole() {
        let page = "a".repeat(1999) + "état invalide";
        assert_eq!(truncate_at_char(&page, ANSWER_BYTES), "a".repeat(1999));
    }

    #[test]
    fn retry_after_seconds_and_http_dates() {
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        let soon = std::time::SystemTime::now() + Duration::from_secs(30);
        let wait = retry_after(&httpdate::fmt_http_date(soon)).unwrap();
        assert!(
            wait > Duration::from_secs(27) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn credentials_are_redacted_from_answers() {
        let echoed = r#"{"headers":{"Authorization":"Bearer s3cr3t-token","x":"y"}} basic dTpwYXNz; token s3cr3t-token"#;
        let out = redact(echoed, &["s3cr3t-token"]);
        assert!(
            !out.contains("s3cr3t") && !out.contains("dTpwYXNz"),
            "{out}"
        );
        assert!(out.contains(r#""x":"y""#), "{out}");
        assert_eq!(redact("basically fine", &[]), "basically fine");
        assert_eq!(redact("état invalide", &[]), "état invalide");
    }

    #[test]
    fn element_names_are_one_encoded_segment() {
        assert_eq!(path_segment("cm-east_1.a~"), "cm-east_1.a~");
        assert_eq!(path_segment("a/b\\c?d#e%f"), "a%2Fb%5Cc%3Fd%23e%25f");
        assert_eq!(path_segment("café"), "caf%C3%A9");
    }

    proptest::proptest! {
        /// No answer body can panic the cut or leave a broken character (the poison pill: a
        /// multi-byte character across the 2,000th byte).
        #[test]
        fn any_answer_is_cut_safely(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4100),
                                    max in 0usize..4100, status in 0u16..1000) {
            let _ = StatusCodes::default().is_permanent(status);
            let _ = retry_after(&String::from_utf8_lossy(&bytes[..bytes.len().min(64)]));
            let text = String::from_utf8_lossy(&bytes);
            let cut = truncate_at_char(&text, max);
            proptest::prop_assert!(cut.len() <= max && text.starts_with(cut));
            let _ = redact(cut, &["secret"]);
        }
    }
}
