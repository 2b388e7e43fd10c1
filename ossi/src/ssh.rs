//! The SSH side of one session: connect, pin the host key, log in, open a pty and a shell,
//! and carry bytes between the channel and the [`Dialogue`]. Every wait is bounded.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use omcmsync::ossi::{CommandReply, Dialogue, Failure, SessionFailure, Stage};
use russh::client::{self, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::{known_hosts, HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};

use crate::Args;

/// The pty CM's SAT is opened on (angelshark's; CM reads the OSSI type at its prompt).
const PTY: (&str, u32, u32) = ("vt100", 81, 25);
/// Rounds of keyboard-interactive questions answered before giving up.
const KBD_ROUNDS: usize = 5;

/// One session with `host`: its replies, or why there are none.
pub async fn session(args: &Args, host: &str) -> Result<Vec<CommandReply>, SessionFailure> {
    let commands: Vec<&str> = args.commands.iter().map(String::as_str).collect();
    let dialogue = Dialogue::new(&args.term, &commands).map_err(config)?;
    std::fs::File::open(&args.known_hosts).map_err(|e| {
        config(format!(
            "known-hosts file {}: {e}",
            args.known_hosts.display()
        ))
    })?;
    let at = format!("{host}:{}", args.port);
    let stream = bounded(
        args,
        "the connection",
        tokio::net::TcpStream::connect((host, args.port)),
    )
    .await?
    .map_err(|e| SessionFailure::new(Failure::Unreachable, format!("{at}: {e}")))?;
    let pin = Pin {
        host: host.to_owned(),
        port: args.port,
        known_hosts: args.known_hosts.clone(),
    };
    let config = Arc::new(client::Config {
        inactivity_timeout: Some(args.wait() * 2),
        ..Default::default()
    });
    let mut handle = bounded(
        args,
        "the SSH handshake",
        client::connect_stream(config, stream, pin),
    )
    .await?
    .map_err(|e| e.into_failure(&at))?;
    login(args, &mut handle, &at).await?;
    let replies = converse(args, &handle, dialogue, &at).await;
    let _ = handle.disconnect(Disconnect::ByApplication, "", "en").await;
    replies
}

/// Runs `step` within the wait bound; `what` names it in the timeout's message.
async fn bounded<T>(
    args: &Args,
    what: &str,
    step: impl Future<Output = T>,
) -> Result<T, SessionFailure> {
    tokio::time::timeout(args.wait(), step).await.map_err(|_| {
        SessionFailure::new(
            Failure::Timeout,
            format!(
                "no answer within {} s waiting for {what}",
                args.wait().as_secs()
            ),
        )
    })
}

fn config(why: impl ToString) -> SessionFailure {
    SessionFailure::new(Failure::Config, why.to_string())
}

/// Public-key login with `--key-file`, else the password, by the password method and then
/// keyboard-interactive (CM asks by the latter).
async fn login(args: &Args, handle: &mut Handle<Pin>, at: &str) -> Result<(), SessionFailure> {
    let refused = |how: &str| {
        SessionFailure::new(
            Failure::AuthRefused,
            format!("{at} refused the login of '{}' by {how}", args.user),
        )
    };
    let ssh = |e: russh::Error| SessionFailure::new(Failure::Protocol, format!("{at}: {e}"));
    if let Some(path) = &args.key_file {
        let key = russh::keys::load_secret_key(path, None)
            .map_err(|e| config(format!("key file {}: {e}", path.display())))?;
        let hash = bounded(args, "the login", handle.best_supported_rsa_hash())
            .await?
            .map_err(ssh)?
            .flatten();
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
        let auth = bounded(
            args,
            "the login",
            handle.authenticate_publickey(&args.user, key),
        );
        return match auth.await?.map_err(ssh)?.success() {
            true => Ok(()),
            false => Err(refused("public key")),
        };
    }
    let password = read_password(args.password_file.as_ref())?;
    let auth = bounded(
        args,
        "the login",
        handle.authenticate_password(&args.user, &password),
    );
    if auth.await?.map_err(ssh)?.success() {
        return Ok(());
    }
    let mut answer = bounded(
        args,
        "the login",
        handle.authenticate_keyboard_interactive_start(&args.user, None),
    )
    .await?
    .map_err(ssh)?;
    for _ in 0..KBD_ROUNDS {
        match answer {
            KeyboardInteractiveAuthResponse::Success => return Ok(()),
            KeyboardInteractiveAuthResponse::Failure { .. } => break,
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let responses = vec![password.clone(); prompts.len()];
                let respond = handle.authenticate_keyboard_interactive_respond(responses);
                answer = bounded(args, "the login", respond).await?.map_err(ssh)?;
            }
        }
    }
    Err(refused("password and keyboard-interactive"))
}

