//! A received line: the rsyslog template output split into its fields, borrowed, not copied.
//!
//! The template (`rsyslog-conf/omcmsync-template.conf`) renders
//! `%fromhost-ip%<TAB>%hostname%<TAB>%timegenerated:::date-rfc3339%<TAB>%syslogtag%%msg%` (with a
//! space between tag and message when the message has none, as in RFC 5424).
//! rsyslog escapes control characters in the message (a TAB becomes `#011`), and the first three
//! fields never hold a TAB, so splitting at the first three TABs is exact. A line that does not
//! have that shape means the action uses another template: it is counted as malformed.

use std::net::IpAddr;

/// One message as rendered by the omcmsync template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedLine<'a> {
    /// The address the message came from (the CM server that sent it).
    pub sender: IpAddr,
    /// The syslog hostname the sender claimed.
    pub hostname: &'a str,
    /// When rsyslog received it (RFC 3339).
    pub received_at: &'a str,
    /// Syslog tag and message text, i.e. everything after the syslog header.
    pub message: &'a [u8],
}

/// Why a rendered line could not be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Fewer than four TAB-separated fields: the action is not using the omcmsync template.
    MissingFields,
    /// The first field is not an IPv4 or IPv6 address.
    BadSender,
    /// Hostname or time is not UTF-8.
    NotUtf8,
}

impl<'a> ReceivedLine<'a> {
    /// Splits one rendered line (a trailing newline is ignored).
    pub fn parse(line: &'a [u8]) -> Result<Self, Malformed> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let mut fields = line.splitn(4, |&b| b == b'\t');
        let (Some(sender), Some(hostname), Some(time), Some(message)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(Malformed::MissingFields);
        };
        let sender = std::str::from_utf8(sender).map_err(|_| Malformed::BadSender)?;
        Ok(ReceivedLine {
            sender: parse_sender(sender).ok_or(Malformed::BadSender)?,
            hostname: std::str::from_utf8(hostname).map_err(|_| Malformed::NotUtf8)?,
            received_at: std::str::from_utf8(time).map_err(|_| Malformed::NotUtf8)?,
            message,
        })
    }
}

/// Parses a sender address; an IPv4-mapped IPv6 address (`::ffff:10.1.1.10`, what a dual-stack
/// listener reports for IPv4 peers) is taken as the IPv4 address it is.
pub fn parse_sender(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s.trim().parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
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
        assert_eq!(l.sender, "10.1.1.10".parse::<IpAddr>().unwrap());
        assert_eq!(l.hostname, "cm-east");
        assert_eq!(l.received_at, "2026-11-25T10:15:02+00:00");
        assert_eq!(l.message, b"x: change station 1001");
    }

    #[test]
    fn message_keeps_later_tabs_and_may_be_empty() {
        let l = ReceivedLine::parse(b"::1\th\tt\ta\tb").unwrap();
        assert_eq!(l.message, b"a\tb");
        assert_eq!(ReceivedLine::parse(b"::1\th\tt\t").unwrap().message, b"");
    }

    #[test]
    fn ipv6_and_mapped_senders() {
        let l = ReceivedLine::parse(b"2001:db8::10\th\tt\tm").unwrap();
        assert_eq!(l.sender, "2001:db8::10".parse::<IpAddr>().unwrap());
        let l = ReceivedLine::parse(b"::ffff:10.1.1.10\th\tt\tm").unwrap();
        assert_eq!(l.sender, "10.1.1.10".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn rejects_other_templates() {
        assert_eq!(
            ReceivedLine::parse(b"Nov 25 10:00:00 host prog: msg"),
            Err(Malformed::MissingFields)
        );
        assert_eq!(
            ReceivedLine::parse(b"cm-east\th\tt\tm"),
            Err(Malformed::BadSender)
        );
        assert_eq!(
            ReceivedLine::parse(b"\xff\th\tt\tm"),
            Err(Malformed::BadSender)
        );
        assert_eq!(
            ReceivedLine::parse(b"::1\t\xff\tt\tm"),
            Err(Malformed::NotUtf8)
        );
        assert_eq!(ReceivedLine::parse(b""), Err(Malformed::MissingFields));
    }
}
