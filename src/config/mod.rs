//! Every parameter of the module, its type and default, validated in one place.
//!
//! rsyslog hands the action's parameters over as loosely typed values; the omprog mode and the
//! tools read the same names from a file (`config.file`, [`file`]: the site's values, which
//! override the action's). Both paths end in [`Config::from_values`], so a value
//! is accepted or rejected the same way everywhere, and the error names the parameter, the
//! value and what is expected (that text is what an operator sees from `rsyslogd -N1`). Files
//! and programs the module needs (rules, elements, certificates, secrets, programs) are read
//! here too, so a missing or broken one fails the configuration check. At a real start only
//! what no change of the host can fix is refused; the rest starts the action degraded
//! (docs/design.md, "Degrade, never drop": [`Config::from_values_at_start`]).

mod claim;
pub mod file;
mod reconcile;
mod smgr;
mod values;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use self::claim::StateDirClaim;
pub use self::reconcile::ReconcileSettings;
pub use self::smgr::{Auth, ClientSettings, DeliverySettings, StatusCodes, Transport};
use crate::classify::{parse_rules, Limits, ObjectRule};
use crate::elements::{parse_elements, ElementSpec};
use values::*;

/// The template the rsyslog-conf snippet defines; used when `template` is not given.
pub const DEFAULT_TEMPLATE: &str = "omcmsync_line";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/omcmsync";
pub const DEFAULT_RESYNC_PATH: &str = "/inventory/cm/v1/elements/{element}/resync";
/// Where `elements.source="smgr"` fetches the element list, under `smgr.url`.
pub const ELEMENTS_PATH: &str = "/inventory/cm/v1/elements";

/// How rsyslog should type-check a parameter before we see it. Numbers are taken as words and
/// checked here: rsyslog's own number types reject a bad value with a misleading "parameter not
/// known" (8.2302).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A string without whitespace.
    Word,
    /// Any string.
    Text,
}

/// Every parameter `action(type="omcmsync" ...)` accepts (documented in docs/configuration.md).
pub const PARAMS: &[(&str, Kind)] = &[
    ("config.file", Kind::Text),
    ("template", Kind::Word),
    ("smgr.url", Kind::Word),
    ("smgr.resyncpath", Kind::Word),
    ("smgr.timeout.ms", Kind::Word),
    ("smgr.tls.cacert", Kind::Text),
    ("smgr.tls.mycert", Kind::Text),
    ("smgr.tls.myprivkey", Kind::Text),
    ("smgr.tokenfile", Kind::Text),
    ("smgr.user", Kind::Word),
    ("smgr.passwordfile", Kind::Text),
    ("smgr.retrycodes", Kind::Text),
    ("smgr.permanentcodes", Kind::Text),
    ("smgr.transport", Kind::Word),
    ("smgr.allowcleartext", Kind::Word),
    ("smgr.command", Kind::Text),
    ("state.dir", Kind::Text),
    ("elements.file", Kind::Text),
    ("elements.source", Kind::Word),
    ("elements.refresh.ms", Kind::Word),
    ("elements.max", Kind::Word),
    ("ha.mode", Kind::Word),
    ("ha.file", Kind::Text),
    ("ha.url", Kind::Word),
    ("ha.command", Kind::Text),
    ("ha.interval.ms", Kind::Word),
    ("ha.onunknown", Kind::Word),
    ("ha.standby", Kind::Word),
    ("ha.holddown.ms", Kind::Word),
    ("ha.standby.retain.ms", Kind::Word),
    ("coalesce.window.ms", Kind::Word),
    ("resync.element.cooldown.ms", Kind::Word),
    ("queue.fsync.ms", Kind::Word),
    ("burst.threshold", Kind::Word),
    ("batch.maxrequests", Kind::Word),
    ("delivery.parallel", Kind::Word),
    ("retry.initial.ms", Kind::Word),
    ("retry.max.ms", Kind::Word),
    ("deadletter.file", Kind::Text),
    ("deadletter.max.mb", Kind::Word),
    ("rules.file", Kind::Text),
    ("line.maxlength", Kind::Word),
    ("duplicate.maxcount", Kind::Word),
    ("trace.file", Kind::Text),
    ("capture.file", Kind::Text),
    ("capture.max", Kind::Word),
    ("reconcile", Kind::Word),
    ("reconcile.dir", Kind::Text),
    ("reconcile.interval.ms", Kind::Word),
    ("reconcile.silence.ms", Kind::Word),
    ("reconcile.timeout.ms", Kind::Word),
    ("reconcile.tolerance.ms", Kind::Word),
    ("reconcile.program", Kind::Text),
    ("reconcile.port", Kind::Word),
    ("reconcile.term", Kind::Word),
];

