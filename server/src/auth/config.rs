//! The sign-in settings: flags with `PARLEY_*` fallbacks, and each OpenID Connect provider's
//! own variables (`PARLEY_OIDC_<NAME>_*`), read from the environment by name.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use url::Url;

/// Who may use the site signed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignInMode {
    /// Anonymous use, and signing in for whoever wants to.
    Optional,
    /// Nothing but signing in works signed out (a team's site).
    Required,
}

/// Sign-in flags (flattened into `parley`'s configuration).
#[derive(Debug, Clone, clap::Args)]
pub struct SignInArgs {
    /// The site's external origin, e.g. `https://chat.example.org`: providers send people back
    /// to `{url}/auth/callback/<name>`. Required when a provider is configured.
    #[arg(long, env = "PARLEY_PUBLIC_URL")]
    pub public_url: Option<Url>,

    /// OpenID Connect providers, comma-separated names (`google,corp`). For each NAME (upper
    /// case, `-` as `_`): `PARLEY_OIDC_NAME_ISSUER` (the issuer URL), `_CLIENT_ID`,
    /// `_CLIENT_SECRET` or `_CLIENT_SECRET_FILE`, and optionally `_LABEL` (the button says
    /// "Continue with LABEL"; default the name) and `_SCOPES` (default `openid email profile`).
    #[arg(long, env = "PARLEY_OIDC_PROVIDERS", value_delimiter = ',', default_value = "")]
    pub oidc_providers: Vec<String>,

    /// A header a trusted proxy in front of Parley sets to the signed-in person's email
    /// (oauth2-proxy, Authelia, Cloudflare Access, Tailscale), e.g. `X-Forwarded-Email`.
    /// Honoured only on connections from --auth-proxy-from; elsewhere ignored and logged.
    #[arg(long, env = "PARLEY_AUTH_PROXY_HEADER", requires = "auth_proxy_from")]
    pub auth_proxy_header: Option<String>,

    /// The addresses the proxy connects from, comma-separated CIDRs or addresses
    /// (`10.0.0.0/8,127.0.0.1`); required with --auth-proxy-header.
    #[arg(long, env = "PARLEY_AUTH_PROXY_FROM", value_delimiter = ',', value_parser = parse_net)]
    pub auth_proxy_from: Vec<ipnet::IpNet>,

    /// `optional` (anonymous use, signing in offered) or `required` (nothing but signing in
    /// works signed out).
    #[arg(long = "sign-in", env = "PARLEY_SIGN_IN", value_enum, default_value = "optional")]
    pub mode: SignInMode,

    /// Only these emails may sign in (comma-separated, case-insensitive; the provider must
    /// say `email_verified`). With --allowed-domains, either admits.
    #[arg(long, env = "PARLEY_ALLOWED_EMAILS", value_delimiter = ',', default_value = "")]
    pub allowed_emails: Vec<String>,

    /// Only emails at these domains may sign in (comma-separated, `example.org`; verified
    /// emails only).
    #[arg(long, env = "PARLEY_ALLOWED_DOMAINS", value_delimiter = ',', default_value = "")]
    pub allowed_domains: Vec<String>,

    /// The site's operators, comma-separated: verified emails, or `<issuer> <sub>` pairs.
    #[arg(long, env = "PARLEY_ADMINS", value_delimiter = ',', default_value = "")]
    pub admins: Vec<String>,

    /// How long a sign-in lasts unused (humantime, `30d`); each use (at most once a minute)
    /// pushes its end on by as much.
    #[arg(long, env = "PARLEY_SIGN_IN_TTL", default_value = "30d", value_parser = humantime::parse_duration)]
    pub sign_in_ttl: Duration,
}

/// A CIDR (`10.0.0.0/8`) or a single address (`127.0.0.1`, `::1`).
fn parse_net(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<ipnet::IpNet>() {
        return Ok(net);
    }
    text.parse::<IpAddr>()
        .map(ipnet::IpNet::from)
        .map_err(|_| format!("`{text}` is neither a CIDR (10.0.0.0/8) nor an address"))
}

