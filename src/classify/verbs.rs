//! SAT verbs. A word is a verb when it is a whole verb or a prefix of at least two letters that
//! belongs to exactly one SAT verb (`ch` = change, `rem` = remove; `re` is ambiguous). CM's
//! history log cuts the action to four characters (`chan`, `dupl`), which is such a prefix.

/// A verb that changes data and so makes an event. Its name in records: [`Verb::as_str`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    Add,
    Change,
    Duplicate,
    Remove,
    Delete,
}

impl Verb {
    pub const ALL: [Verb; 5] = [
        Verb::Add,
        Verb::Change,
        Verb::Duplicate,
        Verb::Remove,
        Verb::Delete,
    ];

    /// The verb [`Verb::as_str`] names.
    pub fn parse(s: &str) -> Option<Verb> {
        Verb::ALL.into_iter().find(|v| v.as_str() == s)
    }

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
/// Sorted, so that [`BY_PAIR`] can index it.
pub(super) const VERBS: &[(&str, VerbKind)] = &[
    ("add", Change(Verb::Add)),
    ("backup", ReadOnly),
    ("busyout", ReadOnly),
    ("campon-busyout", ReadOnly),
    ("cancel", ReadOnly),
    ("change", Change(Verb::Change)),
    ("clear", ReadOnly),
    ("configure", ReadOnly),
    ("delete", Change(Verb::Delete)),
    ("disable", ReadOnly),
    ("display", ReadOnly),
    ("duplicate", Change(Verb::Duplicate)),
    ("enable", ReadOnly),
    ("erase", ReadOnly),
    ("export", ReadOnly),
    ("format", ReadOnly),
    ("get", ReadOnly),
    ("go", ReadOnly),
    ("help", ReadOnly),
    ("list", ReadOnly),
    ("load", ReadOnly),
    ("login", Session),
    ("logoff", Session),
    ("logon", Session),
    ("logout", Session),
    ("mark", ReadOnly),
    ("monitor", ReadOnly),
    ("netstat", ReadOnly),
    ("notify", ReadOnly),
    ("ping", ReadOnly),
    ("recycle", ReadOnly),
    ("refresh", ReadOnly),
    ("release", ReadOnly),
    ("remove", Change(Verb::Remove)),
    ("reset", ReadOnly),
    ("restore", ReadOnly),
    ("resume", ReadOnly),
    ("save", ReadOnly),
    ("set", ReadOnly),
    ("status", ReadOnly),
    ("test", ReadOnly),
    ("traceroute", ReadOnly),
    ("upgrade", ReadOnly),
];

/// `BY_PAIR[26 * a + b]`: the range of [`VERBS`] starting with the letters `a`, `b` (0 = 'a');
/// empty for the pairs no verb starts with, which is almost every pair in noise.
static BY_PAIR: [(u8, u8); 26 * 26] = {
    let mut t = [(0u8, 0u8); 26 * 26];
    let mut i = 0;
    while i < VERBS.len() {
        let v = VERBS[i].0.as_bytes();
        let pair = 26 * (v[0] - b'a') as usize + (v[1] - b'a') as usize;
        if t[pair].1 == 0 {
            t[pair].0 = i as u8;
        }
        t[pair].1 = i as u8 + 1;
        i += 1;
    }
    t
};

/// Looks up a word (any case). Noise words cost a bounds check and one table lookup: almost
/// none of them start with the two letters of a verb, and those that do are compared with the
/// one to three verbs sharing those letters.
#[inline]
pub fn lookup(word: &[u8]) -> Option<VerbKind> {
    let [a, b, ..] = *word else {
        return None;
    };
    let (a, b) = ((a | 0x20).wrapping_sub(b'a'), (b | 0x20).wrapping_sub(b'a'));
    if a >= 26 || b >= 26 || word.len() > 14 {
        return None;
    }
    let (from, to) = BY_PAIR[26 * a as usize + b as usize];
    let mut found = None;
    for &(verb, kind) in &VERBS[from as usize..to as usize] {
        let v = verb.as_bytes();
        if word.len() > v.len() || !v[2..word.len()].eq_ignore_ascii_case(&word[2..]) {
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
    fn table_is_sorted() {
        assert!(VERBS.windows(2).all(|w| w[0].0 < w[1].0));
    }

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
