//! Table-driven tests: every shape of ../shared/spec/cm-notify-events.md §2, every rule of §3,
//! the negative samples, IPv6.

use super::*;

/// A verdict in short form: `"change station 1001"`, `"type station add next"`,
/// `"element system-parameters"`, `"range station 1010+5"`, or `"ignored <reason>"`.
fn short(c: &Classifier, line: &str) -> String {
    match c.classify(line.as_bytes()) {
        Verdict::Ignored(r) => format!("ignored {}", r.as_str()),
        Verdict::Event(e) => {
            let t = &e.object.type_name;
            match e.target {
                Target::Object(id) => format!("{} {t} {id}", e.verb.as_str()),
                Target::Range {
                    start,
                    count,
                    width,
                } => format!("range {t} {start:0width$}+{count}"),
                Target::Type(r) => format!("type {t} {}", r.as_str()),
                Target::Element => format!("element {t}"),
            }
        }
    }
}

fn check(cases: &[(&str, &str)]) {
    let c = Classifier::default();
    for (line, want) in cases {
        assert_eq!(short(&c, line), *want, "line: {line}");
    }
}

#[test]
fn the_five_shapes_of_the_spec() {
    check(&[
        ("change station 1001", "change station 1001"),
        (
            "20261125:101502123:4711:cmdhist(2301):MED:[dadmin SAT 10.1.2.3 change station 1001]",
            "change station 1001",
        ),
        (
            "11/25 10:15 SAT dadmin chan station 1001",
            "change station 1001",
        ),
        (
            r#"login=dadmin port=ssh src=2001:db8::7 cmd="change station 1001""#,
            "change station 1001",
        ),
        (
            "11/25 10:16 TTI tti-m chan station 2002",
            "change station 2002",
        ),
        (
            "11/25 10:16 PSA psa-a ext 2003 station 2003",
            "change station 2003",
        ),
    ]);
}

#[test]
fn tolerant_of_case_whitespace_headers_and_escapes() {
    check(&[
        ("CHANGE STATION 1001", "change station 1001"),
        ("  Change \t Station\t\t1001  ", "change station 1001"),
        ("cmdhist: cha sta 1001", "change station 1001"),
        (
            "<13>Nov 25 10:15:02 cm-east cmdhist: change station 1001",
            "change station 1001",
        ),
        (
            "<13>1 2026-11-25T10:15:02Z cm-east cmdhist 4711 - - change station 1001",
            "change station 1001",
        ),
        ("change#011station#0111001", "change station 1001"),
        ("cmd=change station 1001", "change station 1001"),
        (
            "MED:[dadmin SAT ::1 change station 1001]",
            "change station 1001",
        ),
        (
            "x: {\"cmd\":\"remove station 1001\"}",
            "remove station 1001",
        ),
    ]);
}

#[test]
fn verbs_and_abbreviations() {
    check(&[
        ("add station 1001", "add station 1001"),
        ("ad sta 1001", "add station 1001"),
        ("ch station 1001", "change station 1001"),
        ("chan station 1001", "change station 1001"),
        ("remove station 1001", "remove station 1001"),
        ("rem station 1001", "remove station 1001"),
        ("remo station 1001", "remove station 1001"),
        ("delete station 1001", "delete station 1001"),
        ("re station 1001", "ignored noise"),
        ("display station 1001", "ignored read_only_verb"),
        ("list station", "ignored read_only_verb"),
        ("status station 1001", "ignored read_only_verb"),
        ("monitor traffic", "ignored noise"),
        ("11/25 10:14 SAT dadmin login", "ignored login_logoff"),
        ("11/25 10:20 SAT dadmin logoff", "ignored login_logoff"),
    ]);
}

