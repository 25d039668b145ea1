//! TLS towards an upstream: the CA file a route trusts instead of the system's roots
//! (`routes[].upstream_tls.ca_file`), loaded at configuration load and again when the route
//! table is built.

use std::path::Path;
use std::sync::Arc;

use pingora::tls::{CertificateDer, RootCertStore};
use pingora::utils::tls::{WrappedX509, parse_x509};
use rustls_pki_types::pem::PemObject;

/// The certificates of a CA file, in the form Pingora verifies an upstream with.
pub type UpstreamCa = Arc<[WrappedX509]>;

/// Reads a PEM file of CA certificates; every one must be usable as a trust anchor.
pub fn load_ca(path: &Path) -> Result<UpstreamCa, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let ders = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM file ({e})", path.display()))?;
    if ders.is_empty() {
        return Err(format!("{} holds no CERTIFICATE", path.display()));
    }
    let mut anchors = RootCertStore::empty();
    let mut certs = Vec::with_capacity(ders.len());
    for der in ders {
        anchors
            .add(der.clone())
            .map_err(|e| format!("{} holds a certificate that is no CA ({e})", path.display()))?;
        // Pingora's parser panics on what it cannot read; webpki read it above, and a panic
        // here would still only refuse the file.
        let raw = der.as_ref().to_vec();
        let wrapped = std::panic::catch_unwind(|| WrappedX509::new(raw, parse_x509))
            .map_err(|_| format!("{} holds an unreadable certificate", path.display()))?;
        certs.push(wrapped);
    }
    Ok(certs.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        assert!(load_ca(&missing).is_err_and(|e| e.contains("cannot read")));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no pem here\n").expect("write");
        assert!(load_ca(&empty).is_err_and(|e| e.contains("no CERTIFICATE")));
        let junk = dir.path().join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        assert!(load_ca(&junk).is_err());
    }
}
