//! `omcmsync check`: a setup, checked before it is trusted. One line per check, each with what
//! was found and, when it fails, the fix; exit status 0 only when none fails (a warning does
//! not fail). The action's parameters come from an rsyslog configuration (read through
//! `rsyslogd -N1 -o`, so includes are resolved), with their `config.file`'s values, or from
//! such a file alone (the omprog mode's).

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use omcmsync::config::{Config, ConfigError, ElementsSource, HaMode, Value};
use omcmsync::elements::{literal, system_lookup, ElementSpec};
use omcmsync::smgr::SmgrClient;

mod ossi;
mod rsyslog_conf;
mod smgr;
mod state_dir;
mod user;

use smgr::{smgr, smgr_elements};
use state_dir::state_dir;

#[derive(Default)]
pub(crate) struct Report {
    failed: bool,
}

impl Report {
    pub(crate) fn pass(&mut self, what: &str, detail: &str) {
        println!("PASS  {what:<16} {detail}");
    }

    pub(crate) fn warn(&mut self, what: &str, detail: &str, fix: &str) {
        println!("WARN  {what:<16} {detail}\n      {:<16} fix: {fix}", "");
    }

    pub(crate) fn fail(&mut self, what: &str, detail: &str, fix: &str) {
        self.failed = true;
        println!("FAIL  {what:<16} {detail}\n      {:<16} fix: {fix}", "");
    }
}

pub fn run(rsyslog_conf: Option<&Path>, config: Option<&Path>, rsyslogd: &str) -> ExitCode {
    // The library's own log lines (a role switch, say) are not part of the report.
    omcmsync::logging::set_sink(Some(|_, _| {}));
    let mut report = Report::default();
    let actions = match (rsyslog_conf, config) {
        (Some(conf), _) => rsyslog_conf::actions(&mut report, conf, rsyslogd),
        (None, Some(file)) => vec![omprog_file(file)],
        (None, None) => Vec::new(),
    };
    if actions.is_empty() && !report.failed {
        report.fail(
            "parameters",
            "no omcmsync action found",
            "add action(type=\"omcmsync\" ...) (docs/configuration.md)",
        );
    }
    let labels: Vec<String> = actions
        .iter()
        .enumerate()
        .map(|(n, action)| {
            let kind = if action.omprog { "omprog " } else { "" };
            match actions.len() {
                1 if !action.omprog => String::new(),
                1 => " (omprog action)".to_owned(),
                all => format!(" ({kind}action {} of {all})", n + 1),
            }
        })
        .collect();
    for (action, label) in actions.iter().zip(&labels) {
        check_action(&mut report, action, label);
    }
    shared_state_dirs(&mut report, &actions, &labels);
    if report.failed {
        println!("omcmsync check: FAILED");
        ExitCode::from(1)
    } else {
        println!("omcmsync check: all checks passed");
        ExitCode::SUCCESS
    }
}

/// One action's parameters, as given, and rsyslog's maxMessageSize where known.
pub struct Action {
    pub params: Vec<(String, String)>,
    pub max_message_size: Option<u64>,
    /// The user rsyslogd drops its privileges to, where the configuration says.
    pub user: Option<String>,
    /// An omprog action running `omcmsync omprog` (its parameters: its `--config` file).
    pub omprog: bool,
}

/// One writer per state directory: `-N1` refuses two module actions on one, but cannot see an
/// omprog action's (its parameters are in the program's file), whose program would then be
/// refused at every start while rsyslog keeps handing it lines.
fn shared_state_dirs(report: &mut Report, actions: &[Action], labels: &[String]) {
    let dirs: Vec<Option<String>> = actions
        .iter()
        .map(|a| {
            let params = site_values(&a.params).ok()?;
            let dir = text(&params, "state.dir").unwrap_or(omcmsync::config::DEFAULT_STATE_DIR);
            // One directory however it is spelt (a trailing slash, `.` parts, a link).
            let dir = Path::new(dir);
            let dir = dir
                .canonicalize()
                .unwrap_or_else(|_| dir.components().collect());
            Some(dir.display().to_string())
        })
        .collect();
    for (i, dir) in dirs.iter().enumerate() {
        let Some(dir) = dir else { continue };
        let first = dirs.iter().position(|d| d.as_ref() == Some(dir));
        if first != Some(i) {
            let first = first.unwrap_or(i);
            report.fail(
                "state.dir",
                &format!(
                    "{dir} is the state.dir of{} and of{}: the second to start is refused (one writer per state directory)",
                    non_empty(&labels[first]),
                    non_empty(&labels[i])
                ),
                "give each action its own state.dir",
            );
        }
    }
}

