//! The public-site guards through the whole server: security headers and the page's CSP,
//! signed sessions, same-origin checks, the upload size limit, MIME spoofing.

use reqwest::header;

use crate::common::{files_under, site, upload, upload_form, Site};

/// The files under the data directory's `originals/` (retained and staged).
fn stored(site: &Site) -> usize {
    files_under(site, "originals")
}

#[tokio::test]
async fn every_response_has_security_headers_and_the_page_a_nonce_csp() {
    let site = site(&[]).await;
    let res = reqwest::get(&site.url).await.unwrap();
    let headers = res.headers().clone();
    let page = res.text().await.unwrap();
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
    assert!(
        csp.contains("frame-ancestors 'none'")
            && csp.contains("'wasm-unsafe-eval'")
            && csp.contains("object-src 'none'"),
        "{csp}"
    );
    let script_src = csp.split("script-src").nth(1).unwrap().split(';').next().unwrap();
    assert!(
        !script_src.contains("'unsafe-inline'") && !script_src.contains("'unsafe-eval'"),
        "{script_src}"
    );
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .expect("a nonce in script-src");
    assert!(
        page.contains(&format!("nonce=\"{nonce}\"")),
        "the hydration script carries the response's nonce"
    );
    // Every inline script of the page carries it.
    for script in page.split("<script").skip(1) {
        let tag = script.split('>').next().unwrap();
        assert!(
            tag.contains("src=") || tag.contains(&format!("nonce=\"{nonce}\"")),
            "inline script without the nonce: <script{tag}>"
        );
    }
    let other = reqwest::get(&site.url).await.unwrap();
    assert!(
        !other.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains(nonce),
        "a new nonce per response"
    );

    let api = site.client.post(format!("{}/api/list_uploads", site.url)).send().await.unwrap();
    assert_eq!(
        api.headers()[header::CONTENT_SECURITY_POLICY],
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(api.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

#[tokio::test]
async fn session_cookies_are_signed_and_forgeries_get_a_new_session() {
    let site = site(&[]).await;
    let res = upload(&site, upload_form("5", "text/plain", "mine.txt", b"alice".to_vec())).await;
    let cookie = res.headers()[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && !cookie.contains("Secure"),
        "{cookie}"
    );
    let value =
        cookie.split(';').next().unwrap().strip_prefix("parley_session=").unwrap().to_string();
    let (id, mac) = value.split_once('.').unwrap();
    assert_eq!((id.len(), mac.len()), (32, 64));
    let file: app::model::UploadedFile = res.json().await.unwrap();

    let list = |cookie: String| {
        let url = format!("{}/api/list_uploads", site.url);
        async move {
            reqwest::Client::new().post(url).header(header::COOKIE, cookie).send().await.unwrap()
        }
    };
    // The signed cookie is the session.
    let mine: Vec<app::model::UploadRecord> =
        list(format!("parley_session={value}")).await.json().await.unwrap();
    assert_eq!(mine[0].uri, file.uri);
    // The bare id (the old cookie form), or the id with a made-up signature, is not.
    for forged in [id.to_string(), format!("{id}.{}", "0".repeat(64))] {
        let res = list(format!("parley_session={forged}")).await;
        assert!(res.headers().get(header::SET_COOKIE).is_some(), "a new session is started");
        assert!(
            res.json::<Vec<app::model::UploadRecord>>().await.unwrap().is_empty(),
            "{forged} reads nothing"
        );
    }
    // X-Forwarded-Proto is believed only behind a trusted proxy.
    let res = reqwest::Client::new()
        .get(&site.url)
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(res.headers()[header::SET_COOKIE].to_str().unwrap().starts_with("parley_session="));
    let behind_proxy = crate::common::site(&["--trust-proxy"]).await;
    let res = reqwest::Client::new()
        .get(&behind_proxy.url)
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let cookie = res.headers()[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("__Host-parley_session=")
            && cookie.contains("; Secure")
            && cookie.contains("Path=/;"),
        "{cookie}"
    );
    // Static files and missing pages start no session; the page is revalidated and server
    // functions are not stored.
    let res = reqwest::get(format!("{}/no/such/page", site.url)).await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.headers().get(header::SET_COOKIE).is_none(), "a 404 starts no session");
    let res = reqwest::get(&site.url).await.unwrap();
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-cache, private");
    let res =
        reqwest::Client::new().post(format!("{}/api/list_uploads", site.url)).send().await.unwrap();
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn cross_site_requests_are_refused() {
    let site = site(&[]).await;
    let host = site.url.strip_prefix("http://").unwrap().to_string();
    let post = |origin: Option<&str>, fetch_site: Option<&str>| {
        let mut req = site.client.post(format!("{}/api/list_uploads", site.url));
        if let Some(origin) = origin {
            req = req.header(header::ORIGIN, origin);
        }
        if let Some(fetch_site) = fetch_site {
            req = req.header("sec-fetch-site", fetch_site);
        }
        req.send()
    };
    let evil = post(Some("https://evil.example"), None).await.unwrap();
    assert_eq!(evil.status(), 403);
    assert_eq!(evil.json::<app::error::AppError>().await.unwrap(), app::error::AppError::CrossSite);
    assert_eq!(post(Some("https://evil.example"), Some("cross-site")).await.unwrap().status(), 403);
    assert_eq!(post(None, Some("same-site")).await.unwrap().status(), 403);
    assert_eq!(
        post(Some(&format!("http://{host}")), Some("same-origin")).await.unwrap().status(),
        200
    );
    assert_eq!(post(Some(&format!("http://{host}")), None).await.unwrap().status(), 200);
    // A cross-site upload is refused before a byte is stored.
    let res = site
        .client
        .post(format!("{}/api/upload_file", site.url))
        .header(header::ORIGIN, "https://evil.example")
        .multipart(upload_form("5", "text/plain", "x.txt", b"hello".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(stored(&site), 0);
}

#[tokio::test]
async fn uploads_over_the_limit_get_413_and_nothing_is_stored() {
    let site = site(&["--max-file-bytes", "1000"]).await;
    let res = upload(&site, upload_form("2000", "text/plain", "big.txt", vec![b'a'; 2000])).await;
    assert_eq!(res.status(), 413);
    let error: app::error::AppError = res.json().await.unwrap();
    assert_eq!(
        error.to_string(),
        "“big.txt” is 2.0 KB — larger than this server accepts (1.0 KB)."
    );
    // Announcing less than is sent does not get more in: the spool stops at the announced size…
    let res = upload(&site, upload_form("900", "text/plain", "liar.txt", vec![b'a'; 5000])).await;
    assert_eq!(res.status(), 400);
    // …and a body past the endpoint's limit (the file limit plus 1 MiB of framing) is refused
    // whole.
    let res =
        upload(&site, upload_form("900", "text/plain", "liar.txt", vec![b'a'; 1_100_000])).await;
    assert_eq!(res.status(), 413);
    assert_eq!(stored(&site), 0, "nothing half-stored");
    let res = upload(&site, upload_form("1000", "text/plain", "fits.txt", vec![b'a'; 1000])).await;
    assert_eq!(res.status(), 200);
    // Other endpoints take at most 32 MiB.
    let huge = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "x".repeat(33 << 20)}]}]});
    let res = site.client.post(format!("{}/api/chat", site.url)).json(&huge).send().await.unwrap();
    assert_eq!(res.status(), 413);
}

