//! System Manager's API over HTTP(S): the agent, the URLs, the credentials; and the HTTP
//! transport, which POSTs a resync request there (docs/smgr-api.md).

use std::sync::Arc;
use std::time::Duration;

use super::outcome::answer_text;
use super::{path_segment, retry_after, Delivery, Outcome, Transport};
use crate::config::{Auth, ClientSettings};
use crate::tls::client_config;

/// `smgr.url` and what reaching it takes. Every request to System Manager is built here.
pub struct Api {
    agent: ureq::Agent,
    settings: ClientSettings,
}

impl Api {
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
        Ok(Api {
            agent: builder.build(),
            settings,
        })
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// `{smgr.url}{path}`: the one place a System Manager URL is joined.
    pub fn url(&self, path: &str) -> String {
        let base = self.settings.base_url.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    /// `{smgr.url}{smgr.resyncpath}` for one element, its name one encoded path segment.
    pub fn resync_url(&self, element: &str) -> String {
        let path = &self.settings.resync_path;
        self.url(&path.replace("{element}", &path_segment(element)))
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
        crate::text::redact(text, &secrets)
    }

    /// A request with System Manager's credentials, if any: the one place they are sent from.
    fn request(&self, method: &str, url: &str) -> ureq::Request {
        let request = self.agent.request(method, url);
        match self.settings.auth.header() {
            Some(auth) => request.set("Authorization", &auth),
            None => request,
        }
    }

    /// POSTs one body to the element's resync URL; never panics, never blocks longer than
    /// the timeout.
    pub fn post(&self, element: &str, body: &str, idempotency_key: &str) -> Outcome {
        let request = self
            .request("POST", &self.resync_url(element))
            .set("Content-Type", "application/json")
            .set("Idempotency-Key", idempotency_key);
        match request.send_string(body) {
            Ok(resp) if (200..300).contains(&resp.status()) => Outcome::Done,
            Ok(resp) => Outcome::Retry {
                why: format!("HTTP {} (redirects are not followed)", resp.status()),
                after: None,
            },
            Err(ureq::Error::Status(status, resp)) => self.refused(status, resp),
            Err(ureq::Error::Transport(t)) => Outcome::Retry {
                why: t.to_string(),
                after: None,
            },
        }
    }

    /// What a status other than 2xx means, by `smgr.permanentcodes` and `smgr.retrycodes`.
    fn refused(&self, status: u16, resp: ureq::Response) -> Outcome {
        let after = resp.header("Retry-After").and_then(retry_after);
        if self.settings.codes.is_permanent(status) {
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

    /// The status System Manager answers a GET of `url` with, credentials sent: what
    /// `omcmsync check` learns about authentication. Transport errors are `Err`.
    pub fn get_status(&self, url: &str) -> Result<u16, String> {
        match self.request("GET", url).call() {
            Ok(resp) => Ok(resp.status()),
            Err(ureq::Error::Status(status, _)) => Ok(status),
            Err(ureq::Error::Transport(t)) => Err(self.redact(&t.to_string())),
        }
    }

    /// GETs a JSON document under the base URL (the HA role), within `limit` (and
    /// `smgr.timeout.ms`).
    pub fn get_json(&self, url: &str, limit: Duration) -> Result<serde_json::Value, String> {
        let text = self.get_text(url, limit)?;
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }

    /// GETs a document under the base URL as text (the element list), within `limit` (and
    /// `smgr.timeout.ms`).
    pub fn get_text(&self, url: &str, limit: Duration) -> Result<String, String> {
        self.request("GET", url)
            .timeout(limit.min(self.settings.timeout))
            .call()
            .map_err(|e| e.to_string())?
            .into_string()
            .map_err(|e| e.to_string())
    }
}

/// `smgr.transport="http"`: POST to `{smgr.url}{smgr.resyncpath}`.
pub struct Http(pub Arc<Api>);

impl Transport for Http {
    fn deliver(&self, d: &Delivery) -> Outcome {
        self.0.post(d.element, d.body, d.idempotency_key)
    }

    fn target(&self, element: &str) -> String {
        format!("POST {}", self.0.resync_url(element))
    }

    fn refusal(&self, status: u16) -> String {
        format!("System Manager refused a request with HTTP {status}")
    }
}
