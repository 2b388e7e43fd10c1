//! Who made a change, from where, and when: read from the words around a command.
//!
//! `key=value` words anywhere in the message win (`login=`, `port=`, `src=`). Otherwise the up
//! to four words right before the verb are read back to front: an IP address is the admin's
//! client, a session type (SAT, SSH, TTI, ...) the session, a date and time CM's timestamp, a
//! login-shaped word the login; a word with `:` (a syslog tag, an ecs record header) ends the
//! look-back. Only command lines get here, so this may take a second pass.

use std::net::IpAddr;

use super::tokens::{Token, Tokens};
use super::Reason;
use crate::line::canonical;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Context<'a> {
    pub login: Option<&'a str>,
    pub session: Option<&'a str>,
    pub client_ip: Option<IpAddr>,
    pub cm_time: Option<CmTime<'a>>,
}

/// CM's own timestamp: an ecs record's `20261125:101502123`, or the history's date and time
/// columns (two words: whatever stands between them, an invisible character say, is not part
/// of it). Shown as `20261125:101502123` or `11/25 10:15`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmTime<'a> {
    Ecs(&'a str),
    History { date: &'a str, time: &'a str },
}

impl std::fmt::Display for CmTime<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CmTime::Ecs(t) => f.write_str(t),
            CmTime::History { date, time } => write!(f, "{date} {time}"),
        }
    }
}

const SESSION_TYPES: &[&str] = &[
    "sat", "ssh", "tti", "psa", "telnet", "web", "asa", "ossi", "ossis", "sftp", "https", "http",
    "console", "cli",
];

const LOGIN_KEYS: &[&str] = &["login", "user", "usr", "username", "admin"];
const SESSION_KEYS: &[&str] = &["port", "session", "sess"];
const CLIENT_KEYS: &[&str] = &[
    "src",
    "ip",
    "client",
    "from",
    "addr",
    "srcip",
    "client_ip",
    "remote",
];
const COMMAND_KEYS: &[&str] = &["cmd", "command"];

/// Gathers context while the classifier walks the words before a verb, so that a command
/// line is split into words only once.
#[derive(Default)]
pub struct Collector<'a> {
    ctx: Context<'a>,
    /// The last four plain (not `key=value`) words, newest at `recent[(next + 3) % 4]`.
    recent: [Option<Token<'a>>; 4],
    next: usize,
    words: usize,
}

impl<'a> Collector<'a> {
    /// Takes the next word before the verb.
    #[inline]
    pub fn see(&mut self, word: Token<'a>) {
        if self.words < 2 && self.ctx.cm_time.is_none() {
            self.ctx.cm_time = ecs_time(word.text).map(CmTime::Ecs);
        }
        self.words += 1;
        match word.key_value() {
            Some((key, value)) => key_value(&mut self.ctx, key, value),
            None => {
                self.recent[self.next] = Some(word);
                self.next = (self.next + 1) % 4;
            }
        }
    }

    /// The context of a command whose words end at byte `rest_from`: the words seen, read back
    /// from the verb, and any `key=value` after the command.
    pub fn finish(mut self, message: &'a [u8], rest_from: usize) -> Result<Context<'a>, Reason> {
        let rest = &message[rest_from.min(message.len())..];
        if rest.contains(&b'=') {
            for word in Tokens::new(rest) {
                if let Some((key, value)) = word.key_value() {
                    key_value(&mut self.ctx, key, value);
                }
            }
        }
        let newest_first = (1..=4).filter_map(|back| self.recent[(self.next + 4 - back) % 4]);
        look_back(&mut self.ctx, newest_first)?;
        Ok(self.ctx)
    }
}

/// The context of a command whose verb starts at byte `verb_start` (for callers that did not
/// collect it on the way).
pub fn around(message: &[u8], verb_start: usize) -> Result<Context<'_>, Reason> {
    let mut collector = Collector::default();
    Tokens::new(&message[..verb_start]).for_each(|w| collector.see(w));
    collector.finish(message, verb_start)
}

