//! TLS for the System Manager client: rustls with the ring provider, no OpenSSL. The server is verified
//! against `smgr.tls.cacert` or, without it, the system's trusted roots; with
//! `smgr.tls.mycert`/`smgr.tls.myprivkey` the module presents a client certificate. There is no
//! switch to skip verification: an https URL is verified or not used.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// Where the client's trust and identity come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca_cert: Option<std::path::PathBuf>,
    pub my_cert: Option<std::path::PathBuf>,
    pub my_key: Option<std::path::PathBuf>,
}

/// A built client configuration: cheap to clone, shared by every connection; equal only to
/// itself.
#[derive(Clone)]
pub struct TlsConfig(pub Arc<ClientConfig>);

impl PartialEq for TlsConfig {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TlsConfig {}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig")
    }
}

/// Why the TLS files give no client configuration: the parameter whose file is wrong, and
/// what is wrong with it (naming the file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsError {
    /// `smgr.tls.cacert`, `smgr.tls.mycert` or `smgr.tls.myprivkey`; None: no file in
    /// particular.
    pub param: Option<&'static str>,
    pub why: String,
}

impl TlsError {
    fn of(param: &'static str) -> impl Fn(String) -> TlsError {
        move |why| TlsError {
            param: Some(param),
            why,
        }
    }

    fn general(why: impl ToString) -> TlsError {
        TlsError {
            param: None,
            why: why.to_string(),
        }
    }
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

impl From<TlsError> for String {
    fn from(e: TlsError) -> String {
        e.why
    }
}

/// Builds the client configuration; an error names the parameter and its file.
pub fn client_config(files: &TlsFiles) -> Result<TlsConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::general)?;
    let mut roots = RootCertStore::empty();
    match &files.ca_cert {
        Some(path) => {
            let ca = TlsError::of("smgr.tls.cacert");
            for cert in read_certs(path).map_err(&ca)? {
                roots
                    .add(cert)
                    .map_err(|e| ca(format!("{}: {e}", path.display())))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    let builder = builder.with_root_certificates(roots);
    let config = match (&files.my_cert, &files.my_key) {
        (Some(cert), Some(key)) => {
            let (mine, my_key) = (
                TlsError::of("smgr.tls.mycert"),
                TlsError::of("smgr.tls.myprivkey"),
            );
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| my_key(format!("{}: {e}", key.display())))?;
            let chain = read_certs(cert).map_err(&mine)?;
            valid_now(cert, &chain[0]).map_err(&mine)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| mine(e.to_string()))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            let why = "smgr.tls.mycert and smgr.tls.myprivkey go together".to_owned();
            return Err(TlsError::of("smgr.tls.mycert")(why));
        }
    };
    Ok(TlsConfig(Arc::new(config)))
}

/// A client certificate System Manager would refuse for its dates is an error here, named,
/// rather than a TLS alert at every request.
fn valid_now(path: &Path, cert: &CertificateDer) -> Result<(), String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| format!("{}: not an X.509 certificate: {e}", path.display()))?;
    let validity = parsed.validity();
    let now = x509_parser::time::ASN1Time::now();
    if now > validity.not_after {
        return Err(format!(
            "{}: the certificate expired on {}: install a renewed one (then HUP, or wait a few seconds while none is in force)",
            path.display(),
            validity.not_after
        ));
    }
    if now < validity.not_before {
        return Err(format!(
            "{}: the certificate is not valid before {} (check the clock)",
            path.display(),
            validity.not_before
        ));
    }
    Ok(())
}

/// When the first certificate in `path` stops being valid, in seconds since the Unix epoch
/// (`omcmsync check` warns ahead of it).
pub fn not_after(path: &Path) -> Result<i64, String> {
    let certs = read_certs(path)?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&certs[0])
        .map_err(|e| format!("{}: not an X.509 certificate: {e}", path.display()))?;
    Ok(parsed.validity().not_after.timestamp())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}
