//! Text for log lines and records, cut to size and with credentials blanked: a leaf that the
//! program runner, the SMGR client and the element list share without depending on each other.

/// The first `max` bytes of `s` or fewer, cut at a character boundary.
pub fn truncate_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A program's output in one log line: trimmed, its first 200 bytes, line breaks as ` | `.
pub fn one_line(text: &str) -> String {
    truncate_at_char(text.trim(), 200).replace(['\n', '\r'], " | ")
}

/// `text` with credentials blanked: the configured secrets wherever they appear, and whatever
/// follows `Bearer`, `Basic` or `Authorization` (an SMGR that echoes request headers).
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret, "<redacted>");
    }
    let lower = out.to_ascii_lowercase();
    let bytes = out.as_bytes();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for word in ["authorization", "bearer", "basic"] {
        let mut from = 0;
        while let Some(i) = lower[from..].find(word).map(|i| i + from) {
            from = i + word.len();
            if i > 0 && bytes[i - 1].is_ascii_alphanumeric() {
                continue;
            }
            let mut start = from;
            while start < bytes.len() && matches!(bytes[start], b' ' | b'\t' | b':' | b'=' | b'"') {
                start += 1;
            }
            if start == from {
                continue; // a word that only begins like one of ours
            }
            // The value: up to the end of the line or of a JSON string (a header's whole value
            // after `Authorization`, the one token after a scheme).
            let stop: &[u8] = if word == "authorization" {
                b"\"\r\n"
            } else {
                b"\" \t\r\n,;"
            };
            let mut end = start;
            while end < bytes.len() && !stop.contains(&bytes[end]) {
                end += 1;
            }
            if end > start {
                cuts.push((start, end));
            }
        }
    }
    cuts.sort_unstable();
    let mut result = String::with_capacity(out.len());
    let mut at = 0;
    for (start, end) in cuts {
        if start < at {
            at = at.max(end);
            continue;
        }
        result.push_str(&out[at..start]);
        result.push_str("<redacted>");
        at = end;
    }
    result.push_str(&out[at.min(out.len())..]);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_at_a_character_and_on_one_line() {
        assert_eq!(truncate_at_char("añb", 2), "a");
        assert_eq!(truncate_at_char("ab", 5), "ab");
        assert_eq!(one_line("  busy\nretry\r\n"), "busy | retry");
    }
}
