//! HTTPS set-up: the rustls configuration from the PEM files in
//! `server.tls`, built before the server binds so a bad file stops start-up.

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use super::ServerError;

/// Loads the PEM certificate chain and private key for HTTPS.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<rustls::ServerConfig, ServerError> {
    let open = |p: &Path| std::fs::File::open(p).map(BufReader::new).map_err(|e| ServerError::Tls(format!("{}: {e}", p.display())));
    let certs = rustls_pemfile::certs(&mut open(cert_path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerError::Tls(format!("{}: {e}", cert_path.display())))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!("{}: no certificate found", cert_path.display())));
    }
    let key = rustls_pemfile::private_key(&mut open(key_path)?)
        .map_err(|e| ServerError::Tls(format!("{}: {e}", key_path.display())))?
        .ok_or_else(|| ServerError::Tls(format!("{}: no private key found", key_path.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| ServerError::Tls(e.to_string()))
}
