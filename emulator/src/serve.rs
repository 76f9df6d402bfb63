//! The emulator's own accept loop (HTTP/1.1 through hyper), so that a fault can do what a
//! network does: close a connection in the middle of a request or an answer.
//!
//! Each request carries a [`Connection`] handle in its extensions; [`Connection::drop_now`]
//! closes that request's TCP connection without an answer.

use std::{future::Future, sync::Arc};

use axum::{extract::Request, Router};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::Notify};
use tower::Service;

/// The connection a request came on.
#[derive(Clone, Debug)]
pub struct Connection(Arc<Notify>);

impl Connection {
    /// Closes the connection at once; the request gets no answer. Never returns.
    pub async fn drop_now(&self) -> ! {
        self.0.notify_one();
        std::future::pending().await
    }
}

/// Serves `router` on `listener` until `shutdown` resolves. Connections still open then are
/// closed with the runtime.
pub async fn serve(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()>) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        tokio::spawn(async move {
            let kill = Arc::new(Notify::new());
            let handle = Connection(kill.clone());
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(handle.clone());
                    let mut router = router.clone();
                    async move { router.call(Request::from(req.map(axum::body::Body::new))).await }
                },
            );
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = conn => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                () = kill.notified() => tracing::debug!("connection dropped by an injected fault"),
            }
        });
    }
}
