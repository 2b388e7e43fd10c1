//! `smgr-sim`: a System Manager stand-in for tests and the demo (docs/smgr-api.md).
//!
//!     smgr-sim serve [--http ADDR] [--https ADDR --cert F --key F [--client-ca F]]
//!                    [--record FILE] [--elements FILE] [--role active|standby] [--token T]
//!     smgr-sim gen-certs DIR
//!     smgr-sim cm --scenario FILE [--log FILE]
//!
//! Serves the resync contract over HTTP and HTTPS (optionally requiring client certificates),
//! the elements list and the HA role, records every resync POST as one JSON line, and injects
//! faults on command (`POST /sim/fault`). Prints `listening http=ADDR https=ADDR` once ready.
//! `cm` is a CM SAT stand-in speaking OSSI on standard input and output, for sshd to run.

mod certs;
mod cm;
mod http;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{ArgGroup, Args, Parser, Subcommand};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use serde_json::{json, Value};

use omcmsync::deliver::ResyncBody;
use omcmsync::ha::RoleAnswer;
use omcmsync::resync::Scope;

use http::{read_request, write_response, ReadError, Request, Response};

/// A fault to inject into resync POSTs: the body of `POST /sim/fault` (absent fields: no
/// such fault).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Fault {
    /// Answer with this status (and Retry-After) instead of 200.
    status: Option<u16>,
    retry_after: Option<u64>,
    /// Retry-After as an HTTP-date this many seconds ahead.
    retry_after_date_s: Option<u64>,
    /// The answer's body instead of the default (any text: a localised error page).
    body: Option<String>,
    /// Put the request's headers into the answer's body (a server that echoes them).
    echo_headers: bool,
    /// Only POSTs with a request for this object id (all when None).
    id: Option<String>,
    /// Write the answer one byte every this many milliseconds.
    trickle_ms: u64,
    /// Close the connection without answering.
    drop: bool,
    /// Wait this long before answering.
    delay_ms: u64,
    /// Only for this element (all when None).
    element: Option<String>,
    /// How many requests it applies to (forever when None).
    times: Option<u64>,
}

#[derive(Default)]
struct State {
    faults: Vec<Fault>,
    down_until: Option<Instant>,
    role: String,
    elements: Option<PathBuf>,
    /// `--token T`: System Manager's API answers 401 without `Authorization: Bearer T`.
    token: Option<String>,
    record: Option<std::fs::File>,
    received: u64,
    /// Resync request objects in the POSTs received.
    items: u64,
}

type Shared = Arc<Mutex<State>>;

/// System Manager's stand-in for omcmsync's tests, demo and trials (docs/smgr-api.md).
#[derive(Parser)]
#[command(name = "smgr-sim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the resync API, the element list and the HA role; print `listening http=ADDR
    /// https=ADDR` once ready.
    Serve(ServeArgs),
    /// Write a throwaway PKI into DIR: ca.pem, server.pem, client.pem (expired-client.pem,
    /// expiring-client.pem), other-ca.pem, other-server.pem, each with its -key.pem.
    GenCerts { dir: PathBuf },
    /// Speak OSSI as CM's SAT on standard input and output (sshd's ForceCommand), as FILE
    /// (JSON: history, clock, faults) says, read at each session.
    Cm {
        #[arg(long, value_name = "FILE")]
        scenario: PathBuf,
        /// Append each command received to FILE.
        #[arg(long, value_name = "FILE")]
        log: Option<PathBuf>,
    },
}

#[derive(Args)]
#[command(group(ArgGroup::new("listener").required(true).multiple(true).args(["http", "https"])))]
struct ServeArgs {
    /// Serve plain HTTP on ADDR (port 0: any free one).
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,
    /// Serve HTTPS on ADDR (port 0: any free one).
    #[arg(long, value_name = "ADDR", requires_all = ["cert", "key"])]
    https: Option<String>,
    /// The HTTPS server's certificate chain (PEM).
    #[arg(long, value_name = "F", requires = "https")]
    cert: Option<PathBuf>,
    /// The HTTPS server's private key (PEM).
    #[arg(long, value_name = "F", requires = "https")]
    key: Option<PathBuf>,
    /// Require a client certificate issued by this CA (PEM).
    #[arg(long, value_name = "F", requires = "https")]
    client_ca: Option<PathBuf>,
    /// Append each accepted resync POST to FILE as one JSON line.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// The element list GET /inventory/cm/v1/elements answers (404 without).
    #[arg(long, value_name = "FILE")]
    elements: Option<PathBuf>,
    /// The role GET /ha answers until POST /sim/role changes it.
    #[arg(long, value_name = "ROLE", default_value = "active", value_parser = ["active", "standby"])]
    role: String,
    /// Answer 401 to every request outside /sim/ without `Authorization: Bearer T`.
    #[arg(long, value_name = "T")]
    token: Option<String>,
}

