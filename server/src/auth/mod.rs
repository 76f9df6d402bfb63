//! Signing in: OpenID Connect providers ([`oidc`]) and a trusted proxy's header ([`proxy`]),
//! who may sign in and who operates the site ([`policy`]), their settings ([`config`]), the
//! `/auth/…` routes ([`routes`]), and — for every request — who it is signed in as
//! ([`Auth::resolve`], called by the session guard).
//!
//! A sign-in is a row of the store (`parley_store::accounts`) kept under the hash of the
//! session id in the browser's cookie; the id is new at every sign-in (no fixation) and the row
//! is read on every signed-in request, so signing out, signing out everywhere and disabling an
//! account take effect at once on every replica.

pub mod config;
pub mod oidc;
pub mod policy;
pub mod proxy;
pub mod routes;

use std::{sync::Arc, time::Duration};

use app::server::OrApp;
use app::{
    account::{AccountView, ProviderChoice, SignInView},
    error::AppError,
};
use parley_files::time::now_ms;
use parley_store::{Account, Principal, SessionId, Store};

use crate::error::ServerError;
pub use config::{SignInArgs, SignInMode};

/// Where the sign-in routes are.
pub const AUTH_PREFIX: &str = "/auth/";

/// Everything about signing in, shared by every request.
#[derive(Debug)]
pub struct Auth {
    store: Store,
    providers: oidc::Providers,
    policy: policy::Policy,
    proxy: Option<proxy::TrustedHeader>,
    mode: SignInMode,
    ttl: Duration,
}

/// Who a request is, once its cookie (and a trusted proxy's header) are read.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The principal it acts for.
    pub principal: Principal,
    /// The account signed in, if any.
    pub account: Option<Account>,
    /// Signed in by the trusted proxy's header rather than a sign-in of Parley's.
    pub via_proxy: bool,
    /// The cookie named a sign-in that has ended (signed out, expired, disabled): the browser
    /// gets a new anonymous session.
    pub ended: bool,
}

impl Auth {
    /// The sign-in settings of `args`, the providers' variables read from the environment,
    /// keeping sign-ins in `store`.
    ///
    /// # Errors
    /// [`ServerError::Config`] for a provider whose variables are missing or wrong, a provider
    /// without `PARLEY_PUBLIC_URL`, or `required` with no way to sign in.
    pub fn new(args: &SignInArgs, store: Store) -> Result<Auth, ServerError> {
        let names: Vec<&String> =
            args.oidc_providers.iter().filter(|n| !n.trim().is_empty()).collect();
        let mut providers = Vec::new();
        if !names.is_empty() {
            let public = args.public_url.as_ref().ok_or_else(|| {
                ServerError::Config(
                    "PARLEY_PUBLIC_URL is required with PARLEY_OIDC_PROVIDERS".into(),
                )
            })?;
            let http = oidc::http_client()
                .map_err(|e| ServerError::Config(format!("HTTP client: {e}")))?;
            for name in names {
                let settings = config::ProviderSettings::read(name, |k| std::env::var(k).ok())
                    .map_err(ServerError::Config)?;
                if providers.iter().any(|p: &Arc<oidc::Provider>| p.name() == settings.name) {
                    return Err(ServerError::Config(format!(
                        "PARLEY_OIDC_PROVIDERS names {} twice",
                        settings.name
                    )));
                }
                let redirect =
                    routes::callback_url(public, &settings.name).map_err(ServerError::Config)?;
                providers.push(Arc::new(oidc::Provider::new(settings, redirect, http.clone())));
            }
        }
        let proxy = args
            .auth_proxy_header
            .as_deref()
            .map(|h| proxy::TrustedHeader::new(h, args.auth_proxy_from.clone()))
            .transpose()
            .map_err(ServerError::Config)?;
        if args.mode == SignInMode::Required && providers.is_empty() && proxy.is_none() {
            return Err(ServerError::Config(
                "PARLEY_SIGN_IN=required needs a way to sign in: PARLEY_OIDC_PROVIDERS or PARLEY_AUTH_PROXY_HEADER".into(),
            ));
        }
        Ok(Auth {
            store,
            providers: providers.into(),
            policy: policy::Policy::new(&args.allowed_emails, &args.allowed_domains, &args.admins),
            proxy,
            mode: args.mode,
            ttl: args.sign_in_ttl,
        })
    }

