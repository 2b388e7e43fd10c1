//! `config.file`: the site's values in a file of its own, one `name="value"` per line.
//!
//! The packages' rsyslog snippets are package-owned and replaced by every upgrade; what a site
//! sets (System Manager's URL, its CA, the element list) lives in this file, which no package
//! ships, so an upgrade never asks about it and never changes it. The omprog mode reads the
//! same file. Its values override the action's own parameters: the snippet holds the
//! package's defaults, the file the site's choices.

use std::path::Path;

use super::values::{invalid, text};
use super::{ConfigError, Value, PARAMS};

/// What a `config.file` value must be.
const EXPECTED: &str = "a readable file of name=\"value\" lines with the action's parameters, \
     e.g. config.file=\"/etc/omcmsync/omcmsync.conf\" (example: \
     /usr/share/omcmsync/examples/omcmsync.conf)";

/// The parameters `config.file` names, each with its canonical name. Any error names
/// `config.file`, the file and the line or parameter at fault.
pub fn read(value: Value) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let path = text("config.file", value, EXPECTED)?;
    let fail = |why: String| invalid("config.file", Value::Text(path.clone()), &why);
    let body =
        read_small(Path::new(&path)).map_err(|e| fail(format!("{EXPECTED}; reading it: {e}")))?;
    let pairs = parse(&body).map_err(|e| fail(format!("name=\"value\" lines: {e}")))?;
    pairs
        .into_iter()
        .map(
            |(name, value)| match PARAMS.iter().find(|(p, _)| *p == name) {
                Some(("config.file", _)) => Err(fail("no config.file inside config.file".into())),
                // rsyslog binds the template when it reads the action, before this file is read.
                Some(("template", _)) => Err(fail("template set in the action, not here".into())),
                Some((p, _)) => Ok((*p, value)),
                None => Err(fail(format!(
                    "only the action's parameters (docs/configuration.md): '{name}' is not one"
                ))),
            },
        )
        .collect()
}

/// A regular file of at most [`MAX_BYTES`] (a FIFO or a device would block or exhaust the
/// reader of rsyslog's configuration).
fn read_small(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut body = String::new();
    file.take(MAX_BYTES + 1).read_to_string(&mut body)?;
    if body.len() as u64 > MAX_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_BYTES} bytes"
        )));
    }
    Ok(body)
}

/// Far more than every parameter with a long value.
const MAX_BYTES: u64 = 1 << 20;

/// Parses `name="value"` lines: the value quoted (and then taken as it is up to the closing
/// quote) or bare (up to a `#` comment); `#` at the start of a line or after a value starts a
/// comment. Names are case-insensitive, as rsyslog's are.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(n, l)| parse_line(n + 1, l))
        .collect()
}

fn parse_line(line: usize, l: &str) -> Result<(String, String), String> {
    let (name, value) = l
        .split_once('=')
        .ok_or(format!("line {line}: expected name=\"value\""))?;
    let value = value.trim_start();
    let value = match value.strip_prefix('"') {
        Some(quoted) => {
            let (value, rest) = quoted
                .split_once('"')
                .ok_or(format!("line {line}: the value's closing quote is missing"))?;
            let rest = rest.trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                return Err(format!(
                    "line {line}: '{rest}' after the value: one name=\"value\" per line, a comment after #"
                ));
            }
            value
        }
        None => value.split_once('#').map_or(value, |(v, _)| v).trim_end(),
    };
    Ok((name.trim().to_ascii_lowercase(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_and_quotes() {
        let pairs = parse("# comment\n\nsmgr.url=\"http://h\"\n  State.Dir = /var/x \n").unwrap();
        assert_eq!(
            pairs,
            [
                ("smgr.url".into(), "http://h".into()),
                ("state.dir".into(), "/var/x".into())
            ]
        );
        assert!(parse("nonsense").unwrap_err().contains("line 1"));
        let pairs = parse(
            "state.dir=\"/var/lib/o\"  # the queue\nsmgr.url=http://h # bare\nha.command=\"a # b\"\n",
        )
        .unwrap();
        assert_eq!(
            pairs,
            [
                ("state.dir".into(), "/var/lib/o".into()),
                ("smgr.url".into(), "http://h".into()),
                ("ha.command".into(), "a # b".into())
            ]
        );
        assert!(parse("a=\"x\" y").unwrap_err().contains("after the value"));
        assert!(parse("a=\"x").unwrap_err().contains("closing quote"));
    }

    #[test]
    fn unknown_names_nesting_and_missing_files_name_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("omcmsync.conf");
        let value = || Value::Text(path.display().to_string());
        let err = read(value()).unwrap_err().to_string();
        assert!(
            err.starts_with("parameter 'config.file' has invalid value"),
            "{err}"
        );
        assert!(err.contains("No such file"), "{err}");
        std::fs::write(&path, "smgr.url=\"http://h\"\nsmgr.ulr=\"x\"\n").unwrap();
        assert!(read(value())
            .unwrap_err()
            .to_string()
            .contains("'smgr.ulr' is not one"));
        std::fs::write(&path, "config.file=\"/x\"\n").unwrap();
        assert!(read(value())
            .unwrap_err()
            .to_string()
            .contains("no config.file inside"));
        std::fs::write(&path, "SMGR.URL=\"http://h\"\n").unwrap();
        assert_eq!(
            read(value()).unwrap(),
            [("smgr.url", "http://h".to_owned())]
        );
    }
}
