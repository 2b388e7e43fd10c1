//! The omcmsync actions of an rsyslog configuration, as rsyslogd reads it: `rsyslogd -N1 -o`
//! writes the whole configuration with its includes resolved, and that text is scanned for
//! `action(type="omcmsync" ...)`, omprog actions that run `omcmsync omprog --config FILE`, and
//! rsyslog's `maxMessageSize`.

use std::path::Path;
use std::process::Command;

use super::{Action, Report};

/// rsyslog's maxMessageSize when the configuration does not set it (runtime/glbl.c).
const RSYSLOG_DEFAULT_MAX_MESSAGE: u64 = 8096;

pub fn actions(report: &mut Report, conf: &Path, rsyslogd: &str) -> Vec<Action> {
    let Some(text) = validated(report, conf, rsyslogd) else {
        return Vec::new();
    };
    let max = max_message_size(&text).unwrap_or(RSYSLOG_DEFAULT_MAX_MESSAGE);
    let user = drop_user(&text);
    input_tls(report, &tls_files(&text), user.as_deref());
    blocks(&text, "action")
        .into_iter()
        .filter_map(|params| {
            let of_type = |t: &str| {
                params
                    .iter()
                    .any(|(n, v)| n == "type" && v.eq_ignore_ascii_case(t))
            };
            let (params, omprog) = if of_type("omcmsync") {
                (params, false)
            } else if of_type("omprog") {
                (vec![("config.file".into(), omprog_config(&params)?)], true)
            } else {
                return None;
            };
            Some(Action {
                params,
                max_message_size: Some(max),
                user: user.clone(),
                omprog,
            })
        })
        .collect()
}

/// `rsyslogd -N1` on `conf`, said; the whole configuration as rsyslogd read it (`-o`:
/// includes resolved), when it could write it.
fn validated(report: &mut Report, conf: &Path, rsyslogd: &str) -> Option<String> {
    let full = std::env::temp_dir().join(format!("omcmsync-check-{}.conf", std::process::id()));
    let out = Command::new(rsyslogd)
        .args(["-N1", "-o"])
        .arg(&full)
        .arg("-f")
        .arg(conf)
        .output();
    let text = std::fs::read_to_string(&full);
    let _ = std::fs::remove_file(&full);
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            report.fail(
                "rsyslogd -N1",
                &format!("cannot run {rsyslogd}: {e}"),
                "install rsyslog, or name it with --rsyslogd PATH",
            );
            return None;
        }
    };
    if out.status.success() {
        report.pass("rsyslogd -N1", &format!("{} is valid", conf.display()));
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.contains("config validation run"))
            .take(5)
            .collect();
        report.fail(
            "rsyslogd -N1",
            &format!("{} is refused: {}", conf.display(), errors.join(" | ")),
            "what rsyslogd names above",
        );
    }
    text.ok()
}

/// The configuration file of an omprog action that runs `omcmsync omprog --config FILE`.
fn omprog_config(params: &[(String, String)]) -> Option<String> {
    let binary = params.iter().find(|(n, _)| n == "binary").map(|(_, v)| v)?;
    let mut words = binary.split_whitespace();
    let program = words.next()?;
    if !program.ends_with("omcmsync") || words.next()? != "omprog" {
        return None;
    }
    let mut rest = words.skip_while(|w| *w != "--config");
    rest.next()?;
    rest.next().map(str::to_owned)
}

/// The TLS files rsyslog's inputs read: `DefaultNetstreamDriverCAFile`, `...CertFile`,
/// `...KeyFile` (global() or legacy), and `streamDriver.CAFile`, `...CertFile`, `...KeyFile`
/// of a module() or an input().
fn tls_files(text: &str) -> Vec<String> {
    let is_tls_file = |n: &str| {
        (n.starts_with("defaultnetstreamdriver") || n.starts_with("streamdriver."))
            && ["cafile", "certfile", "keyfile"]
                .iter()
                .any(|s| n.ends_with(s))
    };
    let mut files: Vec<String> = ["global", "module", "input"]
        .into_iter()
        .flat_map(|kind| blocks(text, kind))
        .flatten()
        .filter(|(n, _)| is_tls_file(n))
        .map(|(_, v)| v)
        .collect();
    files.extend(
        legacy_settings(text)
            .filter(|(n, _)| is_tls_file(n))
            .map(|(_, v)| v.to_owned()),
    );
    files.sort();
    files.dedup();
    files
}

/// Each input TLS file must be readable by the user rsyslogd drops to: rsyslog's TLS driver
/// reads them after the drop, so a root-only key fails every CM connection, not the start.
fn input_tls(report: &mut Report, files: &[String], user: Option<&str>) {
    let who = user.unwrap_or("root");
    for file in files {
        match super::user::may_read(who, Path::new(file)) {
            Ok(()) => report.pass("input tls", &format!("{file} readable by rsyslogd's user {who}")),
            Err(e) => report.fail(
                "input tls",
                &format!(
                    "{file} is not readable by rsyslogd's user {who} ({e}): rsyslog reads it \
                     after dropping privileges, so every TLS connection from a CM would fail"
                ),
                &format!("let {who} read it: chgrp {who} {file}; chmod 0640 {file} (and its directories searchable)"),
            ),
        }
    }
}