fn main() {
    let result = match Cli::parse().command {
        Command::Serve(args) => serve(args),
        Command::GenCerts { dir } => certs::generate(&dir),
        Command::Cm { scenario, log } => cm::run(&scenario, log.as_deref()),
    };
    if let Err(e) = result {
        eprintln!("smgr-sim: {e}");
        std::process::exit(2);
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let record = args.record.as_ref().map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| format!("{}: {e}", p.display()))
    });
    let state = Arc::new(Mutex::new(State {
        role: args.role.clone(),
        elements: args.elements.clone(),
        token: args.token.clone(),
        record: record.transpose()?,
        ..State::default()
    }));
    let mut listeners = Vec::new();
    if let Some(addr) = &args.http {
        listeners.push(listen("http", addr, None, &state)?);
    }
    if let Some(addr) = &args.https {
        listeners.push(listen("https", addr, Some(server_tls(&args)?), &state)?);
    }
    let (listening, threads): (Vec<_>, Vec<_>) = listeners.into_iter().unzip();
    println!("listening {}", listening.join(" "));
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    threads.into_iter().for_each(|t| {
        let _ = t.join();
    });
    Ok(())
}

/// Binds `addr` and accepts on a thread of its own; returns `scheme=ADDR` (the port bound).
fn listen(
    scheme: &str,
    addr: &str,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: &Shared,
) -> Result<(String, std::thread::JoinHandle<()>), String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("{addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let state = state.clone();
    let thread = std::thread::spawn(move || accept(listener, tls, state));
    Ok((format!("{scheme}={bound}"), thread))
}

fn server_tls(args: &ServeArgs) -> Result<Arc<rustls::ServerConfig>, String> {
    let (Some(cert), Some(key)) = (&args.cert, &args.key) else {
        return Err("--https needs --cert and --key".into());
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &args.client_ca {
        Some(ca) => builder.with_client_cert_verifier(client_verifier(ca, provider)?),
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(
        builder
            .with_single_cert(certs, key)
            .map_err(|e| e.to_string())?,
    ))
}

/// Client certificates issued by the CA in `ca` required.
fn client_verifier(
    ca: &std::path::Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))? {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| e.to_string())
}

fn accept(listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>, state: Shared) {
    for stream in listener.incoming().flatten() {
        let (tls, state) = (tls.clone(), state.clone());
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            let peer = Peer {
                addr: stream.peer_addr().ok(),
                tls: tls.is_some(),
            };
            match tls {
                None => handle(stream, peer, &state),
                Some(cfg) => {
                    let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                        return;
                    };
                    handle(rustls::StreamOwned::new(conn, stream), peer, &state)
                }
            }
        });
    }
}

/// Who sent a request, for its record.
struct Peer {
    addr: Option<SocketAddr>,
    tls: bool,
}

