//! What System Manager is asked to resync: keys (element plus object, type or whole element),
//! the changes that touch them, and times as SMGR reads them.

use std::sync::Arc;

pub use compact_str::CompactString as ShortText;
use serde_json::{Map, Value};

use crate::classify::Verb;

/// What a request covers within one element.
///
/// Object ids and logins are [`ShortText`]: held inline up to 24 bytes (every extension,
/// agent id and login CM has), so a change allocates nothing for them and the coalescing map
/// compares keys without following a pointer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Object { ty: Arc<str>, id: ShortText },
    Type { ty: Arc<str> },
    Element,
}

/// The reason of a resync an operator asked for (`omcmsync resync`).
pub const OPERATOR_RESYNC: &str = "operator resync";

/// The unit of coalescing: one element's object, type, or the element itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub element: Arc<str>,
    pub scope: Scope,
}

/// One accepted change, as the queue stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub key: Key,
    pub verb: Verb,
    pub login: Option<ShortText>,
    /// Why a type- or element-level resync (`add next`, `system-parameters`, ...).
    pub reason: Option<String>,
    /// When rsyslog received it, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Heard while this node was standby (held until it is active; `origin: "standby"`).
    pub standby: bool,
}

/// Where a record's fields go: the queue log's own writer and a JSON map (requests) alike, so
/// each field's name and form is spelled once, by the type that owns it.
pub trait Fields {
    fn str(&mut self, name: &'static str, value: &str);
    fn num(&mut self, name: &'static str, value: u64);
    fn strs<'s>(&mut self, name: &'static str, values: impl Iterator<Item = &'s str>);
}

impl Fields for Map<String, Value> {
    fn str(&mut self, name: &'static str, value: &str) {
        self.insert(name.into(), value.into());
    }

    fn num(&mut self, name: &'static str, value: u64) {
        self.insert(name.into(), value.into());
    }

    fn strs<'s>(&mut self, name: &'static str, values: impl Iterator<Item = &'s str>) {
        self.insert(name.into(), values.collect());
    }
}

impl Scope {
    /// The scope's fields, in log records and requests alike; [`Scope::read_json`] reads them.
    pub fn write_fields(&self, out: &mut impl Fields) {
        match self {
            Scope::Object { ty, id } => {
                out.str("scope", "object");
                out.str("type", ty);
                out.str("id", id);
            }
            Scope::Type { ty } => {
                out.str("scope", "type");
                out.str("type", ty);
            }
            Scope::Element => out.str("scope", "element"),
        }
    }

    pub fn read_json(v: &Value) -> Option<Scope> {
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        Some(match v.get("scope")?.as_str()? {
            "object" => Scope::Object {
                ty: s("type")?.into(),
                id: s("id")?.into(),
            },
            "type" => Scope::Type {
                ty: s("type")?.into(),
            },
            "element" => Scope::Element,
            _ => return None,
        })
    }
}

/// The verbs that touched a key: a bit per verb (a `BTreeSet` allocated a node per key).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerbSet(u8);

impl VerbSet {
    pub fn insert(&mut self, verb: Verb) {
        self.0 |= 1 << verb as u8;
    }

    pub fn union(self, other: VerbSet) -> VerbSet {
        VerbSet(self.0 | other.0)
    }

    /// In `Verb::ALL` order.
    pub fn iter(self) -> impl Iterator<Item = Verb> {
        Verb::ALL
            .into_iter()
            .filter(move |&v| self.0 & (1 << v as u8) != 0)
    }
}

impl FromIterator<Verb> for VerbSet {
    fn from_iter<I: IntoIterator<Item = Verb>>(verbs: I) -> Self {
        let mut set = VerbSet::default();
        verbs.into_iter().for_each(|v| set.insert(v));
        set
    }
}

impl<const N: usize> From<[Verb; N]> for VerbSet {
    fn from(verbs: [Verb; N]) -> Self {
        verbs.into_iter().collect()
    }
}

/// Milliseconds since the Unix epoch, now: the wall clock, for what is written down (the log,
/// request bodies, traces).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The clock that schedules (due times, backoff): [`now_ms`] at its first reading in this
/// process, then moving with the monotonic clock only. A step of the wall clock (NTP correcting
/// a drifted VM, a resumed snapshot) therefore neither holds keys back nor sends them early;
/// a restart anchors it to the wall clock again, which is what the log's times are in.
pub fn sched_now_ms() -> u64 {
    static ANCHOR: std::sync::OnceLock<(u64, std::time::Instant)> = std::sync::OnceLock::new();
    let (wall, at) = ANCHOR.get_or_init(|| (now_ms(), std::time::Instant::now()));
    wall + at.elapsed().as_millis() as u64
}

/// RFC 3339 in UTC with milliseconds: `2026-11-25T10:15:02.123Z`.
pub fn rfc3339(ms: u64) -> String {
    let (days, rest) = ((ms / 86_400_000) as i64, ms % 86_400_000);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// Parses the RFC 3339 receive time rsyslog renders (`2026-11-25T10:15:02.123456+01:00`).
/// Byte by byte, without allocating: it runs for every change in a flood.
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b.get(r)?.iter().try_fold(0, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let sep = |i: usize, c: u8| (b.get(i) == Some(&c)).then_some(());
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    sep(4, b'-')
        .and(sep(7, b'-'))
        .and(sep(13, b':'))
        .and(sep(16, b':'))?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let digits = b[i..].iter().take_while(|d| d.is_ascii_digit()).count();
        // Milliseconds: the first three digits, padded with zeros when there are fewer.
        millis = (0..3).fold(0, |m, k| {
            m * 10
                + if k < digits {
                    i64::from(b[i + k] - b'0')
                } else {
                    0
                }
        });
        i += digits;
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            sep(i + 3, b':')?;
            let m = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'-' {
                -m
            } else {
                m
            }
        }
        _ => return None,
    };
    // Days from civil (Hinnant).
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    u64::try_from(secs * 1000 + millis).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        for ms in [0, 1_764_065_702_123, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339_ms(&rfc3339(ms)), Some(ms), "{}", rfc3339(ms));
        }
        assert_eq!(rfc3339(1_764_065_702_123), "2025-11-25T10:15:02.123Z");
        assert_eq!(
            parse_rfc3339_ms("2025-11-25T11:15:02.123456+01:00"),
            Some(1_764_065_702_123)
        );
        assert_eq!(
            parse_rfc3339_ms("2025-11-25T10:15:02Z"),
            Some(1_764_065_702_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2025-11-25T11:15:02.1+01:00"),
            Some(1_764_065_702_100)
        );
        for bad in [
            "yesterday",
            "2025-11-25T10:15:02",
            "2025-11-25T10:15:+2Z",
            "2025/11/25T10:15:02Z",
            "2025-11-25T10:15:02.5+0100",
            "",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn scope_json_round_trip() {
        for scope in [
            Scope::Object {
                ty: "station".into(),
                id: "1001".into(),
            },
            Scope::Type {
                ty: "station".into(),
            },
            Scope::Element,
        ] {
            let mut m = Map::new();
            scope.write_fields(&mut m);
            assert_eq!(Scope::read_json(&Value::Object(m)), Some(scope));
        }
    }
}