fn key_value<'a>(ctx: &mut Context<'a>, key: &[u8], value: &'a [u8]) {
    let is = |keys: &[&str]| keys.iter().any(|k| k.as_bytes().eq_ignore_ascii_case(key));
    if is(LOGIN_KEYS) && is_login(value) {
        ctx.login = ctx.login.or(ascii(value));
    } else if is(SESSION_KEYS) && !value.is_empty() && value.len() <= 32 {
        ctx.session = ctx.session.or(ascii(value));
    } else if is(CLIENT_KEYS) {
        ctx.client_ip = ctx.client_ip.or_else(|| ip(value));
    }
}

fn look_back<'a>(
    ctx: &mut Context<'a>,
    words: impl Iterator<Item = Token<'a>>,
) -> Result<(), Reason> {
    let mut time: Option<Token> = None;
    for word in words {
        let text = word.text;
        if let Some(addr) = ip(text) {
            ctx.client_ip = ctx.client_ip.or(Some(addr));
        } else if is_session_type(text) {
            ctx.session = ctx.session.or(ascii(text));
        } else if is_clock(text) {
            time = Some(word);
        } else if is_location(text) {
            // A physical port (`01A0701`: a TTI move's port column) is the session's.
            ctx.session = ctx.session.or(ascii(text));
        } else if is_date(text) {
            if let Some(t) = time {
                if let (Some(date), Some(time)) = (ascii(text), ascii(t.text)) {
                    ctx.cm_time = ctx.cm_time.or(Some(CmTime::History { date, time }));
                }
            }
            break;
        } else if is_login(text) {
            if ctx.login.is_none() {
                ctx.login = Some(std::str::from_utf8(text).map_err(|_| Reason::NotUtf8)?);
            }
        } else {
            break;
        }
    }
    Ok(())
}

/// `SAT`, `SSH`, `TTI`, ...: a session type word.
pub fn is_session_type(word: &[u8]) -> bool {
    SESSION_TYPES
        .iter()
        .any(|s| s.as_bytes().eq_ignore_ascii_case(word))
}

/// `tti-m`, `psa-a`, ...: CM's pseudo-logins for phone-side station moves.
pub fn is_station_login(word: &[u8]) -> bool {
    word.len() >= 5
        && word.len() <= 16
        && (word[..4].eq_ignore_ascii_case(b"tti-") || word[..4].eq_ignore_ascii_case(b"psa-"))
}

/// A cheap first check for [`is_admin_key`] (most `key=value` words of noise fail it).
#[inline]
pub fn may_be_admin_key(word: &Token) -> bool {
    let tail_c = word.tail().first().is_some_and(|b| b | 0x20 == b'c');
    (tail_c || starts_like_admin_word(word.text)) && is_admin_key(word)
}

/// Every key of [`is_admin_word`] (and `cmdhist`) starts with one of these letters (a test
/// keeps that true).
fn starts_like_admin_word(word: &[u8]) -> bool {
    matches!(
        word.first().map(|b| b | 0x20),
        Some(b'a' | b'c' | b'l' | b'u')
    )
}

/// A word that marks an admin record: `cmd=...`, `login=...`, a `cmdhist:` tag or an ecs
/// `...:cmdhist` header.
pub fn is_admin_key(word: &Token) -> bool {
    let cmdhist = |w: &[u8]| w.len() >= 7 && w[..7].eq_ignore_ascii_case(b"cmdhist");
    if cmdhist(word.tail()) || cmdhist(word.text) {
        return true;
    }
    word.key_value().is_some_and(|(key, _)| is_admin_word(key))
}

/// `cmd`, `command`, `login`, `user`, ...: keys whose `key=value` marks an admin record.
pub fn is_admin_word(key: &[u8]) -> bool {
    let mut lower = [0u8; 8];
    if key.len() > lower.len() || !starts_like_admin_word(key) {
        return false;
    }
    lower[..key.len()].copy_from_slice(key);
    lower.make_ascii_lowercase();
    let key = &lower[..key.len()];
    COMMAND_KEYS
        .iter()
        .chain(LOGIN_KEYS)
        .any(|k| k.as_bytes() == key)
}

/// An object id: a letter or digit, then letters, digits or `._+*/-`; at most 32 bytes.
pub fn is_id(word: &[u8]) -> bool {
    !word.is_empty()
        && word.len() <= 32
        && word[0].is_ascii_alphanumeric()
        && word
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._+*/-".contains(b))
}