fn handle<S: std::io::Read + Write>(mut stream: S, peer: Peer, state: &Shared) {
    let response = match read_request(&mut stream) {
        Ok(request) => match route(&request, &peer, state) {
            Some(response) => response,
            None => return, // a fault: dropped unanswered
        },
        Err(ReadError::Bad(why)) => Response::json(400, json!({ "error": why })),
        Err(ReadError::Gone) => return,
    };
    let _ = write_response(&mut stream, &response);
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// `None`: drop the connection without an answer.
fn route(req: &Request, peer: &Peer, state: &Shared) -> Option<Response> {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let path = req.path.split('?').next().unwrap_or("");
    if !path.starts_with("/sim/") && !authorized(req, state) {
        return Some(Response::json(401, json!({"error": "not authenticated"})));
    }
    Some(match (req.method.as_str(), path) {
        ("POST", "/sim/fault") => fault_command(&body, state),
        ("POST", "/sim/role") => {
            let role = body.get("role").and_then(Value::as_str);
            lock(state).role = role.unwrap_or("active").to_owned();
            Response::json(200, json!({"ok": true}))
        }
        ("GET", "/sim/stats") => {
            let s = lock(state);
            Response::json(200, json!({"received": s.received, "items": s.items}))
        }
        ("GET", "/ha") => {
            let role = lock(state).role.clone();
            Response::json(200, json!(RoleAnswer { role }))
        }
        ("GET", "/inventory/cm/v1/elements") => elements(state),
        ("POST", p) if p.ends_with("/resync") => return resync(req, p, &body, peer, state),
        _ => Response::json(404, json!({"error": "not found"})),
    })
}

/// Without `--token`, everyone; with it, `Authorization: Bearer T` only.
fn authorized(req: &Request, state: &Shared) -> bool {
    match &lock(state).token {
        Some(token) => req.header("authorization") == Some(format!("Bearer {token}").as_str()),
        None => true,
    }
}

/// `POST /sim/fault`: `{"clear":true}` removes every fault, `{"down_s":N}` leaves resync
/// POSTs unanswered for N seconds, anything else is a [`Fault`] to add.
fn fault_command(body: &Value, state: &Shared) -> Response {
    let mut s = lock(state);
    if body.get("clear").is_some() {
        s.faults.clear();
        s.down_until = None;
    } else if let Some(secs) = body.get("down_s") {
        match secs.as_f64().map(Duration::try_from_secs_f64) {
            Some(Ok(d)) => s.down_until = Some(Instant::now() + d),
            _ => return Response::json(400, json!({"error": "down_s: seconds, 0 or more"})),
        }
    } else {
        match Fault::deserialize(body) {
            Ok(fault) if fault.times != Some(0) => s.faults.push(fault),
            Ok(_) => return Response::json(400, json!({"error": "times: 1 or more"})),
            Err(e) => return Response::json(400, json!({"error": format!("fault: {e}")})),
        }
    }
    Response::json(200, json!({"ok": true}))
}

/// `GET /inventory/cm/v1/elements`: the `--elements` file as it is now.
fn elements(state: &Shared) -> Response {
    let path = lock(state).elements.clone();
    match path.and_then(|p| std::fs::read_to_string(p).ok()) {
        Some(text) => Response {
            status: 200,
            body: text,
            retry_after: None,
            trickle_ms: 0,
        },
        None => Response::json(404, json!({"error": "no elements configured"})),
    }
}

fn resync(
    req: &Request,
    path: &str,
    body: &Value,
    peer: &Peer,
    state: &Shared,
) -> Option<Response> {
    let segment = path
        .trim_end_matches("/resync")
        .rsplit('/')
        .next()
        .unwrap_or("");
    // Bad escapes kept as they are, invalid UTF-8 replaced: the element as omcmsync meant it.
    let element = percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned();
    // Read as omcmsync's own type (what it declares it sends); recorded as it came.
    let posted = match serde_json::from_slice::<ResyncBody>(&req.body) {
        Ok(posted) => posted,
        Err(e) => {
            let why = format!("not a resync request body: {e}");
            return Some(Response::json(400, json!({ "error": why })));
        }
    };
    let ids: Vec<&str> = posted
        .requests
        .iter()
        .filter_map(|item| match &item.scope {
            Scope::Object { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    // Down: no answer at all.
    let fault = take_fault(state, &element, &ids)?;
    std::thread::sleep(Duration::from_millis(fault.delay_ms));
    if fault.drop {
        return None;
    }
    if let Some(status) = fault.status {
        return Some(refusal(req, &fault, status));
    }
    let count = posted.requests.len();
    record(
        state,
        count,
        &json!({
            "time": now_rfc3339(),
            "element": element,
            "path": path,
            "tls": peer.tls,
            "peer": peer.addr.map(|p| p.to_string()),
            "idempotency_key": req.header("idempotency-key"),
            "authorization": req.header("authorization"),
            "body": body,
        }),
    );
    let mut r = Response::json(200, json!({"accepted": count}));
    r.trickle_ms = fault.trickle_ms;
    Some(r)
}

/// Counts an accepted POST of `items` requests and appends its record to `--record`.
fn record(state: &Shared, items: usize, record: &Value) {
    let mut s = lock(state);
    s.received += 1;
    s.items += items as u64;
    if let Some(f) = &mut s.record {
        // One write per record: `writeln!` on the file wrote each JSON token separately.
        let mut line = record.to_string().into_bytes();
        line.push(b'\n');
        let _ = f.write_all(&line);
    }
}

/// Now, as omcmsync writes times (`2026-11-25T10:15:02.123Z`): RFC 3339 in UTC, milliseconds.
fn now_rfc3339() -> String {
    let t = time::OffsetDateTime::now_utc();
    let (h, m, s, ms) = t.to_hms_milli();
    format!("{}T{h:02}:{m:02}:{s:02}.{ms:03}Z", t.date())
}

/// The fault that applies to this request (the default: none), used up by one; `None` while
/// the simulator is down.
fn take_fault(state: &Shared, element: &str, ids: &[&str]) -> Option<Fault> {
    let mut s = lock(state);
    if s.down_until.is_some_and(|t| Instant::now() < t) {
        return None;
    }
    let index = s.faults.iter().position(|f| {
        f.element.as_ref().is_none_or(|e| *e == element)
            && f.id.as_ref().is_none_or(|id| ids.contains(&id.as_str()))
    });
    Some(index.map_or_else(Fault::default, |i| {
        let f = s.faults[i].clone();
        if let Some(times) = &mut s.faults[i].times {
            *times -= 1;
            if *times == 0 {
                s.faults.remove(i);
            }
        }
        f
    }))
}

/// The answer of an injected status fault.
fn refusal(req: &Request, fault: &Fault, status: u16) -> Response {
    let mut r = Response::json(status, json!({"error": "injected fault"}));
    if let Some(text) = &fault.body {
        r.body = text.clone();
    }
    if fault.echo_headers {
        let headers: serde_json::Map<String, Value> = req
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), Value::from(v.as_str())))
            .collect();
        r.body = json!({"error": "refused", "request_headers": headers}).to_string();
    }
    r.retry_after = fault.retry_after.map(|s| s.to_string()).or_else(|| {
        fault
            .retry_after_date_s
            .map(|s| httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(s)))
    });
    r.trickle_ms = fault.trickle_ms;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_commands() {
        let state = Shared::default();
        let status = |body: Value| fault_command(&body, &state).status;
        assert_eq!(status(json!({"status": 503, "times": 2})), 200);
        assert_eq!(status(json!({"status": 503, "retry-after": 2})), 400);
        assert_eq!(status(json!({"drop": true, "times": 0})), 400);
        assert_eq!(status(json!({"down_s": -1})), 400);
        assert_eq!(lock(&state).faults.len(), 1);
        assert_eq!(status(json!({"clear": true})), 200);
        assert!(lock(&state).faults.is_empty());
    }

    #[test]
    fn a_resync_body_is_read_as_omcmsync_declares_it() {
        let state = Shared::default();
        let post = |body: &str| {
            let req = Request {
                method: "POST".into(),
                path: "/inventory/cm/v1/elements/cm%2Deast/resync".into(),
                headers: Vec::new(),
                body: body.as_bytes().to_vec(),
            };
            let peer = Peer {
                addr: None,
                tls: false,
            };
            route(&req, &peer, &state).map(|r| r.status)
        };
        let good =
            r#"{"element":"cm-east","requests":[{"scope":"object","type":"station","id":"1001"}]}"#;
        assert_eq!(post(good), Some(200));
        assert_eq!(post(r#"{"element":"cm-east"}"#), Some(400));
        assert_eq!(
            post(r#"{"element":"cm-east","requests":[{"scope":"galaxy"}]}"#),
            Some(400)
        );
        assert_eq!(post("ÿ not json"), Some(400));
        let s = lock(&state);
        assert_eq!((s.received, s.items), (1, 1));
    }
}