#[tokio::test]
async fn a_file_whose_bytes_are_another_type_is_refused() {
    let site = site(&[]).await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".to_vec();
    let res = upload(
        &site,
        upload_form(&png.len().to_string(), "application/pdf", "invoice.pdf", png.clone()),
    )
    .await;
    assert_eq!(res.status(), 415);
    let error: app::error::AppError = res.json().await.unwrap();
    assert_eq!(
        error.to_string(),
        "“invoice.pdf” does not look like a application/pdf file (its content is image/png)."
    );
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0".to_vec();
    elf.resize(64, 0);
    let res =
        upload(&site, upload_form(&elf.len().to_string(), "image/jpeg", "cat.jpg", elf)).await;
    assert_eq!(res.status(), 415);
    assert_eq!(stored(&site), 0);
    // The same bytes under their own type go through; so does text without a signature.
    assert_eq!(
        upload(&site, upload_form(&png.len().to_string(), "image/png", "dot.png", png))
            .await
            .status(),
        200
    );
    assert_eq!(
        upload(&site, upload_form("5", "text/plain", "a.txt", b"hello".to_vec())).await.status(),
        200
    );
    // Names are shown, never used as paths.
    let form = reqwest::multipart::Form::new()
        .text("size", "4")
        .text("mime_type", "text/plain")
        .text("name", "../../x\u{0}\u{7}.txt\r\n")
        .part("file", reqwest::multipart::Part::bytes(b"evil".to_vec()).file_name("x.txt"));
    let res = upload(&site, form).await;
    let body = res.text().await.unwrap();
    let file: app::model::UploadedFile =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(file.display_name, "../../x.txt");
}