/// A parameter value as the configuration source delivered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Int(i64),
}

/// Where the element list comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElementsSource {
    /// `elements.file`, and the list it held when the configuration was read (none: it could
    /// not be read then, and the action holds what arrives until it can).
    File {
        path: PathBuf,
        list: Option<Vec<ElementSpec>>,
    },
    /// `GET {smgr.url}/inventory/cm/v1/elements`, cached in `state.dir/elements.json`.
    Smgr,
}

/// Object types added to (or replacing) the built-in table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulesSource {
    /// `rules.file`, if given.
    pub path: Option<PathBuf>,
    /// Its rules as read when the configuration was (none: it could not be read then, and
    /// the action holds what arrives until it can).
    pub rules: Option<Vec<ObjectRule>>,
}

impl Default for RulesSource {
    /// No `rules.file`: the built-in table alone, complete.
    fn default() -> Self {
        RulesSource {
            path: None,
            rules: Some(Vec::new()),
        }
    }
}

impl RulesSource {
    /// The rules in force: none but the built-in table until the file is read.
    pub fn rules(&self) -> &[ObjectRule] {
        self.rules.as_deref().unwrap_or_default()
    }

    /// Reads `rules.file` (`Ok(None)` without one); the error names the parameter and file.
    pub fn read(path: &std::path::Path) -> Result<Vec<ObjectRule>, ConfigError> {
        let (p, json) = readable_file(
            "rules.file",
            Value::Text(path.display().to_string()),
            "JSON rule file",
        )?;
        parse_rules(&json).map_err(|e| {
            invalid(
                "rules.file",
                Value::Text(p.display().to_string()),
                &format!("a rule file as in docs/classifier.md: {e}"),
            )
        })
    }
}

/// How this node learns whether it is the active System Manager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HaMode {
    Always,
    File(PathBuf),
    Http(url::Url),
    Command(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaSettings {
    pub mode: HaMode,
    pub interval: Duration,
    /// Process lines when the role cannot be read (a duplicate resync is harmless; a missed one
    /// is not).
    pub process_when_unknown: bool,
    /// `ha.standby="hold"`: the standby keeps what it hears, held, and delivers it once
    /// active; `"drop"`: it drops it (System Manager's own semantics).
    pub standby_hold: bool,
    /// Held keys whose last change is older than this are dropped: SMGR's daily
    /// incremental sync covers them.
    pub standby_retain: Duration,
    /// A new role must be read twice in a row and hold this long before the gate follows it.
    pub holddown: Duration,
    /// Names the action in HA log lines: its state directory.
    pub label: String,
}

/// The validated configuration of one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Name of the rsyslog template that renders each message for us.
    pub template: String,
    pub client: ClientSettings,
    pub state_dir: PathBuf,
    pub elements: ElementsSource,
    pub elements_refresh: Duration,
    /// The most elements a list may hold (`elements.max`); a longer one is refused.
    pub elements_max: usize,
    pub ha: HaSettings,
    pub window: Duration,
    /// How long an accepted change may wait for its fsync (0: before the batch is committed).
    pub fsync_every: Duration,
    pub burst_threshold: usize,
    pub delivery: DeliverySettings,
    pub deadletter_file: PathBuf,
    /// The bytes the dead-letter store may hold (`deadletter.file` and its older half).
    pub deadletter_max: u64,
    /// Object types added to (or replacing) the built-in table, from `rules.file`.
    pub rules: RulesSource,
    /// Classifier limits (`line.maxlength`, `duplicate.maxcount`).
    pub limits: Limits,
    /// Where to write one JSON record per received line, if anywhere.
    pub trace_file: Option<PathBuf>,
    /// Where admin-looking lines that did not classify are sampled, if anywhere.
    pub capture_file: Option<PathBuf>,
    /// How many lines the capture file takes in its lifetime (a rotated-away file starts anew).
    pub capture_max: u64,
    /// Reading CM's own history for the changes syslog lost (`reconcile.*`).
    pub reconcile: ReconcileSettings,
}

