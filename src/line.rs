//! A received line: the rsyslog template output split into its fields, borrowed, not copied.
//!
//! The template (`rsyslog-conf/omcmsync-template.conf`) renders
//! `%fromhost-ip%<TAB>%hostname%<TAB>%timegenerated:::date-rfc3339%<TAB>%syslogtag%%msg%` (with a
//! space between tag and message when the message has none, as in RFC 5424).
//! rsyslog escapes control characters in the message (a TAB becomes `#011`), and the first three
//! fields never hold a TAB, so splitting at the first three TABs is exact. A line that does not
//! have that shape means the action uses another template: it is counted as malformed.
//!
//! Splitting is all that happens to every line: the sender address and the time are parsed
//! only for the few lines that are events (or traced), since most lines are noise.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::scan;

/// One message as rendered by the omcmsync template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedLine<'a> {
    sender: &'a [u8],
    hostname: &'a [u8],
    received_at: &'a [u8],
    /// Syslog tag and message text, i.e. everything after the syslog header.
    pub message: &'a [u8],
}

/// Why a rendered line is not usable (`missing_fields`, `bad_sender` in records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Malformed {
    /// Fewer than four TAB-separated fields: the action is not using the omcmsync template.
    MissingFields,
    /// The first field is not an IPv4 or IPv6 address.
    BadSender,
}

impl<'a> ReceivedLine<'a> {
    /// Splits one rendered line (a trailing newline is ignored).
    pub fn parse(line: &'a [u8]) -> Result<Self, Malformed> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let Some([a, b, c]) = first_tabs(line) else {
            return Err(Malformed::MissingFields);
        };
        Ok(ReceivedLine {
            sender: &line[..a],
            hostname: &line[a + 1..b],
            received_at: &line[b + 1..c],
            message: &line[c + 1..],
        })
    }

    /// The address the message came from (the CM server that sent it).
    pub fn sender(&self) -> Result<IpAddr, Malformed> {
        std::str::from_utf8(self.sender)
            .ok()
            .and_then(parse_sender)
            .ok_or(Malformed::BadSender)
    }

    /// The first field's bytes, unparsed: lines from one sender are told apart cheaply.
    pub fn sender_bytes(&self) -> &'a [u8] {
        self.sender
    }

    /// The first field as it arrived, for records.
    pub fn sender_text(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.sender)
    }

    /// The syslog hostname the sender claimed.
    pub fn hostname(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.hostname)
    }

    /// When rsyslog received it (RFC 3339), if the field is text.
    pub fn received_at(&self) -> Option<&'a str> {
        std::str::from_utf8(self.received_at).ok()
    }
}

/// Where the first three TABs are: the fields before the message are short, so this reads
/// some 50 bytes.
fn first_tabs(line: &[u8]) -> Option<[usize; 3]> {
    let mut found = [0; 3];
    let mut n = 0;
    let mut base = 0;
    while base < line.len() {
        let mut tabs = scan::mask(line, base, scan::equal_to(b'\t'));
        while tabs != 0 && n < 3 {
            found[n] = base + tabs.trailing_zeros() as usize;
            n += 1;
            tabs &= tabs - 1;
        }
        if n == 3 {
            return Some(found);
        }
        base += scan::WIDTH;
    }
    None
}

/// Parses a sender address; an IPv4-mapped IPv6 address (`::ffff:10.1.1.10`, what a dual-stack
/// listener reports for IPv4 peers) is taken as the IPv4 address it is.
pub fn parse_sender(s: &str) -> Option<IpAddr> {
    s.trim().parse().ok().map(canonical)
}

/// The one form of an address that senders and element hosts are compared in: an IPv4-mapped
/// IPv6 address is the IPv4 address it carries.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_four_fields() {
        let l = ReceivedLine::parse(
            b"10.1.1.10\tcm-east\t2026-11-25T10:15:02+00:00\tx: change station 1001\n",
        )
        .unwrap();
        assert_eq!(l.sender(), Ok("10.1.1.10".parse::<IpAddr>().unwrap()));
        assert_eq!(l.hostname(), "cm-east");
        assert_eq!(l.received_at(), Some("2026-11-25T10:15:02+00:00"));
        assert_eq!(l.message, b"x: change station 1001");
    }

    #[test]
    fn message_keeps_later_tabs_and_may_be_empty() {
        let l = ReceivedLine::parse(b"::1\th\tt\ta\tb").unwrap();
        assert_eq!(l.message, b"a\tb");
        assert_eq!(ReceivedLine::parse(b"::1\th\tt\t").unwrap().message, b"");
    }

    #[test]
    fn first_tabs_wherever_they_fall() {
        for len in 0..40 {
            for (i, j, k) in [(0, 1, 2), (3, 8, 9), (7, 15, 16), (1, 20, 38), (5, 6, 39)] {
                let mut line = vec![b'x'; len];
                let tabs: Vec<usize> = [i, j, k].into_iter().filter(|&p| p < len).collect();
                tabs.iter().for_each(|&p| line[p] = b'\t');
                line.extend_from_slice(b"\t\t\t");
                let want: Vec<usize> = memchr::memchr_iter(b'\t', &line).take(3).collect();
                assert_eq!(first_tabs(&line).map(Vec::from), Some(want), "{len} {i}");
            }
        }
    }

    #[test]
    fn ipv6_and_mapped_senders() {
        let l = ReceivedLine::parse(b"2001:db8::10\th\tt\tm").unwrap();
        assert_eq!(l.sender(), Ok("2001:db8::10".parse::<IpAddr>().unwrap()));
        let l = ReceivedLine::parse(b"::ffff:10.1.1.10\th\tt\tm").unwrap();
        assert_eq!(l.sender(), Ok("10.1.1.10".parse::<IpAddr>().unwrap()));
    }

    #[test]
    fn rejects_other_templates() {
        assert_eq!(
            ReceivedLine::parse(b"Nov 25 10:00:00 host prog: msg"),
            Err(Malformed::MissingFields)
        );
        assert_eq!(ReceivedLine::parse(b""), Err(Malformed::MissingFields));
        assert_eq!(
            ReceivedLine::parse(b"::1\th\tt"),
            Err(Malformed::MissingFields)
        );
        let sender = |raw: &[u8]| ReceivedLine::parse(raw).unwrap().sender();
        assert_eq!(sender(b"cm-east\th\tt\tm"), Err(Malformed::BadSender));
        assert_eq!(sender(b"\xff\th\tt\tm"), Err(Malformed::BadSender));
        let l = ReceivedLine::parse(b"::1\t\xff\t\xfe\tm").unwrap();
        assert_eq!((l.hostname(), l.received_at()), ("\u{fffd}".into(), None));
    }
}
