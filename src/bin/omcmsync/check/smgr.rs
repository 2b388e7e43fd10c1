//! Reaching System Manager as the module will: TCP, TLS, authentication, the element list.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use omcmsync::config::{Transport, ELEMENTS_PATH};
use omcmsync::elements::{parse_elements_lenient, ElementSpec};
use omcmsync::smgr::SmgrClient;

use super::Report;

/// TCP, TLS and authentication; true when System Manager answered.
pub fn smgr(report: &mut Report, client: &SmgrClient) -> bool {
    let settings = client.settings();
    if let Transport::Command(program) = &settings.transport {
        report.pass(
            "smgr.command",
            &format!("{} is executable", program.display()),
        );
        return false;
    }
    let url = &settings.base_url;
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    let port = url.port_or_known_default().unwrap_or(443);
    let timeout = settings.timeout.min(Duration::from_secs(10));
    let Some(stream) = connect(report, host, port, timeout) else {
        return false;
    };
    if let Some(tls) = &settings.tls_config {
        if !tls_check(report, client, stream, (tls.0.clone(), host), timeout) {
            return false;
        }
    }
    authorized(report, client)
}

/// A TCP connection to `host` `port`, said; None (failed, said) when there is none.
fn connect(report: &mut Report, host: &str, port: u16, timeout: Duration) -> Option<TcpStream> {
    let addrs: Vec<_> = match (host, port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            report.fail(
                "smgr tcp",
                &format!("{host} does not resolve ({e})"),
                "correct smgr.url's host, or DNS / /etc/hosts",
            );
            return None;
        }
    };
    let stream = addrs
        .iter()
        .find_map(|a| TcpStream::connect_timeout(a, timeout).ok());
    match &stream {
        Some(_) => report.pass("smgr tcp", &format!("connected to {host} port {port}")),
        None => report.fail(
            "smgr tcp",
            &format!("no connection to {host} port {port}"),
            "start System Manager, or correct smgr.url; check firewalls between this host and it",
        ),
    }
    stream
}

/// The TLS handshake, verified as the module verifies it; true when it passed.
fn tls_check(
    report: &mut Report,
    client: &SmgrClient,
    stream: TcpStream,
    (tls, host): (std::sync::Arc<rustls::ClientConfig>, &str),
    timeout: Duration,
) -> bool {
    if let Err((e, why)) = tls_handshake(stream, tls, host, timeout) {
        let fix = match why {
            Handshake::ServerNotTrusted => {
                "smgr.tls.cacert must name the CA that signed System Manager's certificate"
            }
            Handshake::RefusedByServer => "System Manager refused this host's TLS: check smgr.tls.mycert and smgr.tls.myprivkey against the CA System Manager trusts",
            Handshake::Failed => "check that smgr.url names System Manager's HTTPS port, and the smgr.tls.* files",
        };
        report.fail("smgr tls", &e, fix);
        return false;
    }
    let client_cert = if client.settings().tls.my_cert.is_some() {
        ", client certificate accepted"
    } else {
        ""
    };
    report.pass(
        "smgr tls",
        &format!("handshake verified against the CA{client_cert}"),
    );
    true
}

/// An authenticated GET of the element list; true when the credentials were not refused.
fn authorized(report: &mut Report, client: &SmgrClient) -> bool {
    let probe = client.api().url(ELEMENTS_PATH);
    match client.api().get_status(&probe) {
        Ok(status @ (401 | 403)) => {
            report.fail(
                "smgr auth",
                &format!("GET {probe} answered HTTP {status}: credentials refused"),
                "smgr.tokenfile (or smgr.user and smgr.passwordfile) and the account's rights",
            );
            false
        }
        Ok(status) => {
            report.pass(
                "smgr auth",
                &format!("GET {probe} answered HTTP {status} (credentials not refused)"),
            );
            true
        }
        Err(e) => {
            report.fail(
                "smgr auth",
                &format!("GET {probe}: {e}"),
                "System Manager's API must answer under smgr.url",
            );
            false
        }
    }
}

/// What a failed handshake means for the operator, from rustls's own error.
enum Handshake {
    /// This host did not trust System Manager's certificate.
    ServerNotTrusted,
    /// System Manager sent an alert: it refused this host (its client certificate).
    RefusedByServer,
    Failed,
}

impl Handshake {
    fn of(e: &std::io::Error) -> Handshake {
        match e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
            Some(rustls::Error::InvalidCertificate(_)) => Handshake::ServerNotTrusted,
            Some(rustls::Error::AlertReceived(_)) => Handshake::RefusedByServer,
            _ => Handshake::Failed,
        }
    }
}

fn tls_handshake(
    mut stream: TcpStream,
    config: std::sync::Arc<rustls::ClientConfig>,
    host: &str,
    timeout: Duration,
) -> Result<(), (String, Handshake)> {
    let failed = |e: String| (e, Handshake::Failed);
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| failed(format!("{host}: {e}")))?;
    let mut conn =
        rustls::ClientConnection::new(config, name).map_err(|e| failed(e.to_string()))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| failed(e.to_string()))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut stream)
            .map_err(|e| (format!("TLS handshake: {e}"), Handshake::of(&e)))?;
    }
    // A TLS 1.3 server judges the client certificate after the handshake: its refusal is an
    // alert that arrives within moments, session tickets are not.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    for _ in 0..3 {
        match conn.complete_io(&mut stream) {
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => return Err((format!("TLS after the handshake: {e}"), Handshake::of(&e))),
        }
    }
    Ok(())
}

pub fn smgr_elements(report: &mut Report, client: &SmgrClient) -> Vec<ElementSpec> {
    let api = client.api();
    let url = api.url(ELEMENTS_PATH);
    let list = match api.get_text(&url, api.settings().timeout) {
        Ok(text) => parse_elements_lenient(&text),
        Err(e) if e.refused_credentials() => {
            report.fail(
                "elements",
                &format!("{url}: {e}"),
                "the account in smgr.tokenfile (or smgr.user) must be allowed to read the element list",
            );
            return Vec::new();
        }
        Err(e) => Err(e.to_string()),
    };
    match list {
        Ok((specs, rejected)) if rejected.is_empty() => {
            report.pass("elements", &format!("{} from {url}", specs.len()));
            specs
        }
        Ok((specs, rejected)) => {
            report.warn(
                "elements",
                &format!(
                    "{} from {url}, {} skipped: {}",
                    specs.len(),
                    rejected.len(),
                    rejected.join("; ")
                ),
                "correct those entries in System Manager",
            );
            specs
        }
        Err(e) => {
            report.fail(
                "elements",
                &format!("{url}: {e}"),
                "System Manager must serve the element list (elements.source=\"smgr\"), or use elements.file",
            );
            Vec::new()
        }
    }
}
