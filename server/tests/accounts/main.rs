//! Signing in, against real OpenID providers: panva's certified `oidc-provider`
//! (`end2end/oidc/provider.mjs`, its login form driven here as a browser would) and a hostile
//! one (`end2end/oidc/hostile.mjs`) whose token endpoint hands out broken ID tokens; real
//! `parley` processes, one per case. What must hold: a guest who signs in keeps their Files, on
//! every device; another account gets 404 for them; signing out (here, everywhere, on another
//! replica) takes effect at the next request; and every attack on the callback or the token
//! comes back as a sentence on the page, never a sign-in.

#[path = "../common/mod.rs"]
mod common;

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use app::model::SiteInfo;
use common::*;
use reqwest::{cookie::CookieStore, header, StatusCode};

const CLIENT_ID: &str = "parley";
const CLIENT_SECRET: &str = "parley-test-client-secret-0123456789";
const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// A Node.js process (a provider), killed when dropped.
struct Node {
    child: Child,
    url: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn end2end() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../end2end")
}

/// `node oidc/<script> --port <port> …` from `end2end/`, once it serves its discovery
/// document; `None` (the test skipped, with a note) when `oidc-provider` is not installed,
/// unless `PARLEY_TEST_REQUIRE_SERVICES` is set (`scripts/test.sh` installs it first).
async fn node(script: &str, port: u16, args: &[&str]) -> Option<Node> {
    if !end2end().join("node_modules/oidc-provider").exists() {
        assert!(
            std::env::var_os("PARLEY_TEST_REQUIRE_SERVICES").is_none(),
            "end2end/node_modules/oidc-provider is missing (scripts/setup.sh installs it)"
        );
        eprintln!("oidc-provider is not installed: the sign-in case is skipped");
        return None;
    }
    let child = Command::new("node")
        .arg(format!("oidc/{script}"))
        .args(["--port", &port.to_string()])
        .args(args)
        .current_dir(end2end())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node starts");
    let node = Node { child, url: format!("http://127.0.0.1:{port}") };
    for _ in 0..200 {
        let discovery = format!("{}/.well-known/openid-configuration", node.url);
        if reqwest::get(&discovery).await.is_ok_and(|r| r.status().is_success()) {
            return Some(node);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{script} did not start");
}

/// The certified provider on `port`, with client `parley` sending people back to `redirects`,
/// signing with the key named `seed`.
async fn provider(port: u16, redirects: &[String], seed: &str) -> Option<Node> {
    let clients = serde_json::json!([{
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": redirects,
    }]);
    node("provider.mjs", port, &["--clients", &clients.to_string(), "--key-seed", seed]).await
}

/// The environment that configures providers `name → issuer` for a site at `public`.
fn provider_env(public: &str, providers: &[(&str, &str)]) -> Vec<(String, String)> {
    let names: Vec<&str> = providers.iter().map(|(n, _)| *n).collect();
    let mut env = vec![
        ("PARLEY_OIDC_PROVIDERS".to_string(), names.join(",")),
        ("PARLEY_PUBLIC_URL".to_string(), public.to_string()),
    ];
    for (name, issuer) in providers {
        let up = name.to_ascii_uppercase();
        env.push((format!("PARLEY_OIDC_{up}_ISSUER"), issuer.to_string()));
        env.push((format!("PARLEY_OIDC_{up}_CLIENT_ID"), CLIENT_ID.into()));
        env.push((format!("PARLEY_OIDC_{up}_CLIENT_SECRET"), CLIENT_SECRET.into()));
        env.push((format!("PARLEY_OIDC_{up}_LABEL"), format!("{name} ID")));
    }
    env
}

/// A `parley` process on `port` (its own built-in-emulator-free upstream: `emulator`) with
/// `env` and `args`.
async fn site_at(
    port: u16,
    emulator: &gemini_emulator::RunningEmulator,
    env: &[(String, String)],
    args: &[&str],
) -> Process {
    let base = emulator.base_url();
    let mut all = on_emulator(&base, "k");
    all.extend(["--session-secret", SECRET]);
    all.extend_from_slice(args);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Process::launch_at(port, &all, None, &env, None).await
}

/// One person's setting: the certified provider as `corp`, and a site using it.
struct Setup {
    provider: Node,
    site: Process,
    emulator: gemini_emulator::RunningEmulator,
}

async fn setup(args: &[&str], extra_env: &[(&str, &str)]) -> Option<Setup> {
    let (site_port, provider_port) = (free_port(), free_port());
    let public = format!("http://127.0.0.1:{site_port}");
    let provider =
        provider(provider_port, &[format!("{public}/auth/callback/corp")], "one").await?;
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let mut env = provider_env(&public, &[("corp", &provider.url)]);
    env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let site = site_at(site_port, &emulator, &env, args).await;
    Some(Setup { provider, site, emulator })
}

/// A browser that does not follow redirects (each step is looked at), and its cookie jar.
fn browser_with_jar() -> (reqwest::Client, Arc<reqwest::cookie::Jar>) {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (client, jar)
}

fn location(res: &reqwest::Response) -> String {
    assert!(res.status().is_redirection(), "{} is no redirect", res.status());
    let to = res.headers()[header::LOCATION].to_str().unwrap();
    res.url().join(to).unwrap().to_string()
}

/// Drives a sign-in at `site`'s provider `name` as `login` (the provider's login form and
/// consent filled in, as a person would): the URL the provider sends the browser back to,
/// not yet visited.
async fn to_callback(
    b: &reqwest::Client,
    site: &str,
    name: &str,
    login: &str,
    back: &str,
) -> String {
    let start = b.get(format!("{site}/auth/login/{name}{back}")).send().await.unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let mut url = location(&start);
    let callback = format!("{site}/auth/callback/{name}");
    for _ in 0..12 {
        if url.starts_with(&callback) {
            return url;
        }
        let res = b.get(&url).send().await.unwrap();
        if res.status().is_redirection() {
            url = location(&res);
            continue;
        }
        assert_eq!(res.status(), 200, "{url}");
        let page_url = res.url().clone();
        let html = res.text().await.unwrap();
        let action = html.split("action=\"").nth(1).and_then(|a| a.split('"').next()).unwrap();
        let form: Vec<(&str, &str)> = if html.contains("name=\"login\"") {
            vec![("prompt", "login"), ("login", login), ("password", "any")]
        } else {
            vec![("prompt", "consent")]
        };
        let posted = b.post(page_url.join(action).unwrap()).form(&form).send().await.unwrap();
        url = location(&posted);
    }
    panic!("the provider never sent the browser back");
}

/// Signs `b` in at `site` as `login`: the callback's answer.
async fn sign_in(b: &reqwest::Client, site: &str, login: &str) -> reqwest::Response {
    let callback = to_callback(b, site, "corp", login, "").await;
    b.get(callback).send().await.unwrap()
}

/// Where a callback's answer sends the browser, relative to the site.
fn landing(res: &reqwest::Response, site: &str) -> String {
    location(res).trim_start_matches(site).to_string()
}

/// What `site_info` says to `b`.
async fn info(b: &reqwest::Client, site: &str) -> SiteInfo {
    let res = b.post(format!("{site}/api/site_info")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The email `site_info` says `b` is signed in with.
async fn signed_in_as(b: &reqwest::Client, site: &str) -> Option<String> {
    info(b, site).await.sign_in.account.and_then(|a| a.email)
}

/// The session cookie `jar` holds for `site`.
fn session_cookie(jar: &reqwest::cookie::Jar, site: &str) -> String {
    let header = jar.cookies(&site.parse().unwrap()).unwrap();
    header
        .to_str()
        .unwrap()
        .split("; ")
        .find(|c| c.starts_with("parley_session="))
        .unwrap()
        .to_string()
}

/// `site_info` with exactly `cookie` (a browser that kept an old cookie).
async fn signed_in_with(cookie: &str, site: &str) -> Option<String> {
    let res = reqwest::Client::new()
        .post(format!("{site}/api/site_info"))
        .header(header::COOKIE, cookie)
        .send()
        .await
        .unwrap();
    res.json::<SiteInfo>().await.unwrap().sign_in.account.and_then(|a| a.email)
}

#[tokio::test]
async fn a_guest_signs_in_and_keeps_their_files_on_every_device() {
    let Some(s) = setup(&[], &[]).await else { return };
    let url = s.site.url.clone();
    let (laptop, laptop_jar) = browser_with_jar();
    let offered = info(&laptop, &url).await.sign_in;
    assert_eq!(offered.providers.len(), 1);
    assert_eq!(offered.providers[0].label, "corp ID");
    assert!(offered.account.is_none());
    let file = upload_text(&laptop, &url, "notes.txt", "a guest's notes").await;
    let anonymous = session_cookie(&laptop_jar, &url);

    let back = sign_in(&laptop, &url, "ann").await;
    assert_eq!(landing(&back, &url), "/");
    let signed = session_cookie(&laptop_jar, &url);
    assert!(signed.starts_with("parley_session=in."), "{signed}");
    assert_ne!(
        signed.trim_start_matches("parley_session=in."),
        anonymous.trim_start_matches("parley_session="),
        "the session id is new"
    );
    assert_eq!(signed_in_as(&laptop, &url).await.as_deref(), Some("ann@example.test"));
    let mine = list_uploads(&laptop, &url).await;
    assert_eq!(mine.len(), 1, "the guest's File came along");
    assert_eq!(
        signed_in_with(&anonymous, &url).await,
        None,
        "the old anonymous cookie is no sign-in"
    );

    // A second device, signed in as the same person, has the same Files and can use them.
    let (phone, _) = browser_with_jar();
    sign_in(&phone, &url, "ann").await;
    assert_eq!(list_uploads(&phone, &url).await.len(), 1);
    let events = chat_events(&phone, &url, &about(&file.uri)).await;
    assert!(answer(&events).contains(&file.sha256[..12]), "{events:?}");

    // Another person: nothing of Ann's, and her File is not found.
    let (bob, _) = browser_with_jar();
    sign_in(&bob, &url, "bob").await;
    assert!(list_uploads(&bob, &url).await.is_empty());
    let delete = bob
        .post(format!("{url}/api/delete_upload"))
        .json(&serde_json::json!({"uri": file.uri}))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 404);
    assert_eq!(list_uploads(&laptop, &url).await.len(), 1);
    drop(s.provider);
    drop(s.emulator);
}

#[tokio::test]
async fn signing_out_here_or_everywhere_takes_effect_at_the_next_request() {
    let Some(s) = setup(&[], &[]).await else { return };
    let url = s.site.url.clone();
    let (a, a_jar) = browser_with_jar();
    let (b, b_jar) = browser_with_jar();
    let (c, c_jar) = browser_with_jar();
    for browser in [&a, &b, &c] {
        sign_in(browser, &url, "carol").await;
    }
    let (old_a, old_b, old_c) =
        (session_cookie(&a_jar, &url), session_cookie(&b_jar, &url), session_cookie(&c_jar, &url));
    let out = a.post(format!("{url}/auth/sign-out")).send().await.unwrap();
    assert_eq!(landing(&out, &url), "/");
    assert_eq!(signed_in_as(&a, &url).await, None, "A is a guest again");
    assert_eq!(signed_in_with(&old_a, &url).await, None, "A's old cookie is refused at once");
    assert_eq!(signed_in_with(&old_b, &url).await.as_deref(), Some("carol@example.test"));

    b.post(format!("{url}/auth/sign-out-everywhere")).send().await.unwrap();
    assert_eq!(signed_in_with(&old_b, &url).await, None);
    assert_eq!(signed_in_with(&old_c, &url).await, None, "everywhere means C too");

    // A sign-out from another site (CSRF) is refused.
    sign_in(&c, &url, "carol").await;
    let forged = c
        .post(format!("{url}/auth/sign-out"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(signed_in_as(&c, &url).await.as_deref(), Some("carol@example.test"));
    drop(s.provider);
}

#[tokio::test]
async fn attacks_on_the_callback_come_back_as_a_sentence_never_a_sign_in() {
    let Some(s) = setup(&[], &[]).await else { return };
    let url = s.site.url.clone();
    let failed = |code: &str| format!("/?sign_in_error={code}");

    // A forged state, with this browser's own flow cookie.
    let (x, _) = browser_with_jar();
    let callback = to_callback(&x, &url, "corp", "mallory", "").await;
    let forged = callback.replace("state=", "state=forged");
    assert_eq!(landing(&x.get(&forged).send().await.unwrap(), &url), failed("expired"));

    // The callback delivered to another browser (login CSRF): it has no flow cookie.
    let (victim, _) = browser_with_jar();
    let callback = to_callback(&x, &url, "corp", "mallory", "").await;
    assert_eq!(landing(&victim.get(&callback).send().await.unwrap(), &url), failed("expired"));
    assert_eq!(signed_in_as(&victim, &url).await, None);

    // A good callback works once; replayed, it is refused.
    let callback = to_callback(&x, &url, "corp", "mallory", "").await;
    assert_eq!(landing(&x.get(&callback).send().await.unwrap(), &url), "/");
    assert_eq!(landing(&x.get(&callback).send().await.unwrap(), &url), failed("expired"));

    // One flow's code with another flow's state: the verifier does not match the challenge.
    let (y, _) = browser_with_jar();
    let first = to_callback(&y, &url, "corp", "mallory", "").await;
    let second = to_callback(&y, &url, "corp", "mallory", "").await;
    let code = |u: &str| {
        reqwest::Url::parse(u)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .to_string()
    };
    let swapped = second.replace(&code(&second), &code(&first));
    assert_eq!(landing(&y.get(&swapped).send().await.unwrap(), &url), failed("invalid"));
    assert_eq!(signed_in_as(&y, &url).await, None);

    // Another issuer named in the response (mix-up, RFC 9207).
    let callback = to_callback(&y, &url, "corp", "mallory", "").await;
    let mixed =
        format!("{}&iss=http%3A%2F%2Fevil.example", callback.split("&iss=").next().unwrap());
    assert_eq!(landing(&y.get(&mixed).send().await.unwrap(), &url), failed("invalid"));

    // The provider says no.
    let callback = to_callback(&y, &url, "corp", "mallory", "").await;
    let state = reqwest::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    let refused = format!("{url}/auth/callback/corp?error=access_denied&state={state}");
    assert_eq!(landing(&y.get(&refused).send().await.unwrap(), &url), failed("refused"));

    // An open redirect in the return path goes home instead.
    for hostile in ["//evil.example/x", "https://evil.example/", "/\\evil.example"] {
        let (z, _) = browser_with_jar();
        let back = format!("?return={}", urlencode(hostile));
        let callback = to_callback(&z, &url, "corp", "zed", &back).await;
        assert_eq!(landing(&z.get(&callback).send().await.unwrap(), &url), "/", "{hostile}");
    }
    let (z, _) = browser_with_jar();
    let callback = to_callback(&z, &url, "corp", "zed", "?return=%2F%3Fc%3D7").await;
    assert_eq!(
        landing(&z.get(&callback).send().await.unwrap(), &url),
        "/?c=7",
        "a local path is kept"
    );

    // An unknown provider.
    assert_eq!(x.get(format!("{url}/auth/login/nope")).send().await.unwrap().status(), 404);
    drop(s.provider);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(
            |b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            },
        )
        .collect()
}

#[tokio::test]
async fn broken_id_tokens_are_refused_and_a_good_one_is_taken() {
    let modes = ["good", "aud", "expired", "none", "hs256", "nonce", "iss", "kid"];
    let mut hostile = Vec::new();
    for mode in modes {
        let port = free_port();
        let Some(node) = node("hostile.mjs", port, &["--mode", mode]).await else { return };
        hostile.push((mode, node));
    }
    let site_port = free_port();
    let public = format!("http://127.0.0.1:{site_port}");
    let providers: Vec<(&str, &str)> = hostile.iter().map(|(m, n)| (*m, n.url.as_str())).collect();
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let site = site_at(site_port, &emulator, &provider_env(&public, &providers), &[]).await;
    for (mode, _) in &hostile {
        let (b, _) = browser_with_jar();
        let callback = to_callback(&b, &site.url, mode, "", "").await;
        let back = landing(&b.get(&callback).send().await.unwrap(), &site.url);
        if *mode == "good" {
            assert_eq!(back, "/", "the harness signs in with a good token");
            assert_eq!(signed_in_as(&b, &site.url).await.as_deref(), Some("good@hostile.test"));
        } else {
            assert_eq!(back, "/?sign_in_error=invalid", "{mode}");
            assert_eq!(signed_in_as(&b, &site.url).await, None, "{mode}");
        }
    }
}

#[tokio::test]
async fn a_key_rotation_at_the_provider_is_followed() {
    let Some(s) = setup(&[], &[]).await else { return };
    let url = s.site.url.clone();
    let (a, _) = browser_with_jar();
    sign_in(&a, &url, "dan").await;
    assert!(signed_in_as(&a, &url).await.is_some());
    // The provider restarts on its port with a new signing key (another `kid`).
    let port: u16 = s.provider.url.rsplit(':').next().unwrap().parse().unwrap();
    let redirect = format!("{url}/auth/callback/corp");
    drop(s.provider);
    let Some(_rotated) = provider(port, &[redirect], "two").await else { return };
    let (b, _) = browser_with_jar();
    let back = sign_in(&b, &url, "dan").await;
    assert_eq!(landing(&back, &url), "/");
    assert_eq!(signed_in_as(&b, &url).await.as_deref(), Some("dan@example.test"));
}

#[tokio::test]
async fn a_closed_sign_up_admits_only_verified_listed_emails() {
    let Some(s) = setup(&[], &[("PARLEY_ALLOWED_DOMAINS", "example.org")]).await else { return };
    let url = s.site.url.clone();
    for (login, expected) in [
        ("ann", "/?sign_in_error=not_allowed"),
        ("ann@example.org.evil.test", "/?sign_in_error=not_allowed"),
        ("unverified@example.org", "/?sign_in_error=unverified"),
        ("ann@example.org", "/"),
    ] {
        let (b, _) = browser_with_jar();
        assert_eq!(landing(&sign_in(&b, &url, login).await, &url), expected, "{login}");
    }
    drop(s.provider);
}

#[tokio::test]
async fn required_sign_in_refuses_everything_but_signing_in() {
    let Some(s) = setup(&["--sign-in", "required"], &[]).await else { return };
    let url = s.site.url.clone();
    let (b, _) = browser_with_jar();
    let page = b.get(format!("{url}/")).send().await.unwrap();
    assert_eq!(page.status(), 401);
    assert!(page.text().await.unwrap().contains(">Continue with corp ID</a>"));
    assert_eq!(b.post(format!("{url}/api/site_info")).send().await.unwrap().status(), 401);
    let upload = b.post(format!("{url}/api/list_uploads")).send().await.unwrap();
    assert_eq!(upload.status(), 401);
    let failed = b.get(format!("{url}/?sign_in_error=not_allowed")).send().await.unwrap();
    assert!(failed
        .text()
        .await
        .unwrap()
        .contains("role=\"alert\">This account may not sign in to this site.<"));
    sign_in(&b, &url, "erin").await;
    assert_eq!(b.get(format!("{url}/")).send().await.unwrap().status(), 200);
    assert_eq!(signed_in_as(&b, &url).await.as_deref(), Some("erin@example.test"));
    drop(s.provider);
}

#[tokio::test]
async fn a_proxy_header_counts_only_from_trusted_addresses() {
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let proxied = |from: &'static str| {
        vec![
            ("PARLEY_AUTH_PROXY_HEADER".to_string(), "X-Forwarded-Email".to_string()),
            ("PARLEY_AUTH_PROXY_FROM".to_string(), from.to_string()),
        ]
    };
    let trusted = site_at(free_port(), &emulator, &proxied("127.0.0.1"), &[]).await;
    let elsewhere = site_at(free_port(), &emulator, &proxied("10.0.0.0/8"), &[]).await;
    let with_header = |site: &str| {
        reqwest::Client::new()
            .post(format!("{site}/api/site_info"))
            .header("x-forwarded-email", "Fay@Example.org")
            .send()
    };
    let info: SiteInfo = with_header(&trusted.url).await.unwrap().json().await.unwrap();
    let account = info.sign_in.account.unwrap();
    assert_eq!(account.email.as_deref(), Some("fay@example.org"));
    assert!(account.via_proxy);
    let info: SiteInfo = with_header(&elsewhere.url).await.unwrap().json().await.unwrap();
    assert!(info.sign_in.account.is_none(), "ignored from an untrusted address");
}

#[tokio::test]
async fn a_sign_out_on_one_replica_is_refused_on_the_other() {
    let Some((_admin, _db, database_url)) = fresh_postgres("signout").await else { return };
    let (port_a, port_b, provider_port) = (free_port(), free_port(), free_port());
    let (public_a, public_b) =
        (format!("http://127.0.0.1:{port_a}"), format!("http://127.0.0.1:{port_b}"));
    let redirects =
        [format!("{public_a}/auth/callback/corp"), format!("{public_b}/auth/callback/corp")];
    let Some(provider) = provider(provider_port, &redirects, "one").await else { return };
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let shared = ["--database-url", database_url.as_str()];
    let a =
        site_at(port_a, &emulator, &provider_env(&public_a, &[("corp", &provider.url)]), &shared)
            .await;
    let b =
        site_at(port_b, &emulator, &provider_env(&public_b, &[("corp", &provider.url)]), &shared)
            .await;
    let (browser, jar) = browser_with_jar();
    sign_in(&browser, &a.url, "gus").await;
    let cookie = session_cookie(&jar, &a.url);
    assert_eq!(
        signed_in_with(&cookie, &b.url).await.as_deref(),
        Some("gus@example.test"),
        "one sign-in, both replicas"
    );
    browser.post(format!("{}/auth/sign-out", a.url)).send().await.unwrap();
    assert_eq!(signed_in_with(&cookie, &b.url).await, None, "ended on B at its next request");
}

/// `parley accounts <args>` on `site`'s database (and its emulator): stdout, or the failure.
/// Run off the test's runtime, which serves the emulator meanwhile.
async fn accounts(
    site: &Process,
    emulator: &gemini_emulator::RunningEmulator,
    args: &[&str],
) -> Result<String, String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_parley"));
    command
        .arg("--data-dir")
        .arg(site.data_dir())
        .args(on_emulator(&emulator.base_url(), "k"))
        .args(["--session-secret", SECRET, "accounts"])
        .args(args)
        .env("PARLEY_LOG", "warn");
    let out = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status.success() {
        Ok(text)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_disables_enables_and_deletes_an_account() {
    let Some(s) = setup(&[], &[]).await else { return };
    let url = s.site.url.clone();
    let (b, jar) = browser_with_jar();
    sign_in(&b, &url, "hal").await;
    let file = upload_text(&b, &url, "hal.txt", "hal's file").await;
    let cookie = session_cookie(&jar, &url);
    let listed = accounts(&s.site, &s.emulator, &["list"]).await.unwrap();
    assert!(listed.contains("hal@example.test") && listed.contains("\t1\tactive"), "{listed}");
    assert!(accounts(&s.site, &s.emulator, &["disable", "nobody@example.test"])
        .await
        .unwrap_err()
        .contains("no account"));

    let said = accounts(&s.site, &s.emulator, &["disable", "hal@example.test"]).await.unwrap();
    assert!(said.contains("1 sign-ins ended"), "{said}");
    assert_eq!(signed_in_with(&cookie, &url).await, None, "refused at the next request");
    let (again, _) = browser_with_jar();
    assert_eq!(landing(&sign_in(&again, &url, "hal").await, &url), "/?sign_in_error=disabled");

    accounts(&s.site, &s.emulator, &["enable", "hal@example.test"]).await.unwrap();
    assert_eq!(landing(&sign_in(&again, &url, "hal").await, &url), "/");
    assert_eq!(list_uploads(&again, &url).await.len(), 1);

    let said = accounts(&s.site, &s.emulator, &["delete", "hal@example.test"]).await.unwrap();
    assert!(said.contains("1 Files (1 deleted on Gemini"), "{said}");
    let name = file.uri.rsplit("/files/").next().unwrap().to_string();
    let gone = s
        .emulator
        .emulator
        .request_log()
        .iter()
        .any(|r| r.method == "DELETE" && r.path.ends_with(&name));
    assert!(gone, "the File was deleted on Gemini");
    assert_eq!(signed_in_as(&again, &url).await, None, "its sign-ins went with it");
    assert!(!accounts(&s.site, &s.emulator, &["list"]).await.unwrap().contains("hal@"));
    drop(s.provider);
}

#[tokio::test]
async fn starting_sign_ins_is_rate_limited() {
    let Some(s) = setup(&["--rate-files", "5/min"], &[]).await else { return };
    let (b, _) = browser_with_jar();
    info(&b, &s.site.url).await; // a session of its own: the per-session limit applies
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(
            b.get(format!("{}/auth/login/corp", s.site.url))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..5], [303; 5]);
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // Sessionless, the address's limit (four times a session's) holds.
    let mut passed = 0;
    for _ in 0..30 {
        let fresh =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        passed += usize::from(
            fresh.get(format!("{}/auth/login/corp", s.site.url)).send().await.unwrap().status()
                == 303,
        );
    }
    assert!(passed <= 20, "{passed} sign-ins started from one address in a minute");
    drop(s.provider);
}

#[tokio::test]
async fn a_provider_that_is_down_is_a_sentence_and_the_site_goes_on() {
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    // Nothing listens at the issuer: discovery fails at once.
    let down = format!("http://127.0.0.1:{}", free_port());
    let site = site_at(port, &emulator, &provider_env(&public, &[("corp", &down)]), &[]).await;
    let (b, _) = browser_with_jar();
    let start = b.get(format!("{}/auth/login/corp", site.url)).send().await.unwrap();
    assert_eq!(landing(&start, &site.url), "/?sign_in_error=provider_down");
    let page = b.get(format!("{}/?sign_in_error=provider_down", site.url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("The sign-in provider could not be reached."));
    assert!(info(&b, &site.url).await.sign_in.account.is_none());
}

/// The value of the first hidden `account` field of an `/admin` page.
fn first_account_field(html: &str) -> String {
    let at = html.find("name=\"account\" value=\"").expect("an account's form") + 22;
    html[at..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn only_an_operator_sees_admin_and_sets_an_accounts_budget() {
    // `ann` at another issuer is an operator; Ann here is not.
    let admins = "ops@example.test,https://elsewhere.example ann";
    let budget = ["--budget-anonymous", "100 tokens/day"];
    let Some(s) = setup(&budget, &[("PARLEY_ADMINS", admins)]).await else { return };
    let url = s.site.url.clone();
    let admin = |b: &reqwest::Client| b.get(format!("{url}/admin")).send();
    let hi = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "hello"}]}]});
    let chat = |b: &reqwest::Client| b.post(format!("{url}/api/chat")).json(&hi).send();

    // A guest: no such page; out of budget, signing in is offered (accounts have none).
    let (guest, _) = browser_with_jar();
    assert_eq!(admin(&guest).await.unwrap().status(), 404);
    let refusal = loop {
        let res = chat(&guest).await.unwrap();
        if res.status() == 429 {
            break res.text().await.unwrap();
        }
        assert_eq!(res.status(), 200);
        let _ = res.text().await;
    };
    assert!(
        refusal.contains("Sign in for a larger budget.")
            && refusal.contains("\"sign_in\":\"/auth/login/corp\"")
    );

    // Ann: signed in, not an operator — 404 for the page and its forms.
    let (ann, _) = browser_with_jar();
    sign_in(&ann, &url, "ann").await;
    assert_eq!(admin(&ann).await.unwrap().status(), 404);
    for (form, fields) in [
        ("budget", [("account", "x"), ("budget", "off")]),
        ("disable", [("account", "x"), ("disabled", "true")]),
    ] {
        let res = ann.post(format!("{url}/admin/{form}")).form(&fields).send().await.unwrap();
        assert_eq!(res.status(), 404, "{form}");
    }
    let res = chat(&ann).await.unwrap();
    assert_eq!(res.status(), 200, "accounts have no budget here");
    let _ = res.text().await;

    // The operator sees the site's spend and Ann's.
    let (ops, _) = browser_with_jar();
    sign_in(&ops, &url, "ops@example.test").await;
    let page = admin(&ops).await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for part in
        ["ann@example.test", "Set budget", "<svg", "Top anonymous addresses", "gemini-2.5-flash"]
    {
        assert!(html.contains(part), "{part} in {html}");
    }
    let ann_id = first_account_field(&html);
    // An account that spent nothing yet is found by its email, to be given a budget first.
    let found = ops.get(format!("{url}/admin?find=OPS@example.test")).send().await.unwrap();
    let found = found.text().await.unwrap();
    let table =
        found.split("aria-label=\"Found accounts\"").nth(1).expect("a Found accounts table");
    assert!(table.contains("Budget for ops@example.test"), "{table}");
    // Forms from another site are refused, as every state-changing call.
    let forged = ops
        .post(format!("{url}/admin/budget"))
        .header(header::ORIGIN, "https://evil.example")
        .form(&[("account", ann_id.as_str()), ("budget", "off")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // A budget that is no budget is said so; a real one takes effect at Ann's next request.
    let set = |text: &'static str| {
        ops.post(format!("{url}/admin/budget"))
            .form(&[("account", ann_id.as_str()), ("budget", text)])
            .send()
    };
    let said = set("lots").await.unwrap();
    assert_eq!(said.status(), 303);
    assert!(location(&said).contains("is+not+a+budget"), "{}", location(&said));
    assert_eq!(set("20 tokens/day").await.unwrap().status(), 303);
    let refused = chat(&ann).await.unwrap();
    assert_eq!(refused.status(), 429);
    let text = refused.text().await.unwrap();
    assert!(
        text.contains("budget of 20 tokens today") && text.contains("\"sign_in\":null"),
        "{text}"
    );
    let html = admin(&ops).await.unwrap().text().await.unwrap();
    assert!(html.contains("value=\"20 tokens/day\""), "the page shows her budget");
    // Disabling ends her sign-in at her next request.
    let off = ops
        .post(format!("{url}/admin/disable"))
        .form(&[("account", ann_id.as_str()), ("disabled", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 303);
    assert_eq!(signed_in_as(&ann, &url).await, None);
}
