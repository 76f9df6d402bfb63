//! One OpenID Connect provider: its discovery document and keys (fetched on first use and
//! kept; the keys fetched again — at most once a minute after the first time — when a token
//! names a key they lack:
//! the provider rotated its keys), the authorization request (code flow, PKCE S256, `state`,
//! `nonce`), and the callback's code exchanged and its ID token verified, all by the
//! `openidconnect` crate: signature against the provider's JWKS, `iss`, `aud`/`azp`, `exp`,
//! `nonce`. Only asymmetric signatures are accepted: `none` and the HMAC algorithms (signed with
//! the client secret, which anyone holding it could forge) are refused.
//!
//! Protocol: OpenID Connect Core 1.0 (<https://openid.net/specs/openid-connect-core-1_0.html>),
//! §3.1 (authorization code flow) and §3.1.3.7 (ID token validation); Discovery 1.0; PKCE
//! (RFC 7636); the `iss` authorization response parameter (RFC 9207).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use openidconnect::{
    core::{
        CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
        CoreUserInfoClaims,
    },
    reqwest, AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    JsonWebKeySet, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    Scope, TokenResponse,
};
use parley_store::Identity;
use tokio::sync::RwLock;

use super::config::ProviderSettings;

/// The signature algorithms an ID token may use: RSA, RSA-PSS, ECDSA and EdDSA.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Least time between two fetches of a provider's keys for an unknown `kid`.
const REFETCH_KEYS_EVERY: Duration = Duration::from_secs(60);

/// Why a provider step failed (logged in full; the page gets a [`SignInFailure`] sentence).
///
/// [`SignInFailure`]: app::account::SignInFailure
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// Discovery, the keys, the token or userinfo endpoint could not be reached or answered
    /// wrongly.
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    /// The provider refused the code (an error response from its token endpoint).
    #[error("the provider refused the code: {0}")]
    Refused(String),
    /// What the provider sent did not verify.
    #[error("the provider's answer did not verify: {0}")]
    Invalid(String),
}

/// A provider as configured, with what it published once fetched.
#[derive(Debug)]
pub struct Provider {
    settings: ProviderSettings,
    redirect: RedirectUrl,
    http: reqwest::Client,
    discovered: RwLock<Option<Discovered>>,
}

#[derive(Debug, Clone)]
struct Discovered {
    metadata: CoreProviderMetadata,
    /// When the keys were last fetched again for an unknown `kid` (none yet: the first time
    /// is never held back).
    keys_refetched: Option<Instant>,
}

/// An authorization request about to be sent: where to send the browser, and what its
/// callback must find again.
#[derive(Debug)]
pub struct Started {
    /// The provider's authorization URL with every parameter.
    pub url: url::Url,
    /// The `state` sent.
    pub state: String,
    /// The `nonce` sent.
    pub nonce: String,
    /// The PKCE verifier whose challenge was sent.
    pub pkce_verifier: String,
}

impl Provider {
    /// The provider of `settings`, its callback at `redirect`, talking through `http` (which
    /// must not follow redirects).
    pub fn new(settings: ProviderSettings, redirect: RedirectUrl, http: reqwest::Client) -> Self {
        Provider { settings, redirect, http, discovered: RwLock::new(None) }
    }

    /// Its configured name.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// Its button label.
    pub fn label(&self) -> &str {
        &self.settings.label
    }

    /// The provider's issuer, as configured.
    pub fn issuer(&self) -> &str {
        self.settings.issuer.as_str()
    }

    /// Its discovery document and keys, fetched on first use (and again after a failure).
    async fn discovered(&self) -> Result<Discovered, OidcError> {
        if let Some(found) = self.discovered.read().await.clone() {
            return Ok(found);
        }
        let mut slot = self.discovered.write().await;
        if let Some(found) = slot.clone() {
            return Ok(found);
        }
        let metadata =
            CoreProviderMetadata::discover_async(self.settings.issuer.clone(), &self.http)
                .await
                .map_err(|e| OidcError::Unreachable(chain(&e)))?;
        let found = Discovered { metadata, keys_refetched: None };
        *slot = Some(found.clone());
        Ok(found)
    }

    /// Fetches the keys again, unless that was last done under [`REFETCH_KEYS_EVERY`] ago (so a
    /// stream of tokens naming unknown keys costs the provider one fetch a minute); true when
    /// they were.
    async fn refetch_keys(&self) -> Result<bool, OidcError> {
        let mut slot = self.discovered.write().await;
        let Some(found) = slot.as_mut() else { return Ok(false) };
        if found.keys_refetched.is_some_and(|at| at.elapsed() < REFETCH_KEYS_EVERY) {
            return Ok(false);
        }
        let keys = JsonWebKeySet::fetch_async(found.metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| OidcError::Unreachable(chain(&e)))?;
        found.metadata = found.metadata.clone().set_jwks(keys);
        found.keys_refetched = Some(Instant::now());
        tracing::info!(provider = self.name(), "the provider's keys were fetched again");
        Ok(true)
    }