fn read_password(path: Option<&PathBuf>) -> Result<String, SessionFailure> {
    let path = path.ok_or_else(|| config("neither --password-file nor --key-file"))?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| config(format!("password file {}: {e}", path.display())))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// Opens SAT on a pty and plays the dialogue to its end.
async fn converse(
    args: &Args,
    handle: &Handle<Pin>,
    mut dialogue: Dialogue,
    at: &str,
) -> Result<Vec<CommandReply>, SessionFailure> {
    let broke = |e: russh::Error| SessionFailure::new(Failure::Protocol, format!("{at}: {e}"));
    let mut channel = bounded(args, "a session channel", handle.channel_open_session())
        .await?
        .map_err(broke)?;
    let (term, cols, rows) = PTY;
    channel
        .request_pty(false, term, cols, rows, 0, 0, &[])
        .await
        .map_err(broke)?;
    channel.request_shell(false).await.map_err(broke)?;
    while dialogue.stage() != Stage::Done {
        let waiting_for = dialogue.stage().waiting_for();
        match bounded(args, waiting_for, channel.wait()).await? {
            Some(ChannelMsg::Data { data }) => {
                let out = dialogue.receive(&data)?;
                if !out.is_empty() {
                    channel.data(&out[..]).await.map_err(broke)?;
                }
            }
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    match dialogue.stage() {
        // CM may close the session instead of asking the logoff question.
        Stage::Logoff | Stage::Done => Ok(dialogue.into_replies()),
        stage => Err(SessionFailure::new(
            Failure::Protocol,
            format!(
                "{at} closed the session while waiting for {}",
                stage.waiting_for()
            ),
        )),
    }
}

/// The handler that pins the host key: the key must be in the known-hosts file.
pub struct Pin {
    host: String,
    port: u16,
    known_hosts: PathBuf,
}

/// A handler's error: russh's, or the host key refused.
#[derive(Debug)]
pub enum PinError {
    Ssh(russh::Error),
    Refused(SessionFailure),
}

impl From<russh::Error> for PinError {
    fn from(e: russh::Error) -> Self {
        PinError::Ssh(e)
    }
}

impl PinError {
    fn into_failure(self, at: &str) -> SessionFailure {
        match self {
            PinError::Refused(failure) => failure,
            PinError::Ssh(e) => SessionFailure::new(Failure::Protocol, format!("{at}: {e}")),
        }
    }
}

impl client::Handler for Pin {
    type Error = PinError;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, PinError> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = offered else {
            return Err(self.refused(Failure::HostKeyUnknown, "a certificate, not a pinned key"));
        };
        let seen = format!("{} {}", key.algorithm(), key.fingerprint(HashAlg::Sha256));
        let file = self.known_hosts.display();
        match known_hosts::check_known_hosts_path(&self.host, self.port, key, &self.known_hosts) {
            Ok(true) => Ok(true),
            Ok(false) => Err(self.refused(
                Failure::HostKeyUnknown,
                &format!(
                    "{seen}, which {file} does not list; if it is CM's, add: {} {}",
                    self.pattern(),
                    key.to_openssh().unwrap_or_default()
                ),
            )),
            Err(russh::keys::Error::KeyChanged { line }) => Err(self.refused(
                Failure::HostKeyChanged,
                &format!("{seen}, not the key on line {line} of {file}: not logged in"),
            )),
            Err(e) => Err(self.refused(Failure::Config, &format!("{file}: {e}"))),
        }
    }
}

impl Pin {
    /// The host as a known-hosts line names it.
    fn pattern(&self) -> String {
        match self.port {
            22 => self.host.clone(),
            port => format!("[{}]:{port}", self.host),
        }
    }

    fn refused(&self, kind: Failure, what: &str) -> PinError {
        let host = self.pattern();
        PinError::Refused(SessionFailure::new(
            kind,
            format!("{host} offered host key {what}"),
        ))
    }
}
