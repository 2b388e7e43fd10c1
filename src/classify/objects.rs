//! The CM object types the classifier knows: one data table (`objects.json`, compiled in),
//! extendable by an operator's rule file in the same format without recompiling.
//!
//! Each entry is a SAT object name of one or more words (`station`, `coverage path`,
//! `system-parameters *` where `*` is any one word), optional aliases, whether the command names
//! an id, and whether a change needs an element-level (full) resync. SAT lets every word be
//! abbreviated to a unique prefix, and CM's history log cuts the object to 12 characters, so
//! every word matches by prefix (at least two characters, or the whole word).

use std::sync::Arc;

use serde_json::Value;

const BUILTIN: &str = include_str!("objects.json");

/// Whether a command on this object names an id (its first qualifier word).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdRule {
    /// `change station 1001`: without an id the line is incomplete.
    Required,
    /// `change cos [n]`: without an id, resync the whole type.
    Optional,
    /// A single object per element (`abbreviated-dialing system`): always a type-level resync.
    None,
}

/// What an id of this object looks like: a word after the object that does not fit is never
/// taken for its id (`change coverage answer-group 5` is not coverage path `answer-group`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdShape {
    /// Digits, possibly with dots: extensions and numbered objects (the default).
    Digits,
    /// A dialed string: digits, `x`/`X` wildcards, `*`, `#` (analysis tables).
    Dial,
    /// A board or port location (`01A05`, `1B0701`), or `procr`, the processor's own interface.
    Location,
    /// Any word that can be an id: names.
    Name,
}

impl IdShape {
    /// Whether `word` (already an id-like word) has this shape.
    pub fn fits(self, word: &[u8]) -> bool {
        let all = |ok: fn(&u8) -> bool| word.iter().all(ok);
        match self {
            IdShape::Digits => {
                word[0].is_ascii_digit() && all(|b| b.is_ascii_digit() || *b == b'.')
            }
            IdShape::Dial => all(|b| b.is_ascii_digit() || b"xX*#".contains(b)),
            IdShape::Location => {
                word.eq_ignore_ascii_case(b"procr") || super::context::is_location(word)
            }
            IdShape::Name => true,
        }
    }
}

/// What a change to this object asks SMGR to resync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResyncLevel {
    /// The object itself (or its type, see [`IdRule`]).
    Object,
    /// The whole element: incremental sync does not cover it.
    Element,
}

/// One entry of the table, as written in `objects.json` or a rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRule {
    /// SAT spelling, words separated by spaces (`*` = any one word).
    pub name: String,
    pub aliases: Vec<String>,
    pub id: IdRule,
    pub shape: IdShape,
    pub scope: ResyncLevel,
}

impl ObjectRule {
    /// The type name used in resync requests: the words joined by `-`, wildcards dropped.
    pub fn type_name(&self) -> String {
        self.name
            .split_whitespace()
            .filter(|w| *w != "*")
            .collect::<Vec<_>>()
            .join("-")
    }
}

/// Parses a table in the `objects.json` format: `{"objects":[{"name":..., "aliases":[...],
/// "id":"required|optional|none", "scope":"object|element"}]}`.
pub fn parse_rules(json: &str) -> Result<Vec<ObjectRule>, String> {
    let doc: Value = serde_json::from_str(json).map_err(|e| format!("not valid JSON: {e}"))?;
    let list = doc
        .get("objects")
        .and_then(Value::as_array)
        .ok_or("expected {\"objects\": [...]} at the top level")?;
    list.iter()
        .enumerate()
        .map(|(i, v)| parse_rule(v).map_err(|e| format!("objects[{i}]: {e}")))
        .collect()
}