    fn client(&self, metadata: CoreProviderMetadata) -> ClientOf {
        CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(self.settings.client_secret.clone())),
        )
        .set_redirect_uri(self.redirect.clone())
    }

    /// A new authorization request: code flow, the configured scopes, PKCE S256, a random
    /// `state` and `nonce`.
    ///
    /// # Errors
    /// [`OidcError::Unreachable`] when the provider's discovery document cannot be had.
    pub async fn start(&self) -> Result<Started, OidcError> {
        let discovered = self.discovered().await?;
        let client = self.client(discovered.metadata);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.settings.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        Ok(Started {
            url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// The identity a callback's `code` stands for: the code exchanged (with the PKCE
    /// `verifier`) at the token endpoint, the ID token verified against `nonce` (its keys
    /// fetched again once when it names one they lack), the access token's `at_hash` checked
    /// when present, and the email and name read from the userinfo endpoint when the ID
    /// token lacks an email.
    ///
    /// # Errors
    /// [`OidcError`].
    pub async fn finish(
        &self,
        code: String,
        verifier: String,
        nonce: String,
    ) -> Result<Identity, OidcError> {
        let discovered = self.discovered().await?;
        let client = self.client(discovered.metadata);
        let token = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::Unreachable(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(r) => {
                    OidcError::Refused(r.to_string())
                }
                other => OidcError::Unreachable(chain(&other)),
            })?;
        let id_token = token
            .id_token()
            .ok_or_else(|| OidcError::Invalid("the token response has no id_token".into()))?;
        let nonce = Nonce::new(nonce);
        let verified = {
            let check = |client: &ClientOf| {
                let verifier = client.id_token_verifier().set_allowed_algs(ALLOWED_ALGS);
                id_token.claims(&verifier, &nonce).cloned()
            };
            match check(&client) {
                Err(openidconnect::ClaimsVerificationError::SignatureVerification(
                    openidconnect::SignatureVerificationError::NoMatchingKey,
                )) if self.refetch_keys().await? => {
                    let again = self.discovered().await?;
                    check(&self.client(again.metadata))
                }
                other => other,
            }
        }
        .map_err(|e| OidcError::Invalid(chain(&e)))?;
        if let Some(expected) = verified.access_token_hash() {
            let verifier = client.id_token_verifier().set_allowed_algs(ALLOWED_ALGS);
            let actual = id_token
                .signing_alg()
                .and_then(|alg| Ok((alg, id_token.signing_key(&verifier)?)))
                .map_err(|e| OidcError::Invalid(e.to_string()))
                .and_then(|(alg, key)| {
                    AccessTokenHash::from_token(token.access_token(), alg, key)
                        .map_err(|e| OidcError::Invalid(e.to_string()))
                })?;
            if actual != *expected {
                return Err(OidcError::Invalid(
                    "the access token's hash does not match at_hash".into(),
                ));
            }
        }
        let mut identity = Identity {
            issuer: verified.issuer().as_str().to_string(),
            subject: verified.subject().as_str().to_string(),
            email: verified.email().map(|e| e.as_str().to_string()),
            email_verified: verified.email_verified().unwrap_or(false),
            name: verified.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_string()),
        };
        if identity.email.is_none() {
            if let Ok(request) =
                client.user_info(token.access_token().clone(), Some(verified.subject().clone()))
            {
                let info: CoreUserInfoClaims = request
                    .request_async(&self.http)
                    .await
                    .map_err(|e| OidcError::Invalid(chain(&e)))?;
                identity.email = info.email().map(|e| e.as_str().to_string());
                identity.email_verified = info.email_verified().unwrap_or(false);
                if identity.name.is_none() {
                    identity.name =
                        info.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_string());
                }
            }
        }
        Ok(identity)
    }
}

/// The client type `from_provider_metadata` makes.
type ClientOf = openidconnect::core::CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// An error and its sources, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The HTTP client for providers: no redirects followed (a provider answering with one is
/// an error, not an invitation to fetch elsewhere), 10 s per request, rustls.
///
/// # Errors
/// When the TLS backend cannot be set up.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
}

/// Shared providers, by name.
pub type Providers = Arc<[Arc<Provider>]>;

/// The issuer URL of a configured issuer string.
///
/// # Errors
/// When it is not a URL.
pub fn issuer_url(text: &str) -> Result<IssuerUrl, String> {
    IssuerUrl::new(text.trim().to_string()).map_err(|e| format!("not an issuer URL: {e}"))
}
