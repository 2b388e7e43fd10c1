//! The OSSI client (`omcmsync-ossi`) against a real OpenSSH sshd whose ForceCommand is the CM
//! stand-in (`smgr-sim cm`): logins, the pinned host key, the grammar through a pty that
//! echoes, CM's refusals, and bounded waits on a CM that hangs.

mod common;

use std::time::Duration;

use common::cm::{CmSsh, PasswordBy, USER};
use omcmsync::ossi::{Failure, SessionReport};
use serde_json::json;

fn history(n: usize) -> Vec<[String; 7]> {
    (0..n)
        .map(|i| {
            let minute = 59 - (i % 60);
            [
                "12/06".into(),
                format!("10:{minute:02}"),
                "S00107".into(),
                "dadmin".into(),
                "chan".into(),
                "station".into(),
                format!("{}", 1000 + i),
            ]
        })
        .collect()
}

fn replies(report: SessionReport) -> Vec<omcmsync::ossi::CommandReply> {
    match report {
        SessionReport::Replies { replies, .. } => replies,
        SessionReport::Failed(f) => panic!("session failed: {f:?}"),
    }
}

fn failure(report: SessionReport) -> omcmsync::ossi::SessionFailure {
    match report {
        SessionReport::Failed(f) => f,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn list_history_and_the_clock_by_password() {
    let cm = CmSsh::start(
        json!({"history": history(100), "clock": "2026-12-06 10:61:00"}),
        PasswordBy::Password,
    );
    let mut args = cm.password_args();
    args.extend(["--command", "list history", "--command", "display time"].map(String::from));
    let (report, status, _) = cm.ossi(&args);
    let got = replies(report);
    assert_eq!(status, 0);
    assert_eq!(got[0].command, "list history");
    let records = &got[0].reply.records;
    assert_eq!(records.len(), 100, "{:?}", got[0].reply);
    // Seven values a record, across its two f/d pairs, in the screen's column order.
    let values: Vec<&str> = records[99].iter().map(|f| f.value.as_str()).collect();
    assert_eq!(
        values,
        ["12/06", "10:20", "S00107", "dadmin", "chan", "station", "1099"]
    );
    assert_eq!(records[0][6].id.as_deref(), Some("0007ff00"));
    assert!(got[0].reply.complete && got[0].reply.unknown == 0);
    assert_eq!(got[1].reply.records[0][0].value, "2026");
    assert_eq!(cm.commands(), ["list history", "display time", "logoff"]);
}

#[test]
fn a_terminal_type_that_pages_is_answered_page_by_page() {
    let cm = CmSsh::start(
        json!({"history": history(40), "page_lines": 7}),
        PasswordBy::Password,
    );
    let mut args = cm.password_args();
    args.extend(["--term", "ossit"].map(String::from));
    let (report, status, _) = cm.ossi(&args);
    let got = replies(report);
    assert_eq!(status, 0);
    let reply = &got[0].reply;
    assert_eq!((reply.records.len(), reply.unknown), (40, 0), "{reply:?}");
    assert!(reply.complete);
    assert_eq!(reply.records[39][6].value, "1039");
    assert_eq!(cm.commands(), ["list history", "logoff"]);
}

#[test]
fn keyboard_interactive_and_public_key_logins() {
    let cm = CmSsh::start(
        json!({"history": history(3)}),
        PasswordBy::KeyboardInteractive,
    );
    let (report, _, _) = cm.ossi(&cm.password_args());
    assert_eq!(replies(report)[0].reply.records.len(), 3);
    let mut args = cm.password_args();
    let user = args.iter().position(|a| a == USER).unwrap();
    args[user] = "root".into();
    let file = args.iter().position(|a| a == "--password-file").unwrap();
    args.splice(
        file..file + 2,
        ["--key-file".into(), cm.p("client_ed25519")],
    );
    let (report, _, _) = cm.ossi(&args);
    assert_eq!(replies(report)[0].reply.records.len(), 3);
}

#[test]
fn a_host_key_not_pinned_is_never_logged_into() {
    let cm = CmSsh::start(json!({"history": history(3)}), PasswordBy::Password);
    let mut args = cm.password_args();
    let pins = args.iter().position(|a| a == "--known-hosts").unwrap() + 1;
    args[pins] = cm.p("wrong_known_hosts");
    let (report, status, _) = cm.ossi(&args);
    let f = failure(report);
    assert_eq!((f.kind, status), (Failure::HostKeyChanged, 1), "{f:?}");
    assert!(f.message.contains("SHA256:"), "{f:?}");
    std::fs::write(cm.path("empty"), "").unwrap();
    args[pins] = cm.p("empty");
    let f = failure(cm.ossi(&args).0);
    assert_eq!(f.kind, Failure::HostKeyUnknown, "{f:?}");
    // The line to add, for the operator.
    assert!(
        f.message
            .contains(&format!("[127.0.0.1]:{} ssh-ed25519 ", cm.port)),
        "{f:?}"
    );
    assert!(cm.commands().is_empty(), "logged in: {:?}", cm.commands());
}

#[test]
fn a_refused_login_is_said_and_no_secret_with_it() {
    let cm = CmSsh::start(json!({"history": history(3)}), PasswordBy::Password);
    let mut args = cm.password_args();
    let file = args.iter().position(|a| a == "--password-file").unwrap() + 1;
    args[file] = cm.p("wrong_password");
    let (report, status, _) = cm.ossi(&args);
    let f = failure(report);
    assert_eq!((f.kind, status), (Failure::AuthRefused, 1), "{f:?}");
    assert!(
        f.message.contains(USER) && !f.message.contains("not-it"),
        "{f:?}"
    );
}

#[test]
fn cms_refusals_are_classified() {
    let cm = CmSsh::start(json!({"no_resources": true}), PasswordBy::Password);
    let f = failure(cm.ossi(&cm.password_args()).0);
    assert_eq!(f.kind, Failure::LoginResources, "{f:?}");
    cm.set_scenario(json!({"locked": true}));
    let got = replies(cm.ossi(&cm.password_args()).0);
    let locked = got[0].reply.failure().expect("an error line");
    assert!(locked.text.contains("has data locked"), "{locked:?}");
    cm.set_scenario(json!({"history": []}));
    let got = replies(cm.ossi(&cm.password_args()).0);
    assert!(got[0].reply.records.is_empty() && got[0].reply.failure().is_none());
}

#[test]
fn a_hung_cm_costs_one_bounded_wait_and_the_other_host_is_tried() {
    let cm = CmSsh::start(json!({"hang": true}), PasswordBy::Password);
    let mut args = cm.password_args();
    args.extend(["--wait-secs", "2"].map(String::from));
    let (report, _, took) = cm.ossi(&args);
    let f = failure(report);
    assert_eq!(f.kind, Failure::Timeout, "{f:?}");
    assert!(
        f.message.contains("a reply") || f.message.contains("SAT"),
        "{f:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    // A duplex pair: the first host refuses connections, the second answers.
    cm.set_scenario(json!({"history": history(2)}));
    let mut args = cm.password_args();
    args.splice(0..0, ["--host".to_string(), "127.0.0.2".into()]);
    let (report, _, _) = cm.ossi(&args);
    match report {
        SessionReport::Replies { host, replies } => {
            assert_eq!(host, "127.0.0.1");
            assert_eq!(replies[0].reply.records.len(), 2);
        }
        other => panic!("{other:?}"),
    }
}
