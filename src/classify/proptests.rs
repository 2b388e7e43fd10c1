//! Property tests: no input panics; the noise fast path never hides what the grammar would see;
//! generated commands in every shape, case and abbreviation classify to what they say.

use proptest::prelude::*;

use super::*;

/// Words the grammar reacts to, mixed with noise words and separators.
fn vocabulary() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "change",
        "cha",
        "ch",
        "add",
        "ad",
        "duplicate",
        "dup",
        "remove",
        "rem",
        "delete",
        "de",
        "re",
        "display",
        "list",
        "status",
        "login",
        "logoff",
        "station",
        "sta",
        "st",
        "hunt-group",
        "coverage",
        "path",
        "pa",
        "system-parameters",
        "feat",
        "next",
        "start",
        "count",
        "1001",
        "5",
        "0100",
        "tti-m",
        "psa-a",
        "cmd=",
        "login=dadmin",
        "src=2001:db8::7",
        "port=ssh",
        "cmdhist:",
        "4711:cmdhist",
        "SAT",
        "10.1.2.3",
        "::ffff:1.2.3.4",
        "11/25",
        "10:15",
        "IPEVT",
        "board=PROCR",
        "state=up",
        "status",
        "up",
        "upgrade",
        "net_reg=1",
        "netstat",
        "ip=10.1.2.3",
        "ch_1",
        "cha-",
        "user=x",
        "username=dadmin",
        "command=",
        "admin=a",
        "cmdhist(2301)",
        "campon-busyout",
        "#011",
        "[",
        "]",
        "\"",
        "=",
        ":",
        "\u{e9}",
        "\u{ff}",
    ]);
    let sep = prop::sample::select(vec![" ", "  ", "\t", "", ":", "=", "\"", "[", "#011", "\n"]);
    prop::collection::vec((words, sep), 0..12).prop_map(|parts| {
        parts
            .into_iter()
            .map(|(w, s)| format!("{w}{s}"))
            .collect::<String>()
    })
}

fn random_case(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..3000)) {
        let c = Classifier::default();
        let first = c.classify(&bytes);
        prop_assert_eq!(first, c.classify(&bytes));
    }

    #[test]
    fn fast_path_hides_nothing(line in vocabulary(), mask in any::<u64>()) {
        let c = Classifier::default();
        let line = random_case(&line, mask);
        let full = c.grammar(line.as_bytes());
        if full != Verdict::Ignored(Reason::Noise) {
            prop_assert!(prefilter::may_matter(line.as_bytes(), c.objects()), "{:?} -> {:?}", line, full);
        }
        prop_assert_eq!(c.classify(line.as_bytes()), full);
    }

    #[test]
    fn generated_commands_classify(
        verb in prop::sample::select(vec![
            ("change", Verb::Change), ("cha", Verb::Change), ("ch", Verb::Change), ("chan", Verb::Change),
            ("add", Verb::Add), ("ad", Verb::Add), ("remove", Verb::Remove), ("rem", Verb::Remove),
            ("delete", Verb::Delete),
        ]),
        object in prop::sample::select(vec![
            ("station", "station"), ("sta", "station"), ("hunt-group", "hunt-group"), ("hunt", "hunt-group"),
            ("coverage path", "coverage-path"), ("cov pa", "coverage-path"), ("vdn", "vdn"), ("vec", "vector"),
            ("agent-loginID", "agent-loginID"), ("ars analysis", "ars-analysis"), ("trunk-group", "trunk-group"),
            ("off-pbx-telephone station-mapping", "off-pbx-telephone-station-mapping"),
        ]),
        id in "[1-9][0-9]{0,6}",
        shape in 0usize..6,
        ws in prop::sample::select(vec![" ", "  ", "\t", "#011", " \t "]),
        mask in any::<u64>(),
    ) {
        let command = random_case(&format!("{}{ws}{}{ws}{id}", verb.0, object.0.replace(' ', ws)), mask);
        let line = match shape {
            0 => command.clone(),
            1 => format!("20261125:101502123:4711:cmdhist(2301):MED:[dadmin SAT 2001:db8::7 {command}]"),
            2 => format!("11/25 10:15 SAT dadmin {command}"),
            3 => format!("login=dadmin port=ssh src=::ffff:10.1.2.3 cmd=\"{command}\""),
            4 => format!("<13>Nov 25 10:15:02 cm-east cmdhist: {command}"),
            _ => format!("<13>1 2026-11-25T10:15:02Z cm-east cmdhist 4711 - - {command}"),
        };
        let c = Classifier::default();
        match c.classify(line.as_bytes()) {
            Verdict::Event(e) => {
                prop_assert_eq!(e.verb, verb.1, "{}", line);
                prop_assert_eq!(&*e.object.type_name, object.1, "{}", line);
                prop_assert_eq!(e.target, Target::Object(&id), "{}", line);
                if shape == 1 || shape == 2 || shape == 3 {
                    prop_assert_eq!(e.login, Some("dadmin"), "{}", line);
                }
            }
            other => prop_assert!(false, "{:?} -> {:?}", line, other),
        }
    }
}
