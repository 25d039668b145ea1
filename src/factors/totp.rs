//! TOTP (RFC 6238): SHA-1, 6 digits, 30-second steps, one step of clock skew either way — what
//! every authenticator app reads from an `otpauth://` URI. The maths is totp-rs's; which step a
//! code is good for (once) is the store's to remember (`Store::accept_totp_step`).

use qrcode::QrCode;
use qrcode::render::svg;
use rand::RngCore;
use totp_rs::{Algorithm, Builder, Secret};

/// Bytes of a new secret: 160 bits, as RFC 4226 §4 recommends.
pub const SECRET_LEN: usize = 20;
/// Seconds per step.
pub const STEP: u64 = 30;
/// Digits of a code.
pub const DIGITS: u8 = 6;

/// A new random secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_LEN];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

/// The secret as people type it into an app: RFC 4648 base32 without padding.
pub fn base32(secret: &[u8]) -> String {
    Secret::new(secret.into()).to_base32()
}

/// The `otpauth://totp/` URI an authenticator app reads from the QR code.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    // Key URI format: the label is `issuer:account`, each part percent-encoded.
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer)
    )
}

/// The QR code of `uri` as an inline `<svg>` element, drawn on the server (no script, no
/// third party sees the secret); `None` if the text does not fit a QR code.
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = QrCode::new(uri.as_bytes()).ok()?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(220, 220)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // The renderer writes a standalone document; inline HTML takes the element alone.
    image.find("<svg").map(|at| image[at..].to_string())
}

/// The time step a code is right for at unix time `now` (±1 step), if any. A code of another
/// shape (not six digits) is simply not right.
pub fn matched_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let now = u64::try_from(now).ok()?;
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(1)
        .with_step_duration(STEP)
        .with_secret(secret.to_vec())
        .build()
        .ok()?;
    totp.check(code, now)
        .and_then(|step| i64::try_from(step).ok())
}

/// Whether `code` has the shape of a TOTP code (so that it is not taken for a recovery code).
pub fn looks_like_code(code: &str) -> bool {
    code.len() == usize::from(DIGITS) && code.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B's SHA-1 vectors (8 digits there; the last 6 are ours).
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(matched_step(secret, code, time), Some(time / 30), "{time}");
        }
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        let secret = b"12345678901234567890";
        // 287082 is the code of step 1 (t = 30..59).
        assert_eq!(matched_step(secret, "287082", 89), Some(1));
        assert_eq!(matched_step(secret, "287082", 0), Some(1));
        assert_eq!(matched_step(secret, "287082", 90), None);
        assert_eq!(matched_step(secret, "287083", 59), None);
        assert_eq!(matched_step(secret, "28708", 59), None);
        assert_eq!(matched_step(secret, "2870822", 59), None);
        assert_eq!(matched_step(secret, "287082", -1), None);
    }

    #[test]
    fn uri_and_qr_code() {
        let uri = otpauth_uri("Acme SSO", "ann@example.com", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/Acme%20SSO:ann%40example%2Ecom?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20SSO&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri).expect("a QR code");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert_eq!(new_secret().len(), SECRET_LEN);
        assert!(looks_like_code("012345"));
        assert!(!looks_like_code("01234a"));
    }
}