#[tokio::test]
async fn too_many_requests_get_429_with_the_wait() {
    let site = site(&["--rate-chat", "2/min", "--rate-upload", "1/h"]).await;
    let body = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let chat =
        |client: &reqwest::Client| client.post(format!("{}/api/chat", site.url)).json(&body).send();
    assert_eq!(chat(&site.client).await.unwrap().status(), 200);
    assert_eq!(chat(&site.client).await.unwrap().status(), 200);
    let refused = chat(&site.client).await.unwrap();
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    let error: app::error::AppError = refused.json().await.unwrap();
    assert_eq!(error, app::error::AppError::TooManyRequests { retry_after_secs: wait });
    assert!(error.to_string().starts_with("Too many requests from this browser; please wait"));
    // Another browser has its own allowance (its address allows four times as many).
    assert_eq!(chat(&crate::common::browser()).await.unwrap().status(), 200);

    assert_eq!(
        upload(&site, upload_form("5", "text/plain", "a.txt", b"hello".to_vec())).await.status(),
        200
    );
    let refused = upload(&site, upload_form("5", "text/plain", "b.txt", b"world".to_vec())).await;
    assert_eq!(refused.status(), 429, "refused before the body is read");
    assert_eq!(stored(&site), 1, "only the first upload's original");
}

/// Any multipart body — fields in any order, unknown fields, wrong sizes, bytes of any kind,
/// a body cut anywhere — gets a clear answer (200 or a 4xx with an `AppError`), never a 5xx,
/// and the server keeps serving. Cases: `PROPTEST_CASES` (256 by default).
#[test]
fn any_multipart_body_gets_a_clear_answer() {
    use proptest::{prelude::*, test_runner::TestRunner};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let site = runtime.block_on(site(&[
        "--rate-upload",
        "off",
        "--upload-bytes-per-hour",
        "0",
        "--max-file-bytes",
        "4096",
    ]));
    let field = (
        prop_oneof![Just("size"), Just("mime_type"), Just("name"), Just("file"), Just("other")],
        prop_oneof![
            "[0-9]{1,5}".prop_map(String::into_bytes),
            prop_oneof![
                Just("text/plain"),
                Just("image/png"),
                Just("application/pdf"),
                Just("application/zip")
            ]
            .prop_map(|m| m.as_bytes().to_vec()),
            proptest::collection::vec(any::<u8>(), 0..300),
        ],
    );
    // Found by this property: a NUL in `mime_type` reached an upstream header (502). Now 400.
    let nul = reqwest::multipart::Form::new()
        .text("mime_type", "\0")
        .text("size", "4")
        .text("file", "1016");
    let status = runtime.block_on(async {
        site.client
            .post(format!("{}/api/upload_file", site.url))
            .multipart(nul)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 400);
    let strategy = (proptest::collection::vec(field, 0..6), any::<Option<usize>>());
    let mut runner = TestRunner::new(proptest::test_runner::Config::default());
    runner
        .run(&strategy, |(fields, cut)| {
            let mut body = Vec::new();
            for (name, value) in &fields {
                body.extend_from_slice(format!("--BOUNDARY\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"f\"\r\n\r\n").as_bytes());
                body.extend_from_slice(value);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"--BOUNDARY--\r\n");
            if let Some(cut) = cut {
                body.truncate(cut % (body.len() + 1));
            }
            let status = runtime.block_on(async {
                site.client
                    .post(format!("{}/api/upload_file", site.url))
                    .header(header::CONTENT_TYPE, "multipart/form-data; boundary=BOUNDARY")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status()
            });
            prop_assert!(status.is_success() || status.is_client_error(), "{status} for {fields:?}");
            Ok(())
        })
        .unwrap();
    let page = runtime.block_on(async { reqwest::get(&site.url).await.unwrap().status() });
    assert_eq!(page, 200, "still serving");
    assert_eq!(
        std::fs::read_dir(site.data_dir.join("originals/staging")).map(|d| d.count()).unwrap_or(0),
        0,
        "no staging leftovers"
    );
}

/// With every slot towards Gemini taken, a request waits `--upstream-wait`, then gets 503 and
/// the busy sentence; once the slot is free the same request goes through.
#[tokio::test]
async fn a_full_server_answers_503_busy_and_recovers() {
    use gemini_emulator::{Fault, FaultKind, Route};
    let emulator = crate::common::emulator(std::time::Duration::from_secs(48 * 3600)).await;
    let site = crate::common::parley(
        &emulator,
        &["--upstream-concurrency", "1", "--upstream-wait", "300ms"],
    )
    .await;
    emulator.emulator.inject(Fault {
        route: Route::Generate,
        kind: FaultKind::Hang { hang_for: std::time::Duration::from_secs(2) },
        count: 1,
    });
    let body = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "hello"}]}]});
    let chat = || site.client.post(format!("{}/api/chat", site.url)).json(&body).send();
    let first = tokio::spawn(chat());
    while !emulator.emulator.request_log().iter().any(|r| r.path.contains("GenerateContent")) {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let waited = std::time::Instant::now();
    let busy = chat().await.unwrap();
    assert!(
        waited.elapsed() >= std::time::Duration::from_millis(300),
        "it waited for a slot first"
    );
    assert_eq!(busy.status(), 503);
    assert_eq!(busy.json::<app::error::AppError>().await.unwrap(), app::error::AppError::Busy);
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.text().await.unwrap().contains("hello"), "the held answer completes");
    let again = chat().await.unwrap();
    assert_eq!(again.status(), 200);
    assert!(again.text().await.unwrap().contains("hello"));
}

