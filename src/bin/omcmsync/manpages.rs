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
    // The pages an operator reads for exit statuses and paths get those sections too.
    let cli = Cli::command();
    for (page, sections) in SECTIONS {
        let cmd = match page.strip_prefix("omcmsync-") {
            Some(sub) => cli.find_subcommand(sub).cloned(),
            None => Some(cli.clone()),
        };
        let cmd = cmd.ok_or_else(|| format!("no subcommand for {page}"))?;
        let cmd = cmd
            .display_name(*page)
            .bin_name(page.replacen('-', " ", 1))
            .version(env!("CARGO_PKG_VERSION"));
        std::fs::write(
            dir.join(format!("{page}.1")),
            page_with(cmd, sections).map_err(io)?,
        )
        .map_err(io)?;
    }
    std::fs::write(dir.join("rsyslog-omcmsync.5"), module_page()?).map_err(io)?;
    Ok(())
}

/// A man page section: its title and its paragraphs.
type Section = (&'static str, &'static [&'static str]);

/// Sections clap_mangen has no place for, by page.
const SECTIONS: &[(&str, &[Section])] = &[
    (
        "omcmsync",
        &[
            (
                "EXIT STATUS",
                &[
                    "0: done. 1: an error (said on standard error). 2: status, deadletter and \
                     resync found no module running with that state.dir (rsyslogd stopped, or \
                     the action not loaded). status --check: 0 OK, 1 WARNING, 2 CRITICAL, \
                     3 UNKNOWN. check: 0 when every check passes (warnings allowed), 1 when one \
                     fails. A command line omcmsync cannot parse exits 2 as well.",
                ],
            ),
            ("FILES", FILES),
            (
                "SEE ALSO",
                &[
                    "rsyslog-omcmsync(5), omcmsync-status(1), omcmsync-check(1), rsyslogd(8); \
                   /usr/share/doc/omcmsync/operations.md",
                ],
            ),
        ],
    ),
    (
        "omcmsync-status",
        &[(
            "EXIT STATUS",
            &[
                "0: answered. 1: an error. 2: no module runs with that state.dir (with \
                 --format openmetrics the output is then omcmsync_up 0). With --check, the \
                 monitoring-plugin conventions: 0 OK, 1 WARNING (a change waiting --warn-age, \
                 --warn-dead dead letters, the HA role unknown, a degraded parameter), \
                 2 CRITICAL (--crit-age, --crit-dead), 3 UNKNOWN (no module answered).",
            ],
        )],
    ),
    (
        "omcmsync-check",
        &[
            (
                "CHECKS",
                &[
                    "input tls (with --rsyslog-conf: the inputs' TLS files readable by the user \
                     rsyslogd drops to); parameters (as the module reads them, with rsyslog's \
                     maxMessageSize); the files a HUP reads again, readable by that user \
                     (a warning); \
                     cleartext credentials; smgr.tls.cacert and smgr.tls.mycert end dates \
                     (WARN within 30 days, FAIL when expired); state.dir (exists or can be \
                     made, writable by the user rsyslogd drops to, free space); smgr tcp, smgr \
                     tls, smgr auth (System Manager reached with the configured TLS and \
                     credentials); the element list and each element's hosts; ha (the role \
                     can be read).",
                    "Each line says PASS, WARN or FAIL, what was checked, and for WARN and \
                     FAIL the fix.",
                ],
            ),
            (
                "EXIT STATUS",
                &[
                    "0: no check failed (warnings allowed). 1: at least one FAIL (a \
                   configuration that cannot be read is one). 2: the command line was wrong.",
                ],
            ),
            ("FILES", FILES),
        ],
    ),
];

/// The installed paths, for the FILES sections.
const FILES: &[&str] = &[
    "/usr/lib64/rsyslog/omcmsync.so (rpm), /usr/lib/x86_64-linux-gnu/rsyslog/omcmsync.so \
     (deb): the module.",
    "/usr/share/omcmsync/rsyslog/*.conf: the package's rsyslog snippets (enabled by the \
     site's /etc/rsyslog.d/60-omcmsync.conf); /usr/share/omcmsync/examples/: the site's files \
     to start from.",
    "/etc/omcmsync/: the site's files, which no package ships: omcmsync.conf (the action's \
     config.file), the element list (elements.json), TLS files (tls/), secrets, \
     rsyslog-input.conf (an input of the site's own).",
    "/var/lib/omcmsync/ (state.dir): queue.log (the durable queue), deadletter.json and \
     deadletter.json.1 (requests refused for good), control.sock (what status, deadletter \
     and resync talk to), elements.json (System Manager's list, cached).",
    "/var/log/omcmsync/: trace and capture files, rotated by /etc/logrotate.d/omcmsync.",
];

/// A command's page as clap_mangen renders it, with `sections` before its VERSION.
fn page_with(cmd: clap::Command, sections: &[Section]) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut out)?;
    }
    let mut roff = Roff::new();
    for (title, paragraphs) in sections {
        roff.control("SH", [*title]);
        for p in *paragraphs {
            roff.control("PP", []).text([roman(*p)]);
        }
    }
    out.extend(roff.render().into_bytes());
    man.render_version_section(&mut out)?;
    Ok(out)
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
            "/usr/share/omcmsync/rsyslog/ (snippets), /etc/omcmsync/omcmsync.conf (config.file: \
             the site's values), /etc/omcmsync/ (element list, TLS files, secrets), \
             /var/lib/omcmsync/ (state.dir: queue.log, deadletter.json, control.sock)",
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
    fn pages_say_exit_statuses_files_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path()).unwrap();
        // As a reader sees it: roff's escaped hyphens plain.
        let page = |name: &str| {
            let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
            text.replace("\\-", "-")
        };
        for (name, wants) in [
            (
                "omcmsync.1",
                &[
                    "EXIT STATUS",
                    "FILES",
                    "deadletter.json.1",
                    "omcmsync-status(1)",
                ][..],
            ),
            (
                "omcmsync-status.1",
                &["EXIT STATUS", "3 UNKNOWN", "omcmsync status"],
            ),
            (
                "omcmsync-check.1",
                &["CHECKS", "EXIT STATUS", "FILES", "WARN within 30 days"],
            ),
            ("omcmsync-resync.1", &["omcmsync resync"]),
        ] {
            let text = page(name);
            for want in wants {
                assert!(text.contains(want), "{name} lacks {want}:\n{text}");
            }
        }
    }

    #[test]
    fn markdown_becomes_plain_text() {
        assert_eq!(plain("`a` *b* [c](d.md#x) [e] f"), "a b c [e] f");
    }
}
