//! Reading one OSSI reply: whatever CM (or anything on its port) sends, never a panic.

use serde::{Deserialize, Serialize};

/// The code of the error line CM answers a list that matches nothing with
/// (`1 00000000 29cf No records match ...`): no records, not a failure.
pub const NO_RECORDS: &str = "29cf";

/// One value of a record, with the field id its `f` line gave it (None: a value beyond the
/// ids). Ids can repeat within a reply: a record is a list, not a map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub id: Option<String>,
    pub value: String,
}

pub type Record = Vec<Field>;

/// An `e` line: error number, the field it is about (zeros when none), a 4-hex code, text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorLine {
    pub number: String,
    pub field: String,
    pub code: String,
    pub text: String,
}

/// One reply, as far as it went.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub records: Vec<Record>,
    pub errors: Vec<ErrorLine>,
    /// The `t` that ends the reply arrived. Without it the reply was cut (a timeout, a
    /// dropped session) and its last record may be partial.
    pub complete: bool,
    /// Lines of no kind the grammar has (a paging prompt, a banner), skipped.
    pub unknown: usize,
}

impl Reply {
    /// The first error that is not "no records".
    pub fn failure(&self) -> Option<&ErrorLine> {
        self.errors.iter().find(|e| e.code != NO_RECORDS)
    }
}

/// Reads a reply's lines up to its `t` (`\r` and the echoed command ignored).
pub fn parse_reply(text: &str) -> Reply {
    let mut reading = Reading::default();
    for line in text.lines().map(|l| l.trim_end_matches('\r')) {
        let (kind, rest) = line.split_at(line.chars().next().map_or(0, char::len_utf8));
        match kind {
            "f" => reading.ids(rest),
            "d" => reading.values(rest),
            "n" => reading.next_record(),
            "e" => reading.error(rest),
            "t" => {
                reading.reply.complete = true;
                break;
            }
            "c" | "" => {}
            _ => reading.reply.unknown += 1,
        }
    }
    reading.next_record();
    reading.reply
}

#[derive(Default)]
struct Reading {
    reply: Reply,
    /// The ids of each `d` line of a record, by position: the `f` lines.
    ids: Vec<Vec<String>>,
    /// A `d` line has been read: later `f` lines relabel a record's positions.
    any_values: bool,
    record: Record,
    /// `d` lines read in this record.
    lines: usize,
}

impl Reading {
    fn ids(&mut self, rest: &str) {
        let ids: Vec<String> = rest.split('\t').map(str::to_owned).collect();
        // Inside a record, an `f` line relabels the position of the record's next `d` line.
        match self.ids.get_mut(self.lines) {
            Some(at) if self.any_values => *at = ids,
            _ => self.ids.push(ids),
        }
    }

    fn values(&mut self, rest: &str) {
        self.any_values = true;
        let ids = self.ids.get(self.lines).map_or(&[][..], Vec::as_slice);
        let values: Vec<&str> = rest.split('\t').collect();
        // Trailing empty values may be left out of a `d` line: as many as there are ids.
        for i in 0..ids.len().max(values.len()) {
            self.record.push(Field {
                id: ids.get(i).cloned(),
                value: values.get(i).copied().unwrap_or_default().to_owned(),
            });
        }
        self.lines += 1;
    }

    fn next_record(&mut self) {
        if !self.record.is_empty() {
            self.reply.records.push(std::mem::take(&mut self.record));
        }
        self.lines = 0;
    }

