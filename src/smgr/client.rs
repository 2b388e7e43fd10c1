//! The client in force: its [`Api`] and its [`Transport`], built from the settings and
//! replaced as a whole when its files are read again.

use parking_lot::{Mutex, RwLock};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::command::Command;
use super::http::{Api, Http};
use super::{Delivery, Outcome, Transport};
use crate::config::{ClientSettings, Transport as TransportSetting};
use crate::problems::Problems;
use crate::program::ProcessGroups;
use crate::text::truncate_at_char;
use crate::tls::TlsError;

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
            *shared.current.write() = Some(client);
        }
        shared
    }

    /// The client in force, if one could be built.
    pub fn get(&self) -> Option<Arc<SmgrClient>> {
        self.current.read().clone()
    }

    /// Reads the files and builds a client; a failure is reported (once) under the parameter
    /// that names the file, a success clears what was reported.
    fn load(&self) -> Result<Arc<SmgrClient>, String> {
        *self.last_try.lock() = Instant::now();
        let loaded = self.configured.load().map_err(|e| (e.param, e.to_string()));
        let built = loaded.and_then(|s| {
            SmgrClient::with_programs(s, self.programs.clone())
                .map_err(|e| (e.param.unwrap_or("smgr.url"), e.why))
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
            let had = self.current.write().replace(client).is_some();
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
        let due = self.last_try.lock().elapsed() >= LOAD_RETRY;
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
    api: Arc<Api>,
    transport: Box<dyn Transport>,
}

impl SmgrClient {
    pub fn new(settings: ClientSettings) -> Result<Self, TlsError> {
        SmgrClient::with_programs(settings, Arc::default())
    }

    /// The client for `settings`; `smgr.command`'s runs join `programs` (killed at stop).
    pub fn with_programs(
        settings: ClientSettings,
        programs: Arc<ProcessGroups>,
    ) -> Result<Self, TlsError> {
        let api = Arc::new(Api::new(settings)?);
        let s = api.settings();
        let transport: Box<dyn Transport> = match &s.transport {
            TransportSetting::Http => Box::new(Http(api.clone())),
            TransportSetting::Command(program) => Box::new(Command {
                program: program.clone(),
                smgr_url: s.base_url.to_string(),
                timeout: s.timeout,
                programs,
            }),
        };
        Ok(SmgrClient { api, transport })
    }

    /// System Manager's API, for GETs (the element list, the HA role, check's probes).
    pub fn api(&self) -> &Api {
        &self.api
    }

    pub fn settings(&self) -> &ClientSettings {
        self.api.settings()
    }

    /// Delivers one request by the configured transport.
    pub fn deliver(&self, request: &Delivery) -> Outcome {
        self.transport.deliver(request)
    }

    /// Where requests go, for log lines.
    pub fn target(&self, element: &str) -> String {
        self.transport.target(element)
    }

    /// What a permanent refusal with `status` was, for log lines.
    pub fn refusal(&self, status: u16) -> String {
        self.transport.refusal(status)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Auth, StatusCodes};
    use crate::smgr::{path_segment, retry_after, ANSWER_BYTES};
    use crate::text::redact;

    #[test]
    fn unreachable_smgr_is_a_retry() {
        let settings = ClientSettings {
            transport: TransportSetting::Http,
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
            c.api().resync_url("cm-east"),
            "http://127.0.0.1:9/inventory/cm/v1/elements/cm-east/resync"
        );
        assert!(matches!(
            c.api().post("cm-east", "{}", "k"),
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
