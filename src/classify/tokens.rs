//! Splits a message into words in one pass, without allocating.
//!
//! Words are separated by whitespace, quotes, brackets, parentheses, `,`, `;` and `|`, and by
//! rsyslog's escapes of control characters (`#011` for a TAB). `:` and `=` stay inside words
//! (times, IPv6 addresses, `key=value`), but each word remembers where its *tail* starts —
//! after the last `:` or `=` — so that `cmd=change` or `MED:change` still shows its verb.
//! Invisible characters rsyslog passes through (a UTF-8 byte-order mark, RFC 5424 §6.4, and
//! zero-width or direction marks) are skipped where a word, a tail or a value starts, so
//! `<BOM>add vdn 1` and `login=<BOM>dadmin` read as if they were not there.

const SEP: u8 = 1;
const TAIL: u8 = 2; // ':' or '='
const HASH: u8 = 3;
/// The first byte of a UTF-8 sequence that may be an invisible character ([`invisible`]).
const LEAD: u8 = 4;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let seps = b" \t\r\n\x0b\x0c\"'[](){}<>,;|";
    let mut i = 0;
    while i < seps.len() {
        t[seps[i] as usize] = SEP;
        i += 1;
    }
    t[b':' as usize] = TAIL;
    t[b'=' as usize] = TAIL;
    t[b'#' as usize] = HASH;
    t[0xEF] = LEAD;
    t[0xE2] = LEAD;
    t[0xC2] = LEAD;
    t
};

/// The length of the invisible character `b` starts with, or 0: U+FEFF (byte-order mark,
/// zero-width no-break space), U+00AD (soft hyphen), U+200B–U+200F (zero-width space, joiners,
/// direction marks), U+202A–U+202E (embeddings), U+2060–U+2064 (word joiner, invisible
/// operators), U+2066–U+2069 (isolates).
pub fn invisible(b: &[u8]) -> usize {
    match b {
        [0xEF, 0xBB, 0xBF, ..] => 3,
        [0xC2, 0xAD, ..] => 2,
        [0xE2, 0x80, 0x8B..=0x8F | 0xAA..=0xAE, ..] => 3,
        [0xE2, 0x81, 0xA0..=0xA4 | 0xA6..=0xA9, ..] => 3,
        _ => 0,
    }
}

/// `b` without the invisible characters it starts with. A word holds one only right after a
/// `:` or `=` (anywhere else it would have ended the word), so this is all a value needs.
#[inline]
fn skip_invisible(b: &[u8]) -> &[u8] {
    match b.first() {
        Some(&c) if CLASS[c as usize] == LEAD => skip_invisible_slow(b),
        _ => b,
    }
}

#[cold]
#[inline(never)]
fn skip_invisible_slow(mut b: &[u8]) -> &[u8] {
    loop {
        match invisible(b) {
            0 => return b,
            n => b = &b[n..],
        }
    }
}

/// One word of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token<'a> {
    pub text: &'a [u8],
    /// Byte offset of the word in the message.
    pub start: usize,
    tail: usize,
    /// One past the first `=`, 0 when there is none.
    eq: usize,
}

impl<'a> Token<'a> {
    /// The part after the last `:` or `=` (the whole word when it has neither), from its first
    /// visible character.
    pub fn tail(&self) -> &'a [u8] {
        &self.text[self.tail..]
    }

    /// `key=value` words: the key and the value (from its first visible character).
    pub fn key_value(&self) -> Option<(&'a [u8], &'a [u8])> {
        (self.eq > 0).then(|| {
            (
                &self.text[..self.eq - 1],
                skip_invisible(&self.text[self.eq..]),
            )
        })
    }

    /// `true` when the word contains `:` or `=`.
    pub fn has_tail(&self) -> bool {
        self.tail > 0
    }
}

/// Iterator over the words of a message; `Copy`, so a parser can look ahead by copying it.
#[derive(Clone, Copy, Debug)]
pub struct Tokens<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Tokens<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Tokens { bytes, pos: 0 }
    }

    /// Up to the first three bytes of the next word, without reading the rest of it: a cheap
    /// look ahead. Shorter only where the word ends or a `#` might start an escape, so a test
    /// on the head of a word is never stricter than the same test on the whole word.
    pub fn head(&self) -> &'a [u8] {
        let word = &self.bytes[word_start(self.bytes, self.pos)..];
        let mut len = 0;
        while len < 3 && len < word.len() && !matches!(CLASS[word[len] as usize], SEP | HASH | LEAD)
        {
            len += 1;
        }
        &word[..len]
    }
}

/// Where the word at or after `i` starts: past separators, escapes and invisible characters
/// (`bytes.len()` when there is none).
#[inline(always)]
fn word_start(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match CLASS[bytes[i] as usize] {
            SEP => i += 1,
            0 | TAIL => break,
            _ => match skippable(&bytes[i..]) {
                0 => break,
                len => i += len,
            },
        }
    }
    i.min(bytes.len())
}

/// The length of the control escape or invisible character `b` starts with, or 0. Out of
/// line: an ASCII line without escapes never calls it.
#[cold]
#[inline(never)]
fn skippable(b: &[u8]) -> usize {
    if is_control_escape(b) {
        4
    } else {
        invisible(b)
    }
}

