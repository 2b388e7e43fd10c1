//! `omcmsync`: the command-line companion of the rsyslog module (`omcmsync --help`, and the
//! omcmsync(1) man page generated from the same declarations in `cli.rs`).

mod check;
mod classify;
mod cli;
mod manpages;
mod operator;
mod probe;
mod reconcile;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command, DeadletterAction, Shell};

fn main() -> ExitCode {
    omcmsync::logging::bridge_libraries();
    let cli = Cli::parse();
    match cli.command {
        status @ Command::Status { .. } => status_command(status),
        Command::Deadletter { action } => deadletter(action),
        Command::Resync {
            dir,
            element,
            ty,
            id,
        } => operator::run(
            &dir.state_dir,
            operator::resync_request(element, ty, id),
            operator::show_queued,
        ),
        Command::Reconcile {
            dir,
            element,
            since,
            wait,
        } => reconcile::run(
            &dir.state_dir,
            element,
            since,
            std::time::Duration::from_secs(wait),
        ),
        Command::Check {
            rsyslog_conf,
            config,
            rsyslogd,
        } => check::run(rsyslog_conf.as_deref(), config.as_deref(), &rsyslogd),
        Command::Classify { rules, input } => done(
            "classify",
            classify::run(rules.as_deref(), input.as_deref()),
        ),
        Command::Omprog { config } => done(
            "omprog",
            omcmsync::omprog::load_config(&config).and_then(|c| {
                omcmsync::omprog::run(c, std::io::stdin().lock(), std::io::stdout().lock())
            }),
        ),
        Command::Completions { shell } => completions(shell),
        Command::Manpages { dir } => done("manpages", manpages::write(&dir)),
    }
}

/// `omcmsync status` and its forms: offline, a monitoring check, OpenMetrics, or the answer.
fn status_command(command: Command) -> ExitCode {
    let Command::Status {
        dir,
        json,
        check,
        thresholds,
        format,
        offline,
    } = command
    else {
        return ExitCode::FAILURE;
    };
    let state_dir = &dir.state_dir;
    if offline {
        operator::offline_status(state_dir, json)
    } else if check {
        probe::check(state_dir, &thresholds)
    } else if format.is_some() {
        probe::openmetrics(state_dir)
    } else {
        status(state_dir, json)
    }
}

/// `omcmsync status`: for a person, or the module's answer as it says it (`--json`: fields
/// this release does not know included).
fn status(state_dir: &std::path::Path, json: bool) -> ExitCode {
    let request = omcmsync::control::Request::Status;
    if json {
        operator::run(state_dir, request, |a: &serde_json::Value| println!("{a}"))
    } else {
        operator::run(state_dir, request, operator::show_status)
    }
}

/// `omcmsync deadletter list|requeue`.
fn deadletter(action: DeadletterAction) -> ExitCode {
    use omcmsync::control::Request;
    let filter_of = |f: cli::DeadletterFilter| omcmsync::deliver::Filter {
        element: f.element,
        since_ms: f.since,
    };
    match action {
        DeadletterAction::List { dir, filter, limit } => {
            let filter = filter_of(filter);
            let request = Request::DeadLetters {
                filter,
                limit: limit as usize,
            };
            operator::run(&dir.state_dir, request, operator::show_records)
        }
        DeadletterAction::Requeue { dir, filter } => {
            let request = Request::Requeue {
                filter: filter_of(filter),
            };
            operator::run(&dir.state_dir, request, operator::show_requeued)
        }
    }
}

fn completions(shell: Shell) -> ExitCode {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "omcmsync",
        &mut std::io::stdout(),
    );
    ExitCode::SUCCESS
}

/// A subcommand's result as an exit status: errors printed, status 2.
fn done(what: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("omcmsync {what}: {e}");
            ExitCode::from(2)
        }
    }
}
