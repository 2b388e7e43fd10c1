//! HTTPS to System Manager: verified one-way and two-way TLS; a wrong CA or a missing client
//! certificate gets no request accepted, keeps the changes queued, and never falls back to
//! plain HTTP. Certificates come from `smgr-sim gen-certs`.

mod common;

use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(60);
const QUICK: &str = r#"coalesce.window.ms="200" retry.initial.ms="100" retry.max.ms="1000""#;

fn changes(range: std::ops::Range<u64>) -> Vec<String> {
    range
        .map(|i| syslog_line("cm-east", "cmdhist", &format!("change station {i}")))
        .collect()
}

fn https_sim(dir: &TestDir, pki: &str, client_ca: bool) -> Sim {
    let (cert, key, ca) = (
        format!("{pki}/server.pem"),
        format!("{pki}/server-key.pem"),
        format!("{pki}/ca.pem"),
    );
    let mut args = vec!["--https", "127.0.0.1:0", "--cert", &cert, "--key", &key];
    if client_ca {
        args.extend(["--client-ca", &ca]);
    }
    Sim::start(dir, &args)
}

#[test]
fn one_way_tls_verified_against_the_ca() {
    let dir = TestDir::new();
    let pki = gen_certs(&dir, "pki");
    let sim = https_sim(&dir, &pki, false);
    let extra = format!(r#"{QUICK} smgr.tls.cacert="{pki}/ca.pem""#);
    let d = Daemon::start(
        &dir,
        &action_to(&dir, sim.https.as_deref().unwrap(), &extra),
    );
    d.send_tcp(&changes(100..105));
    let items = sim.wait_items(WAIT, |i| object_ids(i, "cm-east").len() == 5);
    assert_eq!(object_ids(&items, "cm-east"), ids(100..105));
    assert!(sim.requests().iter().all(|r| r["tls"] == true));
    assert!(d.stop(WAIT).success());
}

#[test]
fn two_way_tls_with_client_certificate() {
    let dir = TestDir::new();
    let pki = gen_certs(&dir, "pki");
    let sim = https_sim(&dir, &pki, true);
    let extra = format!(
        r#"{QUICK} smgr.tls.cacert="{pki}/ca.pem" smgr.tls.mycert="{pki}/client.pem" smgr.tls.myprivkey="{pki}/client-key.pem""#
    );
    let d = Daemon::start(
        &dir,
        &action_to(&dir, sim.https.as_deref().unwrap(), &extra),
    );
    d.send_tcp(&changes(200..203));
    let items = sim.wait_items(WAIT, |i| object_ids(i, "cm-east").len() == 3);
    assert_eq!(object_ids(&items, "cm-east"), ids(200..203));
    assert!(d.stop(WAIT).success());
}

/// Starts the daemon with `bad` TLS settings: nothing may be accepted, on HTTPS or (no
/// downgrade) on the simulator's plain HTTP listener. Then a restart with `good` settings
/// delivers what was kept queued.
fn refused_then_delivered(client_ca: bool, bad: &str, good: &str) {
    let dir = TestDir::new();
    let pki = gen_certs(&dir, "pki");
    let sim = https_sim(&dir, &pki, client_ca);
    let url = sim.https.clone().unwrap();
    let d = Daemon::start(
        &dir,
        &action_to(&dir, &url, &format!("{QUICK} {}", bad.replace("PKI", &pki))),
    );
    d.send_tcp(&changes(300..304));
    wait_json_lines(&dir.path("trace.json"), 4, WAIT);
    std::thread::sleep(Duration::from_secs(3)); // several retries
    assert!(
        sim.requests().is_empty(),
        "accepted with bad TLS: {:?}",
        sim.requests()
    );
    assert!(d.stop(WAIT).success());
    let d = Daemon::start(
        &dir,
        &action_to(
            &dir,
            &url,
            &format!("{QUICK} {}", good.replace("PKI", &pki)),
        ),
    );
    let items = sim.wait_items(WAIT, |i| object_ids(i, "cm-east").len() == 4);
    assert_eq!(object_ids(&items, "cm-east"), ids(300..304));
    assert!(d.stop(WAIT).success());
}

#[test]
fn wrong_ca_is_refused_and_changes_kept() {
    refused_then_delivered(
        false,
        r#"smgr.tls.cacert="PKI/other-ca.pem""#,
        r#"smgr.tls.cacert="PKI/ca.pem""#,
    );
}

#[test]
fn missing_client_certificate_is_refused_and_changes_kept() {
    refused_then_delivered(
        true,
        r#"smgr.tls.cacert="PKI/ca.pem""#,
        r#"smgr.tls.cacert="PKI/ca.pem" smgr.tls.mycert="PKI/client.pem" smgr.tls.myprivkey="PKI/client-key.pem""#,
    );
}

#[test]
fn server_certificate_of_another_ca_is_refused() {
    // The server presents a certificate the configured CA did not sign.
    let dir = TestDir::new();
    let pki = gen_certs(&dir, "pki");
    let (cert, key) = (
        format!("{pki}/other-server.pem"),
        format!("{pki}/other-server-key.pem"),
    );
    let sim = Sim::start(
        &dir,
        &["--https", "127.0.0.1:0", "--cert", &cert, "--key", &key],
    );
    let extra = format!(r#"{QUICK} smgr.tls.cacert="{pki}/ca.pem""#);
    let d = Daemon::start(
        &dir,
        &action_to(&dir, sim.https.as_deref().unwrap(), &extra),
    );
    d.send_tcp(&changes(400..402));
    wait_json_lines(&dir.path("trace.json"), 2, WAIT);
    std::thread::sleep(Duration::from_secs(2));
    assert!(sim.requests().is_empty());
    assert!(d.stop(WAIT).success());
}