/// `global(maxMessageSize=...)` or `$MaxMessageSize`.
fn max_message_size(text: &str) -> Option<u64> {
    global_setting(text, "maxmessagesize").and_then(|v| size(&v))
}

/// The user (name or uid) rsyslogd drops to: `global(privdrop.user.name=...)` or
/// `privdrop.user.id` (8.2110 and later), `$PrivDropToUser` or `$PrivDropToUserID`.
fn drop_user(text: &str) -> Option<String> {
    [
        "privdrop.user.name",
        "privdrop.user.id",
        "privdroptouser",
        "privdroptouserid",
    ]
    .into_iter()
    .find_map(|name| global_setting(text, name))
}

/// A global setting, the last one given: `global(name=...)` or the legacy `$name value`
/// (names lower-cased).
fn global_setting(text: &str, name: &str) -> Option<String> {
    let from_global = blocks(text, "global")
        .into_iter()
        .flatten()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v)
        .next_back();
    let legacy = legacy_settings(text)
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.to_owned())
        .next_back();
    from_global.or(legacy)
}

/// The legacy `$Name value` lines: each name lower-cased, with its value.
fn legacy_settings(text: &str) -> impl DoubleEndedIterator<Item = (String, &str)> {
    text.lines().filter_map(|l| {
        let (n, value) = l
            .trim()
            .strip_prefix('$')?
            .split_once(char::is_whitespace)?;
        Some((n.to_ascii_lowercase(), value.trim()))
    })
}

/// An rsyslog size: digits with an optional suffix (k, m, g binary; K, M, G decimal).
fn size(v: &str) -> Option<u64> {
    let digits = v.trim_end_matches(char::is_alphabetic);
    let n: u64 = digits.parse().ok()?;
    let factor = match &v[digits.len()..] {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "K" => 1000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => return None,
    };
    Some(n.saturating_mul(factor))
}

/// The parameters of every `name( ... )` statement, names lower-cased (rsyslog's are
/// case-insensitive). Comments and quoted strings are honoured; anything unreadable ends
/// the statement.
fn blocks(text: &str, statement: &str) -> Vec<Vec<(String, String)>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' | b'\'' => i = skip_string(b, i).1,
            c if c.is_ascii_alphabetic() => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
                let word = &text[start..i];
                let mut j = i;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if word.eq_ignore_ascii_case(statement) && b.get(j) == Some(&b'(') {
                    let (params, end) = params(text, j + 1);
                    out.push(params);
                    i = end;
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// `name="value" name=word ...` up to the closing parenthesis; returns them and where the
/// statement ends.
fn params(text: &str, mut i: usize) -> (Vec<(String, String)>, usize) {
    let b = text.as_bytes();
    let mut out = Vec::new();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] == b')' {
            return (out, i + 1);
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'.' | b'_' | b'-')) {
            i += 1;
        }
        let name = text[start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if name.is_empty() || b.get(i) != Some(&b'=') {
            return (out, i + 1);
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = if matches!(b.get(i), Some(b'"' | b'\'')) {
            let (value, end) = skip_string(b, i);
            i = end;
            value
        } else {
            let start = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b')' {
                i += 1;
            }
            text[start..i].to_owned()
        };
        out.push((name, value));
    }
}

/// The string starting at the quote at `i`, unescaped, and the index after it.
fn skip_string(b: &[u8], i: usize) -> (String, usize) {
    let quote = b[i];
    let mut value = Vec::new();
    let mut j = i + 1;
    while j < b.len() && b[j] != quote {
        if b[j] == b'\\' && j + 1 < b.len() {
            j += 1;
        }
        value.push(b[j]);
        j += 1;
    }
    (String::from_utf8_lossy(&value).into_owned(), j + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_sizes_are_read_as_rsyslog_writes_them() {
        let text = r#"
# action(type="omcmsync" smgr.url="commented")
global(workDirectory="/var/spool/rsyslog" maxMessageSize="64k")
module(load="omcmsync")
ruleset(name="cm") {
  action(type="omfile" file="/x")
  action(Type="omcmsync" name="omcmsync"
         smgr.url="https://smgr.example.net" template = "a \"quoted\" name"
         state.dir=/var/lib/omcmsync)
}
"#;
        let actions: Vec<_> = blocks(text, "action");
        assert_eq!(actions.len(), 2);
        assert_eq!(
            actions[1],
            vec![
                ("type".into(), "omcmsync".into()),
                ("name".into(), "omcmsync".into()),
                ("smgr.url".into(), "https://smgr.example.net".into()),
                ("template".into(), "a \"quoted\" name".into()),
                ("state.dir".into(), "/var/lib/omcmsync".into()),
            ]
        );
        assert_eq!(max_message_size(text), Some(64 << 10));
        assert_eq!(max_message_size("$MaxMessageSize 2K\n"), Some(2000));
        assert_eq!(max_message_size("global(x=\"1\")"), None);
        assert_eq!(
            drop_user("$PrivDropToUser syslog\n").as_deref(),
            Some("syslog")
        );
        assert_eq!(
            drop_user("global(privdrop.user.name=\"rsyslog\")").as_deref(),
            Some("rsyslog")
        );
        assert_eq!(drop_user(text), None);
        for junk in [
            "action(",
            "action(=",
            "action(a=\"",
            "global(maxmessagesize=9q)",
        ] {
            let _ = blocks(junk, "action");
            let _ = max_message_size(junk);
        }
    }
}
