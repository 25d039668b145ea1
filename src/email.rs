//! The one canonical form of an email address, used wherever an address enters frontdoor
//! (upstream providers' claims, the CLI, the JSON API, the sign-in pages) and wherever one is
//! stored or compared.
//!
//! The rule, chosen so that two addresses are the same account exactly when their canonical
//! forms are equal, and so that an address is safe to put in a header:
//! - exactly one `@`; at most 254 bytes in all, 1–64 in the local part;
//! - the local part is a dot-atom of printable ASCII (RFC 5322 `atext` and single inner dots):
//!   no whitespace, control characters, quotes, commas or other specials, and no non-ASCII
//!   letters, so that no Unicode case folding or normalisation can ever make two addresses
//!   meet (KELVIN SIGN `U+212A` is refused, never read as `k`). It is ASCII-lowercased: mail
//!   systems treat `Alice` and `alice` alike, and frontdoor always has;
//! - the domain is an ASCII host name (letters, digits, hyphens; labels of 1–63 bytes, no
//!   leading or trailing hyphen, no trailing dot), lowercased. An internationalised domain is
//!   accepted only in its ASCII (`xn--`) form, and only when that form is valid IDNA; a
//!   Unicode domain is refused rather than converted, so one mailbox has one spelling;
//! - nothing is trimmed or dropped: an address that is not already in this form (apart from
//!   ASCII case) is refused, never repaired into a match. Only what a person typed ([`typed`]:
//!   sign-in pages, the sign-in API, CLI arguments) loses surrounding spaces first, as people
//!   expect of a form field; a provider's claim never does.

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

/// The longest address (RFC 5321 §4.5.3.1.3, a path of 256 less the angle brackets).
pub const MAX_LEN: usize = 254;
/// The longest local part (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_LEN: usize = 64;

/// Why an address is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Nothing given.
    #[error("the email address is empty")]
    Empty,
    /// Longer than 254 bytes, or a local part longer than 64.
    #[error("the email address is too long")]
    TooLong,
    /// No `@`, or more than one.
    #[error("an email address has exactly one @")]
    At,
    /// Whitespace, a control character or a non-ASCII character.
    #[error("the email address contains whitespace, control or non-ASCII characters")]
    Character,
    /// The part before the `@` is not a plain dot-atom.
    #[error("the part before the @ is not a plain address")]
    Local,
    /// The part after the `@` is not a valid ASCII domain name.
    #[error("the part after the @ is not a valid domain name")]
    Domain,
}

/// The canonical form of `raw`, taken exactly as given (claims from upstream providers, API
/// fields): refused when anything would have to be trimmed or repaired.
pub fn canonical(raw: &str) -> Result<String, EmailError> {
    if raw.is_empty() {
        return Err(EmailError::Empty);
    }
    if raw.len() > MAX_LEN {
        return Err(EmailError::TooLong);
    }
    // Anything outside printable ASCII (control characters, spaces, tabs, NUL, every
    // non-ASCII character) is refused before anything else looks at the address.
    if !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(EmailError::Character);
    }
    let mut parts = raw.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(EmailError::At);
    };
    if local.len() > MAX_LOCAL_LEN {
        return Err(EmailError::TooLong);
    }
    if !local_ok(local) {
        return Err(EmailError::Local);
    }
    let domain = domain_canonical(domain).ok_or(EmailError::Domain)?;
    Ok(format!("{}@{domain}", local.to_ascii_lowercase()))
}

/// The canonical form of what a person typed into a form field (sign-in pages, CLI flags, the
/// sign-in API): surrounding spaces and tabs are dropped, as a form is expected to; the rest
/// must be canonical as [`canonical`] says.
pub fn typed(raw: &str) -> Result<String, EmailError> {
    canonical(raw.trim_matches([' ', '\t', '\r', '\n']))
}

/// The domain part of a canonical address.
pub fn domain_of(canonical: &str) -> &str {
    canonical.rsplit_once('@').map_or("", |(_, d)| d)
}

/// RFC 5322 `dot-atom-text`: `atext` runs separated by single dots.
fn local_ok(local: &str) -> bool {
    const SPECIALS: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
    !local.is_empty()
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || SPECIALS.contains(&b))
        })
}

/// The lowercased domain when it is a valid ASCII host name whose IDNA form is itself.
fn domain_canonical(domain: &str) -> Option<String> {
    let lower = domain.to_ascii_lowercase();
    let labels_ok = !lower.is_empty()
        && lower.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !labels_ok {
        return None;
    }
    // `xn--` labels must be valid Punycode of a valid IDNA label, and the whole name must map
    // to itself: what UTS 46 would change (or refuse) is not canonical.
    let mapped = Uts46::new()
        .to_ascii(
            lower.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Verify,
        )
        .ok()?;
    (mapped == lower).then_some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_are_lowercased_in_ascii_only() {
        assert_eq!(
            canonical("Alice.Liddell+wiki@Example.COM").as_deref(),
            Ok("alice.liddell+wiki@example.com")
        );
        assert_eq!(
            canonical("o'hara@ex-ample.co.uk").as_deref(),
            Ok("o'hara@ex-ample.co.uk")
        );
        assert_eq!(canonical("root@localhost").as_deref(), Ok("root@localhost"));
        // A valid Punycode domain (bücher.example) is kept as it is.
        assert_eq!(
            canonical("a@xn--bcher-kva.example").as_deref(),
            Ok("a@xn--bcher-kva.example")
        );
    }

    #[test]
    fn control_characters_whitespace_and_unicode_are_refused_not_trimmed() {
        for bad in [
            "admin@example.com\u{0}",
            "admin@example.com\t",
            " admin@example.com",
            "admin@example.com\r\nX-Evil: 1",
            "ad min@example.com",
            "fran\u{212a}@example.com",
            "frank@ex\u{212a}ample.com",
            "admin@b\u{fc}cher.example",
            "admin\u{200b}@example.com",
        ] {
            assert!(canonical(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn exactly_one_at_and_plain_parts() {
        for bad in [
            "admin@example.com@corp.example",
            "admin.example.com",
            "@example.com",
            "admin@",
            "\"admin\"@example.com",
            "a,b@example.com",
            ".a@example.com",
            "a..b@example.com",
            "a@example.com.",
            "a@-example.com",
            "a@exa_mple.com",
            "a@[127.0.0.1]",
            "a@xn--zz.example",
        ] {
            assert!(canonical(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn lengths_are_bounded() {
        let local = "a".repeat(64);
        assert!(canonical(&format!("{local}@example.com")).is_ok());
        assert_eq!(
            canonical(&format!("{local}a@example.com")),
            Err(EmailError::TooLong)
        );
        let label = "b".repeat(63);
        let long = format!("a@{label}.{label}.{label}.{label}.com");
        assert!(long.len() > MAX_LEN);
        assert_eq!(canonical(&long), Err(EmailError::TooLong));
        assert_eq!(canonical(""), Err(EmailError::Empty));
    }

    #[test]
    fn typed_input_loses_surrounding_spaces_only() {
        assert_eq!(
            typed("  Bob@Example.com\t").as_deref(),
            Ok("bob@example.com")
        );
        assert!(typed("bob@example.com\u{0}").is_err());
        assert!(typed("bob @example.com").is_err());
        assert_eq!(domain_of("bob@example.com"), "example.com");
    }
}
