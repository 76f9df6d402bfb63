//! Randomness from the browser's Web Crypto (`crypto.getRandomValues`, available in every
//! context, secure or not: <https://developer.mozilla.org/en-US/docs/Web/API/Crypto/getRandomValues>).

/// `N` random bytes. Should Web Crypto be missing (it is not, in any browser Parley supports),
/// `Math.random` fills them instead, so that two ids never come out the same.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|crypto| crypto.get_random_values_with_u8_array(&mut out).is_ok());
    if !filled {
        for byte in &mut out {
            *byte = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    out
}