/// rsyslog writes a control character as `#` and three octal digits (`#011` for TAB).
fn is_control_escape(b: &[u8]) -> bool {
    b.len() >= 4
        && b[1..4].iter().all(|c| (b'0'..=b'7').contains(c))
        && matches!(
            u16::from(b[1] - b'0') * 64 + u16::from(b[2] - b'0') * 8 + u16::from(b[3] - b'0'),
            0..=31 | 127
        )
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    // Always inlined: called once a word, where a call and a `Token` returned through memory
    // cost more than the word itself (measured: about a tenth of the command path).
    #[inline(always)]
    fn next(&mut self) -> Option<Token<'a>> {
        let bytes = self.bytes;
        let n = bytes.len();
        let mut i = word_start(bytes, self.pos);
        if i >= n {
            self.pos = n;
            return None;
        }
        let start = i;
        let (mut tail, mut eq) = (0, 0);
        while i < n {
            match CLASS[bytes[i] as usize] {
                0 => {}
                TAIL => {
                    tail = i + 1 - start;
                    if eq == 0 && bytes[i] == b'=' {
                        eq = tail;
                    }
                }
                SEP => break,
                // An escape or an invisible character ends a word as a separator would, except
                // an invisible one right after a `:` or `=`: the tail starts after it (and
                // `key_value()` skips it).
                _ => match skippable(&bytes[i..]) {
                    0 => {}
                    len if bytes[i] != b'#' && tail == i - start => {
                        i += len;
                        tail = i - start;
                        continue;
                    }
                    _ => break,
                },
            }
            i += 1;
        }
        self.pos = i;
        Some(Token {
            text: &bytes[start..i],
            start,
            tail,
            eq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[u8]) -> Vec<&[u8]> {
        Tokens::new(s).map(|t| t.text).collect()
    }

    #[test]
    fn splits_on_whitespace_quotes_brackets_and_escapes() {
        assert_eq!(
            words(b"  change\tstation  1001 "),
            [&b"change"[..], b"station", b"1001"]
        );
        assert_eq!(
            words(b"cmd=\"cha sta 1\" [dadmin SAT]"),
            [&b"cmd="[..], b"cha", b"sta", b"1", b"dadmin", b"SAT"]
        );
        assert_eq!(
            words(b"change#011station#0111001"),
            [&b"change"[..], b"station", b"1001"]
        );
        assert_eq!(words(b"a#123b #41"), [&b"a#123b"[..], b"#41"]);
        // #400 is 256, no control character (and no overflow); #177 is DEL.
        assert_eq!(words(b"a#400b#177c"), [&b"a#400b"[..], b"c"]);
        assert_eq!(words(b""), Vec::<&[u8]>::new());
        assert_eq!(words(b" \t "), Vec::<&[u8]>::new());
    }

    #[test]
    fn head_is_the_start_of_the_next_word() {
        for (bytes, head) in [
            (&b"  station 1"[..], &b"sta"[..]),
            (b"#011up x", b"up"),
            (b" x y", b"x"),
            (b"ab#12", b"ab"),
            (b" ip=10.1.2.3", b"ip="),
            (b"", b""),
            (b" \t", b""),
        ] {
            assert_eq!(
                Tokens::new(bytes).head(),
                head,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
            let word = Tokens::new(bytes).next().map_or(&[][..], |t| t.text);
            assert!(word.starts_with(head));
        }
    }

    #[test]
    fn invisible_characters_where_words_tails_and_values_start_are_skipped() {
        let bom = "\u{feff}";
        for (line, want) in [
            (format!("{bom}add vdn 1"), vec!["add", "vdn", "1"]),
            (format!("[{bom}dadmin \u{200b}SAT]"), vec!["dadmin", "SAT"]),
            (format!("x {bom}\u{2060}{bom}y"), vec!["x", "y"]),
            (
                "\u{200b}change\u{200b} hunt".to_string(),
                vec!["change", "hunt"],
            ),
            ("a\u{00ad} b".to_string(), vec!["a", "b"]),
            ("a\u{00e9}b".to_string(), vec!["a\u{00e9}b"]),
        ] {
            let got: Vec<String> = Tokens::new(line.as_bytes())
                .map(|t| String::from_utf8_lossy(t.text).into_owned())
                .collect();
            assert_eq!(got, want, "{line:?}");
        }
        let line = format!("login={bom}dadmin MED:{bom}chan");
        let t: Vec<Token> = Tokens::new(line.as_bytes()).collect();
        assert_eq!(t[0].key_value(), Some((&b"login"[..], &b"dadmin"[..])));
        assert_eq!(t[1].tail(), b"chan");
        assert_eq!(
            Tokens::new(format!(" {bom}station").as_bytes()).head(),
            b"sta"
        );
        assert_eq!(
            invisible("\u{2065}".as_bytes()),
            0,
            "unassigned: not skipped"
        );
    }

    #[test]
    fn tails_and_key_values() {
        let t: Vec<Token> = Tokens::new(b"cmd=change MED:chan 2001:db8::7 plain").collect();
        assert_eq!(t[0].tail(), b"change");
        assert_eq!(t[0].key_value(), Some((&b"cmd"[..], &b"change"[..])));
        assert_eq!(t[1].tail(), b"chan");
        assert_eq!(t[2].tail(), b"7");
        assert_eq!(t[3].tail(), b"plain");
        assert!(!t[3].has_tail());
        assert_eq!(t[3].start, 32);
    }
}
