//! What one OSSI session gave: the wire format `omcmsync-ossi` prints on its standard output
//! (one JSON document) and the module and `omcmsync check` read back.

use serde::{Deserialize, Serialize};

use super::reply::Reply;

/// One command's reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandReply {
    pub command: String,
    /// When the reply ended, on the client's clock (ms since the epoch; 0: not known): what
    /// CM's clock is read against.
    #[serde(default)]
    pub at_ms: u64,
    #[serde(flatten)]
    pub reply: Reply,
}

/// Why a session gave no replies, in classes a caller acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Failure {
    /// No connection: the name, the route, the port.
    Unreachable,
    /// The host's key is not in the element's known-hosts file.
    HostKeyUnknown,
    /// The host offered another key than the one pinned: never logged into.
    HostKeyChanged,
    /// The login or its credentials were refused.
    AuthRefused,
    /// CM has no SAT session free (retryable).
    LoginResources,
    /// A wait outlasted its bound.
    Timeout,
    /// CM's side broke the grammar or closed the session early.
    Protocol,
    /// A file the session needs (credential, key, known hosts) cannot be read.
    Config,
}

impl Failure {
    /// Worth trying the element's other duplex host, or again later.
    pub fn transient(self) -> bool {
        matches!(
            self,
            Failure::Unreachable | Failure::LoginResources | Failure::Timeout | Failure::Protocol
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionFailure {
    pub kind: Failure,
    /// For the operator: what happened, naming the host, never a secret.
    pub message: String,
}

impl SessionFailure {
    pub fn new(kind: Failure, message: String) -> SessionFailure {
        SessionFailure { kind, message }
    }
}

impl std::fmt::Display for SessionFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The one document `omcmsync-ossi` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionReport {
    /// Logged in at `host`; the replies in the order of the commands.
    Replies {
        host: String,
        replies: Vec<CommandReply>,
    },
    /// Every host tried failed; the failure of the last one.
    Failed(SessionFailure),
}
