//! The client certificate a TLS-terminating proxy passes on in a header
//! (`server.client_cert_header`, URL-encoded PEM as nginx's `$ssl_client_escaped_cert`),
//! trusted only from `server.trusted_proxies`; from any other address the header is ignored.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;
use moka::sync::Cache;

use super::peer::ClientCert;
use crate::config::ServerConfig;

/// How a request's certificate is found.
#[derive(Clone)]
pub struct ProxyHeader {
    header: Option<HeaderName>,
    trusted: Arc<Vec<IpNet>>,
    /// Parsed headers by their text: a proxy sends the same few certificates again and again.
    parsed: Cache<String, Option<Arc<ClientCert>>>,
}

impl std::fmt::Debug for ProxyHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyHeader")
            .field("header", &self.header)
            .field("trusted", &self.trusted)
            .finish_non_exhaustive()
    }
}

impl ProxyHeader {
    /// The option as `server` sets it.
    ///
    /// # Errors
    /// A header name or proxy address that cannot be read.
    pub fn from_config(server: &ServerConfig) -> anyhow::Result<Self> {
        let header = server
            .client_cert_header
            .as_deref()
            .filter(|h| !h.is_empty())
            .map(|h| {
                HeaderName::try_from(h).context("server.client_cert_header is not a header name")
            })
            .transpose()?;
        let trusted = server
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<IpNet>()
                    .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                    .with_context(|| {
                        format!("server.trusted_proxies: {p} is not an address or CIDR")
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if header.is_some() && trusted.is_empty() {
            tracing::warn!("server.client_cert_header is set but server.trusted_proxies is empty: the header is ignored");
        }
        Ok(Self {
            header,
            trusted: Arc::new(trusted),
            parsed: Cache::builder().max_capacity(1_000).build(),
        })
    }

    /// The certificate a request stands for: from a trusted proxy the header's (none if it
    /// is absent or unreadable, never the proxy's own), else the handshake's.
    #[must_use]
    pub fn resolve(
        &self,
        addr: SocketAddr,
        headers: &HeaderMap,
        handshake: Option<&Arc<ClientCert>>,
    ) -> Option<Arc<ClientCert>> {
        let Some(name) = &self.header else {
            return handshake.cloned();
        };
        let ip = canonical(addr.ip());
        if !self.trusted.iter().any(|net| net.contains(&ip)) {
            return handshake.cloned();
        }
        let value = headers.get(name)?.to_str().ok()?;
        if let Some(hit) = self.parsed.get(value) {
            return hit;
        }
        let pem = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .ok()?;
        let cert = match ClientCert::from_pem(&pem) {
            Ok(cert) => Some(Arc::new(cert)),
            Err(e) => {
                tracing::info!(error = %e, "the proxy's certificate header is not readable; treated as none");
                None
            }
        };
        self.parsed.insert(value.to_owned(), cert.clone());
        cert
    }
}

/// An IPv4 address seen through an IPv6 socket as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}