#[test]
fn objects_of_the_minimum_set() {
    check(&[
        ("change agent-loginID 5000", "change agent-loginID 5000"),
        ("change hunt-group 12", "change hunt-group 12"),
        ("change vdn 5001", "change vdn 5001"),
        ("change vector 7", "change vector 7"),
        ("change coverage path 3", "change coverage-path 3"),
        ("cha cov pa 3", "change coverage-path 3"),
        ("change announcement 3000", "change announcement 3000"),
        ("change trunk-group 5", "change trunk-group 5"),
        ("change signaling-group 5", "change signaling-group 5"),
        ("change pickup-group 2", "change pickup-group 2"),
        ("change intercom-group 2", "change intercom-group 2"),
        (
            "change terminating-extension-group 4",
            "change terminating-extension-group 4",
        ),
        (
            "change abbreviated-dialing personal 1001 1",
            "change abbreviated-dialing-personal 1001",
        ),
        (
            "change abbreviated-dialing group 3",
            "change abbreviated-dialing-group 3",
        ),
        (
            "change abbreviated-dialing system",
            "type abbreviated-dialing-system no id",
        ),
        (
            "change abbreviated-dialing enhanced",
            "type abbreviated-dialing-enhanced no id",
        ),
        ("change cor 10", "change cor 10"),
        ("change cos", "type cos no id"),
        ("change data-module 3001", "change data-module 3001"),
        (
            "change off-pbx-telephone station-mapping 1001",
            "change off-pbx-telephone-station-mapping 1001",
        ),
        ("change route-pattern 20", "change route-pattern 20"),
        ("change ip-network-region 1", "change ip-network-region 1"),
        ("change uniform-dialplan 0", "change uniform-dialplan 0"),
        ("change ars analysis 9", "change ars-analysis 9"),
        ("change aar analysis 2", "change aar-analysis 2"),
        (
            "change public-unknown-numbering 4",
            "change public-unknown-numbering 4",
        ),
        ("change private-numbering 4", "change private-numbering 4"),
        // history: object cut to 12 characters, further words in the qualifier
        (
            "11/25 10:15 SAT dadmin chan off-pbx-tele station-mapping 1001",
            "change off-pbx-telephone-station-mapping 1001",
        ),
        (
            "11/25 10:15 SAT dadmin chan agent-loginI 5000",
            "change agent-loginID 5000",
        ),
    ]);
}

#[test]
fn full_sync_objects_ask_for_the_element() {
    check(&[
        (
            "change system-parameters features",
            "element system-parameters",
        ),
        ("cha sys feat", "element system-parameters"),
        ("change dialplan analysis", "element dialplan"),
        ("add cabinet 2", "element cabinet"),
        ("remove board 01A05", "element board"),
        ("change system-parameters", "element system-parameters"),
    ]);
}

#[test]
fn qualifiers_next_and_duplicate() {
    check(&[
        ("add station next", "type station add next"),
        ("add station NEXT", "type station add next"),
        (
            "duplicate station 1001 start 1010 count 5",
            "range station 1010+5",
        ),
        ("dup sta 1001 st 0100 co 3", "range station 0100+3"),
        (
            "duplicate station 1001 count 5 start 1010",
            "range station 1010+5",
        ),
        (
            "duplicate station 1001",
            "type station duplicate without start/count",
        ),
        (
            "duplicate station 1001 start 1010 count 500",
            "type station duplicate count over limit",
        ),
        (
            "duplicate station 1001 start x count 5",
            "type station duplicate without start/count",
        ),
        (
            "duplicate station 1001 start 1010 count 0",
            "type station duplicate without start/count",
        ),
    ]);
}

#[test]
fn negative_samples() {
    check(&[
        (
            "IPEVT IPT_REG board=PROCR ip=10.1.1.50 port=1719 ext=1001",
            "ignored noise",
        ),
        (
            "DENYEVT event=1234 d1=0 d2=0 ip=2001:db8::9",
            "ignored noise",
        ),
        ("", "ignored noise"),
        ("change", "ignored incomplete"),
        ("change station", "ignored incomplete"),
        ("change sta", "ignored incomplete"),
        ("change widget 12", "ignored unknown_object"),
        ("change co 1", "ignored unknown_object"),
        ("cmdhist: something we cannot read", "ignored unclassified"),
        ("login=dadmin cmd=\"\"", "ignored unclassified"),
        ("tti-m merge", "ignored unclassified"),
        ("the address was changed", "ignored noise"),
    ]);
}

#[test]
fn login_session_client_and_time_are_extracted() {
    let c = Classifier::default();
    let line =
        "20261125:101502123:4711:cmdhist(2301):MED:[dadmin SAT 2001:db8::7 change station 1001]";
    let Verdict::Event(e) = c.classify(line.as_bytes()) else {
        panic!()
    };
    assert_eq!(e.login, Some("dadmin"));
    assert_eq!(e.session, Some("SAT"));
    assert_eq!(e.client_ip, Some("2001:db8::7".parse().unwrap()));
    assert_eq!(e.cm_time, Some(CmTime::Ecs("20261125:101502123")));

    let Verdict::Event(e) = c.classify(b"11/25 10:16 TTI tti-m chan station 2002") else {
        panic!()
    };
    assert_eq!(
        (e.login, e.session, e.verb),
        (Some("tti-m"), Some("TTI"), Verb::Change)
    );

    let Verdict::Event(e) = c.classify(b"11/25 10:16 PSA psa-d 2004") else {
        panic!()
    };
    assert_eq!((e.login, e.target), (Some("psa-d"), Target::Object("2004")));

    let Verdict::Event(e) = c.classify(b"[x SSH ::ffff:10.1.2.3 add station 1]") else {
        panic!()
    };
    assert_eq!(e.client_ip, Some("10.1.2.3".parse().unwrap()));
}

