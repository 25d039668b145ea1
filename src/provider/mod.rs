//! The embedded OAuth 2.0 / OpenID Connect provider (the router of frontdoor's own endpoints calls it).

pub mod access;
pub mod authorize;
pub mod backchannel;
pub mod clients;
pub mod discovery;
pub mod introspect;
pub mod issue;
pub mod logout;
pub mod own_client;
pub mod scopes;
pub mod token;
pub mod userinfo;

/// Reads parameters, refusing any that appears twice (RFC 6749 §3.1).
pub fn unique_params(
    pairs: Vec<(String, String)>,
) -> Result<std::collections::HashMap<String, String>, String> {
    let mut map = std::collections::HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        if map.contains_key(&k) {
            return Err(format!("parameter `{k}` is repeated"));
        }
        map.insert(k, v);
    }
    Ok(map)
}