fn non_empty(label: &str) -> &str {
    if label.is_empty() {
        " the action"
    } else {
        label
    }
}

/// `--config FILE`: the file the omprog mode and an action's `config.file` read.
fn omprog_file(file: &Path) -> Action {
    Action {
        params: vec![("config.file".into(), file.display().to_string())],
        max_message_size: None,
        user: None,
        omprog: true,
    }
}

/// The action's parameters with its `config.file`'s values in place, as the module merges
/// them, so every check sees what the module will use.
fn site_values(params: &[(String, String)]) -> Result<HashMap<&'static str, Value>, ConfigError> {
    omcmsync::config::merged_values(
        params
            .iter()
            .map(|(n, v)| (n.as_str(), Value::Text(v.clone()))),
    )
}

/// A text value of `values`.
fn text<'v>(values: &'v HashMap<&'static str, Value>, name: &str) -> Option<&'v str> {
    match values.get(name)? {
        Value::Text(v) => Some(v),
        Value::Int(_) => None,
    }
}

fn check_action(report: &mut Report, action: &Action, label: &str) {
    // Validated as the module validates it (config.file merged there, an error in it naming
    // the file); the merged values only for what check reads of them itself.
    let values = action
        .params
        .iter()
        .map(|(n, v)| (n.as_str(), Value::Text(v.clone())));
    let checked = Config::from_values(values)
        .and_then(|config| site_values(&action.params).map(|params| (config, params)));
    let (config, params) = match checked {
        Ok(c) => c,
        Err(e) => {
            report.fail(
                "parameters",
                &format!("{e}{label}"),
                "correct that parameter (docs/configuration.md)",
            );
            return;
        }
    };
    report.pass(
        "parameters",
        &format!("valid{label}, state.dir {}", config.state_dir.display()),
    );
    if let Some(max) = action.max_message_size {
        message_size(report, max, config.limits.max_line as u64);
    }
    cleartext(report, &params, &config);
    expiry(report, &config);
    if let Some(user) = action.user.as_deref() {
        reread(report, &config, user);
    }
    state_dir(report, &config.state_dir, action.user.as_deref());
    let client = match SmgrClient::new(config.client.clone()) {
        Ok(c) => c,
        Err(e) => {
            let fix = match e.param {
                Some(param) => format!("{param} (docs/configuration.md)"),
                None => "the smgr.tls.* files (docs/configuration.md)".into(),
            };
            report.fail("smgr", &e.why, &fix);
            return;
        }
    };
    let reached = smgr(report, &client);
    let specs = match &config.elements {
        ElementsSource::File { list, .. } => list.clone().unwrap_or_default(),
        ElementsSource::Smgr if reached => smgr_elements(report, &client),
        ElementsSource::Smgr => Vec::new(),
    };
    for spec in &specs {
        element_hosts(report, spec);
    }
    ossi::ossi(report, &config.reconcile, &specs);
    ha(report, &config, &client);
}

/// rsyslog's maxMessageSize against line.maxlength: a command across rsyslog's cut is lost.
fn message_size(report: &mut Report, max: u64, line: u64) {
    if max < line {
        report.warn(
            "maxMessageSize",
            &format!("rsyslog's maxMessageSize ({max}) is below line.maxlength ({line}): rsyslog cuts longer messages, and a command across the cut is lost"),
            &format!("global(maxMessageSize=\"{}\") or line.maxlength=\"{max}\"", line.next_power_of_two()),
        );
    } else {
        report.pass(
            "maxMessageSize",
            &format!("rsyslog's maxMessageSize ({max}) is at least line.maxlength ({line})"),
        );
    }
}