#[test]
fn limits_and_encoding() {
    let c = Classifier::new(
        ObjectTable::builtin(),
        Limits {
            max_line: 64,
            max_duplicate: 2,
        },
    );
    let long = format!("change station 1001 {}", "x".repeat(64));
    assert_eq!(short(&c, &long), "ignored too_long");
    assert_eq!(
        short(&c, "duplicate station 1 start 5 count 3"),
        "type station duplicate count over limit"
    );
    let d = Classifier::default();
    assert_eq!(
        d.classify(b"change station 10\xff01"),
        Verdict::Ignored(Reason::Incomplete)
    );
    let Verdict::Event(e) = d.classify(b"\xff\xfe change station 1001") else {
        panic!()
    };
    assert_eq!(e.target, Target::Object("1001"));
    let Verdict::Event(e) = d.classify(b"[\xc3\xa9admin SAT change station 1]") else {
        panic!()
    };
    assert_eq!((e.login, e.session), (None, Some("SAT")));
}

#[test]
fn rule_file_objects_classify() {
    let rules = parse_rules(r#"{"objects":[{"name":"vrt","id":"required"},{"name":"feature-access-codes","id":"none"}]}"#).unwrap();
    let c = Classifier::new(ObjectTable::with_rules(&rules), Limits::default());
    assert_eq!(short(&c, "change vrt 5"), "change vrt 5");
    assert_eq!(
        short(&c, "cha feature-access-codes"),
        "type feature-access-codes no id"
    );
}

/// One row of docs/classifier.md's shapes × fields table: a line, its verdict, and the login,
/// session, client address and CM time read from it (`-`: the shape has none).
const SHAPES: &[(&str, &str, [&str; 4])] = &[
    (
        "change station 1001",
        "change station 1001",
        ["-", "-", "-", "-"],
    ),
    (
        "20261125:101502123:4711:cmdhist(2301):MED:[dadmin SAT 10.1.2.3 change station 1001]",
        "change station 1001",
        ["dadmin", "SAT", "10.1.2.3", "20261125:101502123"],
    ),
    (
        "20261125:101502123:4711:cmdhist(2301):MED:[dadmin SSH fe80::1%eth0 change station 1001]",
        "change station 1001",
        ["dadmin", "SSH", "fe80::1", "20261125:101502123"],
    ),
    (
        "20261125:101602001:4711:cmdhist(2301):MED:[tti-m TTI chan station 2002]",
        "change station 2002",
        ["tti-m", "TTI", "-", "20261125:101602001"],
    ),
    (
        "20261125:101602001:4711:cmdhist(2301):MED:[psa-a PSA 2003]",
        "change station 2003",
        ["psa-a", "PSA", "-", "20261125:101602001"],
    ),
    (
        "11/25 10:15 SAT dadmin chan station 1001",
        "change station 1001",
        ["dadmin", "SAT", "-", "11/25 10:15"],
    ),
    (
        "11/25 10:16 01A0701 tti-m chan station 2002",
        "change station 2002",
        ["tti-m", "01A0701", "-", "11/25 10:16"],
    ),
    (
        "11/25 10:16 PSA psa-a ext 2003 station 2003",
        "change station 2003",
        ["psa-a", "PSA", "-", "11/25 10:16"],
    ),
    (
        r#"login=dadmin port=ssh src=2001:db8::7 cmd="change station 1001""#,
        "change station 1001",
        ["dadmin", "ssh", "2001:db8::7", "-"],
    ),
    (
        "login=dadmin port=ssh src=fe80::7%ens3 cmd=change station 1001",
        "change station 1001",
        ["dadmin", "ssh", "fe80::7", "-"],
    ),
    (
        "<13>Nov 25 10:15:02 cm-east cmdhist: change station 1001",
        "change station 1001",
        ["-", "-", "-", "-"],
    ),
    (
        "<13>Nov 25 10:16:02 cm-east psa-a: 2003",
        "change station 2003",
        ["psa-a", "-", "-", "-"],
    ),
    (
        "<13>1 2026-11-25T10:15:02Z cm-east cmdhist 4711 - - [dadmin SAT ::1 change station 1001]",
        "change station 1001",
        ["dadmin", "SAT", "::1", "-"],
    ),
];

fn fields(c: &Classifier, line: &[u8]) -> (String, [String; 4]) {
    let shown = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let verdict = short(c, &String::from_utf8_lossy(line));
    let got = match c.classify(line) {
        Verdict::Event(e) => [
            shown(e.login.map(str::to_owned)),
            shown(e.session.map(str::to_owned)),
            shown(e.client_ip.map(|ip| ip.to_string())),
            shown(e.cm_time.map(|t| t.to_string())),
        ],
        Verdict::Ignored(_) => Default::default(),
    };
    (verdict, got)
}

#[test]
fn every_shape_keeps_every_field() {
    let c = Classifier::default();
    for (line, verdict, want) in SHAPES {
        let (got_verdict, got) = fields(&c, line.as_bytes());
        assert_eq!(got_verdict, *verdict, "{line}");
        assert_eq!(got, want.map(String::from), "{line}");
    }
}

/// A byte-order mark (or another invisible character rsyslog passes through) where a word, a
/// field or a value starts changes nothing, in every shape.
#[test]
fn invisible_prefixes_change_nothing_in_any_shape() {
    let c = Classifier::default();
    for invisible in ["\u{feff}", "\u{200b}", "\u{2060}", "\u{feff}\u{200e}"] {
        for (line, _, _) in SHAPES {
            let want = fields(&c, line.as_bytes());
            let starts = Tokens::new(line.as_bytes()).flat_map(|t| {
                let at_value = t.text.iter().position(|&b| b == b'=');
                [Some(t.start), at_value.map(|i| t.start + i + 1)]
            });
            for at in starts.flatten() {
                let mut with = line.as_bytes().to_vec();
                with.splice(at..at, invisible.bytes());
                assert_eq!(
                    fields(&c, &with),
                    want,
                    "{:?}",
                    String::from_utf8_lossy(&with)
                );
            }
        }
    }
}

/// Every type of the table, written out in full with an id of its shape, is read as itself and
/// not as a shorter type plus a word: the longest name wins over the whole table.
#[test]
fn every_type_is_read_as_itself_longest_first() {
    let c = Classifier::default();
    let rules = parse_rules(include_str!("objects.json")).unwrap();
    for rule in &rules {
        let id = match rule.shape {
            IdShape::Digits => "5",
            IdShape::Dial => "9",
            IdShape::Location => "01A05",
            IdShape::Name => "x1",
        };
        let name = rule.name.replace('*', "features");
        let line = format!("change {name} {id}");
        let Verdict::Event(e) = c.classify(line.as_bytes()) else {
            panic!("change {name} {id}: not an event");
        };
        assert_eq!(*e.object.type_name, rule.type_name(), "change {name} {id}");
        let want = match (rule.scope, rule.id) {
            (ResyncLevel::Element, _) => Target::Element,
            (_, IdRule::None) => Target::Type(TypeReason::NoId),
            _ => Target::Object(id),
        };
        assert_eq!(e.target, want, "change {name} {id}");
    }
}

/// A word where an id is expected is never taken for one: what fits no type is unclassified
/// (counted and captured), not a resync of an object that cannot exist.
#[test]
fn an_id_of_the_wrong_shape_is_never_an_id() {
    check(&[
        (
            "change coverage answer-group 5",
            "change coverage-answer-group 5",
        ),
        (
            "change coverage time-of-day 2",
            "change coverage-time-of-day 2",
        ),
        ("change coverage remote", "type coverage-remote no id"),
        ("cha cov ans 5", "change coverage-answer-group 5"),
        ("change coverage bogus 5", "ignored unclassified"),
        ("change station abc", "ignored unclassified"),
        ("change hunt-group main", "ignored unclassified"),
        ("add ip-interface 01A05", "add ip-interface 01A05"),
        ("change ip-interface procr", "change ip-interface procr"),
        ("change ip-interface 5", "ignored unclassified"),
        ("change ars analysis 9xxx", "change ars-analysis 9xxx"),
        ("change ars analysis location 2", "type ars-analysis no id"),
        ("change node-names ip", "type node-names no id"),
        ("change variables", "type variables no id"),
        ("change station 1.2345", "change station 1.2345"),
        ("add station next", "type station add next"),
    ]);
}
