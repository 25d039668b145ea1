//! The config loader: `${VAR}` expansion, YAML with unknown keys refused, validation, and the
//! route table built from it. A config that loads has only values the rest of frontdoor can
//! use without checking again.
#![no_main]

use frontdoor::config::{Config, parse_cidr, parse_upstream};
use frontdoor::gateway::routes::RouteTable;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_yaml(text) else {
        return;
    };
    assert!(config.listen.parse::<std::net::SocketAddr>().is_ok());
    assert!(config.admin_listen.parse::<std::net::SocketAddr>().is_ok());
    let public = url::Url::parse(&config.public_url).expect("validated public_url");
    assert!(matches!(public.scheme(), "http" | "https"));
    assert_eq!(config.public_url(), public);
    let _ = config.issuer();
    let _ = config.secure_cookies();
    assert!(
        config
            .trusted_proxies
            .iter()
            .all(|p| parse_cidr(p).is_some())
    );
    assert!(config.threads >= 1);
    let routes = RouteTable::new(&config);
    // Every configured route makes it into the table: none is dropped silently.
    assert_eq!(routes.all().len(), config.routes.len());
    for r in &config.routes {
        assert!(parse_upstream(&r.upstream).is_ok());
        assert!(r.path_prefix.starts_with('/'));
    }
    for r in routes.all() {
        assert!(routes.find(&r.host, &r.path_prefix).is_some() || r.host == "*");
        let _ = config.tenant_for_host(&r.host);
    }
});
