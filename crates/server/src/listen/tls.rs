//! TLS termination with rustls (contract section 4): TLS 1.2 and 1.3 on the aws-lc-rs
//! provider, and with `--client-ca` a client certificate chaining to that CA required by the
//! handshake.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use super::peer::ClientCert;

/// `serve --tls-cert --tls-key [--client-ca]`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server's certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// Its private key, PEM (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// CA certificates, PEM, that client certificates must chain to.
    pub client_ca: Option<PathBuf>,
}

fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("reading certificates from {}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", path.display());
    Ok(certs)
}

/// The acceptor for these files.
///
/// # Errors
/// A file that cannot be read or parsed, or a key that does not fit the certificate.
pub fn acceptor(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading the private key from {}", files.key.display()))?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("choosing the TLS versions")?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca)? {
                roots
                    .add(cert)
                    .with_context(|| format!("adding a CA from {}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .context("building the client certificate verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .context("the TLS key does not fit the certificate")?;
    // The guard under hyper reads HTTP/1.1 heads; HTTP/2 is not offered.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The identity of the client certificate a handshake verified, if one was presented.
#[must_use]
pub fn client_cert(
    conn: &tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
) -> Option<Arc<ClientCert>> {
    let leaf = conn.get_ref().1.peer_certificates()?.first()?;
    match ClientCert::from_der(leaf) {
        Ok(cert) => Some(Arc::new(cert)),
        Err(e) => {
            tracing::info!(error = %e, "client certificate not readable; treated as none");
            None
        }
    }
}