/// The files a HUP reads again, as the user rsyslogd drops to: rsyslog reads the configuration
/// as root, but a HUP comes after the drop, and a file only root may read then keeps the old
/// credentials, element list or rules in force (logged, never dropped) until a restart.
fn reread(report: &mut Report, config: &Config, user: &str) {
    let tls = &config.client.tls;
    let elements = match &config.elements {
        ElementsSource::File { path, .. } => Some(path),
        ElementsSource::Smgr => None,
    };
    let files = [
        ("smgr.tls.cacert", tls.ca_cert.as_ref()),
        ("smgr.tls.mycert", tls.my_cert.as_ref()),
        ("smgr.tls.myprivkey", tls.my_key.as_ref()),
        ("smgr secret", config.client.secret_file.as_ref()),
        ("elements.file", elements),
        ("rules.file", config.rules.path.as_ref()),
    ];
    for (what, path) in files {
        let Some(path) = path else { continue };
        if let Err(e) = user::may_read(user, path) {
            report.warn(
                &format!("{what} at HUP"),
                &format!(
                    "{} is read at start as root, but rsyslogd's user {user} cannot read it \
                     at a HUP ({e}): the old one stays in force until a restart",
                    path.display()
                ),
                &format!("let {user} read it (chgrp {user}; chmod 0640), directories included"),
            );
        }
    }
}

/// Certificates due to expire within this many days are a warning.
const EXPIRY_WARN_DAYS: i64 = 30;

/// The CA and client certificates' end dates: a warning within [`EXPIRY_WARN_DAYS`] (an
/// expired one already failed the parameters, as it fails the module's start).
fn expiry(report: &mut Report, config: &Config) {
    let tls = &config.client.tls;
    let files = [
        ("smgr.tls.cacert", &tls.ca_cert),
        ("smgr.tls.mycert", &tls.my_cert),
    ];
    let now = omcmsync::clock::now_ms() as i64 / 1000;
    for (param, path) in files {
        let Some(path) = path else { continue };
        let Ok(end) = omcmsync::tls::not_after(path) else {
            continue;
        };
        let days = (end - now).div_euclid(86_400);
        let when = omcmsync::clock::rfc3339((end.max(0) * 1000) as u64);
        let detail = format!("{} is valid until {when}", path.display());
        if days < 0 {
            let fix = "install a renewed certificate, then HUP rsyslogd";
            report.fail(param, &format!("{detail}: expired"), fix);
        } else if days < EXPIRY_WARN_DAYS {
            let fix = "install a renewed certificate before then, then HUP rsyslogd (the module reads it again)";
            report.warn(param, &format!("{detail}: {days} day(s) left"), fix);
        } else {
            report.pass(param, &format!("{detail} ({days} days)"));
        }
    }
}

/// `smgr.allowcleartext="on"` with a secret and an `http://` URL: allowed, but said.
fn cleartext(report: &mut Report, params: &HashMap<&'static str, Value>, config: &Config) {
    let allowed = text(params, "smgr.allowcleartext").is_some_and(|v| v.eq_ignore_ascii_case("on"));
    let client = &config.client;
    if allowed && client.has_credentials() && client.base_url.scheme() == "http" {
        report.warn(
            "smgr cleartext",
            &format!(
                "smgr.allowcleartext=\"on\": the credentials go to {} in clear",
                client.base_url
            ),
            "an https:// smgr.url (smgr.tls.cacert for its CA), then drop smgr.allowcleartext",
        );
    }
}

fn element_hosts(report: &mut Report, spec: &ElementSpec) {
    let what = format!("element {}", spec.name);
    // The module's own lookup, so the answer is the one it will get.
    let unresolved: Vec<&str> = spec
        .hosts
        .iter()
        .filter(|h| literal(h).is_none() && system_lookup(h).is_empty())
        .map(String::as_str)
        .collect();
    if unresolved.is_empty() {
        report.pass(&what, &format!("{} host(s), all resolve", spec.hosts.len()));
    } else {
        report.fail(
            &what,
            &format!("does not resolve: {}", unresolved.join(", ")),
            "correct the host name in the element list, or DNS / /etc/hosts (lines from an unresolved host count as unknown senders)",
        );
    }
}

fn ha(report: &mut Report, config: &Config, client: &SmgrClient) {
    if config.ha.mode == HaMode::Always {
        return report.pass("ha", "ha.mode=\"always\": a single node, always active");
    }
    let gate = omcmsync::ha::Gate::new(config.ha.clone());
    let reading = gate.check(Some(client));
    match reading.role {
        omcmsync::ha::Role::Unknown => report.fail(
            "ha",
            &format!(
                "the role cannot be read: {}",
                reading.why.unwrap_or_default()
            ),
            "ha.file, ha.url or ha.command as ha.mode says (docs/configuration.md)",
        ),
        role => report.pass("ha", &format!("role read: {}", role.as_str())),
    }
}