    fn error(&mut self, rest: &str) {
        let mut words = rest.splitn(4, ' ');
        let mut word = || words.next().unwrap_or_default().to_owned();
        let (number, field, code, text) = (word(), word(), word(), word());
        self.reply.errors.push(ErrorLine {
            number,
            field,
            code,
            text,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pairs: &[(&str, &str)]) -> Record {
        pairs
            .iter()
            .map(|(id, value)| Field {
                id: Some(id.to_string()),
                value: value.to_string(),
            })
            .collect()
    }

    /// Header once, records with two `d` lines each, as CM answers a list.
    #[test]
    fn records_pair_their_lines_with_the_header() {
        let reply = parse_reply(
            "clist history\r\nfa\tb\nfc\nd12/05\t10:02\ndstation\nn\nd12/05\t10:01\r\ndagent\nt\n",
        );
        assert!(reply.complete && reply.errors.is_empty() && reply.unknown == 0);
        assert_eq!(
            reply.records,
            [
                record(&[("a", "12/05"), ("b", "10:02"), ("c", "station")]),
                record(&[("a", "12/05"), ("b", "10:01"), ("c", "agent")]),
            ]
        );
    }

    /// The spec's sketch: `f` lines repeated inside records label the same positions.
    #[test]
    fn repeated_ids_inside_records_read_the_same() {
        let reply = parse_reply("fa\nd1\nfb\nd2\nn\nd3\nfb\nd4\nt\n");
        assert_eq!(
            reply.records,
            [
                record(&[("a", "1"), ("b", "2")]),
                record(&[("a", "3"), ("b", "4")])
            ]
        );
    }

    #[test]
    fn duplicate_ids_missing_and_extra_values_are_kept_in_order() {
        let reply = parse_reply("fa\ta\tb\nd1\t2\nn\nd1\t2\t3\t4\nt\n");
        assert_eq!(
            reply.records[0],
            record(&[("a", "1"), ("a", "2"), ("b", "")])
        );
        assert_eq!(reply.records[1].len(), 4);
        assert_eq!(reply.records[1][3].id, None);
    }

    #[test]
    fn no_records_is_not_a_failure_and_an_error_is() {
        let empty = parse_reply("clist history\ne1 00000000 29cf No records match\nt\n");
        assert!(empty.records.is_empty() && empty.failure().is_none() && empty.complete);
        let locked = parse_reply("e1 0001ff00 1234 has data locked\nt\n");
        let e = locked.failure().unwrap();
        assert_eq!(
            (e.field.as_str(), e.code.as_str(), e.text.as_str()),
            ("0001ff00", "1234", "has data locked")
        );
    }

    #[test]
    fn a_cut_reply_is_incomplete_and_prompts_are_skipped() {
        let cut = parse_reply("fa\nd1\nn\nd2");
        assert!(!cut.complete);
        assert_eq!(cut.records.len(), 2);
        let paged = parse_reply("fa\nd1\nmore? [y]\nn\nd2\nt\nd3\n");
        assert_eq!(
            (paged.unknown, paged.records.len()),
            (1, 2),
            "nothing after t"
        );
    }

    /// Records of random ids and values, written as CM writes them (at most five fields a
    /// line, the header once).
    fn written(records: &[Vec<String>], ids: &[String]) -> String {
        let mut out = String::from("clist history\n");
        for chunk in ids.chunks(5) {
            out.push_str(&format!("f{}\n", chunk.join("\t")));
        }
        for (i, values) in records.iter().enumerate() {
            if i > 0 {
                out.push_str("n\n");
            }
            for chunk in values.chunks(5) {
                out.push_str(&format!("d{}\n", chunk.join("\t")));
            }
        }
        out + "t\n"
    }

    proptest::proptest! {
        #[test]
        fn written_records_read_back(
            ids in proptest::collection::vec("[0-9a-f]{8}", 1..12),
            rows in proptest::collection::vec(proptest::collection::vec("[ -~&&[^\t]]{1,8}", 12), 1..6),
        ) {
            let records: Vec<Vec<String>> =
                rows.into_iter().map(|r| r[..ids.len()].to_vec()).collect();
            let reply = parse_reply(&written(&records, &ids));
            proptest::prop_assert!(reply.complete);
            let read: Vec<Vec<String>> = reply
                .records
                .iter()
                .map(|r| r.iter().map(|f| f.value.clone()).collect())
                .collect();
            proptest::prop_assert_eq!(read, records);
            for r in &reply.records {
                let read_ids: Vec<String> = r.iter().map(|f| f.id.clone().unwrap()).collect();
                proptest::prop_assert_eq!(&read_ids, &ids);
            }
        }

        /// Anything at all is read without a panic.
        #[test]
        fn any_text_is_read_safely(text in "(?s).{0,400}") {
            let _ = parse_reply(&text);
        }
    }
}