/// A rejected configuration: which parameter, what it held, and what would be right.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub param: &'static str,
    /// `None` when the parameter is missing.
    pub value: Option<String>,
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "parameter '{}' has invalid value '{v}'", self.param)?,
            None => write!(f, "parameter '{}' is required but not set", self.param)?,
        }
        write!(f, ": expected {}", self.expected)
    }
}

impl std::error::Error for ConfigError {}

/// How a real start goes ([`Config::at_start`]).
#[derive(Debug)]
pub enum Start {
    Ready(Box<Config>),
    /// `config.file` cannot be used yet; the error says why, naming the file.
    AwaitingSiteFile(ConfigError),
}

/// The values an action's parameters come to: its `config.file`'s in place of its own, as
/// [`Config::from_values`] merges them (`omcmsync check` reads a few itself). Unknown names
/// are left out.
pub fn merged_values<'a>(
    values: impl IntoIterator<Item = (&'a str, Value)>,
) -> Result<HashMap<&'static str, Value>, ConfigError> {
    let (given, _) = SiteFile::merge(Given::new(values))?;
    Ok(given.0)
}

/// The given values by parameter name; each is taken once by the field it configures.
struct Given(HashMap<&'static str, Value>);

/// The names `config.file` set, for an error to say which file to edit.
struct SiteFile {
    shown: String,
    names: Vec<&'static str>,
}

impl SiteFile {
    /// `given` with its `config.file`'s values in place (they override the action's).
    fn merge(mut given: Given) -> Result<(Given, Option<SiteFile>), ConfigError> {
        let Some(file) = given.take("config.file") else {
            return Ok((given, None));
        };
        let shown = match &file {
            Value::Text(path) => path.clone(),
            Value::Int(n) => n.to_string(),
        };
        let values = file::read(file)?;
        let names = values.iter().map(|(name, _)| *name).collect();
        given
            .0
            .extend(values.into_iter().map(|(n, v)| (n, Value::Text(v))));
        Ok((given, Some(SiteFile { shown, names })))
    }

    /// A value the file set, or one required and set nowhere: the file is where to look.
    fn blames(&self, e: &ConfigError) -> bool {
        e.value.is_none() || self.names.contains(&e.param)
    }

    /// An operator reading `-N1`'s message must know which file to edit.
    fn annotate(&self, mut e: ConfigError) -> ConfigError {
        e.expected
            .push_str(&format!(" (config.file {})", self.shown));
        e
    }
}

impl Given {
    fn new<'a>(values: impl IntoIterator<Item = (&'a str, Value)>) -> Given {
        Given(
            values
                .into_iter()
                .filter_map(|(n, v)| PARAMS.iter().find(|(p, _)| *p == n).map(|(p, _)| (*p, v)))
                .collect(),
        )
    }

    fn take(&mut self, name: &'static str) -> Option<Value> {
        self.0.remove(name)
    }

    fn required(&mut self, name: &'static str, expected: &str) -> Result<Value, ConfigError> {
        self.take(name).ok_or_else(|| ConfigError {
            param: name,
            value: None,
            expected: expected.to_owned(),
        })
    }

    fn number(
        &mut self,
        name: &'static str,
        default: u64,
        min: i64,
        max: i64,
    ) -> Result<u64, ConfigError> {
        self.take(name)
            .map_or(Ok(default), |v| number(name, v, min, max))
    }

    fn path(&mut self, name: &'static str) -> Result<Option<PathBuf>, ConfigError> {
        self.take(name).map(|v| path(name, v)).transpose()
    }

    fn millis(
        &mut self,
        name: &'static str,
        default: u64,
        min: i64,
        max: i64,
    ) -> Result<Duration, ConfigError> {
        self.number(name, default, min, max)
            .map(Duration::from_millis)
    }
}

