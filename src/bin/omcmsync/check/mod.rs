//! `omcmsync check`: a setup, checked before it is trusted. One line per check, each with what
//! was found and, when it fails, the fix; exit status 0 only when none fails (a warning does
//! not fail). The action's parameters come from an rsyslog configuration (read through
//! `rsyslogd -N1 -o`, so includes are resolved), with their `config.file`'s values, or from
//! such a file alone (the omprog mode's).

use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use omcmsync::config::{
    file, Config, ConfigError, ElementsSource, HaMode, Transport, Value, ELEMENTS_PATH,
};
use omcmsync::deliver::SmgrClient;
use omcmsync::elements::{literal, parse_elements_lenient, system_lookup, ElementSpec};

mod rsyslog_conf;
mod user;

/// Less free space than this in state.dir fails: an outage's backlog has to fit.
const MIN_FREE: u64 = 64 << 20;

#[derive(Default)]
struct Report {
    failed: bool,
}

impl Report {
    fn pass(&mut self, what: &str, detail: &str) {
        println!("PASS  {what:<16} {detail}");
    }

    fn warn(&mut self, what: &str, detail: &str, fix: &str) {
        println!("WARN  {what:<16} {detail}\n      {:<16} fix: {fix}", "");
    }

    fn fail(&mut self, what: &str, detail: &str, fix: &str) {
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
            let dir = params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("state.dir"));
            let dir = dir.map_or(omcmsync::config::DEFAULT_STATE_DIR, |(_, v)| v.as_str());
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

/// The action's parameters with its `config.file`'s values in place (they override the
/// action's own, as in the module), so every check sees what the module will use.
fn site_values(params: &[(String, String)]) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in params {
        if name.eq_ignore_ascii_case("config.file") {
            for (name, value) in file::read(Value::Text(value.clone()))? {
                out.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                out.push((name.to_owned(), value));
            }
        } else if !out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            out.push((name.clone(), value.clone()));
        }
    }
    Ok(out)
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
        let line = config.limits.max_line as u64;
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
    cleartext(report, &params, &config);
    expiry(report, &config);
    if let Some(user) = action.user.as_deref() {
        reread(report, &config, user);
    }
    state_dir(report, &config.state_dir, action.user.as_deref());
    let client = match SmgrClient::new(config.client.clone()) {
        Ok(c) => c,
        Err(e) => {
            report.fail("smgr", &e, "the smgr.tls.* files (docs/configuration.md)");
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
    ha(report, &config, &client);
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

fn state_dir(report: &mut Report, dir: &Path, rsyslog_user: Option<&str>) {
    let what = "state.dir";
    let shown = dir.display();
    let probe_dir =
        if dir.is_dir() {
            dir
        } else {
            match dir.parent().filter(|p| p.is_dir()) {
                Some(parent) => parent,
                None => return report.fail(
                    what,
                    &format!("{shown} does not exist, nor its parent"),
                    "create it for rsyslogd's user (packaging: /usr/libexec/omcmsync/setup-dirs)",
                ),
            }
        };
    let probe = probe_dir.join(format!(".omcmsync-check-{}", std::process::id()));
    if let Err(e) = std::fs::write(&probe, b"") {
        return report.fail(
            what,
            &format!("{} is not writable ({e})", probe_dir.display()),
            "make it writable by rsyslogd's user (chown; mode 0700)",
        );
    }
    let _ = std::fs::remove_file(&probe);
    if let Some(name) = rsyslog_user {
        if let Err(e) = user::may_write(name, probe_dir) {
            return report.fail(
                what,
                &format!(
                    "{} is not writable by rsyslogd's user {name}: {e}",
                    probe_dir.display()
                ),
                &format!(
                    "chown {name} {} (the packages: /usr/libexec/omcmsync/setup-dirs)",
                    probe_dir.display()
                ),
            );
        }
    }
    const REMOTE: &[(i64, &str)] = &[
        (0x6969, "NFS"),
        (0x517B, "SMB"),
        (0xFF53_4D42, "CIFS"),
        (0xFE53_4D42, "SMB2"),
        (0x6573_5546, "FUSE"),
        (0x00C3_6400, "Ceph"),
    ];
    if let Ok(fs) = rustix::fs::statfs(probe_dir) {
        if let Some((_, name)) = REMOTE.iter().find(|(m, _)| *m == fs.f_type) {
            return report.fail(
                what,
                &format!("{shown} is on {name}: flock and fsync are not to be trusted there"),
                "a directory on a local file system",
            );
        }
    }
    let free = rustix::fs::statvfs(probe_dir)
        .map(|v| v.f_bavail.saturating_mul(v.f_frsize))
        .unwrap_or(u64::MAX);
    if free < MIN_FREE {
        return report.fail(
            what,
            &format!("{shown}: only {} MiB free", free >> 20),
            "free space there (an outage's backlog is kept in queue.log)",
        );
    }
    let created = if dir.is_dir() {
        ""
    } else {
        " (created at start)"
    };
    report.pass(
        what,
        &format!("{shown}{created}: writable, local, {} MiB free", free >> 20),
    );
}

/// `smgr.allowcleartext="on"` with a secret and an `http://` URL: allowed, but said.
fn cleartext(report: &mut Report, params: &[(String, String)], config: &Config) {
    let allowed = params.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("smgr.allowcleartext") && v.eq_ignore_ascii_case("on")
    });
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

/// TCP, TLS and authentication; true when System Manager answered.
fn smgr(report: &mut Report, client: &SmgrClient) -> bool {
    let settings = client.settings();
    if let Transport::Command(program) = &settings.transport {
        report.pass(
            "smgr.command",
            &format!("{} is executable", program.display()),
        );
        return false;
    }
    let url = &settings.base_url;
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<_> = match (host, port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            report.fail(
                "smgr tcp",
                &format!("{host} does not resolve ({e})"),
                "correct smgr.url's host, or DNS / /etc/hosts",
            );
            return false;
        }
    };
    let timeout = settings.timeout.min(Duration::from_secs(10));
    let Some(stream) = addrs
        .iter()
        .find_map(|a| TcpStream::connect_timeout(a, timeout).ok())
    else {
        report.fail(
            "smgr tcp",
            &format!("no connection to {host} port {port}"),
            "start System Manager, or correct smgr.url; check firewalls between this host and it",
        );
        return false;
    };
    report.pass("smgr tcp", &format!("connected to {host} port {port}"));
    if let Some(tls) = &settings.tls_config {
        if let Err((e, why)) = tls_handshake(stream, tls.0.clone(), host, timeout) {
            let fix = match why {
                Handshake::ServerNotTrusted => {
                    "smgr.tls.cacert must name the CA that signed System Manager's certificate"
                }
                Handshake::RefusedByServer => "System Manager refused this host's TLS: check smgr.tls.mycert and smgr.tls.myprivkey against the CA System Manager trusts",
                Handshake::Failed => "check that smgr.url names System Manager's HTTPS port, and the smgr.tls.* files",
            };
            report.fail("smgr tls", &e, fix);
            return false;
        }
        let client_cert = if settings.tls.my_cert.is_some() {
            ", client certificate accepted"
        } else {
            ""
        };
        report.pass(
            "smgr tls",
            &format!("handshake verified against the CA{client_cert}"),
        );
    }
    let probe = client.url(ELEMENTS_PATH);
    match client.get_status(&probe) {
        Ok(status @ (401 | 403)) => {
            report.fail(
                "smgr auth",
                &format!("GET {probe} answered HTTP {status}: credentials refused"),
                "smgr.tokenfile (or smgr.user and smgr.passwordfile) and the account's rights",
            );
            false
        }
        Ok(status) => {
            report.pass(
                "smgr auth",
                &format!("GET {probe} answered HTTP {status} (credentials not refused)"),
            );
            true
        }
        Err(e) => {
            report.fail(
                "smgr auth",
                &format!("GET {probe}: {e}"),
                "System Manager's API must answer under smgr.url",
            );
            false
        }
    }
}

