//! OSSI, the line grammar CM's SAT speaks to programs (`../shared/spec/cm-ossi.md`, and
//! docs/research/ossi.md for where four open-source clients correct it): the requests the
//! reconciliation may send, and the replies it reads. Pure text in, values out: no SSH, no
//! rsyslog, nothing that can block. The session itself ([`Dialogue`]) is a script of bytes
//! in and out; `omcmsync-ossi` carries them over SSH and prints a [`SessionReport`].
//!
//! A request is `c<command>`, optional `f<field ids>`, then `t`. A reply is the echoed command,
//! `f` lines naming the fields (once, before the first record; some captures repeat them per
//! record), a record's values in `d` lines (the k-th `d` line of a record pairs with the k-th
//! `f` line), `n` between records, `e` lines for errors, and `t` at its end.

mod dialogue;
mod reply;
mod request;
mod session;

pub use dialogue::{Dialogue, Stage, REPLY_MAX_BYTES};
pub use reply::{parse_reply, ErrorLine, Field, Record, Reply, NO_RECORDS};
pub use request::{request, RequestError};
pub use session::{CommandReply, Failure, SessionFailure, SessionReport};
