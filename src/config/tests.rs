use super::*;

/// A directory with a valid elements file; `pairs` are added to smgr.url and elements.file.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("elements.json"),
            r#"{"elements":[{"name":"cm","hosts":["10.0.0.1"]}]}"#,
        )
        .unwrap();
        Fixture { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn cfg(&self, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        self.build(pairs, true)
    }

    /// As a real start reads it.
    fn at_start(&self, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        self.build(pairs, false)
    }

    fn build(&self, pairs: &[(&str, &str)], check: bool) -> Result<Config, ConfigError> {
        let mut values = vec![("smgr.url", "http://smgr.example.net".to_string())];
        values.push(("elements.file", self.path("elements.json")));
        values.extend(pairs.iter().map(|(k, v)| (*k, v.to_string())));
        let values = values.iter().map(|(k, v)| (*k, Value::Text(v.clone())));
        if check {
            Config::from_values(values)
        } else {
            Config::from_values_at_start(values)
        }
    }
}

#[test]
fn minimal_config_takes_defaults() {
    let f = Fixture::new();
    let c = f.cfg(&[]).unwrap();
    assert_eq!(c.template, DEFAULT_TEMPLATE);
    assert_eq!(c.client.base_url.as_str(), "http://smgr.example.net/");
    assert_eq!(c.client.resync_path, DEFAULT_RESYNC_PATH);
    assert_eq!(c.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
    assert_eq!(
        c.deadletter_file,
        PathBuf::from(DEFAULT_STATE_DIR).join("deadletter.json")
    );
    assert_eq!(c.ha.mode, HaMode::Always);
    assert!(c.ha.process_when_unknown);
    assert_eq!((c.window, c.burst_threshold), (Duration::from_secs(5), 500));
    assert_eq!(c.trace_file, None);
}

#[test]
fn accepts_ipv6_and_port_urls() {
    let f = Fixture::new();
    for u in [
        "http://[::1]:8443/base",
        "http://10.0.0.1:443",
        "http://smgr:80/x/",
    ] {
        assert!(f.cfg(&[("smgr.url", u)]).is_ok(), "{u}");
    }
}

#[test]
fn rejects_bad_values_naming_parameter_and_value() {
    let f = Fixture::new();
    let cases: &[(&str, &str, &str)] = &[
        ("smgr.url", "ftp://smgr", "https://"),
        ("smgr.url", "smgr.example.net", "https://"),
        ("smgr.url", "http://h/?q=1", "https://"),
        ("smgr.resyncpath", "/no/placeholder", "{element}"),
        ("trace.file", "rel/trace", "absolute"),
        ("duplicate.maxcount", "0", "whole number from 1"),
        ("line.maxlength", "x", "whole number"),
        ("ha.mode", "sometimes", "one of always, file, http, command"),
        ("ha.onunknown", "maybe", "process, drop"),
        ("elements.source", "ldap", "file, smgr"),
        (
            "state.dir",
            "/nonexistent/deeper/state",
            "parent directory exists",
        ),
        ("coalesce.window.ms", "-1", "from 0"),
    ];
    for (param, value, fix) in cases {
        let e = f.cfg(&[(param, value)]).unwrap_err();
        assert_eq!(e.param, *param, "{param}={value}: {e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("'{value}'")) && msg.contains(fix),
            "{msg}"
        );
    }
}

#[test]
fn required_and_paired_parameters() {
    let f = Fixture::new();
    let e =
        Config::from_values([("elements.file", Value::Text(f.path("elements.json")))]).unwrap_err();
    assert_eq!((e.param, e.value.clone()), ("smgr.url", None));
    assert!(e.to_string().contains("required"));
    let e = Config::from_values([("smgr.url", Value::Text("http://h".into()))]).unwrap_err();
    assert_eq!(e.param, "elements.file");
    assert!(Config::from_values([
        ("smgr.url", Value::Text("http://h".into())),
        ("elements.source", Value::Text("smgr".into())),
    ])
    .is_ok());
    assert_eq!(f.cfg(&[("ha.mode", "file")]).unwrap_err().param, "ha.file");
    assert_eq!(f.cfg(&[("ha.mode", "http")]).unwrap_err().param, "ha.url");
    assert_eq!(
        f.cfg(&[("ha.mode", "command")]).unwrap_err().param,
        "ha.command"
    );
    assert_eq!(
        f.cfg(&[("smgr.tls.mycert", "/x.pem")]).unwrap_err().param,
        "smgr.tls.myprivkey"
    );
    assert_eq!(
        f.cfg(&[("smgr.user", "u")]).unwrap_err().param,
        "smgr.passwordfile"
    );
    assert_eq!(
        f.cfg(&[("retry.initial.ms", "5000"), ("retry.max.ms", "1000")])
            .unwrap_err()
            .param,
        "retry.initial.ms"
    );
}

#[test]
fn files_are_read_at_check_time() {
    let f = Fixture::new();
    std::fs::write(f.dir.path().join("token"), "s3cret\n").unwrap();
    std::fs::write(f.dir.path().join("password"), "pa ss\n").unwrap();
    let clear = ("smgr.allowcleartext", "on");
    let c = f
        .cfg(&[("smgr.tokenfile", &f.path("token")), clear])
        .unwrap();
    assert_eq!(c.client.auth, Auth::Bearer("s3cret".into()));
    assert!(
        !format!("{c:?}").contains("s3cret"),
        "secrets must not show in Debug"
    );
    let c = f
        .cfg(&[
            ("smgr.user", "admin"),
            ("smgr.passwordfile", &f.path("password")),
            clear,
        ])
        .unwrap();
    assert_eq!(
        c.client.auth,
        Auth::Basic {
            user: "admin".into(),
            password: "pa ss".into()
        }
    );
    let e = f
        .cfg(&[("smgr.tokenfile", &f.path("missing")), clear])
        .unwrap_err();
    assert!(e.to_string().contains("readable"), "{e}");
    std::fs::write(
        f.dir.path().join("bad-elements.json"),
        r#"{"elements":[{"name":"x"}]}"#,
    )
    .unwrap();
    let e = f
        .cfg(&[("elements.file", &f.path("bad-elements.json"))])
        .unwrap_err();
    assert!(e.to_string().contains("hosts"), "{e}");
    let e = f
        .cfg(&[
            ("smgr.url", "https://smgr"),
            ("smgr.tls.cacert", &f.path("missing.pem")),
        ])
        .unwrap_err();
    assert_eq!(e.param, "smgr.tls.cacert");
    assert!(
        e.to_string().contains("missing.pem") && !e.to_string().contains("required"),
        "a missing file is named, not called unset: {e}"
    );
    std::fs::write(f.dir.path().join("garbage.pem"), "no PEM here").unwrap();
    let e = f
        .cfg(&[
            ("smgr.url", "https://smgr"),
            ("smgr.tls.cacert", &f.path("garbage.pem")),
        ])
        .unwrap_err();
    assert_eq!(e.param, "smgr.tls.cacert", "{e}");
}

/// A real start refuses only what no change of the host can fix: every file and program a
/// parameter names may be missing (the action runs degraded until it appears), a value out of
/// range is still an error.
#[test]
fn a_real_start_defers_what_the_host_lacks() {
    let f = Fixture::new();
    let missing = f.path("missing");
    let program = format!("{missing}/program");
    let lacking: &[&[(&str, &str)]] = &[
        &[("smgr.url", "https://smgr"), ("smgr.tls.cacert", &missing)],
        &[
            ("smgr.url", "https://smgr"),
            ("smgr.tls.mycert", &missing),
            ("smgr.tls.myprivkey", &missing),
        ],
        &[("smgr.url", "https://smgr"), ("smgr.tokenfile", &missing)],
        &[
            ("smgr.url", "https://smgr"),
            ("smgr.user", "u"),
            ("smgr.passwordfile", &missing),
        ],
        &[("ha.mode", "command"), ("ha.command", &program)],
        &[("smgr.transport", "command"), ("smgr.command", &program)],
        &[("rules.file", &missing)],
        &[("elements.file", &missing)],
        &[("state.dir", &program)],
    ];
    for pairs in lacking {
        assert!(f.cfg(pairs).is_err(), "-N1 refuses {pairs:?}");
        let c = f.at_start(pairs);
        assert!(c.is_ok(), "a real start takes {pairs:?}: {c:?}");
    }
    let c = f.at_start(&[("rules.file", &missing)]).unwrap();
    assert_eq!(c.rules.rules, None, "the rules are pending");
    let c = f.at_start(&[("smgr.url", "https://smgr"), ("smgr.tokenfile", &missing)]);
    assert_eq!(c.unwrap().client.tls_config, None, "nothing was read");
    for pairs in [
        &[("smgr.timeout.ms", "5")][..],
        &[("ha.mode", "sometimes")],
        &[("smgr.url", "http://smgr"), ("smgr.tls.cacert", &missing)],
    ] {
        assert!(f.at_start(pairs).is_err(), "a real start refuses {pairs:?}");
    }
}

/// A secret over plain http to another host crosses the network in clear: refused, naming
/// the URL's parameter and the secret's, unless it goes to this host or the site says so.
#[test]
fn credentials_in_clear_to_another_host_are_refused() {
    let f = Fixture::new();
    std::fs::write(f.dir.path().join("token"), "t\n").unwrap();
    let token = f.path("token");
    let e = f.cfg(&[("smgr.tokenfile", &token)]).unwrap_err();
    assert_eq!(e.param, "smgr.url");
    assert!(e.to_string().contains("smgr.tokenfile"), "{e}");
    assert!(f.at_start(&[("smgr.tokenfile", &token)]).is_err());
    let e = f
        .cfg(&[
            ("smgr.url", "https://smgr"),
            ("smgr.tokenfile", &token),
            ("ha.mode", "http"),
            ("ha.url", "http://smgr-peer:8080/role"),
        ])
        .unwrap_err();
    assert_eq!(e.param, "ha.url", "{e}");
    for url in [
        "http://127.0.0.1:8080",
        "http://[::1]:80",
        "http://localhost",
    ] {
        assert!(f
            .cfg(&[("smgr.url", url), ("smgr.tokenfile", &token)])
            .is_ok());
    }
    let allowed = [
        ("smgr.tokenfile", &token[..]),
        ("smgr.allowcleartext", "on"),
    ];
    assert!(f.cfg(&allowed).is_ok());
    assert!(f.cfg(&[]).is_ok(), "no secret, nothing to protect");
}

/// Combinations that used to pass silently: each is an error naming both parameters.
#[test]
fn silent_combinations_are_errors_naming_both() {
    let f = Fixture::new();
    for (pairs, param, other) in [
        (vec![("ha.url", "http://h/ha")], "ha.url", "ha.mode"),
        (vec![("ha.command", "true")], "ha.command", "ha.mode"),
        (
            vec![
                ("ha.mode", "file"),
                ("ha.file", "/r"),
                ("ha.url", "http://h/ha"),
            ],
            "ha.url",
            "ha.mode",
        ),
        (
            vec![("smgr.tls.cacert", "/ca.pem")],
            "smgr.tls.cacert",
            "smgr.url",
        ),
        (
            vec![("elements.source", "smgr")],
            "elements.file",
            "elements.source",
        ),
        (
            vec![("smgr.command", "/bin/true")],
            "smgr.command",
            "smgr.transport",
        ),
    ] {
        let e = f.cfg(&pairs).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.param, param, "{pairs:?}: {text}");
        assert!(text.contains(other), "{pairs:?}: {text}");
    }
}

