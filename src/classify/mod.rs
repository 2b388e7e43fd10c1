//! The classifier: one CM message in, an [`Event`] or a counted reason to ignore it out.
//!
//! No public verbatim sample of CM's notify line exists, so this is a grammar, not a column
//! layout: it looks for `verb object [qualifier]` wherever it stands in the message (bare,
//! inside an ecs record's brackets, in history columns, in `cmd="..."`, after a syslog header),
//! then reads login, session, client address and CM time from the words around it.
//! One pass over the words of the message, no backtracking, no allocation unless the line is a
//! command: noise lines, 95 % of what CM sends, cost a scan and nothing else.

mod context;
mod objects;
mod prefilter;
mod report;
mod tokens;
mod verbs;

use std::net::IpAddr;

pub use context::CmTime;
pub use objects::{
    parse_rules, IdRule, IdShape, ObjectRule, ObjectTable, ObjectType, Resolution, ResyncLevel,
};
pub use report::{TargetFields, VerdictFields};
pub use verbs::Verb;

use tokens::{Token, Tokens};
use verbs::VerbKind;

/// Limits the classifier applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longer messages are ignored as [`Reason::TooLong`].
    pub max_line: usize,
    /// `duplicate ... count K` with K above this becomes a type-level resync.
    pub max_duplicate: u32,
}

impl Default for Limits {
    /// `max_line` is below rsyslog's default maxMessageSize (8096, header included): a message
    /// rsyslog cut short at that size (header up to 96 bytes) is too long for the classifier,
    /// not read as if whole.
    fn default() -> Self {
        Limits {
            max_line: 8000,
            max_duplicate: 100,
        }
    }
}

/// Why a line makes no event. Every line is either an event or one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// No command in it: CM's other syslog traffic.
    Noise,
    /// A command that changes nothing (list, display, status, ...).
    ReadOnlyVerb,
    /// A login or logoff record.
    LoginLogoff,
    /// A changing verb followed by no object we know.
    UnknownObject,
    /// A changing verb and an object, but no id where the object needs one.
    Incomplete,
    /// Looks like an admin record (cmdhist, cmd=, a TTI/PSA login) but has no command we read.
    Unclassified,
    /// Longer than the configured maximum.
    TooLong,
    /// The command's words are not UTF-8.
    NotUtf8,
    /// A change made by a login the element ignores (System Manager's own, echoed by CM).
    IgnoredLogin,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Reason::Noise,
        Reason::ReadOnlyVerb,
        Reason::LoginLogoff,
        Reason::UnknownObject,
        Reason::Incomplete,
        Reason::Unclassified,
        Reason::TooLong,
        Reason::NotUtf8,
        Reason::IgnoredLogin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Noise => "noise",
            Reason::ReadOnlyVerb => "read_only_verb",
            Reason::LoginLogoff => "login_logoff",
            Reason::UnknownObject => "unknown_object",
            Reason::Incomplete => "incomplete",
            Reason::Unclassified => "unclassified",
            Reason::TooLong => "too_long",
            Reason::NotUtf8 => "not_utf8",
            Reason::IgnoredLogin => "ignored_login",
        }
    }

    /// Lines worth showing the operator: they look like admin commands we could not read, so
    /// the grammar or the rule file may need tuning to what this CM really sends.
    pub fn is_admin_looking(self) -> bool {
        matches!(
            self,
            Reason::UnknownObject | Reason::Incomplete | Reason::Unclassified
        )
    }
}

/// What a change asks System Manager to resync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// One object, by its id (`1001`).
    Object(&'a str),
    /// The objects `start .. start+count` of a `duplicate ... start S count K`, ids written with
    /// at least `width` digits.
    Range {
        start: u64,
        count: u32,
        width: usize,
    },
    /// Every object of the type: the id is not known.
    Type(TypeReason),
    /// The whole element (objects incremental sync does not cover).
    Element,
}

/// Why an event asks for a type-level resync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeReason {
    /// `add X next`: CM picked the id.
    AddNext,
    /// `duplicate` without `start`/`count`: the new ids are not in the line.
    DuplicateUnknown,
    /// `duplicate ... count K` with K over the limit.
    DuplicateOverLimit,
    /// No id given for an object whose id is optional, or one with a single instance.
    NoId,
}

impl TypeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            TypeReason::AddNext => "add next",
            TypeReason::DuplicateUnknown => "duplicate without start/count",
            TypeReason::DuplicateOverLimit => "duplicate count over limit",
            TypeReason::NoId => "no id",
        }
    }
}

/// A data-changing command, borrowed from the message and the object table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    pub verb: Verb,
    pub object: &'a ObjectType,
    pub target: Target<'a>,
    pub login: Option<&'a str>,
    pub session: Option<&'a str>,
    pub client_ip: Option<IpAddr>,
    /// CM's own timestamp when the record has one (`20261125:101502123`, `11/25 10:15`).
    pub cm_time: Option<CmTime<'a>>,
}

