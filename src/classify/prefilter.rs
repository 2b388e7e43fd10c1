//! The noise fast path: one pass over the bytes that proves most lines hold no word the grammar
//! could act on, without splitting them into words.
//!
//! Everything the grammar reacts to — a verb, a `tti-`/`psa-` login, `cmd=`, `login=`,
//! `cmdhist` — starts at a word start (after a separator, `:`, `=`, or an rsyslog `#ooo`
//! escape) with two letters from a small set. The pass finds word starts 32 bytes at a time
//! ([`scan`]), tests the first five bytes of each through small tables ([`is_candidate`]), and
//! only where they agree reads the word and checks it exactly. A line with no such word is
//! noise. This is a superset test: whatever the full grammar would notice passes it (the
//! property tests check that).

use super::context;
use super::objects::{ObjectTable, Resolution};
use super::tokens::Tokens;
use super::verbs::{self, VerbKind};
use crate::scan;

/// Words that end a word read at a candidate: separators, `:`, `=`, `#`, and the first bytes
/// of the invisible characters the grammar treats as separators (a superset: a closer look
/// decides).
static WORD_END: [bool; 256] = {
    let mut t = [false; 256];
    let b = b" \t\r\n\x0b\x0c\"'[](){}<>,;|:=#\xc2\xe2\xef";
    let mut i = 0;
    while i < b.len() {
        t[b[i] as usize] = true;
        i += 1;
    }
    t
};

/// Words worth a look besides verbs: station logins (`tti-`, `psa-`), `cmdhist`, and the keys
/// of admin `key=value` words (`context::is_admin_word`).
const OTHER_WORDS: &[&[u8]] = &[
    b"tti-",
    b"psa-",
    b"cmdhist",
    b"cmd",
    b"command",
    b"login",
    b"user",
    b"usr",
    b"username",
    b"admin",
];

/// A 2048-bit set of the hashed four- and five-letter starts of verbs and [`OTHER_WORDS`]: a
/// word of four or more letters whose start is not in it cannot matter (a collision only costs
/// a closer look).
static LONG: [u64; 32] = {
    let mut t = [0u64; 32];
    let mut i = 0;
    while i < verbs::VERBS.len() + OTHER_WORDS.len() {
        let w = if i < verbs::VERBS.len() {
            verbs::VERBS[i].0.as_bytes()
        } else {
            OTHER_WORDS[i - verbs::VERBS.len()]
        };
        let mut head = 0u64;
        let mut n = 0;
        while n < w.len() && n < 5 && w[n].is_ascii_alphabetic() {
            head |= (w[n] as u64) << (8 * n);
            n += 1;
            if n >= 4 {
                let h = long_hash(head, n);
                t[h / 64] |= 1 << (h % 64);
            }
        }
        i += 1;
    }
    t
};

/// Hash of the first `n` bytes of `head` (letters, any case) into 0..2048.
const fn long_hash(head: u64, n: usize) -> usize {
    let key = (head | 0x2020_2020_2020_2020) & (u64::MAX >> (64 - 8 * n));
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 53) as usize
}

/// Bit 26 stands for "not a letter" in the third position: a two-letter verb abbreviation.
const NOT_LETTER: u32 = 1 << 26;

/// The row of [`THIRD`] for a word's first two bytes: the low five bits of each, which tell
/// letters apart in either case (the scan only asks where both are letters, or cannot tell).
const fn third_row(b0: u8, b1: u8) -> usize {
    32 * (b0 & 31) as usize + (b1 & 31) as usize
}

/// `THIRD[third_row(b0, b1)]`: the set of third bytes (letter bits, NOT_LETTER) after which the
/// letters `b0 b1` start a word worth a look.
static THIRD: [u32; 32 * 32] = {
    let mut t = [0u32; 32 * 32];
    let mut i = 0;
    while i < verbs::VERBS.len() {
        let v = verbs::VERBS[i].0.as_bytes();
        let row = third_row(v[0], v[1]);
        t[row] |= NOT_LETTER;
        if v.len() > 2 && v[2] >= b'a' && v[2] <= b'z' {
            t[row] |= 1 << (v[2] - b'a');
        } else if v.len() > 2 {
            t[row] |= NOT_LETTER;
        }
        i += 1;
    }
    let mut i = 0;
    while i < OTHER_WORDS.len() {
        let w = OTHER_WORDS[i];
        t[third_row(w[0], w[1])] |= 1 << (w[2] - b'a');
        i += 1;
    }
    t
};

