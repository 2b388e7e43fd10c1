//! The command line, declared once: parsing, `--help`, errors, shell completions and the man
//! page all come from these types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The companion of the omcmsync rsyslog module: look at what a running module has queued,
/// act on it, check a setup, and read CM lines as the module would.
#[derive(Parser, Debug)]
#[command(
    name = "omcmsync",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where the running module keeps its state (its `state.dir`).
#[derive(Args, Debug, Clone)]
pub struct StateDir {
    /// The module's state.dir; its control socket is STATE_DIR/control.sock.
    #[arg(long, value_name = "DIR", default_value = omcmsync::config::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show what the running module has queued, per element, and what System Manager last
    /// answered. Exit status 2 when no module runs with that state.dir.
    Status {
        #[command(flatten)]
        dir: StateDir,
        /// The module's answer as JSON.
        #[arg(long, conflicts_with_all = ["check", "format"])]
        json: bool,
        /// A monitoring check (Nagios, Icinga): one line with performance data, and exit
        /// status 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (no module answered).
        #[arg(long, conflicts_with = "format")]
        check: bool,
        #[command(flatten)]
        thresholds: Thresholds,
        /// `openmetrics`: the figures for node_exporter's textfile collector (Prometheus).
        #[arg(long, value_name = "FORMAT", value_parser = ["openmetrics"])]
        format: Option<String>,
        /// Read STATE_DIR's queue and dead-letter store without a running module (changing
        /// nothing): what is pending per element and what was refused. For a stopped rsyslogd,
        /// and the packages' purge and erase.
        #[arg(long, conflicts_with_all = ["check", "format"])]
        offline: bool,
    },
    /// List the requests System Manager refused for good, or put them back into the queue.
    Deadletter {
        #[command(subcommand)]
        action: DeadletterAction,
    },
    /// Queue an operator's own resync request: a whole element, one object type, or one
    /// object. Delivered like any change (durable, coalesced, retried).
    Resync {
        #[command(flatten)]
        dir: StateDir,
        /// The element, as named in the element list.
        #[arg(long, value_name = "E")]
        element: String,
        /// An object type (station, agent, hunt-group, ...): resync that type only.
        #[arg(long = "type", value_name = "T")]
        ty: Option<String>,
        /// One object of --type (an extension, an agent id, ...).
        #[arg(long, value_name = "I", requires = "ty")]
        id: Option<String>,
    },
    /// Reconcile now: read CM's own command history over OSSI and request every change in it
    /// that syslog never delivered (elements with a directory under reconcile.dir). Waits for
    /// the sessions and says what each found; exit status 0 when all were judged.
    Reconcile {
        #[command(flatten)]
        dir: StateDir,
        /// One element (default: every reconciled element).
        #[arg(long, value_name = "E")]
        element: Option<String>,
        /// Compare this far back (90s, 30m, 2h, 1d) instead of from where the last session
        /// ended.
        #[arg(long, value_name = "AGO", value_parser = crate::reconcile::parse_since)]
        since: Option<std::time::Duration>,
        /// How long to wait for the sessions, in seconds.
        #[arg(long, value_name = "S", default_value_t = 600)]
        wait: u64,
    },
    /// Check a setup before trusting it: the action's parameters, state.dir, the element
    /// hosts, System Manager (TCP, TLS, authentication) and the HA role. One line per check;
    /// exit status 0 only when all pass.
    Check {
        /// An rsyslog configuration with an omcmsync action (includes are followed: it is read
        /// through `rsyslogd -N1 -o`).
        #[arg(
            long,
            value_name = "FILE",
            conflicts_with = "config",
            required_unless_present = "config"
        )]
        rsyslog_conf: Option<PathBuf>,
        /// The action's parameters alone, from a `config.file` (name="value" lines, as the
        /// omprog mode reads).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The rsyslogd to read --rsyslog-conf with.
        #[arg(long, value_name = "PATH", default_value = "rsyslogd")]
        rsyslogd: String,
    },
    /// Read lines (a capture from a CM, or the module's template lines) and print, one JSON
    /// object per line, what the module would do with each; a summary goes to standard error.
    Classify {
        /// A rule file adding or replacing object types (docs/classifier.md).
        #[arg(long, value_name = "FILE")]
        rules: Option<PathBuf>,
        /// The lines to read; standard input when absent or `-`.
        #[arg(value_name = "FILE")]
        input: Option<PathBuf>,
    },
    /// Run the module's pipeline under rsyslog's omprog (/usr/share/doc/omcmsync/omprog.md).
    Omprog {
        /// The action's parameters, name=value lines.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Write the man pages (omcmsync.1, one per subcommand, rsyslog-omcmsync.5) into DIR.
    #[command(hide = true)]
    Manpages {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum DeadletterAction {
    /// List the newest refused requests (JSON lines: time, element, status, answer, body),
    /// oldest first, and how many the filter selects in all.
    List {
        #[command(flatten)]
        dir: StateDir,
        #[command(flatten)]
        filter: DeadletterFilter,
        /// Show at most the newest N (1 to 1000).
        #[arg(long, value_name = "N", default_value_t = 100,
              value_parser = clap::value_parser!(u64).range(1..=1000))]
        limit: u64,
    },
    /// Put the refused requests back into the live queue: they are sent again like any
    /// change, and leave the dead-letter file once they are on disk in the queue.
    Requeue {
        #[command(flatten)]
        dir: StateDir,
        #[command(flatten)]
        filter: DeadletterFilter,
    },
}

