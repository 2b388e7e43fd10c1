//! The requests the reconciliation may send: read-only commands only, one line each.

/// Why a command is not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Only `list`, `display` and `status` commands read without changing anything.
    NotReadOnly(String),
    /// A line break or TAB would end the command early and start another line of the
    /// grammar (another command, or values).
    ControlCharacter,
    /// A field id is 8 hex digits.
    BadFieldId(String),
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::NotReadOnly(verb) => write!(
                f,
                "'{verb}' is not a read-only command: only list, display and status are sent"
            ),
            RequestError::ControlCharacter => {
                f.write_str("a command is one line without control characters")
            }
            RequestError::BadFieldId(id) => write!(f, "field id '{id}' is not 8 hex digits"),
        }
    }
}

/// The verbs the client sends, written out: an abbreviation could mean a changing verb in
/// another release.
const READ_ONLY: [&str; 3] = ["list", "display", "status"];

/// The lines of one request (each ending in a newline): `c<command>`, `f<ids>` when fields
/// are asked for, `t`.
pub fn request(command: &str, fields: &[&str]) -> Result<String, RequestError> {
    if command.chars().any(char::is_control) {
        return Err(RequestError::ControlCharacter);
    }
    let verb = command.split_whitespace().next().unwrap_or_default();
    if !READ_ONLY.iter().any(|v| v.eq_ignore_ascii_case(verb)) {
        return Err(RequestError::NotReadOnly(verb.to_owned()));
    }
    if let Some(bad) = fields.iter().find(|id| !is_field_id(id)) {
        return Err(RequestError::BadFieldId(bad.to_string()));
    }
    let mut out = format!("c{}\n", command.trim());
    if !fields.is_empty() {
        out.push('f');
        out.push_str(&fields.join("\t"));
        out.push('\n');
    }
    out.push_str("t\n");
    Ok(out)
}

pub(super) fn is_field_id(id: &str) -> bool {
    id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_commands_on_one_line() {
        assert_eq!(request("list history", &[]).unwrap(), "clist history\nt\n");
        assert_eq!(
            request("display time", &["0001ff00", "0002ff00"]).unwrap(),
            "cdisplay time\nf0001ff00\t0002ff00\nt\n"
        );
        for changing in [
            "change station 1001",
            "add station next",
            "dis station 1",
            "",
        ] {
            assert!(matches!(
                request(changing, &[]),
                Err(RequestError::NotReadOnly(_))
            ));
        }
        assert_eq!(
            request("list history\nchange station 1", &[]),
            Err(RequestError::ControlCharacter)
        );
        assert_eq!(
            request("list history\t", &[]),
            Err(RequestError::ControlCharacter)
        );
        assert!(matches!(
            request("list history", &["zz"]),
            Err(RequestError::BadFieldId(_))
        ));
    }
}