#[test]
fn rules_file_is_read_and_checked() {
    let f = Fixture::new();
    std::fs::write(
        f.dir.path().join("good.json"),
        r#"{"objects":[{"name":"vrt"}]}"#,
    )
    .unwrap();
    assert_eq!(
        f.cfg(&[("rules.file", &f.path("good.json"))])
            .unwrap()
            .rules
            .rules()
            .len(),
        1
    );
    std::fs::write(
        f.dir.path().join("bad.json"),
        r#"{"objects":[{"name":"vrt","scope":"x"}]}"#,
    )
    .unwrap();
    let e = f.cfg(&[("rules.file", &f.path("bad.json"))]).unwrap_err();
    assert!(e.to_string().contains("scope"), "{e}");
    let e = f.cfg(&[("rules.file", "/nonexistent/r.json")]).unwrap_err();
    assert!(e.to_string().contains("readable"), "{e}");
}

#[test]
fn numbers_arrive_as_text_or_int() {
    let f = Fixture::new();
    let c = f
        .cfg(&[("line.maxlength", "4096"), ("capture.max", "5")])
        .unwrap();
    assert_eq!((c.limits.max_line, c.capture_max), (4096, 5));
    let c = Config::from_values([
        ("smgr.url", Value::Text("http://h".into())),
        ("elements.source", Value::Text("smgr".into())),
        ("burst.threshold", Value::Int(7)),
    ])
    .unwrap();
    assert_eq!(c.burst_threshold, 7);
}

