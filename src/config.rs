//! Every parameter of the module, its type and default, validated in one place.
//!
//! rsyslog hands the action's parameters over as loosely typed values; the omprog mode and the
//! tools read the same names from a file. Both paths end in [`Config::from_values`], so a value
//! is accepted or rejected the same way everywhere, and the error names the parameter, the
//! value and what is expected (that text is what an operator sees from `rsyslogd -N1`).

use std::fmt;
use std::path::PathBuf;

use crate::classify::{parse_rules, Limits, ObjectRule};

/// The template the rsyslog-conf snippet defines; used when `template` is not given.
pub const DEFAULT_TEMPLATE: &str = "omcmsync_line";

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

/// One accepted parameter name.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
}

/// Every parameter `action(type="omcmsync" ...)` accepts (documented in docs/configuration.md).
pub const PARAMS: &[Param] = &[
    Param {
        name: "template",
        kind: Kind::Word,
    },
    Param {
        name: "smgr.url",
        kind: Kind::Word,
    },
    Param {
        name: "trace.file",
        kind: Kind::Text,
    },
    Param {
        name: "rules.file",
        kind: Kind::Text,
    },
    Param {
        name: "line.maxlength",
        kind: Kind::Word,
    },
    Param {
        name: "duplicate.maxcount",
        kind: Kind::Word,
    },
    Param {
        name: "capture.file",
        kind: Kind::Text,
    },
    Param {
        name: "capture.max",
        kind: Kind::Word,
    },
];

/// A parameter value as the configuration source delivered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Int(i64),
}

/// The validated configuration of one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Name of the rsyslog template that renders each message for us.
    pub template: String,
    /// Base URL of the System Manager inventory API.
    pub smgr_url: url::Url,
    /// Where to write one JSON record per received line, if anywhere.
    pub trace_file: Option<PathBuf>,
    /// Object types added to (or replacing) the built-in table, from `rules.file`.
    pub rules: Vec<ObjectRule>,
    /// Classifier limits (`line.maxlength`, `duplicate.maxcount`).
    pub limits: Limits,
    /// Where admin-looking lines that did not classify are sampled, if anywhere.
    pub capture_file: Option<PathBuf>,
    /// How many lines the capture file takes (per open; HUP reopens it).
    pub capture_max: u64,
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

impl Config {
    /// Builds a configuration from `(name, value)` pairs; unknown names are the caller's
    /// business (rsyslog reports them itself), values are checked here.
    pub fn from_values<'a>(
        values: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Result<Config, ConfigError> {
        let mut template = None;
        let mut smgr_url = None;
        let mut trace_file = None;
        let mut rules = Vec::new();
        let mut limits = Limits::default();
        let mut capture_file = None;
        let mut capture_max = 1000;
        for (name, value) in values {
            match name {
                "template" => template = Some(text("template", value, "a template name")?),
                "smgr.url" => smgr_url = Some(parse_smgr_url(value)?),
                "trace.file" => trace_file = Some(parse_path("trace.file", value)?),
                "rules.file" => rules = parse_rules_file(value)?,
                "line.maxlength" => {
                    limits.max_line = positive("line.maxlength", value, 1 << 20)? as usize
                }
                "duplicate.maxcount" => {
                    limits.max_duplicate = positive("duplicate.maxcount", value, 100_000)? as u32
                }
                "capture.file" => capture_file = Some(parse_path("capture.file", value)?),
                "capture.max" => capture_max = positive("capture.max", value, 1_000_000)? as u64,
                _ => {}
            }
        }
        Ok(Config {
            template: template.unwrap_or_else(|| DEFAULT_TEMPLATE.to_owned()),
            smgr_url: smgr_url.ok_or_else(|| ConfigError {
                param: "smgr.url",
                value: None,
                expected: URL_EXPECTED.to_owned(),
            })?,
            trace_file,
            rules,
            limits,
            capture_file,
            capture_max,
        })
    }
}

const URL_EXPECTED: &str = "the System Manager base URL, http:// or https:// with a host, \
     e.g. smgr.url=\"https://smgr.example.net\"";

fn text(param: &'static str, value: Value, expected: &str) -> Result<String, ConfigError> {
    match value {
        Value::Text(s) if !s.trim().is_empty() => Ok(s),
        other => Err(invalid(param, other, expected)),
    }
}

fn invalid(param: &'static str, value: Value, expected: &str) -> ConfigError {
    let value = match value {
        Value::Text(s) => s,
        Value::Int(n) => n.to_string(),
    };
    ConfigError {
        param,
        value: Some(value),
        expected: expected.to_owned(),
    }
}

fn parse_smgr_url(value: Value) -> Result<url::Url, ConfigError> {
    let raw = text("smgr.url", value, URL_EXPECTED)?;
    let bad = || invalid("smgr.url", Value::Text(raw.clone()), URL_EXPECTED);
    let url = url::Url::parse(&raw).map_err(|_| bad())?;
    let usable = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.query().is_none()
        && url.fragment().is_none();
    if usable {
        Ok(url)
    } else {
        Err(bad())
    }
}

