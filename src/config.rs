//! Every parameter of the module, its type and default, validated in one place.
//!
//! rsyslog hands the action's parameters over as loosely typed values; the omprog mode and the
//! tools read the same names from a file. Both paths end in [`Config::from_values`], so a value
//! is accepted or rejected the same way everywhere, and the error names the parameter, the
//! value and what is expected (that text is what an operator sees from `rsyslogd -N1`).

use std::fmt;
use std::path::PathBuf;

/// The template the rsyslog-conf snippet defines; used when `template` is not given.
pub const DEFAULT_TEMPLATE: &str = "omcmsync_line";

/// How rsyslog should type-check a parameter before we see it.
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
        for (name, value) in values {
            match name {
                "template" => template = Some(text("template", value, "a template name")?),
                "smgr.url" => smgr_url = Some(parse_smgr_url(value)?),
                "trace.file" => trace_file = Some(parse_path("trace.file", value)?),
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
