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
    /// Try again later (connection, TLS, timeout, 408, 429, 5xx, 3xx); `after` from Retry-After.
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// SMGR refused these requests for good (other 4xx): dead-letter them.
    Permanent { status: u16, body: String },
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
    pub timeout: Duration,
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

    /// `{smgr.url}{smgr.resyncpath}` for one element.
    pub fn resync_url(&self, element: &str) -> String {
        let base = self.settings.base_url.as_str().trim_end_matches('/');
        format!(
            "{base}{}",
            self.settings.resync_path.replace("{element}", element)
        )
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
                let after = resp
                    .header("Retry-After")
                    .and_then(|v| v.trim().parse().ok())
                    .map(Duration::from_secs);
                if matches!(status, 408 | 429) || status >= 500 {
                    Outcome::Retry {
                        why: format!("HTTP {status}"),
                        after,
                    }
                } else {
                    let mut body = resp.into_string().unwrap_or_default();
                    body.truncate(2000);
                    Outcome::Permanent { status, body }
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

    pub fn base_url(&self) -> &url::Url {
        &self.settings.base_url
    }
}

/// A stable key for one request's content: the same keys at the same sequence numbers give the
/// same Idempotency-Key on every retry, also after a restart (FNV-1a, 64 bits).
pub fn idempotency_key(element: &str, parts: impl IntoIterator<Item = (String, u64)>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(element.as_bytes());
    for (key, seq) in parts {
        eat(b"\0");
        eat(key.as_bytes());
        eat(&seq.to_le_bytes());
    }
    format!("omcmsync-{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_key_depends_on_content_only() {
        let a = idempotency_key(
            "cm",
            [("station/1".to_string(), 5), ("station/2".to_string(), 6)],
        );
        let b = idempotency_key(
            "cm",
            [("station/1".to_string(), 5), ("station/2".to_string(), 6)],
        );
        let c = idempotency_key(
            "cm",
            [("station/1".to_string(), 7), ("station/2".to_string(), 6)],
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("omcmsync-"));
    }

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
            timeout: Duration::from_secs(2),
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
}
