//! The scopes frontdoor offers.

/// Every scope frontdoor understands.
pub const SUPPORTED: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "groups",
    "roles",
    "offline_access",
];

/// What frontdoor's own gateway client asks for.
pub const OWN_CLIENT_SCOPE: &str = "openid profile email groups roles";

/// Splits a space-separated scope string, dropping empties and duplicates, keeping order.
pub fn parse(scope: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

/// Whether a space-separated scope string contains `scope`.
pub fn contains(scopes: &str, scope: &str) -> bool {
    scopes.split(' ').any(|s| s == scope)
}

/// Whether a scope is one frontdoor understands.
pub fn is_supported(scope: &str) -> bool {
    SUPPORTED.contains(&scope)
}