/// What the words of a command say, before the context around them is added.
struct Command<'a> {
    verb: Verb,
    object: &'a ObjectType,
    target: Target<'a>,
}

impl<'a> Command<'a> {
    fn with(self, ctx: context::Context<'a>) -> Event<'a> {
        Event {
            verb: self.verb,
            object: self.object,
            target: self.target,
            login: ctx.login,
            session: ctx.session,
            client_ip: ctx.client_ip,
            cm_time: ctx.cm_time,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict<'a> {
    Event(Event<'a>),
    Ignored(Reason),
}

/// The classifier: the object table and the limits. Shared by all workers (read-only).
pub struct Classifier {
    objects: ObjectTable,
    limits: Limits,
}

impl Default for Classifier {
    fn default() -> Self {
        Classifier::new(ObjectTable::builtin(), Limits::default())
    }
}

/// What a scan found that did not make an event, in order of how much it tells the operator.
#[derive(Default)]
struct Seen {
    failure: Option<Reason>,
    read_only: bool,
    session_word: bool,
    admin_marker: bool,
}

impl Classifier {
    pub fn new(objects: ObjectTable, limits: Limits) -> Self {
        Classifier { objects, limits }
    }

    pub fn objects(&self) -> &ObjectTable {
        &self.objects
    }

    /// Classifies one message (the syslog tag and text; a header left in it does no harm).
    pub fn classify<'a>(&'a self, message: &'a [u8]) -> Verdict<'a> {
        if message.len() > self.limits.max_line {
            return Verdict::Ignored(Reason::TooLong);
        }
        if !prefilter::may_matter(message, &self.objects) {
            return Verdict::Ignored(Reason::Noise);
        }
        self.grammar(message)
    }

    /// The full grammar, without the noise fast path.
    fn grammar<'a>(&'a self, message: &'a [u8]) -> Verdict<'a> {
        let mut seen = Seen::default();
        let mut words = Tokens::new(message);
        let mut station_login = None;
        let mut collector = context::Collector::default();
        while let Some(word) = words.next() {
            if word.text.len() >= 5 && word.text[3] == b'-' && context::is_station_login(word.text)
            {
                station_login.get_or_insert(word);
                seen.admin_marker = true;
            } else if !seen.admin_marker && word.has_tail() && context::may_be_admin_key(&word) {
                seen.admin_marker = true;
            }
            match verbs::lookup(word.tail()) {
                Some(VerbKind::Change(verb)) => match self.command(verb, words) {
                    Ok((command, rest_from)) => {
                        return match collector.finish(message, rest_from) {
                            Ok(ctx) => Verdict::Event(command.with(ctx)),
                            Err(reason) => Verdict::Ignored(reason),
                        };
                    }
                    Err(reason) => {
                        seen.failure.get_or_insert(reason);
                    }
                },
                Some(VerbKind::ReadOnly) => {
                    let next = words.next_pair();
                    seen.read_only |= matches!(
                        self.objects
                            .resolve(next.0.map_or(&[], |t| t.text), next.1.map(|t| t.text)),
                        Resolution::Found { .. }
                    );
                }
                Some(VerbKind::Session) if !word.has_tail() => seen.session_word = true,
                _ => {}
            }
            collector.see(word);
        }
        if let Some(login) = station_login {
            if let Some(event) = self.station_move(message, login) {
                return event;
            }
        }
        Verdict::Ignored(match seen {
            Seen {
                failure: Some(reason),
                ..
            } => reason,
            Seen {
                read_only: true, ..
            } => Reason::ReadOnlyVerb,
            Seen {
                session_word: true, ..
            } => Reason::LoginLogoff,
            Seen {
                admin_marker: true, ..
            } => Reason::Unclassified,
            _ => Reason::Noise,
        })
    }

    /// Reads `object [id [qualifier...]]` after a changing verb; also returns where the words
    /// it used end.
    fn command<'a>(
        &'a self,
        verb: Verb,
        mut after: Tokens<'a>,
    ) -> Result<(Command<'a>, usize), Reason> {
        let (first, second) = after.next_pair();
        let Some(first) = first else {
            return Err(Reason::Incomplete);
        };
        let (object, taken) = match self.objects.resolve(first.text, second.map(|t| t.text)) {
            Resolution::Found { object, words } => (self.objects.get(object), words),
            Resolution::Ambiguous | Resolution::Unknown => return Err(Reason::UnknownObject),
        };
        for _ in 0..taken {
            after.next();
        }
        let word = after.next_pair().0.filter(|t| context::is_id(t.text));
        // A word that does not look like this type's ids is never one.
        let id = word.filter(|t| object.shape.fits(t.text));
        let target = match (object.scope, object.id, id) {
            (ResyncLevel::Element, _, _) => Target::Element,
            _ if verb == Verb::Add
                && word.is_some_and(|t| t.text.eq_ignore_ascii_case(b"next")) =>
            {
                Target::Type(TypeReason::AddNext)
            }
            (_, IdRule::None, _) => Target::Type(TypeReason::NoId),
            (_, IdRule::Required, None) if word.is_some() => return Err(Reason::Unclassified),
            (_, _, Some(_)) if verb == Verb::Duplicate => {
                after.next();
                self.duplicate_range(after)
            }
            (_, _, Some(t)) => Target::Object(utf8(t.text)?),
            (_, IdRule::Optional, None) => Target::Type(TypeReason::NoId),
            (_, IdRule::Required, None) => return Err(Reason::Incomplete),
        };
        let rest_from = id.map_or(first.start + first.text.len(), |t| t.start + t.text.len());
        Ok((
            Command {
                verb,
                object,
                target,
            },
            rest_from,
        ))
    }

    /// `duplicate X id start S count K`: the K new objects, or the type when K is unknown or
    /// over the limit.
    fn duplicate_range(&self, after: Tokens) -> Target<'static> {
        fn value<'t>(w: Option<Token<'t>>) -> Option<&'t str> {
            w.and_then(|t| std::str::from_utf8(t.text).ok())
        }
        let (mut start, mut count) = (None, None);
        let mut words = after.take(6);
        while let Some(word) = words.next() {
            if prefix_of(b"start", word.text) {
                start = value(words.next()).map(|s| (s.parse::<u64>().ok(), s.len()));
            } else if prefix_of(b"count", word.text) {
                count = value(words.next()).and_then(|s| s.parse::<u32>().ok());
            }
        }
        match (start, count) {
            (Some((Some(start), width)), Some(count))
                if count >= 1 && count <= self.limits.max_duplicate =>
            {
                match start.checked_add(u64::from(count)) {
                    Some(_) => Target::Range {
                        start,
                        count,
                        width,
                    },
                    None => Target::Type(TypeReason::DuplicateUnknown),
                }
            }
            (Some((Some(_), _)), Some(count)) if count > 0 => {
                Target::Type(TypeReason::DuplicateOverLimit)
            }
            _ => Target::Type(TypeReason::DuplicateUnknown),
        }
    }

