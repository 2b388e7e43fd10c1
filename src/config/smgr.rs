//! How this node reaches System Manager: where, with which credentials and TLS files, and what
//! its answers mean; and how delivery paces itself. Read and checked by the configuration,
//! used by `deliver`.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;

use super::values::{self, choice, invalid, readable_file, text};
use super::{ConfigError, Given, Value, DEFAULT_RESYNC_PATH};
use crate::tls::{client_config, TlsConfig, TlsFiles};

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
    pub fn is_retry(&self, status: u16) -> bool {
        self.retry.iter().any(|(a, b)| (*a..=*b).contains(&status))
    }

    pub fn is_permanent(&self, status: u16) -> bool {
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
    pub fn header(&self) -> Option<String> {
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

/// How a resync request reaches System Manager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// POST to `{smgr.url}{smgr.resyncpath}` (docs/smgr-api.md).
    Http,
    /// `smgr.command`: the site's program gets the body on standard input (docs/smgr-api.md).
    Command(PathBuf),
}

/// Everything the client needs to reach SMGR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSettings {
    pub transport: Transport,
    pub base_url: url::Url,
    /// Path template with `{element}`.
    pub resync_path: String,
    pub tls: TlsFiles,
    /// Built from `tls` when the configuration is read (an https URL or TLS files given), so
    /// the check that the files are good is the build the client then uses.
    pub tls_config: Option<TlsConfig>,
    pub auth: Auth,
    /// Where `auth`'s secret came from (`smgr.tokenfile`, `smgr.passwordfile`): read again on
    /// HUP ([`ClientSettings::reloaded`]).
    pub secret_file: Option<PathBuf>,
    pub timeout: Duration,
    pub codes: StatusCodes,
}

impl ClientSettings {
    /// The same settings with what they name on the host read now: the secret
    /// (`smgr.tokenfile`, `smgr.passwordfile`), the TLS files (a client certificate must be
    /// valid now) and the delivery program (`smgr.command`). `rsyslogd -N1` fails on the error;
    /// a real start runs degraded until this succeeds (docs/design.md, "Degrade, never
    /// drop"). Errors name the parameter and the file, never its content.
    pub fn load(&self) -> Result<ClientSettings, ConfigError> {
        let mut s = self.clone();
        if let Some(path) = &self.secret_file {
            let (param, what) = match self.auth {
                Auth::Basic { .. } => ("smgr.passwordfile", "file holding the password"),
                _ => ("smgr.tokenfile", "file holding the bearer token"),
            };
            let (_, text) = readable_file(param, Value::Text(path.display().to_string()), what)?;
            s.auth = match &self.auth {
                Auth::Basic { user, .. } => Auth::Basic {
                    user: user.clone(),
                    password: text.trim_end_matches(['\n', '\r']).to_owned(),
                },
                _ => Auth::Bearer(text.trim().to_owned()),
            };
        }
        if self.base_url.scheme() == "https" {
            s.tls_config = Some(load_tls(&self.tls)?);
        }
        if let Transport::Command(program) = &self.transport {
            super::check_program("smgr.command", &program.display().to_string())?;
        }
        Ok(s)
    }

    /// Whether requests carry a secret.
    pub fn has_credentials(&self) -> bool {
        self.secret_file.is_some() || self.auth != Auth::None
    }
}

/// Reads the `smgr.*` parameters; with `load`, also what they name on the host
/// ([`ClientSettings::load`]: the check that the files are good is the build the client then
/// uses).
pub(super) fn client_settings(
    g: &mut Given,
    base_url: url::Url,
    load: bool,
) -> Result<ClientSettings, ConfigError> {
    let resync_path = resync_path(g)?;
    let tls = tls_files(g, &base_url)?;
    let (auth, secret_file) = auth(g)?;
    let settings = ClientSettings {
        transport: transport(g)?,
        base_url,
        resync_path,
        tls,
        tls_config: None,
        auth,
        secret_file,
        timeout: g.millis("smgr.timeout.ms", 10_000, 100, 600_000)?,
        codes: status_codes(g)?,
    };
    if load {
        settings.load()
    } else {
        Ok(settings)
    }
}

fn transport(g: &mut Given) -> Result<Transport, ConfigError> {
    let transport = match g.take("smgr.transport") {
        Some(v) => choice("smgr.transport", v, &["http", "command"])?,
        None => "http",
    };
    let command = g.take("smgr.command");
    match (transport, command) {
        ("http", None) => Ok(Transport::Http),
        ("http", Some(v)) => Err(invalid(
            "smgr.command",
            v,
            "it with smgr.transport=\"command\" (smgr.transport is \"http\", which posts to smgr.url)",
        )),
        (_, None) => Err(ConfigError {
            param: "smgr.command",
            value: None,
            expected: "the absolute path of the program that delivers a request (smgr.transport=\"command\")".into(),
        }),
        (_, Some(v)) => {
            let expected = "the absolute path of an executable program";
            let program = text("smgr.command", v, expected)?;
            if !program.starts_with('/') {
                return Err(invalid("smgr.command", Value::Text(program), expected));
            }
            Ok(Transport::Command(PathBuf::from(program)))
        }
    }
}

