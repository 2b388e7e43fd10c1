//! Credentials rotated in the field, picked up on HUP without a restart: System Manager comes
//! back with a certificate from a new CA and the CA file is replaced; a bearer token file is
//! rewritten. A broken CA file on HUP is logged by name and the trust in force is kept.

mod common;

use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(60);
const QUICK: &str = r#"coalesce.window.ms="200" retry.initial.ms="100" retry.max.ms="1000""#;

fn change(id: u64) -> String {
    syslog_line("cm-east", "cmdhist", &format!("change station {id}"))
}

/// The simulator over HTTPS on `addr`, presenting `server` (`server` or `other-server`).
fn https_sim(dir: &TestDir, pki: &str, server: &str, addr: &str) -> Sim {
    let (cert, key) = (
        format!("{pki}/{server}.pem"),
        format!("{pki}/{server}-key.pem"),
    );
    Sim::start(dir, &["--https", addr, "--cert", &cert, "--key", &key])
}

#[test]
fn a_new_ca_and_a_broken_ca_file_on_hup() {
    let dir = TestDir::new();
    let pki = gen_certs(&dir, "pki");
    let ca = dir.path("smgr-ca.pem");
    std::fs::copy(format!("{pki}/ca.pem"), &ca).unwrap();
    let sim = https_sim(&dir, &pki, "server", "127.0.0.1:0");
    let url = sim.https.clone().unwrap();
    let port = url.rsplit(':').next().unwrap().to_owned();
    let extra = format!(r#"{QUICK} smgr.tls.cacert="{}""#, ca.display());
    let d = Daemon::start(&dir, &action_to(&dir, &url, &extra));
    d.send_tcp(&[change(1)]);
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("1"));
    // System Manager comes back with a certificate of another CA: refused, kept queued.
    drop(sim);
    let sim = https_sim(&dir, &pki, "other-server", &format!("127.0.0.1:{port}"));
    d.send_tcp(&[change(2)]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(!object_ids(&sim.resync_items(), "cm-east").contains("2"));
    // The operator installs the new CA and sends HUP: delivered, no restart.
    std::fs::copy(format!("{pki}/other-ca.pem"), &ca).unwrap();
    d.signal(libc::SIGHUP);
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("2"));
    // A garbage CA file on HUP: logged by name, the trust in force kept.
    std::fs::write(&ca, "not a certificate\n").unwrap();
    d.signal(libc::SIGHUP);
    dir.wait_log(&["credentials not reloaded"]);
    assert!(
        dir.rsyslog_log().contains(&ca.display().to_string()),
        "{}",
        dir.rsyslog_log()
    );
    d.send_tcp(&[change(3)]);
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("3"));
    assert!(d.stop(WAIT).success());
}

#[test]
fn a_rotated_token_is_sent_after_hup() {
    let dir = TestDir::new();
    let token = dir.path("token");
    std::fs::write(&token, "t0ken-one\n").unwrap();
    let sim = Sim::start(&dir, &[]);
    let extra = format!(r#"{QUICK} smgr.tokenfile="{}""#, token.display());
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), &extra));
    d.send_tcp(&[change(1)]);
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("1"));
    std::fs::write(&token, "t0ken-two\n").unwrap();
    d.signal(libc::SIGHUP);
    dir.wait_log(&["credentials and TLS files read again"]);
    d.send_tcp(&[change(2)]);
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("2"));
    let auth: Vec<String> = sim
        .requests()
        .iter()
        .map(|r| r["authorization"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(auth.first().map(String::as_str), Some("Bearer t0ken-one"));
    assert_eq!(auth.last().map(String::as_str), Some("Bearer t0ken-two"));
    assert!(!dir.rsyslog_log().contains("t0ken"), "a token in the log");
    assert!(d.stop(WAIT).success());
}
