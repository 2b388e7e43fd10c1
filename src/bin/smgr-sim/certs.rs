//! `smgr-sim gen-certs DIR`: a throwaway PKI for tests and the demo — a CA, a server certificate
//! for localhost/127.0.0.1/::1, a client certificate, and a second, unrelated CA with its own
//! server certificate (for "wrong CA" tests).

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
            leaf(
                dir,
                "client",
                vec!["omcmsync-client".into()],
                ExtendedKeyUsagePurpose::ClientAuth,
                &ca,
            )?;
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

fn leaf(
    dir: &Path,
    name: &str,
    sans: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
    ca: &CertifiedIssuer<'static, KeyPair>,
) -> Result<(), String> {
    let mut params = CertificateParams::new(sans.clone()).map_err(|e| e.to_string())?;
    params
        .distinguished_name
        .push(DnType::CommonName, sans[0].as_str());
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.signed_by(&key, ca).map_err(|e| e.to_string())?;
    write(dir, &format!("{name}.pem"), &cert.pem())?;
    write(dir, &format!("{name}-key.pem"), &key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    std::fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"))
}
