//! Text for log lines and records, cut to size: a leaf that the program runner, the client and
//! the element list share without depending on each other.

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