/// The rule's name and aliases: words of printable ASCII, the first starting with a letter.
fn rule_names(v: &Value) -> Result<(String, Vec<String>), String> {
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .ok_or("\"name\" (a string) is required")?;
    let valid_words = |s: &str| {
        let words: Vec<&str> = s.split_whitespace().collect();
        !words.is_empty()
            && words[0] != "*"
            && words
                .iter()
                .all(|w| *w == "*" || w.bytes().all(|b| b.is_ascii_graphic()))
            && words[0].as_bytes()[0].is_ascii_alphabetic()
    };
    if !valid_words(name) {
        return Err(format!(
            "name '{name}': words of printable ASCII, the first starting with a letter"
        ));
    }
    let aliases = match v.get("aliases") {
        None => Vec::new(),
        Some(a) => a
            .as_array()
            .ok_or("\"aliases\" must be a list of strings")?
            .iter()
            .map(|s| match s.as_str() {
                Some(s) if valid_words(s) => Ok(s.to_owned()),
                _ => Err(format!(
                    "alias {s}: a string of words starting with a letter"
                )),
            })
            .collect::<Result<_, _>>()?,
    };
    Ok((name.to_owned(), aliases))
}

fn parse_rule(v: &Value) -> Result<ObjectRule, String> {
    let (name, aliases) = rule_names(v)?;
    use IdShape::*;
    let id = choice(
        v,
        "id",
        &[
            ("required", IdRule::Required),
            ("optional", IdRule::Optional),
            ("none", IdRule::None),
        ],
    )?;
    let shape = choice(
        v,
        "shape",
        &[
            ("digits", Digits),
            ("dial", Dial),
            ("location", Location),
            ("name", Name),
        ],
    )?;
    let scope = choice(
        v,
        "scope",
        &[
            ("object", ResyncLevel::Object),
            ("element", ResyncLevel::Element),
        ],
    )?;
    Ok(ObjectRule {
        name,
        aliases,
        id,
        shape,
        scope,
    })
}

/// An optional field naming one of `choices`; absent, the first.
fn choice<T: Copy>(v: &Value, field: &str, choices: &[(&str, T)]) -> Result<T, String> {
    let given = v.get(field).map(Value::as_str);
    let found = match given {
        None => Some(choices[0].1),
        Some(Some(name)) => choices.iter().find(|(n, _)| *n == name).map(|(_, t)| *t),
        Some(None) => None,
    };
    found.ok_or_else(|| {
        let names: Vec<String> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        let expected = match names.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => "nothing".into(),
        };
        format!("\"{field}\" {:?}: expected {expected}", given.flatten())
    })
}

/// One object type of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectType {
    /// Shared by every pending key of the type.
    pub type_name: Arc<str>,
    pub id: IdRule,
    pub shape: IdShape,
    pub scope: ResyncLevel,
}

/// One way of writing an object (its name or an alias), lower-cased words.
struct Spelling {
    words: Vec<Box<[u8]>>,
    object: usize,
}

/// The object table, indexed by the first two bytes of each spelling.
pub struct ObjectTable {
    types: Vec<ObjectType>,
    spellings: Vec<Spelling>,
    /// Spellings by [`bucket`] of their first word: a word compares with a handful of
    /// spellings, not with every one that shares its first letter.
    by_start: Vec<Vec<usize>>,
    /// `second[letter]`: bit `b` set when a spelling's first word starts with that letter and
    /// the ASCII byte `b`. Rejects most words after a read-only verb in noise (`status up`)
    /// before they are compared with every spelling.
    second: [u128; 26],
    /// Bits of the hashed first three bytes of every spelling's first word ([`three_bit`]):
    /// rejects most of the rest (`up ip=...`: `ip-...` names exist, `ip=` starts none).
    three: [u64; 64],
}

/// What the words after a verb name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Object type index and how many words its name took.
    Found {
        object: usize,
        words: usize,
    },
    /// A prefix of several objects.
    Ambiguous,
    Unknown,
}

impl ObjectTable {
    /// The built-in table.
    pub fn builtin() -> Self {
        Self::with_rules(&[])
    }

