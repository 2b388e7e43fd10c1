//! SAT verbs. A word is a verb when it is a whole verb or a prefix of at least two letters that
//! belongs to exactly one SAT verb (`ch` = change, `rem` = remove; `re` is ambiguous). CM's
//! history log cuts the action to four characters (`chan`, `dupl`), which is such a prefix.

/// A verb that changes data and so makes an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    Add,
    Change,
    Duplicate,
    Remove,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Add => "add",
            Verb::Change => "change",
            Verb::Duplicate => "duplicate",
            Verb::Remove => "remove",
            Verb::Delete => "delete",
        }
    }
}

/// What a SAT verb word means for us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerbKind {
    Change(Verb),
    /// Reads or operates without changing translations (list, display, status, ...).
    ReadOnly,
    /// Session start or end.
    Session,
}

use VerbKind::*;

/// Every SAT verb we know, so that prefixes are judged unique against the real set.
const VERBS: &[(&str, VerbKind)] = &[
    ("add", Change(Verb::Add)),
    ("change", Change(Verb::Change)),
    ("duplicate", Change(Verb::Duplicate)),
    ("remove", Change(Verb::Remove)),
    ("delete", Change(Verb::Delete)),
    ("backup", ReadOnly),
    ("busyout", ReadOnly),
    ("campon-busyout", ReadOnly),
    ("cancel", ReadOnly),
    ("clear", ReadOnly),
    ("configure", ReadOnly),
    ("disable", ReadOnly),
    ("display", ReadOnly),
    ("enable", ReadOnly),
    ("erase", ReadOnly),
    ("export", ReadOnly),
    ("format", ReadOnly),
    ("get", ReadOnly),
    ("go", ReadOnly),
    ("help", ReadOnly),
    ("list", ReadOnly),
    ("load", ReadOnly),
    ("mark", ReadOnly),
    ("monitor", ReadOnly),
    ("netstat", ReadOnly),
    ("notify", ReadOnly),
    ("ping", ReadOnly),
    ("recycle", ReadOnly),
    ("refresh", ReadOnly),
    ("release", ReadOnly),
    ("reset", ReadOnly),
    ("restore", ReadOnly),
    ("resume", ReadOnly),
    ("save", ReadOnly),
    ("set", ReadOnly),
    ("status", ReadOnly),
    ("test", ReadOnly),
    ("traceroute", ReadOnly),
    ("upgrade", ReadOnly),
    ("login", Session),
    ("logoff", Session),
    ("logout", Session),
    ("logon", Session),
];

/// Looks up a word (any case). Cheap for the common case of noise words: most are rejected by
/// their first letter or second character.
pub fn lookup(word: &[u8]) -> Option<VerbKind> {
    if word.len() < 2 || word.len() > 14 || !word[0].is_ascii_alphabetic() {
        return None;
    }
    let mut found = None;
    for &(verb, kind) in VERBS {
        let v = verb.as_bytes();
        if v[0] != word[0].to_ascii_lowercase()
            || word.len() > v.len()
            || !v[..word.len()].eq_ignore_ascii_case(word)
        {
            continue;
        }
        if v.len() == word.len() {
            return Some(kind);
        }
        if found.is_some() {
            return None; // prefix of two verbs
        }
        found = Some(kind);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_words_and_unique_prefixes() {
        let cases: &[(&str, Option<VerbKind>)] = &[
            ("add", Some(Change(Verb::Add))),
            ("ad", Some(Change(Verb::Add))),
            ("ch", Some(Change(Verb::Change))),
            ("cha", Some(Change(Verb::Change))),
            ("CHAN", Some(Change(Verb::Change))),
            ("change", Some(Change(Verb::Change))),
            ("du", Some(Change(Verb::Duplicate))),
            ("dupl", Some(Change(Verb::Duplicate))),
            ("rem", Some(Change(Verb::Remove))),
            ("remo", Some(Change(Verb::Remove))),
            ("de", Some(Change(Verb::Delete))),
            ("delete", Some(Change(Verb::Delete))),
            ("re", None),
            ("c", None),
            ("changes", None),
            ("di", None),
            ("disp", Some(ReadOnly)),
            ("list", Some(ReadOnly)),
            ("st", Some(ReadOnly)),
            ("login", Some(Session)),
            ("logo", None),
            ("address", None),
            ("1001", None),
            ("", None),
        ];
        for (word, want) in cases {
            assert_eq!(lookup(word.as_bytes()), *want, "{word}");
        }
    }
}
