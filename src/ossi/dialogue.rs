//! One OSSI session as a script, without I/O: bytes from CM in, bytes to send out. The SSH
//! client (`omcmsync-ossi`) only carries bytes between this and the channel, so the whole
//! conversation (prompts, echoes, replies, logoff) is tested here without a network.
//!
//! The terminal echoes what is typed and ends lines with CRLF (docs/research/ossi.md §2.8):
//! a reply is read from the last `c` line before its `t`, and a `t` with nothing after a `c`
//! line is the echo of the request's own `t`, not the end of a reply.

use super::reply::{parse_reply, Reply};
use super::request::{request, RequestError};
use super::session::{CommandReply, Failure, SessionFailure};

/// CM's first prompt; the client answers it with the OSSI terminal type.
const TERMINAL_PROMPT: &str = "Terminal Type";
/// CM's answer when every SAT session is taken (login-stage text, not an `e` line).
const NO_RESOURCES: &str = "Login resources unavailable";
/// CM's question after `clogoff`.
const LOGOFF_PROMPT: &str = "Proceed With Logoff";
/// The question of a terminal type that pages (`ossit`), answered `y`. Its exact text is not
/// public: ossi_tool3 expects `\rmore..y.`, the spec quotes `more? [y]`; any short line that
/// starts with it and holds a `y` is taken for it (no OSSI line starts with `m`).
const MORE_PROMPT: &str = "more";
/// The longest text taken for a page's question.
const MORE_MAX_BYTES: usize = 16;
/// The longest reply read: `list history` is a few thousand short records.
pub const REPLY_MAX_BYTES: usize = 8 << 20;
/// The longest line, or prompt without its newline, kept while it is incomplete.
const LINE_MAX_BYTES: usize = 64 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Logged in; waiting for the terminal type prompt.
    Prompt,
    /// The type was sent; waiting for the `t` that says SAT is ready.
    Ready,
    /// A request was sent; reading its reply.
    Reply,
    /// `clogoff` was sent; waiting for its question.
    Logoff,
    /// Logged off: the session may be closed.
    Done,
}

impl Stage {
    /// What the session was waiting for, for a timeout's message.
    pub fn waiting_for(self) -> &'static str {
        match self {
            Stage::Prompt => "the terminal type prompt",
            Stage::Ready => "SAT to be ready (a line 't')",
            Stage::Reply => "a reply",
            Stage::Logoff => "the logoff question",
            Stage::Done => "nothing",
        }
    }
}

pub struct Dialogue {
    term: String,
    /// The requests not sent yet, with their commands, in order.
    requests: std::collections::VecDeque<(String, String)>,
    stage: Stage,
    /// The command whose reply is being read.
    sent_command: Option<String>,
    /// Bytes after the last newline.
    partial: Vec<u8>,
    /// The current reply's lines since its last `c` line.
    lines: Vec<String>,
    reply_bytes: usize,
    replies: Vec<CommandReply>,
}

impl Dialogue {
    /// A session that answers the prompt with `term` and sends `commands` (read-only ones
    /// only: [`request`]) in turn, then logs off.
    pub fn new(term: &str, commands: &[&str]) -> Result<Dialogue, RequestError> {
        let requests = commands
            .iter()
            .map(|c| Ok((c.to_string(), request(c, &[])?)))
            .collect::<Result<_, RequestError>>()?;
        Ok(Dialogue {
            term: term.to_owned(),
            requests,
            stage: Stage::Prompt,
            sent_command: None,
            partial: Vec::new(),
            lines: Vec::new(),
            reply_bytes: 0,
            replies: Vec::new(),
        })
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The replies read so far, in the order of the commands.
    pub fn into_replies(self) -> Vec<CommandReply> {
        self.replies
    }

    /// Takes what CM sent; answers what to send back (often nothing).
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Vec<u8>, SessionFailure> {
        let mut out = Vec::new();
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            self.line(line.trim_end_matches(['\n', '\r']), &mut out)?;
        }
        if self.partial.len() > LINE_MAX_BYTES {
            return Err(protocol("a line longer than 64 KiB"));
        }
        // Prompts end without a newline.
        let partial = String::from_utf8_lossy(&self.partial).into_owned();
        self.prompt(&partial, &mut out)?;
        Ok(out)
    }

    fn line(&mut self, line: &str, out: &mut Vec<u8>) -> Result<(), SessionFailure> {
        match self.stage {
            Stage::Prompt | Stage::Logoff => self.prompt(line, out),
            Stage::Ready if line == "t" => {
                self.send_next(out);
                Ok(())
            }
            Stage::Ready | Stage::Done => Ok(()),
            Stage::Reply => self.reply_line(line, out),
        }
    }

