//! The System Manager client: one POST per batch of resync requests for one element, and what
//! its answer means for the queue (docs/smgr-api.md).

use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use super::tls::{client_config, TlsFiles};

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

/// What the statuses of SMGR's answers mean (`smgr.retrycodes`, `smgr.permanentcodes`): a
/// status in `retry` is retried, else one in `permanent` is refused for good, else 2xx is
/// done and anything else is retried. Ranges are inclusive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusCodes {
    pub retry: Vec<(u16, u16)>,
    pub permanent: Vec<(u16, u16)>,
}

impl Default for StatusCodes {
    fn default() -> Self {
        StatusCodes {
            retry: vec![
                (401, 401),
                (403, 403),
                (408, 408),
                (425, 425),
                (429, 429),
                (500, 599),
            ],
            permanent: vec![(400, 499)],
        }
    }
}

impl StatusCodes {
    fn is_retry(&self, status: u16) -> bool {
        self.retry.iter().any(|(a, b)| (*a..=*b).contains(&status))
    }

    fn is_permanent(&self, status: u16) -> bool {
        !self.is_retry(status)
            && self
                .permanent
                .iter()
                .any(|(a, b)| (*a..=*b).contains(&status))
    }

    /// Parses `401, 403, 500-599`: codes and ranges from 100 to 599, none of them 2xx.
    pub fn parse_list(text: &str) -> Result<Vec<(u16, u16)>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                let (a, b) = t.split_once('-').unwrap_or((t, t));
                let code = |c: &str| {
                    c.trim()
                        .parse::<u16>()
                        .ok()
                        .filter(|c| (100..=599).contains(c))
                };
                match (code(a), code(b)) {
                    (Some(a), Some(b)) if a <= b && (b < 200 || a > 299) => Ok((a, b)),
                    _ => Err(format!(
                        "'{t}' is not a status code or range from 100 to 599 outside 2xx"
                    )),
                }
            })
            .collect()
    }
}

/// At most this much of an answer's body is kept (dead-letter file, logs).
pub const ANSWER_BYTES: usize = 2000;

/// The first `max` bytes of `s` or fewer, cut at a character boundary.
pub fn truncate_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

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

