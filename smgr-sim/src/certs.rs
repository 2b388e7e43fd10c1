//! `smgr-sim gen-certs DIR`: a throwaway PKI for tests and the demo — a CA, a server certificate
//! for localhost/127.0.0.1/::1, a client certificate (and two more of the same CA: one that
//! expired in 2021, `expired-client.pem`, and one that expires in ten days,
//! `expiring-client.pem`), and a second, unrelated CA with its own server certificate (for
//! "wrong CA" tests).

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

pub fn generate(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for prefix in ["", "other-"] {
        let ca = ca(&format!("omcmsync {prefix}test CA"))?;
        write(dir, &format!("{prefix}ca.pem"), &ca.pem())?;
        let names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        leaf(
            dir,
            &format!("{prefix}server"),
            names,
            ExtendedKeyUsagePurpose::ServerAuth,
            &ca,
        )?;
        if prefix.is_empty() {
            for name in ["client", "expired-client", "expiring-client"] {
                let mut params = client_params()?;
                match name {
                    "expired-client" => {
                        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
                    }
                    "expiring-client" => {
                        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                        params.not_after =
                            time::OffsetDateTime::now_utc() + time::Duration::days(10);
                    }
                    _ => {}
                }
                sign(dir, name, params, &ca)?;
            }
        }
    }
    Ok(())
}

fn ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, String> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    CertifiedIssuer::self_signed(params, key).map_err(|e| e.to_string())
}

fn client_params() -> Result<CertificateParams, String> {
    leaf_params(
        vec!["omcmsync-client".into()],
        ExtendedKeyUsagePurpose::ClientAuth,
    )
}

fn leaf_params(
    sans: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, String> {
    let mut params = CertificateParams::new(sans.clone()).map_err(|e| e.to_string())?;
    params
        .distinguished_name
        .push(DnType::CommonName, sans[0].as_str());
    params.extended_key_usages = vec![usage];
    Ok(params)
}

fn leaf(
    dir: &Path,
    name: &str,
    sans: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
    ca: &CertifiedIssuer<'static, KeyPair>,
) -> Result<(), String> {
    sign(dir, name, leaf_params(sans, usage)?, ca)
}

fn sign(
    dir: &Path,
    name: &str,
    params: CertificateParams,
    ca: &CertifiedIssuer<'static, KeyPair>,
) -> Result<(), String> {
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.signed_by(&key, ca).map_err(|e| e.to_string())?;
    write(dir, &format!("{name}.pem"), &cert.pem())?;
    write(dir, &format!("{name}-key.pem"), &key.serialize_pem())
}

/// Writes `name` in `dir`: a private key (`*-key.pem`) 0600, as keys are kept, the rest 0644.
fn write(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mode = if name.ends_with("-key.pem") {
        0o600
    } else {
        0o644
    };
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("{name}: {e}"))
}