    fn prompt(&mut self, text: &str, out: &mut Vec<u8>) -> Result<(), SessionFailure> {
        if text.contains(NO_RESOURCES) {
            return Err(SessionFailure::new(
                Failure::LoginResources,
                format!("CM answered '{NO_RESOURCES}': every SAT session is in use"),
            ));
        }
        match self.stage {
            Stage::Prompt if text.contains(TERMINAL_PROMPT) => {
                out.extend_from_slice(format!("{}\n", self.term).as_bytes());
                self.partial.clear();
                self.stage = Stage::Ready;
            }
            Stage::Reply if is_more(text, false) => {
                out.extend_from_slice(b"y\n");
                self.partial.clear();
            }
            Stage::Logoff if text.contains(LOGOFF_PROMPT) => {
                out.extend_from_slice(b"y\n");
                self.partial.clear();
                self.stage = Stage::Done;
            }
            _ => {}
        }
        Ok(())
    }

    fn reply_line(&mut self, line: &str, out: &mut Vec<u8>) -> Result<(), SessionFailure> {
        self.reply_bytes += line.len() + 1;
        if self.reply_bytes > REPLY_MAX_BYTES {
            return Err(protocol("a reply longer than 8 MiB"));
        }
        if is_more(line, true) {
            out.extend_from_slice(b"y\n");
        } else if line.trim() == "y" {
            // The echo of the answer to a page's question.
        } else if line.starts_with('c') {
            // The request's echo (the terminal's, CM's, or both): the reply starts after it.
            self.lines.clear();
        } else if line == "t" && !self.lines.iter().any(|l| !l.is_empty()) {
            // The echo of the request's `t`.
        } else if line == "t" {
            let mut text = self.lines.join("\n");
            text.push_str("\nt\n");
            self.lines.clear();
            let reply: Reply = parse_reply(&text);
            let command = self.sent_command.take().unwrap_or_default();
            let at_ms = crate::clock::now_ms();
            self.replies.push(CommandReply {
                command,
                at_ms,
                reply,
            });
            self.send_next(out);
        } else {
            self.lines.push(line.to_owned());
        }
        Ok(())
    }

    /// Sends the next request, or logs off after the last.
    fn send_next(&mut self, out: &mut Vec<u8>) {
        self.reply_bytes = 0;
        match self.requests.pop_front() {
            Some((command, lines)) => {
                out.extend_from_slice(lines.as_bytes());
                self.sent_command = Some(command);
                self.stage = Stage::Reply;
            }
            None => {
                out.extend_from_slice(b"clogoff\nt\n");
                self.stage = Stage::Logoff;
            }
        }
    }
}

/// A page's question.
/// A page's question: `more` and a `y`. A `line` (its end already taken off) is whole; text
/// still without its newline is taken once a character follows the `y` (ossi_tool3's
/// `more..y.`; a `\r` counts), so that a question read in pieces is not answered early.
fn is_more(text: &str, line: bool) -> bool {
    let text = text.trim_start();
    let Some(rest) = text.strip_prefix(MORE_PROMPT) else {
        return false;
    };
    let y = rest.find('y');
    text.len() <= MORE_MAX_BYTES && y.is_some_and(|y| line || y + 1 < rest.len())
}

