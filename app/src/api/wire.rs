//! How some server functions travel: [`JsonOffWorkers`] decodes a large JSON body off the
//! async workers; [`ConflictIsAnAnswer`] lets the page read a 409 Conflict's body as the
//! answer it is.

use leptos::server_fn::{
    client::{browser::BrowserClient, Client},
    codec::Json,
    error::FromServerFnError,
    request::browser::BrowserRequest,
    response::{browser::BrowserResponse, ClientRes},
};

use super::{Chat, ShareCreate, ShareUpdate, SyncPush};

/// `POST` with a JSON body, like server_fn's `Json`, but decoded on tokio's blocking pool: a
/// conversation may be megabytes of JSON, and parsing it on an async worker would stall every
/// other request that worker serves. (Used by [`super::chat`], [`super::sync_push`], [`super::share_create`] and
/// [`super::share_update`].)
pub struct JsonOffWorkers;

impl leptos::server_fn::ContentType for JsonOffWorkers {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl leptos::server_fn::codec::Encoding for JsonOffWorkers {
    const METHOD: http::Method = http::Method::POST;
}

/// Decodes these server functions' arguments with [`JsonOffWorkers`].
macro_rules! json_off_workers {
    ($($function:ty),*) => {$(
        impl<Request, E> leptos::server_fn::codec::IntoReq<JsonOffWorkers, Request, E> for $function
        where
            $function: leptos::server_fn::codec::IntoReq<Json, Request, E>,
        {
            fn into_req(self, path: &str, accepts: &str) -> Result<Request, E> {
                <$function as leptos::server_fn::codec::IntoReq<Json, Request, E>>::into_req(
                    self, path, accepts,
                )
            }
        }

        impl<Request, E> leptos::server_fn::codec::FromReq<JsonOffWorkers, Request, E> for $function
        where
            Request: leptos::server_fn::request::Req<E> + Send + 'static,
            E: leptos::server_fn::error::FromServerFnError + Send,
        {
            async fn from_req(req: Request) -> Result<Self, E> {
                use leptos::server_fn::error::ServerFnErrorErr;
                let bytes = req.try_into_bytes().await?;
                let decode =
                    move || serde_json::from_slice::<$function>(&bytes).map_err(|e| e.to_string());
                #[cfg(feature = "ssr")]
                let decoded = tokio::task::spawn_blocking(decode)
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|d| d);
                #[cfg(not(feature = "ssr"))]
                let decoded = decode();
                decoded.map_err(|e| E::from_server_fn_error(ServerFnErrorErr::Args(e)))
            }
        }
    )*};
}

json_off_workers!(Chat, SyncPush, ShareCreate, ShareUpdate);

/// The browser's `fetch` client, except that a `409 Conflict` is read as the function's answer
/// rather than as an error: [`super::sync_push`] answers a write on a stale revision with 409
/// and what the write became (merged or forked), which the page adopts. (server_fn's own
/// client reads every 4xx body as an error.)
pub struct ConflictIsAnAnswer;

/// A response whose 409 reads as 200.
pub struct ConflictRead(BrowserResponse);

impl<E: FromServerFnError> ClientRes<E> for ConflictRead {
    fn try_into_string(self) -> impl std::future::Future<Output = Result<String, E>> + Send {
        <BrowserResponse as ClientRes<E>>::try_into_string(self.0)
    }

    fn try_into_bytes(
        self,
    ) -> impl std::future::Future<Output = Result<leptos::server_fn::Bytes, E>> + Send {
        <BrowserResponse as ClientRes<E>>::try_into_bytes(self.0)
    }

    fn try_into_stream(
        self,
    ) -> Result<
        impl futures::Stream<Item = Result<leptos::server_fn::Bytes, leptos::server_fn::Bytes>>
            + Send
            + Sync
            + 'static,
        E,
    > {
        <BrowserResponse as ClientRes<E>>::try_into_stream(self.0)
    }

    fn status(&self) -> u16 {
        match <BrowserResponse as ClientRes<E>>::status(&self.0) {
            409 => 200,
            status => status,
        }
    }

    fn status_text(&self) -> String {
        <BrowserResponse as ClientRes<E>>::status_text(&self.0)
    }

    fn location(&self) -> String {
        <BrowserResponse as ClientRes<E>>::location(&self.0)
    }

    fn has_redirect(&self) -> bool {
        <BrowserResponse as ClientRes<E>>::has_redirect(&self.0)
    }
}

impl<E, IS, OS> Client<E, IS, OS> for ConflictIsAnAnswer
where
    E: FromServerFnError,
    IS: FromServerFnError,
    OS: FromServerFnError,
{
    type Request = BrowserRequest;
    type Response = ConflictRead;

    fn send(
        req: BrowserRequest,
    ) -> impl std::future::Future<Output = Result<ConflictRead, E>> + Send {
        let sent = <BrowserClient as Client<E, IS, OS>>::send(req);
        async move { sent.await.map(ConflictRead) }
    }

    #[allow(clippy::type_complexity)]
    fn open_websocket(
        path: &str,
    ) -> impl std::future::Future<
        Output = Result<
            (
                impl futures::Stream<
                        Item = Result<leptos::server_fn::Bytes, leptos::server_fn::Bytes>,
                    > + Send
                    + 'static,
                impl futures::Sink<leptos::server_fn::Bytes> + Send + 'static,
            ),
            E,
        >,
    > + Send {
        <BrowserClient as Client<E, IS, OS>>::open_websocket(path)
    }

    fn spawn(future: impl std::future::Future<Output = ()> + Send + 'static) {
        <BrowserClient as Client<E, IS, OS>>::spawn(future)
    }
}