    /// A TTI/PSA pseudo-login moved a station: the extension is the word after `station`, or
    /// else the first number after the login.
    fn station_move<'a>(&'a self, message: &'a [u8], login: Token<'a>) -> Option<Verdict<'a>> {
        let object = self.station()?;
        let rest_at = login.start + login.text.len();
        let rest = &message[rest_at..];
        // A login in a syslog tag position (`psa-a:`) is the login without its colon.
        let login = login.text.split(|&b| b == b':').next().unwrap_or_default();
        let mut words = Tokens::new(rest);
        let mut first_number = None;
        while let Some(word) = words.next() {
            if prefix_of(b"station", word.text) && word.text.len() >= 3 {
                if let Some(id) = words
                    .next_pair()
                    .0
                    .filter(|t| context::is_extension(t.text))
                {
                    first_number = Some(id);
                    break;
                }
            } else if first_number.is_none() && context::is_extension(word.text) {
                first_number = Some(word);
            }
        }
        let id = first_number?;
        let verb = Tokens::new(rest)
            .find_map(|w| match verbs::lookup(w.tail()) {
                Some(VerbKind::Change(v)) => Some(v),
                _ => None,
            })
            .unwrap_or(Verb::Change);
        // Who, from where and when stand before the login, as before a verb.
        let mut ctx = match context::around(message, rest_at - login.len()) {
            Ok(ctx) => ctx,
            Err(reason) => return Some(Verdict::Ignored(reason)),
        };
        // `[psa-a PSA 2003]`: the session may follow the login.
        if ctx.session.is_none() {
            ctx.session = Tokens::new(&rest[..id.start])
                .find(|w| context::is_session_type(w.text))
                .and_then(|w| std::str::from_utf8(w.text).ok());
        }
        Some(Verdict::Event(Event {
            verb,
            object,
            target: Target::Object(std::str::from_utf8(id.text).ok()?),
            login: std::str::from_utf8(login).ok(),
            session: ctx.session,
            client_ip: ctx.client_ip,
            cm_time: ctx.cm_time,
        }))
    }

    fn station(&self) -> Option<&ObjectType> {
        match self.objects.resolve(b"station", None) {
            Resolution::Found { object, .. } => Some(self.objects.get(object)),
            _ => None,
        }
    }
}

impl<'a> Tokens<'a> {
    /// The next two words, without consuming them.
    fn next_pair(&self) -> (Option<Token<'a>>, Option<Token<'a>>) {
        let mut ahead = *self;
        (ahead.next(), ahead.next())
    }
}

fn prefix_of(word: &[u8], token: &[u8]) -> bool {
    token.len() >= 2 && token.len() <= word.len() && word[..token.len()].eq_ignore_ascii_case(token)
}

fn utf8(b: &[u8]) -> Result<&str, Reason> {
    std::str::from_utf8(b).map_err(|_| Reason::NotUtf8)
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