/// Authentication on every request. Its Debug form never shows the secret.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Auth {
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic <user:password>`.
    Basic { user: String, password: String },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => write!(f, "None"),
            Auth::Bearer(_) => write!(f, "Bearer(<redacted>)"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}, <redacted>)"),
        }
    }
}

impl Auth {
    fn header(&self) -> Option<String> {
        match self {
            Auth::None => None,
            Auth::Bearer(token) => Some(format!("Bearer {token}")),
            Auth::Basic { user, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
        }
    }
}

/// Everything the client needs to reach SMGR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSettings {
    pub base_url: url::Url,
    /// Path template with `{element}`.
    pub resync_path: String,
    pub tls: TlsFiles,
    pub auth: Auth,
    /// Where `auth`'s secret came from (`smgr.tokenfile`, `smgr.passwordfile`): read again on
    /// HUP ([`ClientSettings::reloaded`]).
    pub secret_file: Option<std::path::PathBuf>,
    pub timeout: Duration,
    pub codes: StatusCodes,
}

impl ClientSettings {
    /// The same settings with the secret read again from its file; the TLS files are read
    /// again by [`SmgrClient::new`]. Errors name the file, never its content.
    pub fn reloaded(&self) -> Result<ClientSettings, String> {
        let mut s = self.clone();
        if let Some(path) = &self.secret_file {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            s.auth = match &self.auth {
                Auth::Bearer(_) => Auth::Bearer(text.trim().to_owned()),
                Auth::Basic { user, .. } => Auth::Basic {
                    user: user.clone(),
                    password: text.trim_end_matches(['\n', '\r']).to_owned(),
                },
                Auth::None => Auth::None,
            };
        }
        Ok(s)
    }
}

/// The client every delivery lane and the supervisor use: built once, replaced as a whole when
/// HUP brings new credentials (a request under way keeps the client it started with).
pub struct SharedClient(std::sync::RwLock<std::sync::Arc<SmgrClient>>);

impl SharedClient {
    pub fn new(client: SmgrClient) -> Self {
        SharedClient(std::sync::RwLock::new(std::sync::Arc::new(client)))
    }

    pub fn get(&self) -> std::sync::Arc<SmgrClient> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Rebuilds the client from its files; a file that is missing or broken is logged by name
    /// and the client in force is kept.
    pub fn reload(&self) {
        let current = self.get();
        match current.settings.reloaded().and_then(SmgrClient::new) {
            Ok(client) => {
                *self.0.write().unwrap_or_else(|e| e.into_inner()) = std::sync::Arc::new(client);
                crate::logging::info("HUP: System Manager credentials and TLS files read again");
            }
            Err(e) => crate::logging::error(&format!(
                "HUP: System Manager credentials not reloaded: {e}; the ones in force are kept"
            )),
        }
    }
}

pub struct SmgrClient {
    agent: ureq::Agent,
    settings: ClientSettings,
}

impl SmgrClient {
    pub fn new(settings: ClientSettings) -> Result<Self, String> {
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(settings.timeout.min(Duration::from_secs(10)))
            .timeout(settings.timeout)
            .redirects(0)
            .user_agent(concat!("omcmsync/", env!("CARGO_PKG_VERSION")));
        if settings.base_url.scheme() == "https" {
            builder = builder.tls_config(client_config(&settings.tls)?);
        }
        Ok(SmgrClient {
            agent: builder.build(),
            settings,
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

    /// POSTs one body; never panics, never blocks longer than the timeout.
    pub fn post(&self, element: &str, body: &Value, idempotency_key: &str) -> Outcome {
        let mut request = self
            .agent
            .post(&self.resync_url(element))
            .set("Content-Type", "application/json")
            .set("Idempotency-Key", idempotency_key);
        if let Some(auth) = self.settings.auth.header() {
            request = request.set("Authorization", &auth);
        }
        match request.send_string(&body.to_string()) {
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

    /// GETs a JSON document under the base URL (elements list, HA role).
    pub fn get_json(&self, url: &str) -> Result<Value, String> {
        let mut request = self.agent.get(url);
        if let Some(auth) = self.settings.auth.header() {
            request = request.set("Authorization", &auth);
        }
        let text = request
            .call()
            .map_err(|e| e.to_string())?
            .into_string()
            .map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_headers() {
        assert_eq!(Auth::Bearer("t0k".into()).header().unwrap(), "Bearer t0k");
        let basic = Auth::Basic {
            user: "u".into(),
            password: "p".into(),
        }
        .header()
        .unwrap();
        assert_eq!(basic, "Basic dTpw");
        assert_eq!(Auth::None.header(), None);
        let shown = format!(
            "{:?}",
            Auth::Basic {
                user: "u".into(),
                password: "s3cret".into()
            }
        );
        assert!(
            !shown.contains("s3cret")
                && !format!("{:?}", Auth::Bearer("t0k".into())).contains("t0k")
        );
    }

    #[test]
    fn unreachable_smgr_is_a_retry() {
        let settings = ClientSettings {
            base_url: url::Url::parse("http://127.0.0.1:9").unwrap(),
            resync_path: "/inventory/cm/v1/elements/{element}/resync".into(),
            tls: TlsFiles::default(),
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
            c.post("cm-east", &serde_json::json!({}), "k"),
            Outcome::Retry { .. }
        ));
    }

    #[test]
    fn status_classes_by_default_and_as_configured() {
        let c = StatusCodes::default();
        for s in [401, 403, 408, 429, 500, 503, 599] {
            assert!(!c.is_permanent(s), "{s}");
        }
        for s in [400, 404, 409, 422] {
            assert!(c.is_permanent(s), "{s}");
        }
        let site = StatusCodes {
            retry: StatusCodes::parse_list("409, 500-599").unwrap(),
            permanent: StatusCodes::parse_list("400-499").unwrap(),
        };
        assert!(!site.is_permanent(409) && site.is_permanent(401));
        for bad in ["200", "abc", "600", "500-400", "199-300"] {
            assert!(StatusCodes::parse_list(bad).is_err(), "{bad}");
        }
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
