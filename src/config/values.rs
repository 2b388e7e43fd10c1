//! Parsers for single parameter values; each error names the parameter, the value and what
//! would be right.

use std::path::PathBuf;

use super::StatusCodes;
use super::{ConfigError, Value};

pub const URL_EXPECTED: &str = "the System Manager base URL, http:// or https:// with a host, \
     e.g. smgr.url=\"https://smgr.example.net\"";

pub fn invalid(param: &'static str, value: Value, expected: &str) -> ConfigError {
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

pub fn text(param: &'static str, value: Value, expected: &str) -> Result<String, ConfigError> {
    match value {
        Value::Text(s) if !s.trim().is_empty() => Ok(s),
        other => Err(invalid(param, other, expected)),
    }
}

/// An http(s) URL with a host and no query or fragment. A user name or password in it is
/// refused (they would reach every log line that names the URL), and the value is echoed
/// without them.
pub fn http_url(
    param: &'static str,
    value: Value,
    expected: &str,
) -> Result<url::Url, ConfigError> {
    let raw = text(param, value, expected)?;
    let shown = Value::Text(without_userinfo(&raw));
    let url = url::Url::parse(&raw).map_err(|_| invalid(param, shown.clone(), expected))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            param,
            shown,
            "a URL without a user name or password: give them as smgr.user and \
             smgr.passwordfile, or a token as smgr.tokenfile",
        ));
    }
    let usable = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.query().is_none()
        && url.fragment().is_none();
    usable
        .then_some(url)
        .ok_or_else(|| invalid(param, shown, expected))
}

/// `raw` with whatever stands between `://` and an `@` in the authority replaced by `***`.
pub fn without_userinfo(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://").map(|i| i + 3) else {
        return raw.to_owned();
    };
    let rest = &raw[scheme_end..];
    let authority = rest.find(['/', '?', '#']).map_or(rest, |i| &rest[..i]);
    match authority.rfind('@') {
        Some(at) => format!("{}***{}", &raw[..scheme_end], &rest[at..]),
        None => raw.to_owned(),
    }
}

/// `401, 403, 500-599`: HTTP status codes and ranges.
pub fn status_codes(param: &'static str, value: Value) -> Result<Vec<(u16, u16)>, ConfigError> {
    let expected = "HTTP status codes and ranges, comma-separated, e.g. \"401,403,500-599\"";
    let raw = text(param, value, expected)?;
    StatusCodes::parse_list(&raw)
        .map_err(|e| invalid(param, Value::Text(raw.clone()), &format!("{expected}: {e}")))
}

/// A whole number in `min..=max` (rsyslog hands numbers over as Int, files as text).
pub fn number(param: &'static str, value: Value, min: i64, max: i64) -> Result<u64, ConfigError> {
    let expected = format!("a whole number from {min} to {max}");
    let n = match &value {
        Value::Int(n) => Some(*n),
        Value::Text(s) => s.trim().parse().ok(),
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(n as u64),
        _ => Err(invalid(param, value, &expected)),
    }
}

pub fn path(param: &'static str, value: Value) -> Result<PathBuf, ConfigError> {
    let expected = "an absolute file path";
    let raw = text(param, value, expected)?;
    let path = PathBuf::from(&raw);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(invalid(param, Value::Text(raw), expected))
    }
}

/// An absolute path to a file that exists and can be read now.
pub fn readable_file(
    param: &'static str,
    value: Value,
    what: &str,
) -> Result<(PathBuf, String), ConfigError> {
    let p = path(param, value)?;
    let text = std::fs::read_to_string(&p).map_err(|e| {
        invalid(
            param,
            Value::Text(p.display().to_string()),
            &format!("a readable {what} ({e})"),
        )
    })?;
    Ok((p, text))
}

/// A directory that exists, or whose parent does (it is created at start).
pub fn state_dir(param: &'static str, value: Value) -> Result<PathBuf, ConfigError> {
    let p = path(param, value)?;
    let usable = if p.exists() {
        p.is_dir()
    } else {
        p.parent().is_some_and(|d| d.is_dir())
    };
    if usable {
        Ok(p)
    } else {
        Err(invalid(
            param,
            Value::Text(p.display().to_string()),
            "a directory, or a path whose parent directory exists",
        ))
    }
}

/// One of `choices`.
pub fn choice(
    param: &'static str,
    value: Value,
    choices: &[&'static str],
) -> Result<&'static str, ConfigError> {
    let expected = format!("one of {}", choices.join(", "));
    let raw = text(param, value, &expected)?;
    choices
        .iter()
        .find(|c| c.eq_ignore_ascii_case(raw.trim()))
        .copied()
        .ok_or_else(|| invalid(param, Value::Text(raw), &expected))
}