impl Config {
    /// Builds a configuration from `(name, value)` pairs; unknown names are the caller's
    /// business (rsyslog reports them itself), values are checked here. A missing or broken
    /// `elements.file` is an error (`rsyslogd -N1`, the tools).
    pub fn from_values<'a>(
        values: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Result<Config, ConfigError> {
        Config::build(values, true)
    }

    /// As [`Config::from_values`] for a daemon that is starting for real: what depends on the
    /// state of the host (a file or program missing, unreadable or broken, a certificate that
    /// has expired, a state directory whose parent is missing: it is made) is not checked here, and the
    /// action starts degraded until the host provides it (docs/design.md, "Degrade, never
    /// drop"). A missing or broken `elements.file` or `rules.file` is logged here.
    pub fn from_values_at_start<'a>(
        values: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Result<Config, ConfigError> {
        Config::build(values, false)
    }

    /// As [`Config::from_values_at_start`], but with a `config.file` no error is a refusal:
    /// the file's values override the action's, so an edit of the file can mend any of them
    /// (a value it set, a default it clashes with, one it lacks). The action waits for the
    /// site's file and rsyslog keeps what arrives meanwhile ([`Start::AwaitingSiteFile`]).
    /// Without one, errors are refused as ever.
    pub fn at_start<'a>(
        values: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Result<Start, ConfigError> {
        let (given, site) = match SiteFile::merge(Given::new(values)) {
            Ok(merged) => merged,
            Err(e) => return Ok(Start::AwaitingSiteFile(e)),
        };
        match (Config::build_given(given, false), site) {
            (Ok(config), _) => Ok(Start::Ready(Box::new(config))),
            (Err(e), Some(site)) if site.blames(&e) => {
                Ok(Start::AwaitingSiteFile(site.annotate(e)))
            }
            (Err(e), Some(_)) => Ok(Start::AwaitingSiteFile(e)),
            (Err(e), _) => Err(e),
        }
    }

    fn build<'a>(
        values: impl IntoIterator<Item = (&'a str, Value)>,
        load: bool,
    ) -> Result<Config, ConfigError> {
        let (given, site) = SiteFile::merge(Given::new(values))?;
        Config::build_given(given, load).map_err(|e| match &site {
            Some(site) if site.blames(&e) => site.annotate(e),
            _ => e,
        })
    }

    fn build_given(mut given: Given, load: bool) -> Result<Config, ConfigError> {
        let g = &mut given;
        let template = match g.take("template") {
            Some(v) => text("template", v, "a template name")?,
            None => DEFAULT_TEMPLATE.to_owned(),
        };
        let base_url = http_url(
            "smgr.url",
            g.required("smgr.url", URL_EXPECTED)?,
            URL_EXPECTED,
        )?;
        let client = smgr::client_settings(g, base_url, load)?;
        let state_dir = match g.take("state.dir") {
            Some(v) if load => state_dir("state.dir", v)?,
            Some(v) => path("state.dir", v)?,
            None => PathBuf::from(DEFAULT_STATE_DIR),
        };
        let elements_max = g.number("elements.max", 10_000, 1, 1_000_000)? as usize;
        let elements = elements_source(g, load, elements_max)?;
        let mut config = Config {
            template,
            client,
            elements,
            elements_refresh: g.millis("elements.refresh.ms", 60_000, 1000, 86_400_000)?,
            elements_max,
            ha: ha_settings(g, load)?,
            window: g.millis("coalesce.window.ms", 5000, 0, 3_600_000)?,
            fsync_every: g.millis("queue.fsync.ms", 200, 0, 60_000)?,
            burst_threshold: g.number("burst.threshold", 500, 1, 1_000_000)? as usize,
            delivery: delivery_settings(g)?,
            deadletter_file: g
                .path("deadletter.file")?
                .unwrap_or_else(|| state_dir.join("deadletter.json")),
            deadletter_max: g.number("deadletter.max.mb", 256, 1, 1 << 20)? << 20,
            state_dir,
            rules: rules_source(g, load)?,
            limits: limits(g)?,
            trace_file: g.path("trace.file")?,
            capture_file: g.path("capture.file")?,
            capture_max: g.number("capture.max", 1000, 1, 1_000_000)?,
            reconcile: reconcile::settings(g)?,
        };
        config.ha.label = format!("state.dir {}", config.state_dir.display());
        cleartext_credentials(g, &config)?;
        Ok(config)
    }
}

