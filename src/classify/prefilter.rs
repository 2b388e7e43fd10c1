//! The noise fast path: one branch-light pass over the bytes that proves most lines hold no word
//! the grammar could act on, without splitting them into words.
//!
//! Everything the grammar reacts to — a verb, a `tti-`/`psa-` login, `cmd=`, `login=`,
//! `cmdhist` — starts at a word start (after a separator, `:`, `=`, or an rsyslog `#ooo`
//! escape) with two letters from a small set. The pass looks at every position's byte pair
//! and the byte before it through three small tables; only where all three agree does it read
//! the word and check it exactly. A line with no such word is noise. This is a superset test:
//! whatever the full grammar would notice passes it (the property tests check that).

use super::context;
use super::objects::{ObjectTable, Resolution};
use super::tokens::Tokens;
use super::verbs::{self, VerbKind};

/// Words that end a word read at a candidate: separators, `:`, `=`, `#`.
static WORD_END: [bool; 256] = {
    let mut t = [false; 256];
    let b = b" \t\r\n\x0b\x0c\"'[](){}<>,;|:=#";
    let mut i = 0;
    while i < b.len() {
        t[b[i] as usize] = true;
        i += 1;
    }
    t
};

/// Starts worth a look besides verbs: `tti-`, `psa-`, `cmd`(hist), `command`, `login`,
/// `user`/`usr`/`username`, `admin` (their first three letters).
const OTHER_STARTS: &[&[u8; 3]] = &[
    b"tti", b"psa", b"cmd", b"com", b"log", b"use", b"usr", b"adm",
];

/// First four letters of the words worth a look besides verbs (see [`OTHER_STARTS`]).
const OTHER_FOURS: &[&[u8; 4]] = &[b"cmdh", b"comm", b"logi", b"user", b"admi"];

/// A 1024-bit set of hashed four-letter starts of verbs and [`OTHER_FOURS`]: a word of four or
/// more letters whose start is not in it cannot matter (a collision only costs a closer look).
static FOURS: [u64; 16] = {
    let mut t = [0u64; 16];
    let mut i = 0;
    while i < verbs::VERBS.len() {
        let v = verbs::VERBS[i].0.as_bytes();
        if v.len() >= 4 {
            let h = four_hash([v[0], v[1], v[2], v[3]]);
            t[h / 64] |= 1 << (h % 64);
        }
        i += 1;
    }
    let mut i = 0;
    while i < OTHER_FOURS.len() {
        let h = four_hash(*OTHER_FOURS[i]);
        t[h / 64] |= 1 << (h % 64);
        i += 1;
    }
    t
};

/// Hash of four lower-case bytes into 0..1024.
const fn four_hash(b: [u8; 4]) -> usize {
    (u32::from_le_bytes(b).wrapping_mul(0x9e37_79b1) >> 22) as usize
}

/// `false` when the word at the start of `rest` has four letters that start nothing we know.
#[inline]
fn four_ok(rest: &[u8]) -> bool {
    match rest {
        [a, b, c, d, ..] if c.is_ascii_alphabetic() && d.is_ascii_alphabetic() => {
            let h = four_hash([a | 0x20, b | 0x20, c | 0x20, d | 0x20]);
            FOURS[h / 64] & (1 << (h % 64)) != 0
        }
        _ => true,
    }
}

/// Letter index of a byte, any case; 26 for everything else.
static LETTER: [u8; 256] = {
    let mut t = [26u8; 256];
    let mut a = 0;
    while a < 26 {
        t[b'a' as usize + a] = a as u8;
        t[b'A' as usize + a] = a as u8;
        a += 1;
    }
    t
};

/// Bit 26 stands for "not a letter" in the third position: a two-letter verb abbreviation.
const NOT_LETTER: u32 = 1 << 26;

/// `THIRD[27 * l0 + l1]`: the set of third bytes (letter bits, NOT_LETTER) after which the
/// letters `l0 l1` start a word worth a look. Rows with a non-letter index stay empty.
static THIRD: [u32; 27 * 27] = {
    let mut t = [0u32; 27 * 27];
    let mut i = 0;
    while i < verbs::VERBS.len() {
        let v = verbs::VERBS[i].0.as_bytes();
        let row = 27 * (v[0] - b'a') as usize + (v[1] - b'a') as usize;
        t[row] |= NOT_LETTER;
        if v.len() > 2 && v[2] >= b'a' && v[2] <= b'z' {
            t[row] |= 1 << (v[2] - b'a');
        } else if v.len() > 2 {
            t[row] |= NOT_LETTER;
        }
        i += 1;
    }
    let mut i = 0;
    while i < OTHER_STARTS.len() {
        let w = OTHER_STARTS[i];
        t[27 * (w[0] - b'a') as usize + (w[1] - b'a') as usize] |= 1 << (w[2] - b'a');
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
/// Eight bytes at a time, the scan finds word starts — a letter after a non-letter — with a few
/// integer operations (a superset of where the grammar's words start: after separators, `:`,
/// `=`, escapes), then checks the first three letters of each through [`THIRD`].
#[inline]
pub fn may_matter(line: &[u8], objects: &ObjectTable) -> bool {
    let mut prev_letter = 0u64; // high bit of byte 0 set when the byte before the chunk is a letter
    let mut chunks = line.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
        if word_starts(word, &mut prev_letter, line, base, objects) {
            return true;
        }
        base += 8;
    }
    let rest = chunks.remainder();
    let mut last = [0u8; 8];
    last[..rest.len()].copy_from_slice(rest);
    !rest.is_empty()
        && word_starts(
            u64::from_le_bytes(last),
            &mut prev_letter,
            line,
            base,
            objects,
        )
}

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;
const fn splat(b: u8) -> u64 {
    b as u64 * 0x0101_0101_0101_0101
}

/// Checks the word starts among the 8 bytes of `word` (little-endian: byte i is `line[base+i]`;
/// zero-padded past the end of the line, which reads like a separator).
#[inline(always)]
fn word_starts(
    word: u64,
    prev_letter: &mut u64,
    line: &[u8],
    base: usize,
    objects: &ObjectTable,
) -> bool {
    // ASCII letters: (b | 0x20) in 'a'..='z', computed per byte without carries across bytes.
    let lower = (word | splat(0x20)) & LOW7;
    let ge_a = lower + splat(0x80 - b'a');
    let gt_z = lower + splat(0x80 - b'z' - 1);
    let letters = ge_a & !gt_z & !word & HIGH;
    let mut starts = letters & !((letters << 8) | *prev_letter);
    *prev_letter = (letters >> 56) & 0x80;
    while starts != 0 {
        let offset = (starts.trailing_zeros() / 8) as usize;
        starts &= starts - 1;
        let p = base + offset;
        let (b0, b1, b2) = if offset <= 5 {
            let x = word >> (8 * offset);
            (x as u8, (x >> 8) as u8, (x >> 16) as u8)
        } else {
            let at = |i: usize| line.get(p + i).copied().unwrap_or(b' ');
            (at(0), at(1), at(2))
        };
        let row = 27 * LETTER[b0 as usize] as usize + LETTER[b1 as usize] as usize;
        if THIRD[row] & THIRD_BIT[b2 as usize] != 0
            && four_ok(&line[p..])
            && word_matters(&line[p..], objects)
        {
            return true;
        }
    }
    false
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
        // A read-only verb only counts when an object follows it.
        Some(VerbKind::ReadOnly) => {
            let mut next = Tokens::new(&rest[end..]);
            // `may_name` first: most noise words after such a verb end it before the second
            // word is read.
            next.next().is_some_and(|a| {
                objects.may_name(a.text)
                    && matches!(
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