/// What a failed handshake means for the operator, from rustls's own error.
enum Handshake {
    /// This host did not trust System Manager's certificate.
    ServerNotTrusted,
    /// System Manager sent an alert: it refused this host (its client certificate).
    RefusedByServer,
    Failed,
}

impl Handshake {
    fn of(e: &std::io::Error) -> Handshake {
        match e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
            Some(rustls::Error::InvalidCertificate(_)) => Handshake::ServerNotTrusted,
            Some(rustls::Error::AlertReceived(_)) => Handshake::RefusedByServer,
            _ => Handshake::Failed,
        }
    }
}

fn tls_handshake(
    mut stream: TcpStream,
    config: std::sync::Arc<rustls::ClientConfig>,
    host: &str,
    timeout: Duration,
) -> Result<(), (String, Handshake)> {
    let failed = |e: String| (e, Handshake::Failed);
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| failed(format!("{host}: {e}")))?;
    let mut conn =
        rustls::ClientConnection::new(config, name).map_err(|e| failed(e.to_string()))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| failed(e.to_string()))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut stream)
            .map_err(|e| (format!("TLS handshake: {e}"), Handshake::of(&e)))?;
    }
    // A TLS 1.3 server judges the client certificate after the handshake: its refusal is an
    // alert that arrives within moments, session tickets are not.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    for _ in 0..3 {
        match conn.complete_io(&mut stream) {
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => return Err((format!("TLS after the handshake: {e}"), Handshake::of(&e))),
        }
    }
    Ok(())
}

fn smgr_elements(report: &mut Report, client: &SmgrClient) -> Vec<ElementSpec> {
    let url = client.url(ELEMENTS_PATH);
    let list = client
        .get_json(&url, client.settings().timeout)
        .and_then(|v| parse_elements_lenient(&v.to_string()));
    match list {
        Ok((specs, rejected)) if rejected.is_empty() => {
            report.pass("elements", &format!("{} from {url}", specs.len()));
            specs
        }
        Ok((specs, rejected)) => {
            report.warn(
                "elements",
                &format!(
                    "{} from {url}, {} skipped: {}",
                    specs.len(),
                    rejected.len(),
                    rejected.join("; ")
                ),
                "correct those entries in System Manager",
            );
            specs
        }
        Err(e) => {
            report.fail(
                "elements",
                &format!("{url}: {e}"),
                "System Manager must serve the element list (elements.source=\"smgr\"), or use elements.file",
            );
            Vec::new()
        }
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