/// A station extension: digits, possibly with dots; at most 16 bytes.
pub fn is_extension(word: &[u8]) -> bool {
    !word.is_empty()
        && word.len() <= 16
        && word[0].is_ascii_digit()
        && word.iter().all(|b| b.is_ascii_digit() || *b == b'.')
}

fn is_login(word: &[u8]) -> bool {
    !word.is_empty()
        && word.len() <= 32
        && word[0].is_ascii_alphabetic()
        && word
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(b))
}

/// `10:15` or `10:15:02`.
fn is_clock(w: &[u8]) -> bool {
    matches!(w.len(), 5 | 8)
        && w.iter().enumerate().all(|(i, b)| {
            if i % 3 == 2 {
                *b == b':'
            } else {
                b.is_ascii_digit()
            }
        })
}

/// A port or board location: cabinet digits, a carrier letter, slot (and circuit) digits
/// (`01A0701`, `1B05`).
pub fn is_location(w: &[u8]) -> bool {
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    match w.iter().position(u8::is_ascii_alphabetic) {
        Some(i @ 1..=3) => {
            digits(&w[..i]) && (2..=5).contains(&(w.len() - i - 1)) && digits(&w[i + 1..])
        }
        _ => false,
    }
}

/// `11/25` (CM's history: month/day).
fn is_date(w: &[u8]) -> bool {
    w.len() == 5
        && w[2] == b'/'
        && w.iter()
            .enumerate()
            .all(|(i, b)| i == 2 || b.is_ascii_digit())
}

/// The `YYYYMMDD:HHMMSSmmm` that starts an ecs record.
fn ecs_time(word: &[u8]) -> Option<&str> {
    let t = word.get(..18)?;
    let ok = t[8] == b':'
        && t.iter()
            .enumerate()
            .all(|(i, b)| i == 8 || b.is_ascii_digit());
    ok.then(|| ascii(t)).flatten()
}

/// The bytes of an address, by class: not in one, a hex digit, `.`, `:` and `%` (a zone).
const NOT_ADDR: u8 = 0;
const DOT: u8 = 2;
const COLON: u8 = 3;
const ZONE: u8 = 4;
static ADDR_BYTE: [u8; 256] = {
    let mut t = [NOT_ADDR; 256];
    let hex = b"0123456789abcdefABCDEF";
    let mut i = 0;
    while i < hex.len() {
        t[hex[i] as usize] = 1;
        i += 1;
    }
    t[b'.' as usize] = DOT;
    t[b':' as usize] = COLON;
    t[b'%' as usize] = ZONE;
    t
};

/// An IPv4 or IPv6 address; an IPv6 zone (`fe80::1%eth0`) is allowed and dropped.
fn ip(word: &[u8]) -> Option<IpAddr> {
    if word.len() > 45 + 17 {
        return None;
    }
    // A count of each class, without a branch per byte: most words are not addresses, and
    // which byte tells so first is anybody's guess.
    let mut count = [0u8; 5];
    for &b in word {
        count[usize::from(ADDR_BYTE[usize::from(b)])] += 1;
    }
    if count[usize::from(ZONE)] > 0 {
        let at = word.iter().position(|&b| b == b'%')?;
        return is_zone(&word[at + 1..]).then(|| ip(&word[..at])).flatten();
    }
    // Three dots (IPv4) or at least two colons (IPv6): `2301` or `10:15` is not worth parsing.
    let (dots, colons) = (count[usize::from(DOT)], count[usize::from(COLON)]);
    if count[usize::from(NOT_ADDR)] > 0 || word.len() > 45 || (dots != 3 && colons < 2) {
        return None;
    }
    // ASCII by now; parsed as the one family it can be, without trying the other first.
    let text = std::str::from_utf8(word).ok()?;
    let parsed = if colons == 0 {
        IpAddr::V4(text.parse().ok()?)
    } else {
        IpAddr::V6(text.parse().ok()?)
    };
    Some(canonical(parsed))
}

fn is_zone(z: &[u8]) -> bool {
    (1..=16).contains(&z.len())
        && z.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
}