    /// The built-in table plus `extra`; an extra entry with a built-in type name replaces it.
    pub fn with_rules(extra: &[ObjectRule]) -> Self {
        let mut rules = parse_rules(BUILTIN).expect("built-in objects.json is valid");
        for rule in extra {
            let name = rule.type_name();
            match rules.iter_mut().find(|r| r.type_name() == name) {
                Some(existing) => *existing = rule.clone(),
                None => rules.push(rule.clone()),
            }
        }
        let mut table = ObjectTable {
            types: Vec::new(),
            spellings: Vec::new(),
            by_start: vec![Vec::new(); 26 * BUCKETS_PER_LETTER],
            second: [0; 26],
            three: [0; 64],
        };
        for (object, rule) in rules.iter().enumerate() {
            table.types.push(ObjectType {
                type_name: rule.type_name().into(),
                id: rule.id,
                shape: rule.shape,
                scope: rule.scope,
            });
            for spelling in std::iter::once(&rule.name).chain(&rule.aliases) {
                let words: Vec<Box<[u8]>> = spelling
                    .split_whitespace()
                    .map(|w| w.to_ascii_lowercase().into_bytes().into())
                    .collect();
                let letter = (words[0][0] - b'a') as usize;
                table.by_start[bucket(&words[0])].push(table.spellings.len());
                if let Some(&b) = words[0].get(1) {
                    table.second[letter] |= 1 << second_bit(b);
                }
                if let [a, b, c, ..] = *words[0] {
                    let bit = three_bit(a, b, c);
                    table.three[bit / 64] |= 1 << (bit % 64);
                }
                table.spellings.push(Spelling { words, object });
            }
        }
        table
    }

    /// Every type name requests may carry (`station`, `hunt-group`, ...), in table order.
    pub fn type_names(&self) -> impl Iterator<Item = &str> {
        self.types.iter().map(|t| &*t.type_name)
    }