    /// The store sign-ins are kept in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The admission and operator rules.
    pub fn policy(&self) -> &policy::Policy {
        &self.policy
    }

    /// The provider configured as `name`.
    pub fn provider(&self, name: &str) -> Option<&Arc<oidc::Provider>> {
        self.providers.iter().find(|p| p.name() == name)
    }

    /// Whether nothing but signing in works signed out.
    pub fn required(&self) -> bool {
        self.mode == SignInMode::Required
    }

    /// How long a sign-in lasts unused, ms.
    pub fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// Who a request with the session `cookie` (its id, and whether it claims a sign-in) from
    /// `peer` carrying `headers` is: the sign-in's account when the cookie's sign-in is live,
    /// else the trusted proxy's account when its header came from a trusted address, else
    /// anonymous.
    ///
    /// # Errors
    /// [`AppError::Busy`]/[`AppError::Internal`] when the store fails;
    /// [`AppError::AccountDisabled`] for a proxy's account an operator disabled.
    pub async fn resolve(
        &self,
        cookie: Option<(SessionId, bool)>,
        peer: Option<std::net::IpAddr>,
        headers: &axum::http::HeaderMap,
    ) -> Result<Resolved, AppError> {
        let now = now_ms();
        let (session, claims_sign_in) = cookie.unwrap_or_else(|| (SessionId::random(), false));
        let mut resolved = Resolved {
            principal: Principal::anonymous(session.clone()),
            account: None,
            via_proxy: false,
            ended: false,
        };
        if claims_sign_in {
            match self.store.signed_in(&session, now, self.ttl_ms()).await.or_app()? {
                Some(account) => {
                    resolved.principal.account = Some(account.id.clone());
                    resolved.account = Some(account);
                    return Ok(resolved);
                }
                None => {
                    resolved.principal = Principal::anonymous(SessionId::random());
                    resolved.ended = true;
                }
            }
        }
        if let Some(identity) = self.proxy.as_ref().and_then(|p| p.identity(peer, headers)) {
            let account = self.proxy_account(&identity, now).await?;
            resolved.principal.account = Some(account.id.clone());
            resolved.account = Some(account);
            resolved.via_proxy = true;
        }
        Ok(resolved)
    }

    /// The account of a proxy's identity, made on first sight (and when admitted by the lists).
    async fn proxy_account(
        &self,
        identity: &parley_store::Identity,
        now: i64,
    ) -> Result<Account, AppError> {
        let known = self.store.account_of(&identity.issuer, &identity.subject).await.or_app()?;
        let account = match known {
            Some(account) => account,
            None => {
                self.policy.admit(identity).map_err(|_| AppError::AccountDisabled)?;
                self.store.account_for(identity, now).await.or_app()?
            }
        };
        if account.disabled {
            return Err(AppError::AccountDisabled);
        }
        Ok(account)
    }

    /// The providers offered, in order.
    pub fn choices(&self) -> Vec<ProviderChoice> {
        self.providers
            .iter()
            .map(|p| ProviderChoice { name: p.name().to_string(), label: p.label().to_string() })
            .collect()
    }

    /// What the page shows about signing in, for a request resolved as `resolved`.
    pub fn view(&self, resolved: &Resolved) -> SignInView {
        SignInView {
            providers: self.choices(),
            required: self.required(),
            account: resolved.account.as_ref().map(|a| AccountView {
                id: a.id.to_string(),
                email: a.identity.email.clone(),
                name: a.identity.name.clone(),
                via_proxy: resolved.via_proxy,
            }),
            failure: None,
        }
    }
}