fn delivery_settings(g: &mut Given) -> Result<DeliverySettings, ConfigError> {
    let settings = DeliverySettings {
        max_requests: g.number("batch.maxrequests", 100, 1, 10_000)? as usize,
        parallel: g.number("delivery.parallel", 4, 1, 64)? as usize,
        retry_initial: g.millis("retry.initial.ms", 1000, 10, 3_600_000)?,
        retry_max: g.millis("retry.max.ms", 300_000, 10, 86_400_000)?,
        element_cooldown: g.millis("resync.element.cooldown.ms", 600_000, 0, 86_400_000)?,
    };
    if settings.retry_initial > settings.retry_max {
        let ms = settings.retry_initial.as_millis().to_string();
        return Err(invalid(
            "retry.initial.ms",
            Value::Text(ms),
            "at most retry.max.ms",
        ));
    }
    Ok(settings)
}

fn limits(g: &mut Given) -> Result<Limits, ConfigError> {
    let d = Limits::default();
    Ok(Limits {
        max_line: g.number("line.maxlength", d.max_line as u64, 1, 1 << 20)? as usize,
        max_duplicate: g.number("duplicate.maxcount", d.max_duplicate.into(), 1, 100_000)? as u32,
    })
}

fn elements_source(g: &mut Given, strict: bool, max: usize) -> Result<ElementsSource, ConfigError> {
    let source = match g.take("elements.source") {
        Some(v) => choice("elements.source", v, &["file", "smgr"])?,
        None => "file",
    };
    match source {
        "smgr" => match g.take("elements.file") {
            None => Ok(ElementsSource::Smgr),
            Some(v) => Err(invalid(
                "elements.file",
                v,
                "no elements.file with elements.source=\"smgr\" (the list comes from System Manager): drop one of them",
            )),
        },
        _ => {
            let expected = "the JSON file listing the CM elements (docs/configuration.md), or elements.source=\"smgr\"";
            let given = g.required("elements.file", expected)?;
            let checked = readable_file("elements.file", given.clone(), "element list").and_then(
                |(path, json)| match parse_elements(&json).and_then(|l| within_max(l, max)) {
                    Ok(list) => Ok((path, list)),
                    Err(e) => Err(invalid(
                        "elements.file",
                        Value::Text(path.display().to_string()),
                        &format!("an element list: {e}"),
                    )),
                },
            );
            match checked {
                Ok((path, list)) => Ok(ElementsSource::File {
                    path,
                    list: Some(list),
                }),
                Err(e) if strict => Err(e),
                // Said by the first reading at start (`Elements::reload`), once.
                Err(_) => Ok(ElementsSource::File {
                    path: values::path("elements.file", given)?,
                    list: None,
                }),
            }
        }
    }
}

/// A list of at most `max` elements (memory for a list is about 2 KB an element in force).
pub fn within_max<T>(list: Vec<T>, max: usize) -> Result<Vec<T>, String> {
    if list.len() > max {
        return Err(format!(
            "{} elements, more than elements.max ({max}): raise elements.max if the list is right",
            list.len()
        ));
    }
    Ok(list)
}

/// `rules.file`: read now; at a real start one that cannot be read is logged and the action
/// holds what arrives until it can (a line of a site's own object type would otherwise be
/// lost as unknown).
fn rules_source(g: &mut Given, strict: bool) -> Result<RulesSource, ConfigError> {
    let Some(v) = g.take("rules.file") else {
        return Ok(RulesSource::default());
    };
    let path = values::path("rules.file", v)?;
    match RulesSource::read(&path) {
        Ok(rules) => Ok(RulesSource {
            path: Some(path),
            rules: Some(rules),
        }),
        Err(e) if strict => Err(e),
        Err(_) => Ok(RulesSource {
            path: Some(path),
            rules: None,
        }),
    }
}