    pub fn get(&self, object: usize) -> &ObjectType {
        &self.types[object]
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Resolves the word(s) after a verb: `first` and, for multi-word objects, `second`.
    pub fn resolve(&self, first: &[u8], second: Option<&[u8]>) -> Resolution {
        if !self.may_name(first) {
            return Resolution::Unknown;
        }
        if !first.first().is_some_and(u8::is_ascii_alphabetic) {
            return Resolution::Unknown;
        }
        // (object, words taken, first word exact)
        let mut best: Option<(usize, usize, bool)> = None;
        let mut ambiguous = false;
        for &s in &self.by_start[bucket(first)] {
            let spelling = &self.spellings[s];
            let Some(exact) = word_match(&spelling.words[0], first) else {
                continue;
            };
            let words = match spelling.words.get(1).map(|w| &**w) {
                None => 1,
                Some(b"*") => 1 + usize::from(second.is_some_and(is_word)),
                Some(w) => match second.and_then(|t| word_match(w, t)) {
                    Some(_) => 2,
                    None => continue,
                },
            };
            let candidate = (spelling.object, words, exact);
            match best {
                None => best = Some(candidate),
                Some(b) if (exact, words) > (b.2, b.1) => {
                    (best, ambiguous) = (Some(candidate), false)
                }
                Some(b) if (exact, words) == (b.2, b.1) && b.0 != spelling.object => {
                    ambiguous = true
                }
                Some(_) => {}
            }
        }
        match best {
            _ if ambiguous => Resolution::Ambiguous,
            Some((object, words, _)) => Resolution::Found { object, words },
            None => Resolution::Unknown,
        }
    }

    /// `false` when no object name can start with `first` (its first three bytes decide; a
    /// one-byte word could still be a whole one-letter name). `first` may be just the start of
    /// a word ([`Tokens::head`](super::tokens::Tokens::head)).
    #[inline(always)]
    pub fn may_name(&self, first: &[u8]) -> bool {
        let two = |a: u8, b: u8| {
            a.is_ascii_alphabetic()
                && self.second[(a.to_ascii_lowercase() - b'a') as usize] & (1 << second_bit(b)) != 0
        };
        match *first {
            [a, b, c, ..] => {
                let bit = three_bit(a, b, c);
                two(a, b) && self.three[bit / 64] & (1 << (bit % 64)) != 0
            }
            [a, b] => two(a, b),
            _ => true,
        }
    }
}

const BUCKETS_PER_LETTER: usize = 28;

/// Where a word starting with an ASCII letter is filed: by that letter and its second byte
/// (a letter, any other byte, or none). A word that abbreviates a spelling (two bytes at least,
/// or the whole one-letter name) is filed with it.
fn bucket(word: &[u8]) -> usize {
    let second = match word.get(1) {
        Some(b) if b.is_ascii_alphabetic() => usize::from(b.to_ascii_lowercase() - b'a'),
        Some(_) => 26,
        None => 27,
    };
    usize::from(word[0].to_ascii_lowercase() - b'a') * BUCKETS_PER_LETTER + second
}

/// The bit of a name's second byte in `ObjectTable::second`: the lower-case ASCII byte; every
/// non-ASCII byte shares bit 127 (DEL, never part of a name).
fn second_bit(b: u8) -> u32 {
    if b.is_ascii() {
        u32::from(b.to_ascii_lowercase())
    } else {
        127
    }
}

/// A hash of three bytes (any case) into `0..4096`, for `ObjectTable::three`.
fn three_bit(a: u8, b: u8, c: u8) -> usize {
    let key = u32::from_le_bytes([
        a.to_ascii_lowercase(),
        b.to_ascii_lowercase(),
        c.to_ascii_lowercase(),
        0,
    ]);
    (key.wrapping_mul(0x9e37_79b1) >> 20) as usize
}

/// `Some(exact)` when `token` abbreviates `word` (a prefix of 2+ characters, or all of it).
fn word_match(word: &[u8], token: &[u8]) -> Option<bool> {
    let ok = token.len() <= word.len()
        && (token.len() >= 2 || token.len() == word.len())
        && word[..token.len()].eq_ignore_ascii_case(token);
    ok.then_some(token.len() == word.len())
}

fn is_word(token: &[u8]) -> bool {
    token.first().is_some_and(u8::is_ascii_alphabetic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(t: &ObjectTable, first: &str, second: Option<&str>) -> Option<(String, usize)> {
        match t.resolve(first.as_bytes(), second.map(str::as_bytes)) {
            Resolution::Found { object, words } => {
                Some((t.get(object).type_name.to_string(), words))
            }
            _ => None,
        }
    }

    #[test]
    fn may_name_is_a_superset_of_resolve() {
        let rules = parse_rules(
            r#"{"objects":[{"name":"x9-trunk","id":"required"},{"name":"q","id":"required"}]}"#,
        )
        .unwrap();
        let t = ObjectTable::with_rules(&rules);
        for word in ["st", "STA", "station", "hunt-group", "X9", "x9-t", "q", "Q"] {
            assert!(
                !matches!(t.resolve(word.as_bytes(), Some(b"1")), Resolution::Unknown),
                "{word} names an object"
            );
            assert!(t.may_name(word.as_bytes()), "{word}");
        }
        for noise in ["up", "1001", "zz", "\u{e9}t", "ip=10.1.2.3", "stx"] {
            assert!(!t.may_name(noise.as_bytes()), "{noise}");
        }
        assert!(t.may_name(b"q"), "a one-letter word may be a whole name");
    }

    #[test]
    fn resolves_names_prefixes_and_multi_word_objects() {
        let t = ObjectTable::builtin();
        let cases: &[(&str, Option<&str>, &str, usize)] = &[
            ("station", Some("1001"), "station", 1),
            ("STA", Some("1001"), "station", 1),
            ("st", None, "station", 1),
            ("agent-loginID", Some("5000"), "agent-loginID", 1),
            ("agent", Some("5000"), "agent-loginID", 1),
            ("hunt", Some("1"), "hunt-group", 1),
            ("coverage", Some("path"), "coverage-path", 2),
            ("cov", Some("pa"), "coverage-path", 2),
            ("coverage-path", Some("5"), "coverage-path", 1),
            (
                "abbreviated-dialing",
                Some("personal"),
                "abbreviated-dialing-personal",
                2,
            ),
            ("abbreviated-", Some("sys"), "abbreviated-dialing-system", 2),
            (
                "off-pbx-tele",
                Some("station-mapping"),
                "off-pbx-telephone-station-mapping",
                2,
            ),
            ("ars", Some("analysis"), "ars-analysis", 2),
            ("aar", Some("an"), "aar-analysis", 2),
            ("system-param", Some("features"), "system-parameters", 2),
            ("sys", Some("feat"), "system-parameters", 2),
            ("dialplan", Some("analysis"), "dialplan", 2),
            ("dial-plan", None, "dialplan", 1),
            ("cabinet", Some("1"), "cabinet", 1),
            ("board", Some("01A05"), "board", 1),
            ("cor", Some("1"), "cor", 1),
            ("cos", None, "cos", 1),
            ("vdn", Some("5000"), "vdn", 1),
            ("vec", Some("1"), "vector", 1),
            ("terminating-", Some("1"), "terminating-extension-group", 1),
            ("ip-network-r", Some("1"), "ip-network-region", 1),
            ("public-unkno", Some("4"), "public-unknown-numbering", 1),
            ("uniform-dialplan", Some("0"), "uniform-dialplan", 1),
        ];
        for (first, second, want, words) in cases {
            assert_eq!(
                name(&t, first, *second),
                Some((want.to_string(), *words)),
                "{first} {second:?}"
            );
        }
    }

    #[test]
    fn ambiguous_and_unknown() {
        let t = ObjectTable::builtin();
        assert_eq!(t.resolve(b"co", Some(b"1")), Resolution::Ambiguous);
        assert_eq!(t.resolve(b"s", Some(b"1")), Resolution::Unknown);
        assert_eq!(t.resolve(b"history", None), Resolution::Unknown);
        assert_eq!(t.resolve(b"1001", None), Resolution::Unknown);
        assert_eq!(t.resolve(b"ars", Some(b"9")), Resolution::Unknown);
        assert_eq!(t.resolve(b"", None), Resolution::Unknown);
    }

    #[test]
    fn rule_file_adds_and_replaces() {
        let rules = parse_rules(
            r#"{"objects":[{"name":"media-gateway","id":"optional"},{"name":"station","scope":"element"},
                {"name":"music-sources","id":"none"}]}"#,
        )
        .unwrap();
        let t = ObjectTable::with_rules(&rules);
        assert_eq!(t.len(), ObjectTable::builtin().len() + 2);
        let Resolution::Found { object, .. } = t.resolve(b"station", None) else {
            panic!()
        };
        assert_eq!(t.get(object).scope, ResyncLevel::Element);
        assert!(matches!(
            t.resolve(b"media-gateway", Some(b"1")),
            Resolution::Found { .. }
        ));
        assert!(matches!(
            t.resolve(b"music", None),
            Resolution::Found { .. }
        ));
    }

    #[test]
    fn bad_rule_files_say_what_is_wrong() {
        for (json, says) in [
            ("not json", "not valid JSON"),
            ("{}", "objects"),
            (r#"{"objects":[{"aliases":[]}]}"#, "objects[0]: \"name\""),
            (r#"{"objects":[{"name":"x","id":"maybe"}]}"#, "\"id\""),
            (r#"{"objects":[{"name":"x","scope":"all"}]}"#, "\"scope\""),
            (r#"{"objects":[{"name":"1x"}]}"#, "starting with a letter"),
            (r#"{"objects":[{"name":"x","aliases":[1]}]}"#, "alias"),
        ] {
            let e = parse_rules(json).unwrap_err();
            assert!(e.contains(says), "{json}: {e}");
        }
    }
}