/// The bit of a byte in the third position.
static THIRD_BIT: [u32; 256] = {
    let mut t = [NOT_LETTER; 256];
    let mut a = 0;
    while a < 26 {
        t[b'a' as usize + a] = 1 << a;
        t[b'A' as usize + a] = 1 << a;
        a += 1;
    }
    t
};

/// `false` when the line certainly holds nothing the grammar acts on.
///
/// Thirty-two bytes at a time, the scan finds word starts — a letter after a non-letter — (a
/// superset of where the grammar's words start: after separators, `:`, `=`, escapes), then
/// checks the first letters of each ([`is_candidate`]).
#[inline]
pub fn may_matter(line: &[u8], objects: &ObjectTable) -> bool {
    let mut after_letter = 0; // 1 when the byte before the block is a letter
    let mut base = 0;
    while base < line.len() {
        let letters = scan::mask(line, base, scan::letters);
        // A letter after a non-letter, followed by a letter (every word worth a look has two;
        // the next block's first byte is unknown here).
        let mut starts = letters & !((letters << 1) | after_letter) & (letters >> 1 | 1 << 31);
        after_letter = letters >> (scan::WIDTH - 1);
        while starts != 0 {
            let p = base + starts.trailing_zeros() as usize;
            starts &= starts - 1;
            if is_candidate(scan::head(line, p)) && word_matters(&line[p..], objects) {
                return true;
            }
        }
        base += scan::WIDTH;
    }
    false
}

/// `false` when the word whose first bytes are `head` (little-endian) starts nothing we know.
/// Two letters must start a verb or another word worth a look (with the third byte, through
/// [`THIRD`]); what follows them must be a letter or the word's end (or the `-` of `tti-`);
/// four or five letters must be in [`LONG`].
#[inline(always)]
fn is_candidate(head: u64) -> bool {
    let [b0, b1, b2, b3, b4, ..] = head.to_le_bytes();
    if THIRD[third_row(b0, b1)] & THIRD_BIT[b2 as usize] == 0 {
        return false;
    }
    let ends = |b: u8| b == 0 || WORD_END[b as usize];
    if !b2.is_ascii_alphabetic() {
        return ends(b2);
    }
    if !b3.is_ascii_alphabetic() {
        return ends(b3) || b3 == b'-';
    }
    let h = long_hash(head, if b4.is_ascii_alphabetic() { 5 } else { 4 });
    LONG[h / 64] & (1 << (h % 64)) != 0
}

/// The exact check of the word that starts `rest` (as the full grammar would judge it).
#[cold]
fn word_matters(rest: &[u8], objects: &ObjectTable) -> bool {
    let end = rest
        .iter()
        .position(|&b| WORD_END[b as usize])
        .unwrap_or(rest.len());
    let word = &rest[..end];
    match verbs::lookup(word) {
        // A read-only verb only counts when an object follows it. The head of the next word
        // rules out most noise (`status up`) before that word is read.
        Some(VerbKind::ReadOnly) => {
            let mut next = Tokens::new(&rest[end..]);
            objects.may_name(next.head())
                && next.next().is_some_and(|a| {
                    matches!(
                        objects.resolve(a.text, next.next().map(|b| b.text)),
                        Resolution::Found { .. }
                    )
                })
        }
        Some(_) => true,
        None => {
            context::is_station_login(word)
                || word.len() >= 7 && word[..7].eq_ignore_ascii_case(b"cmdhist")
                || rest.get(end) == Some(&b'=') && context::is_admin_word(word)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_rejected_and_commands_are_not() {
        let t = ObjectTable::builtin();
        for noise in [
            "IPEVT IPT_REG board=PROCR ip=10.1.1.50 port=1719",
            "DENYEVT event=1225 d1=0 state=idle reason=timeout",
            "",
            "x",
            "link status up",
        ] {
            assert!(!may_matter(noise.as_bytes(), &t), "{noise}");
        }
        for admin in [
            "change station 1",
            "x:cha sta 1",
            "a=1 cmd=\"\"",
            "9#011change",
            "TTI-M",
            "4711:cmdhist(2301)",
            "LOGIN=dadmin",
            "status station",
            "ch",
        ] {
            assert!(may_matter(admin.as_bytes(), &t), "{admin}");
        }
    }
}
