//! `omcmsync-ossi`: one OSSI session with a CM, run by the module (and `omcmsync check`) as a
//! child process, so that no SSH or async runtime runs inside rsyslogd and a hung CM costs one
//! bounded child. It logs in (the host key pinned), sends read-only commands, logs off and
//! prints one JSON [`SessionReport`] on standard output: exit 0 with replies, 1 with a
//! failure. Secrets come from files named on the command line, never from argv itself.

mod ssh;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use omcmsync::ossi::{Failure, SessionFailure, SessionReport};

#[derive(Parser)]
#[command(version, about)]
pub struct Args {
    /// CM's SAT host; give both hosts of a duplex pair, tried in turn.
    #[arg(long = "host", required = true)]
    hosts: Vec<String>,
    /// The SAT port.
    #[arg(long, default_value_t = 5022)]
    port: u16,
    /// The login.
    #[arg(long)]
    user: String,
    /// A file holding the password (first line), for password or keyboard-interactive login.
    #[arg(long, required_unless_present = "key_file")]
    password_file: Option<PathBuf>,
    /// A private key (OpenSSH format, unencrypted) for public-key login.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// The element's known-hosts file: the host key must be in it (`[host]:port key`).
    #[arg(long)]
    known_hosts: PathBuf,
    /// The OSSI terminal type typed at CM's prompt.
    #[arg(long, default_value = "ossi4")]
    term: String,
    /// The bound of every wait (connect, login, each prompt and reply), in seconds.
    #[arg(long, default_value_t = 30)]
    wait_secs: u64,
    /// A read-only command to send (list, display, status); repeat for more.
    #[arg(long = "command", default_value = "list history")]
    commands: Vec<String>,
}

impl Args {
    fn wait(&self) -> Duration {
        Duration::from_secs(self.wait_secs.max(1))
    }
}

fn main() {
    let args = Args::parse();
    let report = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(&args)),
        Err(e) => SessionReport::Failed(SessionFailure::new(Failure::Config, e.to_string())),
    };
    let failed = matches!(report, SessionReport::Failed(_));
    println!("{}", serde_json::to_string(&report).unwrap_or_default());
    std::process::exit(i32::from(failed));
}

/// Each host in turn until one answers; a failure that the other host would share too (a
/// refused login, a changed host key) is not tried again there.
async fn run(args: &Args) -> SessionReport {
    let mut last = SessionFailure::new(Failure::Config, "no host given".into());
    for host in &args.hosts {
        match ssh::session(args, host).await {
            Ok(replies) => {
                return SessionReport::Replies {
                    host: host.clone(),
                    replies,
                }
            }
            Err(e) => {
                let transient = e.kind.transient();
                last = e;
                if !transient {
                    break;
                }
            }
        }
    }
    SessionReport::Failed(last)
}
