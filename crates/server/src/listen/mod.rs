//! The accept loop under the app: hyper's HTTP/1.1 server on each connection, plain or TLS,
//! with the connection limits of `[server]` and each request's [`Peer`].
//!
//! `axum::serve` has no header timeout, no idle timeout and no connection cap, so a few
//! hundred slow or silent clients could hold every descriptor. Here a connection over
//! `server.max_connections` is closed as soon as it is accepted, and each connection has a
//! watchdog ([`limits::ConnClock`]) that closes it when a head takes longer than
//! `server.header_timeout_ms` or it sits idle longer than `server.idle_timeout_ms`.

pub mod guard;
pub mod limits;
pub mod peer;
pub mod proxy;
mod refusal;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

pub use limits::ConnLimits;
pub use peer::{ClientCert, Peer};

use guard::Guarded;
use limits::ConnClock;
use proxy::ProxyHeader;

/// What the loop needs besides the listener and the app.
pub struct Listen {
    pub limits: ConnLimits,
    /// `Some` to terminate TLS.
    pub tls: Option<TlsAcceptor>,
    pub proxy: ProxyHeader,
    /// How long in-flight requests may take once `stop` is set.
    pub grace: Duration,
}

/// Accepts until `stop` turns true, then lets every connection finish its request (up to
/// the grace period) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    listen: Listen,
    stop: watch::Receiver<bool>,
) {
    let cap = listen.limits.max_connections;
    let slots = Arc::new(Semaphore::new(cap));
    let shared = Arc::new(Shared {
        app,
        limits: listen.limits,
        tls: listen.tls,
        proxy: listen.proxy,
    });
    let mut stopped = stop.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.wait_for(|s| *s) => break,
        };
        let (stream, addr) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors (EMFILE) and the like: wait rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(peer = %addr, max_connections = cap, "connection refused: over server.max_connections");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (shared, stop) = (Arc::clone(&shared), stop.clone());
        tokio::spawn(async move {
            shared.connection(stream, addr, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    if tokio::time::timeout(listen.grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; closing remaining connections");
    }
}

struct Shared {
    app: Router,
    limits: ConnLimits,
    tls: Option<TlsAcceptor>,
    proxy: ProxyHeader,
}

impl Shared {
    async fn connection(&self, stream: TcpStream, addr: SocketAddr, stop: watch::Receiver<bool>) {
        let clock = ConnClock::start();
        let Some(tls) = &self.tls else {
            self.drive(stream, addr, None, clock, stop).await;
            return;
        };
        // The handshake counts against the first head's time: a silent or slow client
        // cannot hold the connection open by not finishing it.
        match tokio::time::timeout(self.limits.header_timeout, tls.accept(stream)).await {
            Ok(Ok(stream)) => {
                let cert = tls::client_cert(&stream);
                self.drive(stream, addr, cert, clock, stop).await;
            }
            Ok(Err(e)) => tracing::info!(peer = %addr, error = %e, "TLS handshake failed"),
            Err(_) => tracing::info!(peer = %addr, "TLS handshake timed out"),
        }
    }

    /// Serves one connection's requests until it closes, breaks a limit or the node stops.
    async fn drive<IO>(
        &self,
        io: IO,
        addr: SocketAddr,
        cert: Option<Arc<ClientCert>>,
        clock: Arc<ConnClock>,
        mut stop: watch::Receiver<bool>,
    ) where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (app, proxy, busy) = (self.app.clone(), self.proxy.clone(), Arc::clone(&clock));
        let tls = self.tls.is_some();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            let peer = Peer {
                addr,
                cert: proxy.resolve(addr, req.headers(), cert.as_ref()),
                tls,
            };
            req.extensions_mut().insert(ConnectInfo(addr));
            req.extensions_mut().insert(peer);
            let (app, guard) = (app.clone(), busy.busy());
            async move {
                let response = app.oneshot(req.map(axum::body::Body::new)).await;
                drop(guard);
                response
            }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.max_headers(refusal::MAX_HEADERS + 28)
            .header_read_timeout(None)
            .keep_alive(true);
        let conn =
            http.serve_connection(TokioIo::new(Guarded::new(io, Arc::clone(&clock))), service);
        tokio::pin!(conn);
        let mut draining = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(peer = %addr, error = %e, "connection ended");
                    }
                    return;
                }
                why = clock.expired(self.limits) => {
                    tracing::debug!(peer = %addr, why = ?why, "connection closed by its timeout");
                    return;
                }
                _ = stop.wait_for(|s| *s), if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