/// `status --check`: WARNING and CRITICAL thresholds. An unknown HA role or a degraded
/// parameter is a WARNING.
#[derive(Args, Debug, Clone)]
pub struct Thresholds {
    /// WARNING when a change has waited this long (an age: 90s, 5m, 2h).
    #[arg(long, value_name = "AGE", default_value = "5m", value_parser = parse_age)]
    pub warn_age: u64,
    /// CRITICAL when a change has waited this long.
    #[arg(long, value_name = "AGE", default_value = "30m", value_parser = parse_age)]
    pub crit_age: u64,
    /// WARNING at this many dead-lettered requests.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub warn_dead: u64,
    /// CRITICAL at this many dead-lettered requests.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub crit_dead: u64,
}

#[derive(Args, Debug, Clone)]
pub struct DeadletterFilter {
    /// Only this element's.
    #[arg(long, value_name = "E")]
    pub element: Option<String>,
    /// Only those refused at or after T: an RFC 3339 time (2026-12-01T08:00:00Z) or an age
    /// (90s, 30m, 2h, 7d).
    #[arg(long, value_name = "T", value_parser = parse_since)]
    pub since: Option<u64>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// `--since`: milliseconds since the Unix epoch.
fn parse_since(text: &str) -> Result<u64, String> {
    if let Some(ms) = omcmsync::clock::parse_rfc3339_ms(text) {
        return Ok(ms);
    }
    let age = parse_age(text)
        .map_err(|e| format!("{e} (or give an RFC 3339 time such as 2026-12-01T08:00:00Z)"))?;
    Ok(omcmsync::clock::now_ms().saturating_sub(age))
}

/// An age (`90s`, `30m`, `2h`, `7d`) in milliseconds.
fn parse_age(text: &str) -> Result<u64, String> {
    let (digits, unit) = text.split_at(text.trim_end_matches(char::is_alphabetic).len());
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}': expected an age such as 30m"))?;
    let unit_ms = match unit {
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("'{text}': an age ends in s, m, h or d")),
    };
    Ok(n.saturating_mul(unit_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn since_takes_times_and_ages() {
        assert_eq!(
            parse_since("2026-12-01T08:00:00Z").unwrap(),
            1_796_112_000_000
        );
        let h = parse_since("2h").unwrap();
        let now = omcmsync::clock::now_ms();
        assert!(now - h >= 7_200_000 && now - h < 7_300_000);
        assert!(parse_since("2w").is_err() && parse_since("soon").is_err());
    }
}
