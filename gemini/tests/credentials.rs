//! `credentials-before-network`: credentials precedence — explicit key > configured key >
//! `GEMINI_API_KEY` — and a missing key as a typed error before any network call. Alone in its test
//! binary because it changes the process environment.

use gemini::{ApiKey, Error};

#[test]
fn bc07_explicit_beats_config_beats_environment() {
    std::env::set_var("GEMINI_API_KEY", "from-env");
    assert_eq!(ApiKey::resolve(Some("explicit"), Some("configured")).unwrap().expose(), "explicit");
    assert_eq!(ApiKey::resolve(Some("  "), Some("configured")).unwrap().expose(), "configured");
    assert_eq!(ApiKey::resolve(None, None).unwrap().expose(), "from-env");
    std::env::remove_var("GEMINI_API_KEY");
    assert!(matches!(ApiKey::resolve(None, Some("")), Err(Error::MissingCredentials)));
}
