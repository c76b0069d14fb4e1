//! The signature on every webhook request, as Stripe signs its webhooks: the header
//! `Vigil-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed with the
//! sink's secret. A receiver recomputes the HMAC over the timestamp and the raw body it got,
//! compares in constant time, and refuses a timestamp outside its replay window, so a captured
//! request cannot be sent again later. `v1` may appear more than once (during a secret
//! rotation); any match verifies.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The request header that carries the signature.
pub const HEADER: &str = "Vigil-Signature";

/// The header value for `body` sent at `unix_seconds`.
pub fn sign(secret: &[u8], unix_seconds: i64, body: &[u8]) -> String {
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(mac(secret, unix_seconds, body))
    )
}

fn mac(secret: &[u8], unix_seconds: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Why a request does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the {HEADER} header is not `t=<unix seconds>,v1=<hex>`: {0}")]
    Malformed(String),
    #[error("no v1 signature matches the body: wrong secret, or a body changed on the way")]
    Mismatch,
    #[error("signed at t={signed}, {age_s} s from now: outside the {window_s} s replay window")]
    Stale {
        signed: i64,
        age_s: i64,
        window_s: i64,
    },
}

/// Checks `header` against `body` under `secret`, and that it was signed within `window_s`
/// seconds of `now_unix` (either way; `None` skips that check). Returns the signing time.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_unix: i64,
    window_s: Option<i64>,
) -> Result<i64, VerifyError> {
    let mut signed = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => {
                let t = t
                    .parse::<i64>()
                    .map_err(|_| VerifyError::Malformed(format!("t=`{t}` is not a number")))?;
                signed = Some(t);
            }
            Some(("v1", hex)) => {
                let bytes = hex::decode(hex)
                    .map_err(|_| VerifyError::Malformed(format!("v1=`{hex}` is not hex")))?;
                candidates.push(bytes);
            }
            // Other schemes (a later v2) are not this verifier's to judge.
            Some(_) => {}
            None => return Err(VerifyError::Malformed(format!("`{part}` is not key=value"))),
        }
    }
    let signed = signed.ok_or_else(|| VerifyError::Malformed("no t=".into()))?;
    if candidates.is_empty() {
        return Err(VerifyError::Malformed("no v1=".into()));
    }
    let matches = candidates.iter().any(|candidate| {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(signed.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        // Constant-time comparison.
        mac.verify_slice(candidate).is_ok()
    });
    if !matches {
        return Err(VerifyError::Mismatch);
    }
    if let Some(window_s) = window_s {
        let age_s = now_unix - signed;
        if age_s.abs() > window_s {
            return Err(VerifyError::Stale {
                signed,
                age_s,
                window_s,
            });
        }
    }
    Ok(signed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_within_the_window_and_nothing_else_does() {
        let body = br#"{"decisions":[]}"#;
        let header = sign(b"s3cret", 1_780_000_000, body);
        assert!(header.starts_with("t=1780000000,v1="));
        assert_eq!(
            verify(b"s3cret", &header, body, 1_780_000_100, Some(300)),
            Ok(1_780_000_000)
        );
        assert_eq!(
            verify(b"other", &header, body, 1_780_000_000, Some(300)),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(
                b"s3cret",
                &header,
                b"{\"decisions\":[1]}",
                1_780_000_000,
                None
            ),
            Err(VerifyError::Mismatch)
        );
        assert!(matches!(
            verify(b"s3cret", &header, body, 1_780_000_301, Some(300)),
            Err(VerifyError::Stale { age_s: 301, .. })
        ));
        // A rotated secret: either signature verifies.
        let rotated = format!("{header},v1={}", &sign(b"new", 1_780_000_000, body)[16..]);
        assert!(verify(b"new", &rotated, body, 1_780_000_000, Some(300)).is_ok());
        assert!(matches!(
            verify(b"s3cret", "v1=zz", body, 0, None),
            Err(VerifyError::Malformed(_))
        ));
    }

    #[test]
    fn the_scheme_matches_a_known_vector() {
        // HMAC-SHA256("key", "1.body"), as Python's hmac module computes it.
        assert_eq!(
            sign(b"key", 1, b"body"),
            "t=1,v1=91b5374b153842ad05b2c4eab9349b8321b14703165bd3fb8b034dfb8be98ae5"
        );
    }
}
