//! Signing in, as the page sees it: which providers it may offer ([`SignInView`]), who is
//! signed in ([`AccountView`]), and why a sign-in did not complete ([`SignInFailure`], carried
//! back to the page as `/?sign_in_error=<code>` and shown as a sentence).

use serde::{Deserialize, Serialize};

/// What the page shows about signing in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInView {
    /// The OpenID Connect providers configured (`PARLEY_OIDC_PROVIDERS`), in order: the
    /// "Sign in" button offers one "Continue with `label`" each.
    pub providers: Vec<ProviderChoice>,
    /// `PARLEY_SIGN_IN=required`: nothing but signing in works signed out.
    pub required: bool,
    /// Who is signed in, if anyone.
    pub account: Option<AccountView>,
    /// Why the sign-in that led to this page failed (its [`SignInFailure`] sentence), when
    /// the page was asked for with `?sign_in_error=<code>`.
    #[serde(default)]
    pub failure: Option<String>,
}

/// One OpenID Connect provider the page offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderChoice {
    /// Its configured name (`google`, `corp`): the sign-in starts at `/auth/login/<name>`.
    pub name: String,
    /// The button's text after "Continue with " (`PARLEY_OIDC_<NAME>_LABEL`, else the name).
    pub label: String,
}

/// The account signed in, as its menu shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// The account's id (32 hex digits): the page keeps the conversations it syncs for this
    /// account apart from anyone else's on the same browser.
    pub id: String,
    /// The email its provider gave, if any.
    pub email: Option<String>,
    /// Its display name, if any.
    pub name: Option<String>,
    /// Signed in by a trusted proxy in front of Parley (signing out is the proxy's business).
    pub via_proxy: bool,
}

/// Why a sign-in did not complete; each is a sentence for the page and a short code for the
/// URL it returns to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignInFailure {
    /// The provider could not be reached (discovery, keys or token endpoint down).
    #[error("The sign-in provider could not be reached. Please try again in a moment.")]
    ProviderDown,
    /// The provider said no, or the person cancelled.
    #[error("The sign-in was cancelled or refused by the provider.")]
    Refused,
    /// The callback's `state` is unknown, used already, lapsed, or from another browser.
    #[error("This sign-in expired or was already used. Please sign in again.")]
    Expired,
    /// The provider's answer did not verify (token, signature, issuer, audience, nonce).
    #[error("The sign-in could not be verified. Please try again.")]
    Invalid,
    /// The account is not among those this site admits (`PARLEY_ALLOWED_EMAILS`/`_DOMAINS`).
    #[error("This account may not sign in to this site.")]
    NotAllowed,
    /// The site admits people by email and the provider has not verified this one.
    #[error("Your provider has not verified your email address, which this site requires.")]
    Unverified,
    /// An operator disabled the account.
    #[error("This account is disabled.")]
    Disabled,
    /// Parley could not record the sign-in (its database failed).
    #[error("Signing in is unavailable right now. Please try again in a moment.")]
    Unavailable,
}

impl SignInFailure {
    const ALL: [SignInFailure; 8] = [
        SignInFailure::ProviderDown,
        SignInFailure::Refused,
        SignInFailure::Expired,
        SignInFailure::Invalid,
        SignInFailure::NotAllowed,
        SignInFailure::Unverified,
        SignInFailure::Disabled,
        SignInFailure::Unavailable,
    ];

    /// The code in `?sign_in_error=`.
    pub fn code(self) -> &'static str {
        match self {
            SignInFailure::ProviderDown => "provider_down",
            SignInFailure::Refused => "refused",
            SignInFailure::Expired => "expired",
            SignInFailure::Invalid => "invalid",
            SignInFailure::NotAllowed => "not_allowed",
            SignInFailure::Unverified => "unverified",
            SignInFailure::Disabled => "disabled",
            SignInFailure::Unavailable => "unavailable",
        }
    }

    /// The failure of a code, when it is one.
    pub fn from_code(code: &str) -> Option<SignInFailure> {
        Self::ALL.into_iter().find(|f| f.code() == code)
    }

    /// The failure a URL's query names (`sign_in_error=<code>`), if any.
    pub fn in_query(query: &str) -> Option<SignInFailure> {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("sign_in_error="))
            .and_then(Self::from_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back() {
        for failure in SignInFailure::ALL {
            assert_eq!(SignInFailure::from_code(failure.code()), Some(failure));
            assert!(failure.to_string().ends_with('.'));
        }
        assert_eq!(SignInFailure::from_code("<script>"), None);
        assert_eq!(
            SignInFailure::in_query("a=1&sign_in_error=refused"),
            Some(SignInFailure::Refused)
        );
        assert_eq!(SignInFailure::in_query("sign_in_error=nope"), None);
    }
}