fn protocol(why: &str) -> SessionFailure {
    SessionFailure::new(Failure::Protocol, why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays CM's side: each chunk is what CM sends, and the dialogue's answers are collected.
    fn play(dialogue: &mut Dialogue, chunks: &[&str]) -> Result<String, SessionFailure> {
        let mut sent = String::new();
        for chunk in chunks {
            let out = dialogue.receive(chunk.as_bytes())?;
            sent.push_str(&String::from_utf8(out).unwrap());
        }
        Ok(sent)
    }

    const PROMPT: &str =
        "\r\nTerminal Type (513, 715, 4410, 4425, VT220, NTT, W2KTT, SUNT): [513] ";

    #[test]
    fn a_session_without_echo() {
        let mut d = Dialogue::new("ossi4", &["list history", "display time"]).unwrap();
        let sent = play(
            &mut d,
            &[
                "Welcome\r\n",
                PROMPT,
                "t\r\n",
                "clist history\r\nf1\t2\r\nd12/05\t10:02\r\nn\r\nd12/05\t10:01\r\nt\r\n",
                "cdisplay time\r\nf1\r\nd2026\r\nt\r\n",
                "Proceed With Logoff [n]? ",
            ],
        )
        .unwrap();
        assert_eq!(
            sent,
            "ossi4\nclist history\nt\ncdisplay time\nt\nclogoff\nt\ny\n"
        );
        assert_eq!(d.stage(), Stage::Done);
        let replies = d.into_replies();
        assert_eq!(replies[0].command, "list history");
        assert_eq!(replies[0].reply.records.len(), 2);
        assert_eq!(replies[0].reply.records[1][1].value, "10:01");
        assert!(replies[1].reply.complete);
    }

    #[test]
    fn the_terminals_echo_is_not_a_reply() {
        let mut d = Dialogue::new("ossi4", &["list history"]).unwrap();
        // The pty echoes the type and the request, split across reads; CM echoes the command.
        let sent = play(
            &mut d,
            &[
                &PROMPT[..20],
                &PROMPT[20..],
                "ossi4\r\nt\r\n",
                "clist history\r\nt",
                "\r\nclist history\r\ne1 00000000 29cf No records match\r\nt\r\n",
            ],
        )
        .unwrap();
        assert_eq!(sent, "ossi4\nclist history\nt\nclogoff\nt\n");
        assert_eq!(d.stage(), Stage::Logoff);
        let replies = d.into_replies();
        assert_eq!(replies.len(), 1);
        assert!(replies[0].reply.complete && replies[0].reply.failure().is_none());
        assert!(replies[0].reply.records.is_empty());
    }

    #[test]
    fn a_paging_terminal_is_answered_at_each_page() {
        let mut d = Dialogue::new("ossit", &["list history"]).unwrap();
        let sent = play(
            &mut d,
            &[
                PROMPT,
                "ossit\r\nt\r\n",
                "clist history\r\nt\r\nclist history\r\nf1\t2\r\nd12/05\t10:02\r\nmore",
                "? [y] ",
                "y\r\nn\r\nd12/05\t10:01\r\n\rmore (y)\r\n",
                "y\r\nn\r\nd12/04\t09:00\r\nt\r\n",
            ],
        )
        .unwrap();
        assert_eq!(sent, "ossit\nclist history\nt\ny\ny\nclogoff\nt\n");
        let reply = &d.into_replies()[0].reply;
        assert_eq!((reply.records.len(), reply.unknown), (3, 0));
        assert_eq!(reply.records[2][0].value, "12/04");
    }

    #[test]
    fn a_page_question_is_taken_whole_in_any_shape() {
        for whole in [
            "more? [y] ",
            "\rmore (y)",
            "more? y ",
            "\r more [y]\r\n",
            "\rmore? y\r",
        ] {
            assert!(is_more(whole, false), "{whole:?}");
        }
        // A line arrives without its end: a question that ends with its `y` is whole too.
        assert!(is_more("more? y", true) && is_more("\rmore (y)", true));
        for not in [
            "more",
            "more? [y",
            "more? y",
            "d12/05\tmore (y)",
            "more than sixteen (y)",
        ] {
            assert!(!is_more(not, false), "{not:?}");
        }
    }

    #[test]
    fn no_free_session_and_endless_lines_are_failures() {
        let mut d = Dialogue::new("ossi4", &["list history"]).unwrap();
        let e = play(&mut d, &["Login resources unavailable\r\n"]).unwrap_err();
        assert_eq!(e.kind, Failure::LoginResources);
        let mut d = Dialogue::new("ossi4", &["list history"]).unwrap();
        let e = d.receive(&vec![b'x'; LINE_MAX_BYTES + 1]).unwrap_err();
        assert_eq!(e.kind, Failure::Protocol);
        assert!(Dialogue::new("ossi4", &["change station 1"]).is_err());
    }

    proptest::proptest! {
        /// Whatever CM sends, in whatever pieces: no panic, and nothing sent before the prompt.
        #[test]
        fn any_bytes_in_any_pieces(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2000),
                                   cut in 0usize..2000) {
            let mut d = Dialogue::new("ossi4", &["list history"]).unwrap();
            let cut = cut.min(bytes.len());
            let first = d.receive(&bytes[..cut]);
            let _ = d.receive(&bytes[cut..]);
            let prompted = String::from_utf8_lossy(&bytes[..cut]).contains(TERMINAL_PROMPT);
            if let Ok(out) = first {
                proptest::prop_assert!(out.is_empty() || prompted);
            }
        }
    }
}
