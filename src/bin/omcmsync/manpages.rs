//! The man pages, generated: omcmsync(1) and one page per subcommand from the command line's
//! declarations (clap_mangen), and rsyslog-omcmsync(5) from docs/configuration.md's parameter
//! table, so that table stays the one source of the module's parameters.

use std::path::Path;

use clap::CommandFactory;
use clap_mangen::roff::{bold, roman, Inline, Roff};

use crate::cli::Cli;

/// docs/configuration.md, as compiled in.
const CONFIGURATION: &str = include_str!("../../../docs/configuration.md");

pub fn write(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    clap_mangen::generate_to(Cli::command(), dir).map_err(io)?;
    std::fs::write(dir.join("rsyslog-omcmsync.5"), module_page()?).map_err(io)?;
    Ok(())
}

/// One row of the parameter table: name, required, default, value.
fn rows(markdown: &str) -> Vec<[String; 4]> {
    markdown
        .lines()
        .skip_while(|l| !l.starts_with("| parameter |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split(" | ")
                .map(|c| plain(c.trim()))
                .collect();
            <[String; 4]>::try_from(cells).ok()
        })
        .collect()
}

/// Markdown inline text as plain text: code spans and emphasis unmarked, links their text.
fn plain(md: &str) -> String {
    let mut out = String::with_capacity(md.len());
    let mut rest = md;
    while let Some(i) = rest.find(['`', '*', '[']) {
        out.push_str(&rest[..i]);
        let c = rest.as_bytes()[i];
        rest = &rest[i + 1..];
        if c == b'[' {
            // [text](target) -> text
            if let Some((text, after)) = rest.split_once("](") {
                if let Some((_, tail)) = after.split_once(')') {
                    out.push_str(text);
                    rest = tail;
                    continue;
                }
            }
            out.push('[');
        }
    }
    out.push_str(rest);
    out
}

fn module_page() -> Result<String, String> {
    let rows = rows(CONFIGURATION);
    if rows.len() < 10 {
        return Err("docs/configuration.md: its parameter table was not found".into());
    }
    let version = env!("CARGO_PKG_VERSION");
    let mut page = Roff::new();
    page.control("TH", ["RSYSLOG-OMCMSYNC", "5", "", &format!("omcmsync {version}")])
        .control("SH", ["NAME"])
        .text([roman(
            "rsyslog-omcmsync - parameters of the omcmsync rsyslog output module",
        )])
        .control("SH", ["SYNOPSIS"])
        .text([roman(
            "module(load=\"omcmsync\")  action(type=\"omcmsync\" smgr.url=\"...\" elements.file=\"...\" ...)",
        )])
        .control("SH", ["DESCRIPTION"])
        .text([roman(
            "omcmsync turns Avaya Communication Manager command-history events, forwarded by the \
             CM's rsyslog, into System Manager resync requests, durably queued and delivered at \
             least once. Parameter names are case-insensitive. Values are checked when rsyslog \
             reads its configuration: rsyslogd -N1 exits non-zero and names the parameter, the \
             value and what is expected.",
        )])
        .control("SH", ["PARAMETERS"]);
    for [name, required, default, value] in rows {
        page.control("TP", []).text(vec![
            bold(name),
            roman(format!("  (required: {required}; default: {default})")),
        ]);
        page.text(vec![Inline::Roman(value)]);
    }
    page.control("SH", ["FILES"])
        .text([roman(
            "/etc/rsyslog.d/omcmsync/ (snippets), /etc/omcmsync/ (element list, TLS files, \
             secrets), /var/lib/omcmsync/ (state.dir: queue.log, deadletter.json, control.sock)",
        )])
        .control("SH", ["SEE ALSO"])
        .text([roman(
            "omcmsync(1), rsyslogd(8), rsyslog.conf(5); /usr/share/doc/omcmsync/configuration.md",
        )]);
    Ok(page.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parameter_of_the_table_is_on_the_page() {
        let rows = rows(CONFIGURATION);
        let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        for (param, _) in omcmsync::config::PARAMS {
            assert!(names.contains(param), "{param} missing from the page");
        }
        let page = module_page().unwrap();
        assert!(
            page.contains("smgr.transport") && !page.contains('`'),
            "{page}"
        );
    }

    #[test]
    fn markdown_becomes_plain_text() {
        assert_eq!(plain("`a` *b* [c](d.md#x) [e] f"), "a b c [e] f");
    }
}