/// One provider's settings, from `PARLEY_OIDC_<NAME>_*`.
#[derive(Clone)]
pub struct ProviderSettings {
    /// The configured name (lower case), as in `/auth/callback/<name>`.
    pub name: String,
    /// What the button says after "Continue with ".
    pub label: String,
    /// The issuer.
    pub issuer: openidconnect::IssuerUrl,
    /// The client id registered at the provider.
    pub client_id: String,
    /// The client secret (never logged: `Debug` hides it).
    pub client_secret: String,
    /// The scopes asked for (`openid` always).
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("name", &self.name)
            .field("issuer", &self.issuer.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ProviderSettings {
    /// The settings of provider `name`, read through `var` (the environment, in `parley`).
    ///
    /// # Errors
    /// A sentence naming the variable that is missing or wrong.
    pub fn read(name: &str, var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "PARLEY_OIDC_PROVIDERS: `{name}` is not a provider name (letters, digits, - and _)"
            ));
        }
        let prefix = format!("PARLEY_OIDC_{}_", name.to_ascii_uppercase().replace('-', "_"));
        let get = |key: &str| var(&format!("{prefix}{key}")).filter(|v| !v.trim().is_empty());
        let need = |key: &str| get(key).ok_or_else(|| format!("{prefix}{key} is not set"));
        let issuer = super::oidc::issuer_url(&need("ISSUER")?)
            .map_err(|e| format!("{prefix}ISSUER: {e}"))?;
        let client_secret = match (get("CLIENT_SECRET"), get("CLIENT_SECRET_FILE")) {
            (Some(secret), None) => secret,
            (None, Some(file)) => std::fs::read_to_string(PathBuf::from(&file))
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("{prefix}CLIENT_SECRET_FILE ({file}): {e}"))?,
            (Some(_), Some(_)) => {
                return Err(format!(
                    "set {prefix}CLIENT_SECRET or {prefix}CLIENT_SECRET_FILE, not both"
                ))
            }
            (None, None) => return Err(format!("{prefix}CLIENT_SECRET is not set")),
        };
        let mut scopes: Vec<String> = get("SCOPES")
            .unwrap_or_else(|| "openid email profile".into())
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
        Ok(ProviderSettings {
            label: get("LABEL").unwrap_or_else(|| name.clone()),
            name,
            issuer,
            client_id: need("CLIENT_ID")?,
            client_secret,
            scopes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |key| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string())
    }

    #[test]
    fn a_provider_reads_its_variables_and_says_which_is_missing() {
        let vars = [
            ("PARLEY_OIDC_MY_CORP_ISSUER", "https://id.example.org/realms/x"),
            ("PARLEY_OIDC_MY_CORP_CLIENT_ID", "parley"),
            ("PARLEY_OIDC_MY_CORP_CLIENT_SECRET", "s3cret"),
            ("PARLEY_OIDC_MY_CORP_SCOPES", "email"),
        ];
        let p = ProviderSettings::read("My-Corp", env(&vars)).unwrap();
        assert_eq!((p.name.as_str(), p.label.as_str()), ("my-corp", "my-corp"));
        assert_eq!(p.scopes, ["openid", "email"]);
        assert!(!format!("{p:?}").contains("s3cret"));
        let missing = ProviderSettings::read("my-corp", env(&vars[..2])).unwrap_err();
        assert_eq!(missing, "PARLEY_OIDC_MY_CORP_CLIENT_SECRET is not set");
        assert!(ProviderSettings::read("a b", env(&vars)).is_err());
        let bad = [("PARLEY_OIDC_X_ISSUER", "not a url"), ("PARLEY_OIDC_X_CLIENT_ID", "c")];
        assert!(ProviderSettings::read("x", env(&bad))
            .unwrap_err()
            .starts_with("PARLEY_OIDC_X_ISSUER"));
    }

    #[test]
    fn proxy_addresses_are_cidrs_or_single_addresses() {
        assert_eq!(parse_net("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_net(" 127.0.0.1 ").unwrap().to_string(), "127.0.0.1/32");
        assert_eq!(parse_net("::1").unwrap().to_string(), "::1/128");
        assert!(parse_net("example.org").is_err());
    }
}