fn resync_path(g: &mut Given) -> Result<String, ConfigError> {
    let Some(v) = g.take("smgr.resyncpath") else {
        return Ok(DEFAULT_RESYNC_PATH.to_owned());
    };
    let expected = "a path starting with / that contains {element}";
    let p = text("smgr.resyncpath", v, expected)?;
    if !p.starts_with('/') || !p.contains("{element}") {
        return Err(invalid("smgr.resyncpath", Value::Text(p), expected));
    }
    Ok(p)
}

/// The `smgr.tls.*` paths: both halves of a client certificate, and only with https.
fn tls_files(g: &mut Given, base_url: &url::Url) -> Result<TlsFiles, ConfigError> {
    let tls = TlsFiles {
        ca_cert: g.path("smgr.tls.cacert")?,
        my_cert: g.path("smgr.tls.mycert")?,
        my_key: g.path("smgr.tls.myprivkey")?,
    };
    if tls.my_cert.is_some() != tls.my_key.is_some() {
        let (param, other) = if tls.my_cert.is_some() {
            ("smgr.tls.myprivkey", "smgr.tls.mycert")
        } else {
            ("smgr.tls.mycert", "smgr.tls.myprivkey")
        };
        return Err(ConfigError {
            param,
            value: None,
            expected: format!("it together with {other} (two-way TLS)"),
        });
    }
    match tls_given(&tls).first() {
        Some((param, path)) if base_url.scheme() != "https" => Err(invalid(
            param,
            Value::Text(path.display().to_string()),
            "it with an https:// smgr.url only: with http:// no TLS file is used",
        )),
        _ => Ok(tls),
    }
}

fn tls_given(tls: &TlsFiles) -> Vec<(&'static str, &PathBuf)> {
    [
        ("smgr.tls.cacert", &tls.ca_cert),
        ("smgr.tls.mycert", &tls.my_cert),
        ("smgr.tls.myprivkey", &tls.my_key),
    ]
    .into_iter()
    .filter_map(|(param, path)| path.as_ref().map(|p| (param, p)))
    .collect()
}

/// Builds the TLS configuration from the files; the error names the parameter whose file is
/// wrong.
fn load_tls(tls: &TlsFiles) -> Result<TlsConfig, ConfigError> {
    let given = tls_given(tls);
    for (param, path) in &given {
        if let Err(e) = std::fs::File::open(path) {
            return Err(invalid(
                param,
                Value::Text(path.display().to_string()),
                &format!("a readable PEM file ({e})"),
            ));
        }
    }
    client_config(tls).map_err(|e| {
        let path = given.iter().find(|(p, _)| Some(*p) == e.param);
        ConfigError {
            param: e.param.unwrap_or("smgr.url"),
            value: path.map(|(_, p)| p.display().to_string()),
            expected: format!("usable TLS files: {e}"),
        }
    })
}

fn auth(g: &mut Given) -> Result<(Auth, Option<PathBuf>), ConfigError> {
    match (
        g.take("smgr.tokenfile"),
        g.take("smgr.user"),
        g.take("smgr.passwordfile"),
    ) {
        (None, None, None) => Ok((Auth::None, None)),
        // The secret itself is read by `ClientSettings::load`.
        (Some(t), None, None) => Ok((
            Auth::Bearer(String::new()),
            Some(values::path("smgr.tokenfile", t)?),
        )),
        (None, Some(u), Some(p)) => {
            let user = text("smgr.user", u, "a user name")?;
            let path = values::path("smgr.passwordfile", p)?;
            let password = String::new();
            Ok((Auth::Basic { user, password }, Some(path)))
        }
        (Some(_), _, _) => Err(ConfigError {
            param: "smgr.tokenfile",
            value: None,
            expected: "either smgr.tokenfile or smgr.user with smgr.passwordfile, not both".into(),
        }),
        (None, u, _) => Err(ConfigError {
            param: if u.is_some() {
                "smgr.passwordfile"
            } else {
                "smgr.user"
            },
            value: None,
            expected: "smgr.user and smgr.passwordfile together".into(),
        }),
    }
}

fn status_codes(g: &mut Given) -> Result<StatusCodes, ConfigError> {
    let mut codes = StatusCodes::default();
    if let Some(v) = g.take("smgr.retrycodes") {
        codes.retry = values::status_codes("smgr.retrycodes", v)?;
    }
    if let Some(v) = g.take("smgr.permanentcodes") {
        codes.permanent = values::status_codes("smgr.permanentcodes", v)?;
    }
    Ok(codes)
}

/// How delivery paces itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliverySettings {
    pub max_requests: usize,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Lanes: how many elements are posted to at once.
    pub parallel: usize,
    /// At most one element-level resync per element this often (`resync.element.cooldown.ms`;
    /// each costs System Manager a full read of that CM). Zero: no cooldown.
    pub element_cooldown: Duration,
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
}
