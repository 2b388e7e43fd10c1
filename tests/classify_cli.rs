//! `omcmsync classify`: what a field engineer runs on a capture from a CM.

use std::io::Write;
use std::process::{Command, Stdio};

fn run(args: &[&str], input: &str) -> (i32, Vec<serde_json::Value>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_omcmsync"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let records = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.code().unwrap(),
        records,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn classifies_raw_and_template_lines_with_a_summary() {
    let input = "change station 1001\r\n\
                 10.1.1.10\tcm-east\t2026-11-25T10:15:02Z\t11/25 10:15 SAT dadmin chan station 1002\n\
                 IPEVT IPT_REG board=PROCR ip=10.1.1.50\n\
                 change widget 7\n";
    let (code, records, stderr) = run(&["classify"], input);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(records.len(), 4);
    assert_eq!(
        (&records[0]["verdict"], &records[0]["id"]),
        (&"event".into(), &"1001".into())
    );
    assert_eq!(records[0]["text"], "change station 1001");
    assert_eq!(
        (&records[1]["id"], &records[1]["login"]),
        (&"1002".into(), &"dadmin".into())
    );
    assert_eq!(records[2]["reason"], "noise");
    assert_eq!(records[3]["reason"], "unknown_object");
    assert!(
        stderr.contains("4 lines") && stderr.contains("2  event change"),
        "{stderr}"
    );
}

#[test]
fn rule_file_teaches_new_objects() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(&rules, r#"{"objects":[{"name":"widget"}]}"#).unwrap();
    let (code, records, _) = run(
        &["classify", "--rules", rules.to_str().unwrap()],
        "change widget 7\n",
    );
    assert_eq!(code, 0);
    assert_eq!(
        (&records[0]["type"], &records[0]["id"]),
        (&"widget".into(), &"7".into())
    );
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    let (code, _, stderr) = run(&["classify", "--bogus"], "");
    assert_eq!(code, 2);
    assert!(stderr.contains("unexpected argument '--bogus'"), "{stderr}");
    assert!(stderr.contains("Usage: omcmsync classify"), "{stderr}");
    let (code, _, stderr) = run(&["classify", "/nonexistent/capture.log"], "");
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/capture.log"), "{stderr}");
    let (code, _, _) = run(&[], "");
    assert_eq!(code, 2);
}

/// A raw command record whose logged values are separated by TABs is read whole: only a line
/// whose first field is an address is taken for the module's template.
#[test]
fn tab_separated_raw_lines_are_not_template_lines() {
    let input = "11/25\t10:15\tSAT\tdadmin\tchan station 1001\n\
                 ::1\tcm-east\t2026-11-25T10:15:02Z\tchange station 1002\n";
    let (code, records, stderr) = run(&["classify"], input);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        (
            &records[0]["id"],
            &records[0]["login"],
            &records[0]["cm_time"]
        ),
        (&"1001".into(), &"dadmin".into(), &"11/25 10:15".into())
    );
    assert_eq!(records[1]["id"], "1002");
    assert_eq!(records[1]["text"], "change station 1002");
}

/// The short form of one `omcmsync classify` record, as tests/data/classify-heldout.tsv writes
/// the expected verdicts.
fn short(r: &serde_json::Value) -> String {
    let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
    match (s("verdict").as_str(), s("scope").as_str()) {
        ("ignored", _) => format!("ignored {}", s("reason")),
        (_, "object") => format!("{} {} {}", s("verb"), s("type"), s("id")),
        (_, "range") => format!("range {} {}+{}", s("type"), s("start"), r["count"]),
        (_, "type") => format!("type {} {}", s("type"), s("reason")),
        _ => format!("element {}", s("type")),
    }
}

/// A held-out set of CM lines written from the domain documents (shapes × the object types
/// System Manager keeps), run through `omcmsync classify`: the score is printed, and every line
/// must read as written down.
#[test]
fn held_out_lines_score_every_line() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/classify-heldout.tsv"
    );
    let rows: Vec<(String, String)> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (want, line) = l.split_once('\t').unwrap();
            (want.to_owned(), line.to_owned())
        })
        .collect();
    assert!(rows.len() >= 60);
    let input: String = rows.iter().map(|(_, l)| format!("{l}\n")).collect();
    let (code, records, stderr) = run(&["classify"], &input);
    assert_eq!(code, 0, "{stderr}");
    let wrong: Vec<String> = rows
        .iter()
        .zip(&records)
        .filter(|((want, _), r)| short(r) != *want)
        .map(|((want, line), r)| format!("{line:?}: want {want}, got {}", short(r)))
        .collect();
    println!(
        "held-out score: {}/{}",
        rows.len() - wrong.len(),
        rows.len()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
