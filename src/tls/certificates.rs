//! The served certificate: loaded from `tls.cert`/`tls.key`, handed to rustls through a
//! resolver, and swapped when the files change on disk (no restart, no dropped connections).

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{ClientHello, CryptoProvider, ResolvesServerCert};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

/// A certificate or key file that cannot be served, with the config key it concerns.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{key}: cannot read {}: {source}", path.display())]
    Read {
        /// `tls.cert` or `tls.key`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file holds no usable PEM item of the expected kind.
    #[error("{key}: {}: {message}", path.display())]
    Invalid {
        /// `tls.cert` or `tls.key`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl TlsError {
    /// The config key the error concerns.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Read { key, .. } | TlsError::Invalid { key, .. } => key,
        }
    }

    /// The error without its key, for [`crate::config::Problem`].
    pub fn message(&self) -> String {
        let full = self.to_string();
        full.strip_prefix(&format!("{}: ", self.key()))
            .map_or(full.clone(), str::to_string)
    }
}

/// The process-wide rustls crypto provider (ring, as Pingora's listener uses).
fn provider() -> &'static Arc<CryptoProvider> {
    static PROVIDER: LazyLock<Arc<CryptoProvider>> = LazyLock::new(|| {
        pingora::tls::install_default_crypto_provider();
        CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| unreachable!("a default crypto provider was just installed"))
    });
    &PROVIDER
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })
}

/// Loads and checks a certificate chain and its private key (they must match).
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    parse(cert, &read("tls.cert", cert)?, key, &read("tls.key", key)?)
}

fn parse(
    cert_path: &Path,
    cert_pem: &[u8],
    key_path: &Path,
    key_pem: &[u8],
) -> Result<CertifiedKey, TlsError> {
    let invalid = |key: &'static str, path: &Path, message: String| TlsError::Invalid {
        key,
        path: path.to_path_buf(),
        message,
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("tls.cert", cert_path, format!("not a PEM file ({e})")))?;
    if chain.is_empty() {
        return Err(invalid(
            "tls.cert",
            cert_path,
            "holds no CERTIFICATE".into(),
        ));
    }
    let private = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| invalid("tls.key", key_path, format!("holds no private key ({e})")))?;
    CertifiedKey::from_der(chain, private, provider()).map_err(|e| {
        let message = match e {
            pingora::tls::RusTlsError::InconsistentKeys(_) => {
                "does not match the certificate in tls.cert".to_string()
            }
            other => format!("unusable private key ({other})"),
        };
        invalid("tls.key", key_path, message)
    })
}

/// The certificate served on new handshakes, and the files it comes from.
pub struct Certificates {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: ArcSwap<CertifiedKey>,
    /// What the last look found (served, refused or unreadable), so that a refused pair or
    /// a missing file is logged once rather than at every check.
    seen: Mutex<Seen>,
}

#[derive(PartialEq, Eq)]
enum Seen {
    Files { cert: Vec<u8>, key: Vec<u8> },
    Unreadable(String),
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// What a check of the files found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reloaded {
    /// The files are what was last looked at.
    Unchanged,
    /// A new certificate is served from now on.
    Loaded,
}

impl Certificates {
    /// Loads the files; fails when they cannot be served.
    pub fn load(cert: &Path, key: &Path) -> Result<Certificates, TlsError> {
        let cert_pem = read("tls.cert", cert)?;
        let key_pem = read("tls.key", key)?;
        let certified = parse(cert, &cert_pem, key, &key_pem)?;
        super::metrics::certificate_served(&certified.cert);
        Ok(Certificates {
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
            current: ArcSwap::from_pointee(certified),
            seen: Mutex::new(Seen::Files {
                cert: cert_pem,
                key: key_pem,
            }),
        })
    }

    /// Reads the files and serves them if they changed since the last look. A pair that
    /// cannot be served is refused (the current certificate stays) and reported once.
    pub fn check(&self) -> Result<Reloaded, TlsError> {
        self.reload(false)
    }

    /// Reads the files and serves them if they differ from what is served; unlike
    /// [`Certificates::check`], a refused pair is reported again.
    pub fn reload_now(&self) -> Result<Reloaded, TlsError> {
        self.reload(true)
    }

    fn reload(&self, force: bool) -> Result<Reloaded, TlsError> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let files = read("tls.cert", &self.cert_path)
            .and_then(|cert| Ok((cert, read("tls.key", &self.key_path)?)));
        let (cert_pem, key_pem) = match files {
            Ok(files) => files,
            Err(e) => {
                let now = Seen::Unreadable(e.to_string());
                if !force && *seen == now {
                    return Ok(Reloaded::Unchanged);
                }
                *seen = now;
                return Err(e);
            }
        };
        let parsed = match &*seen {
            Seen::Files { cert, key } if !force && *cert == cert_pem && *key == key_pem => {
                return Ok(Reloaded::Unchanged);
            }
            _ => parse(&self.cert_path, &cert_pem, &self.key_path, &key_pem),
        };
        *seen = Seen::Files {
            cert: cert_pem,
            key: key_pem,
        };
        let certified = parsed?;
        if certified.cert == self.current.load().cert {
            // Rewritten or touched, but the same chain (and so the same key pair).
            return Ok(Reloaded::Unchanged);
        }
        super::metrics::certificate_served(&certified.cert);
        self.current.store(Arc::new(certified));
        Ok(Reloaded::Loaded)
    }

    /// Checks the files every `every`, logging (and counting) each new certificate served
    /// and each refused pair. Runs for the life of the process.
    pub async fn watch(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let certs = self.clone();
            let outcome = match tokio::task::spawn_blocking(move || certs.check()).await {
                Ok(outcome) => outcome,
                Err(e) => {
                    tracing::error!(error = %e, "the certificate check failed");
                    continue;
                }
            };
            self.report(&outcome);
        }
    }

    /// Logs and counts the outcome of a reload.
    pub fn report(&self, outcome: &Result<Reloaded, TlsError>) {
        match outcome {
            Ok(Reloaded::Unchanged) => {}
            Ok(Reloaded::Loaded) => {
                super::metrics::certificate_reload("loaded");
                tracing::info!(cert = %self.cert_path.display(), "serving a new TLS certificate");
            }
            Err(e) => {
                super::metrics::certificate_reload("refused");
                tracing::warn!(error = %e, "new TLS certificate refused; the previous one is still served");
            }
        }
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_name_their_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let e = load_certified_key(&cert, &key).expect_err("no files");
        assert_eq!(e.key(), "tls.cert");
        assert!(e.message().contains("cannot read"), "{e}");
        std::fs::write(&cert, "not pem").expect("write");
        let e = load_certified_key(&cert, &key).expect_err("no key file");
        assert_eq!(e.key(), "tls.key");
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "hello\n").expect("write");
        let e = load_certified_key(&cert, &cert).expect_err("no certificate");
        assert_eq!(e.key(), "tls.cert");
        assert!(e.message().contains("holds no CERTIFICATE"), "{e}");
    }
}
