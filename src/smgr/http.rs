//! System Manager's API over HTTP(S): the agent, the URLs, the credentials; and the HTTP
//! transport, which POSTs a resync request there (docs/smgr-api.md).

use std::sync::Arc;
use std::time::Duration;

use super::outcome::answer_text;
use super::{path_segment, retry_after, Delivery, Outcome, Transport};
use crate::config::{Auth, ClientSettings};
use crate::tls::{client_config, TlsError};

/// `smgr.url` and what reaching it takes. Every request to System Manager is built here.
pub struct Api {
    agent: ureq::Agent,
    settings: ClientSettings,
}

impl Api {
    pub fn new(settings: ClientSettings) -> Result<Self, TlsError> {
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
    /// `omcmsync check` learns about authentication. Only [`GetError::Unreachable`] is an error.
    pub fn get_status(&self, url: &str) -> Result<u16, GetError> {
        match self.request("GET", url).call() {
            Ok(resp) => Ok(resp.status()),
            Err(ureq::Error::Status(status, _)) => Ok(status),
            Err(ureq::Error::Transport(t)) => {
                Err(GetError::Unreachable(self.redact(&t.to_string())))
            }
        }
    }

    /// GETs a document under the base URL as text (the element list, the HA role), within
    /// `limit` (and `smgr.timeout.ms`). Anything but a 2xx answer is an error.
    pub fn get_text(&self, url: &str, limit: Duration) -> Result<String, GetError> {
        let answer = self
            .request("GET", url)
            .timeout(limit.min(self.settings.timeout))
            .call();
        match answer {
            Ok(resp) if (200..300).contains(&resp.status()) => resp
                .into_string()
                .map_err(|e| GetError::Body(self.redact(&e.to_string()))),
            Ok(resp) => Err(GetError::Status(resp.status())),
            Err(ureq::Error::Status(status, _)) => Err(GetError::Status(status)),
            Err(ureq::Error::Transport(t)) => {
                Err(GetError::Unreachable(self.redact(&t.to_string())))
            }
        }
    }
}

/// Why a GET from System Manager gave no document; its text is already redacted of
/// credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GetError {
    /// Not reached: the name, the connection, TLS or the time limit.
    Unreachable(String),
    /// Answered, with a status other than 2xx (redirects are not followed).
    Status(u16),
    /// Answered, but the body could not be read as text (too long, not UTF-8, cut short).
    Body(String),
}

impl GetError {
    /// System Manager refused the credentials.
    pub fn refused_credentials(&self) -> bool {
        matches!(self, GetError::Status(401 | 403))
    }
}

impl std::fmt::Display for GetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GetError::Unreachable(why) => f.write_str(why),
            GetError::Status(status @ (401 | 403)) => {
                write!(f, "HTTP {status}: credentials refused")
            }
            GetError::Status(status) => write!(f, "HTTP {status}"),
            GetError::Body(why) => write!(f, "answer not readable: {why}"),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StatusCodes;
    use std::io::{Read, Write};

    /// An API on a loopback server that answers each connection with the next of `answers`.
    fn api_answering(answers: &[&'static str]) -> (Api, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let answers = answers.to_vec();
        let server = std::thread::spawn(move || {
            for answer in answers {
                let (mut conn, _) = listener.accept().unwrap();
                let mut request = [0u8; 4096];
                let _ = conn.read(&mut request);
                conn.write_all(answer.as_bytes()).unwrap();
            }
        });
        let settings = ClientSettings {
            transport: crate::config::Transport::Http,
            base_url: url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
            resync_path: "/r/{element}".into(),
            tls: crate::tls::TlsFiles::default(),
            tls_config: None,
            auth: Auth::Bearer("s3cr3t".into()),
            secret_file: None,
            timeout: Duration::from_secs(5),
            codes: StatusCodes::default(),
        };
        (Api::new(settings).unwrap(), server)
    }

    #[test]
    fn a_get_is_a_document_only_with_2xx() {
        let (api, server) = api_answering(&[
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]",
            "HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]",
            "HTTP/1.1 401 No\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 500 No\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ]);
        let url = api.url("/e");
        let get = || api.get_text(&url, Duration::from_secs(5));
        assert_eq!(get(), Ok("[]".into()));
        assert_eq!(get(), Err(GetError::Status(302)));
        let refused = get().unwrap_err();
        assert!(refused.refused_credentials(), "{refused:?}");
        assert_eq!(refused.to_string(), "HTTP 401: credentials refused");
        assert_eq!(get().unwrap_err().to_string(), "HTTP 500");
        server.join().unwrap();
    }

    #[test]
    fn an_unreachable_smgr_is_told_apart_from_an_answer() {
        let (api, server) = api_answering(&[]);
        server.join().unwrap(); // The listener is closed: nothing answers on its port.
        let url = api.url("/e");
        assert!(matches!(
            api.get_text(&url, Duration::from_secs(5)),
            Err(GetError::Unreachable(_))
        ));
        assert!(matches!(
            api.get_status(&url),
            Err(GetError::Unreachable(_))
        ));
    }
}