/// A path under `/api/` that is no server function is refused 404 before any other work, and
/// starts no session: nothing is ever served there without a limit.
#[tokio::test]
async fn an_unknown_server_function_is_not_found() {
    let site = site(&[]).await;
    for method in [reqwest::Method::POST, reqwest::Method::GET] {
        let res = reqwest::Client::new()
            .request(method, format!("{}/api/no_such_function", site.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        assert!(res.headers().get(header::SET_COOKIE).is_none());
        let error: app::error::AppError = res.json().await.unwrap();
        assert!(matches!(error, app::error::AppError::NotFound(_)), "{error:?}");
    }
}

/// A site built without precompressed variants (`cargo leptos build --release` alone) is not
/// sent uncompressed: a text or wasm file is compressed on its first request, as the browser
/// accepts; a precompressed variant, when there is one, is served as it is.
#[tokio::test]
async fn static_files_go_compressed_whether_or_not_they_were_built_so() {
    let root = tempfile::tempdir().unwrap();
    let pkg = root.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    let script = "export function hello() { return 'a page script'; }\n".repeat(200);
    std::fs::write(pkg.join("plain.js"), &script).unwrap();
    std::fs::write(pkg.join("built.js"), &script).unwrap();
    std::fs::write(pkg.join("built.js.br"), b"precompressed bytes").unwrap();
    let site = crate::common::site_serving(root.path()).await;
    let plain = reqwest::Client::new();
    let get = |name: &str, accept: &str| {
        plain.get(format!("{}/pkg/{name}", site.url)).header(header::ACCEPT_ENCODING, accept).send()
    };
    for _ in 0..2 {
        let res = get("plain.js", "gzip, deflate, br").await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()[header::CONTENT_ENCODING], "br");
        assert_eq!(res.headers()[header::VARY], "accept-encoding");
        assert!(res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
        let body = res.bytes().await.unwrap();
        assert!(body.len() < script.len() / 10, "{} bytes", body.len());
        let mut back = Vec::new();
        brotli::BrotliDecompress(&mut &body[..], &mut back).unwrap();
        assert_eq!(back, script.as_bytes());
    }
    let gz = get("plain.js", "gzip").await.unwrap();
    assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
    let none = get("plain.js", "identity").await.unwrap();
    assert!(none.headers().get(header::CONTENT_ENCODING).is_none());
    assert_eq!(none.bytes().await.unwrap(), script.as_bytes());
    let built = get("built.js", "br").await.unwrap();
    assert_eq!(built.headers()[header::CONTENT_ENCODING], "br");
    assert_eq!(built.bytes().await.unwrap(), &b"precompressed bytes"[..]);
    let outside = get("../Cargo.toml", "br").await.unwrap();
    assert_eq!(outside.status(), 404, "nothing outside the site root");
}