fn ascii(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_of(message: &str, verb: &str) -> Context<'static> {
        let message: &'static str = Box::leak(message.to_owned().into_boxed_str());
        around(message.as_bytes(), message.find(verb).unwrap()).unwrap()
    }

    #[test]
    fn admin_words_start_with_the_letters_checked_first() {
        for key in COMMAND_KEYS.iter().chain(LOGIN_KEYS) {
            assert!(is_admin_word(key.as_bytes()), "{key}");
            assert!(is_admin_word(key.to_ascii_uppercase().as_bytes()), "{key}");
        }
        assert!(!is_admin_word(b"state"));
    }

    #[test]
    fn ecs_record() {
        let c = ctx_of(
            "20261125:101502123:4711:cmdhist(2301):MED:[dadmin SAT 10.1.2.3 change station 1001]",
            "change",
        );
        assert_eq!(c.login, Some("dadmin"));
        assert_eq!(c.session, Some("SAT"));
        assert_eq!(c.client_ip, Some("10.1.2.3".parse().unwrap()));
        assert_eq!(c.cm_time, Some(CmTime::Ecs("20261125:101502123")));
    }

    #[test]
    fn history_columns() {
        let c = ctx_of("11/25 10:15 SAT dadmin chan station 1001", "chan");
        assert_eq!(
            (c.login, c.session, c.cm_time.map(|t| t.to_string())),
            (Some("dadmin"), Some("SAT"), Some("11/25 10:15".into()))
        );
    }

    #[test]
    fn key_values_with_ipv6_and_mapped_addresses() {
        let c = ctx_of(
            r#"login=dadmin port=ssh src=2001:db8::7 cmd="change station 1001""#,
            "change",
        );
        assert_eq!((c.login, c.session), (Some("dadmin"), Some("ssh")));
        assert_eq!(c.client_ip, Some("2001:db8::7".parse().unwrap()));
        let c = ctx_of("user=x src=::ffff:10.9.8.7 cmd=change station 1", "change");
        assert_eq!(c.client_ip, Some("10.9.8.7".parse().unwrap()));
    }

    #[test]
    fn tag_stops_the_look_back() {
        let c = ctx_of("cmdhist: change station 1001", "change");
        assert_eq!(c, Context::default());
        let c = ctx_of(
            "<13>Nov 25 10:15:02 cm-east cmdhist: change station 1001",
            "change",
        );
        assert_eq!(c.login, None);
    }

    #[test]
    fn addresses_and_words_that_only_look_like_them() {
        for (word, want) in [
            ("10.1.2.3", Some("10.1.2.3")),
            ("2001:DB8::7", Some("2001:db8::7")),
            ("::ffff:10.1.2.3", Some("10.1.2.3")),
            ("fe80::1%eth0", Some("fe80::1")),
            ("fe80::1%", None),
            ("fe80::1%eth0%1", None),
            ("10.1.2.3%eth0", Some("10.1.2.3")),
            ("2301", None),
            ("10:15", None),
            ("1.2.3", None),
            ("1.2.3.4.5", None),
            ("dead:beef", None),
            ("dead::beef::1", None),
            ("10.1.2.300", None),
            ("café::1", None),
        ] {
            let want = want.map(|w| w.parse::<IpAddr>().unwrap());
            assert_eq!(ip(word.as_bytes()), want, "{word}");
        }
        assert_eq!(ip(&[b'1'; 200]), None);
    }

    #[test]
    fn word_shapes() {
        assert!(
            is_station_login(b"TTI-M") && is_station_login(b"psa-a") && !is_station_login(b"tti-")
        );
        assert!(
            is_id(b"1001") && is_id(b"01A05") && is_id(b"1.2.3") && !is_id(b"-1") && !is_id(b"")
        );
        assert!(is_extension(b"2002") && !is_extension(b"a2"));
        let admin = |w: &str| is_admin_key(&Tokens::new(w.as_bytes()).next().unwrap());
        assert!(admin("cmd=") && admin("login=x") && admin("4711:CMDHIST") && admin("cmdhist:"));
        assert!(!admin("board=PROCR") && !admin("10:15"));
        assert_eq!(
            ecs_time(b"20261125:101502123:4711:x"),
            Some("20261125:101502123")
        );
        assert_eq!(ecs_time(b"2026112:101502123"), None);
    }
}