/// A whole number in `1..=max` (rsyslog hands numbers over as Int, files as text).
fn positive(param: &'static str, value: Value, max: i64) -> Result<i64, ConfigError> {
    let expected = format!("a whole number from 1 to {max}");
    let n = match &value {
        Value::Int(n) => Some(*n),
        Value::Text(s) => s.trim().parse().ok(),
    };
    match n {
        Some(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(invalid(param, value, &expected)),
    }
}

/// Reads and checks the object rule file now, so that a broken one fails `rsyslogd -N1`.
fn parse_rules_file(value: Value) -> Result<Vec<ObjectRule>, ConfigError> {
    let path = parse_path("rules.file", value)?;
    let shown = || Value::Text(path.display().to_string());
    let text = std::fs::read_to_string(&path).map_err(|e| {
        invalid(
            "rules.file",
            shown(),
            &format!("a readable JSON rule file ({e})"),
        )
    })?;
    parse_rules(&text).map_err(|e| {
        invalid(
            "rules.file",
            shown(),
            &format!("a rule file as in docs/configuration.md: {e}"),
        )
    })
}

fn parse_path(param: &'static str, value: Value) -> Result<PathBuf, ConfigError> {
    let expected = "an absolute file path";
    let raw = text(param, value, expected)?;
    let path = PathBuf::from(&raw);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(invalid(param, Value::Text(raw), expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_values(pairs.iter().map(|(k, v)| (*k, Value::Text(v.to_string()))))
    }

    #[test]
    fn minimal_config_takes_defaults() {
        let c = cfg(&[("smgr.url", "https://smgr.example.net")]).unwrap();
        assert_eq!(c.template, DEFAULT_TEMPLATE);
        assert_eq!(c.smgr_url.as_str(), "https://smgr.example.net/");
        assert_eq!(c.trace_file, None);
    }

    #[test]
    fn accepts_ipv6_and_port_urls() {
        for u in [
            "http://[::1]:8443/base",
            "https://10.0.0.1:443",
            "http://smgr:80/x/",
        ] {
            assert!(cfg(&[("smgr.url", u)]).is_ok(), "{u}");
        }
    }

    #[test]
    fn rejects_bad_urls_naming_parameter_and_value() {
        for u in [
            "ftp://smgr",
            "smgr.example.net",
            "https://",
            "http://h/?q=1",
            "",
            "file:///x",
        ] {
            let e = cfg(&[("smgr.url", u)]).unwrap_err();
            assert_eq!(e.param, "smgr.url", "{u}");
            let msg = e.to_string();
            assert!(
                msg.contains("'smgr.url'") && msg.contains("https://"),
                "{msg}"
            );
            assert!(msg.contains(&format!("'{u}'")), "{msg}");
        }
    }

    #[test]
    fn missing_url_is_reported_as_required() {
        let e = cfg(&[("template", "t")]).unwrap_err();
        assert_eq!(e.value, None);
        assert!(e.to_string().contains("required"));
    }

    #[test]
    fn trace_file_must_be_absolute() {
        let e = cfg(&[("smgr.url", "http://h"), ("trace.file", "rel/trace")]).unwrap_err();
        assert_eq!(e.param, "trace.file");
        let c = cfg(&[("smgr.url", "http://h"), ("trace.file", "/var/log/t.json")]).unwrap();
        assert_eq!(c.trace_file, Some(PathBuf::from("/var/log/t.json")));
    }

    #[test]
    fn numbers_are_range_checked() {
        for bad in ["0", "-1", "x", "99999999"] {
            let e = cfg(&[("smgr.url", "http://h"), ("duplicate.maxcount", bad)]).unwrap_err();
            assert_eq!(e.param, "duplicate.maxcount", "{bad}");
            assert!(e.to_string().contains("whole number from 1 to"), "{e}");
        }
        let c = Config::from_values([
            ("smgr.url", Value::Text("http://h".into())),
            ("line.maxlength", Value::Int(4096)),
            ("capture.max", Value::Int(5)),
        ])
        .unwrap();
        assert_eq!((c.limits.max_line, c.capture_max), (4096, 5));
    }

    #[test]
    fn rules_file_is_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("omcm-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.json");
        std::fs::write(&good, r#"{"objects":[{"name":"vrt"}]}"#).unwrap();
        let c = cfg(&[
            ("smgr.url", "http://h"),
            ("rules.file", good.to_str().unwrap()),
        ])
        .unwrap();
        assert_eq!(c.rules.len(), 1);
        let bad = dir.join("bad.json");
        std::fs::write(&bad, r#"{"objects":[{"name":"vrt","scope":"x"}]}"#).unwrap();
        let e = cfg(&[
            ("smgr.url", "http://h"),
            ("rules.file", bad.to_str().unwrap()),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("scope"), "{e}");
        let e = cfg(&[
            ("smgr.url", "http://h"),
            ("rules.file", "/nonexistent/r.json"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("readable"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn every_param_is_documented_and_every_documented_one_exists() {
        let doc = include_str!("../docs/configuration.md");
        let mut documented: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
            .collect();
        let mut params: Vec<&str> = PARAMS.iter().map(|p| p.name).collect();
        documented.sort_unstable();
        params.sort_unstable();
        assert_eq!(documented, params, "docs/configuration.md table vs PARAMS");
    }

    #[test]
    fn every_param_is_handled() {
        // A name in PARAMS that from_values ignores would be silently dropped config.
        for p in PARAMS {
            let mut pairs = vec![("smgr.url", Value::Text("http://h".into()))];
            pairs.push((p.name, Value::Text(String::new())));
            assert!(
                Config::from_values(pairs).is_err(),
                "{} not validated",
                p.name
            );
        }
    }
}