#[test]
fn every_param_is_documented_and_every_documented_one_exists() {
    let doc = include_str!("../../docs/configuration.md");
    let mut documented: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
        .collect();
    let mut params: Vec<&str> = PARAMS.iter().map(|(p, _)| *p).collect();
    documented.sort_unstable();
    params.sort_unstable();
    assert_eq!(documented, params, "docs/configuration.md table vs PARAMS");
}

#[test]
fn every_param_is_read() {
    // A name in PARAMS that from_values never takes would be silently dropped configuration:
    // an empty value must be rejected for every one of them.
    let f = Fixture::new();
    for (name, _) in PARAMS {
        let mode = match *name {
            "ha.file" => Some("file"),
            "ha.url" => Some("http"),
            "ha.command" => Some("command"),
            _ => None,
        };
        let r = match mode {
            Some(m) => f.cfg(&[("ha.mode", m), (name, "")]),
            None => f.cfg(&[(name, "")]),
        };
        assert!(r.is_err(), "{name} is not read");
    }
}

#[test]
fn command_transport_needs_an_executable_program() {
    let f = Fixture::new();
    assert_eq!(f.cfg(&[]).unwrap().client.transport, Transport::Http);
    let c = f
        .cfg(&[("smgr.transport", "command"), ("smgr.command", "/bin/true")])
        .unwrap();
    assert_eq!(c.client.transport, Transport::Command("/bin/true".into()));
    let not_executable = f.path("elements.json");
    for (command, why) in [
        (None, "required"),
        (Some("relative/prog"), "absolute path"),
        (Some("/nonexistent/prog"), "executable"),
        (Some(not_executable.as_str()), "executable"),
    ] {
        let mut pairs = vec![("smgr.transport", "command")];
        pairs.extend(command.map(|c| ("smgr.command", c)));
        let e = f.cfg(&pairs).unwrap_err();
        assert_eq!(e.param, "smgr.command", "{e}");
        assert!(e.to_string().contains(why), "{e}");
    }
    assert_eq!(
        f.cfg(&[("smgr.transport", "ftp")]).unwrap_err().param,
        "smgr.transport"
    );
}