/// A secret sent over plain http to a host other than this one crosses the network in clear:
/// refused unless `smgr.allowcleartext="on"` says the site means it.
fn cleartext_credentials(g: &mut Given, config: &Config) -> Result<(), ConfigError> {
    let allowed = match g.take("smgr.allowcleartext") {
        Some(v) => choice("smgr.allowcleartext", v, &["on", "off"])? == "on",
        None => false,
    };
    let client = &config.client;
    if allowed || !client.has_credentials() || client.transport != Transport::Http {
        return Ok(());
    }
    let secret = if matches!(client.auth, Auth::Basic { .. }) {
        "smgr.passwordfile"
    } else {
        "smgr.tokenfile"
    };
    let ha_url = match &config.ha.mode {
        HaMode::Http(url) => Some(("ha.url", url)),
        _ => None,
    };
    for (param, url) in [("smgr.url", &client.base_url)].into_iter().chain(ha_url) {
        if url.scheme() == "http" && !is_loopback(url) {
            return Err(invalid(
                param,
                Value::Text(url.to_string()),
                &format!(
                    "an https:// URL: with {secret} set, http:// to another host sends the secret \
                     in clear over the network; use https://, or set smgr.allowcleartext=\"on\" \
                     if the network is trusted"
                ),
            ));
        }
    }
    Ok(())
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A command (`ha.command`, `smgr.command`) that names its program by an absolute path: it
/// must exist and be executable (it would exit 127 or 126 at every run).
pub(crate) fn check_program(param: &'static str, cmd: &str) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let program = cmd.split_whitespace().next().unwrap_or_default();
    if !program.starts_with('/') {
        return Ok(());
    }
    let runnable = std::fs::metadata(program)
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if runnable {
        return Ok(());
    }
    Err(invalid(
        param,
        Value::Text(cmd.to_owned()),
        &format!("a command whose program exists and is executable ({program} is not)"),
    ))
}

fn ha_settings(g: &mut Given, load: bool) -> Result<HaSettings, ConfigError> {
    let mode = match g.take("ha.mode") {
        Some(v) => choice("ha.mode", v, &["always", "file", "http", "command"])?,
        None => "always",
    };
    for (param, wants) in [
        ("ha.file", "file"),
        ("ha.url", "http"),
        ("ha.command", "command"),
    ] {
        if mode != wants {
            if let Some(v) = g.take(param) {
                return Err(invalid(
                    param,
                    v,
                    &format!("it with ha.mode=\"{wants}\" (ha.mode is \"{mode}\", which does not read it)"),
                ));
            }
        }
    }
    let mode = ha_mode(g, mode, load)?;
    let process_when_unknown = match g.take("ha.onunknown") {
        Some(v) => choice("ha.onunknown", v, &["process", "drop"])? == "process",
        None => true,
    };
    let standby_hold = match g.take("ha.standby") {
        Some(v) => choice("ha.standby", v, &["hold", "drop"])? == "hold",
        None => true,
    };
    Ok(HaSettings {
        mode,
        interval: g.millis("ha.interval.ms", 5000, 100, 3_600_000)?,
        process_when_unknown,
        standby_hold,
        standby_retain: g.millis("ha.standby.retain.ms", 86_400_000, 1000, 30 * 86_400_000)?,
        holddown: g.millis("ha.holddown.ms", 0, 0, 3_600_000)?,
        label: String::new(),
    })
}

/// The role's source `mode` names, and what it needs.
fn ha_mode(g: &mut Given, mode: &str, load: bool) -> Result<HaMode, ConfigError> {
    Ok(match mode {
        "file" => HaMode::File(path(
            "ha.file",
            g.required(
                "ha.file",
                "the file holding active or standby (ha.mode=\"file\")",
            )?,
        )?),
        "http" => {
            let expected = "the URL answering {\"role\":\"active\"} (ha.mode=\"http\")";
            HaMode::Http(http_url(
                "ha.url",
                g.required("ha.url", expected)?,
                expected,
            )?)
        }
        "command" => {
            let expected = "a command that exits 0 when this node is active (ha.mode=\"command\")";
            let cmd = text("ha.command", g.required("ha.command", expected)?, expected)?;
            if load {
                check_program("ha.command", &cmd)?;
            }
            HaMode::Command(cmd)
        }
        _ => HaMode::Always,
    })
}

#[cfg(test)]
mod tests;