/// The site's file overrides the action's values, and an error in it names the file.
#[test]
fn config_file_values_override_the_actions_and_errors_name_the_file() {
    let f = Fixture::new();
    let site = f.path("omcmsync.conf");
    std::fs::write(
        &site,
        "smgr.url=\"https://smgr.site.example\"\ncoalesce.window.ms=\"250\"\n",
    )
    .unwrap();
    let c = f.cfg(&[("config.file", &site)]).unwrap();
    assert_eq!(c.client.base_url.as_str(), "https://smgr.site.example/");
    assert_eq!(c.window, Duration::from_millis(250));

    std::fs::write(&site, "coalesce.window.ms=\"soon\"\n").unwrap();
    let e = f.cfg(&[("config.file", &site)]).unwrap_err().to_string();
    assert!(
        e.starts_with("parameter 'coalesce.window.ms' has invalid value 'soon'")
            && e.ends_with(&format!("(config.file {site})")),
        "{e}"
    );
    // A parameter the action set wrongly is the action's, not the file's.
    let e = f
        .cfg(&[("config.file", &site), ("retry.max.ms", "x")])
        .unwrap_err();
    assert_eq!(e.param, "coalesce.window.ms");
    std::fs::write(&site, "\n").unwrap();
    let e = f
        .cfg(&[("config.file", &site), ("retry.max.ms", "x")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("retry.max.ms") && !e.contains("config.file"),
        "{e}"
    );
}

/// At a real start with a site's file any error makes the action wait (the file can mend it);
/// without one, errors are refused as ever.
#[test]
fn at_start_waits_for_the_site_file_and_refuses_the_actions_errors() {
    let f = Fixture::new();
    let site = f.path("omcmsync.conf");
    let with = |extra: &[(&str, &str)]| {
        let mut values = vec![("config.file", site.clone())];
        values.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        Config::at_start(values.iter().map(|(k, v)| (*k, Value::Text(v.clone()))))
    };
    let awaiting = |r: Result<Start, ConfigError>| match r {
        Ok(Start::AwaitingSiteFile(e)) => e.to_string(),
        other => panic!("not awaiting: {other:?}"),
    };
    assert!(awaiting(with(&[])).contains("config.file"));
    std::fs::write(&site, "smgr.url=\"smgr.example.net\"\n").unwrap();
    assert!(awaiting(with(&[])).contains("smgr.url"));
    let elements = format!("elements.file=\"{}\"\n", f.path("elements.json"));
    std::fs::write(&site, format!("smgr.url=\"http://h\"\n{elements}")).unwrap();
    assert!(matches!(with(&[]), Ok(Start::Ready(_))));
    // Even the action's own bad value waits: the site's file overrides it.
    assert!(awaiting(with(&[("retry.max.ms", "soon")])).contains("retry.max.ms"));
    // Without a config.file it is refused.
    let refused = Config::at_start([("retry.max.ms", Value::Text("soon".into()))]);
    assert!(refused.is_err());
}
