//! The config loader: `${VAR}` expansion, YAML with unknown keys refused, validation, and the
//! route table built from it. A config that loads has only values the rest of frontdoor can
//! use without checking again.
#![no_main]

use frontdoor::config::Config;
use frontdoor::gateway::routes::RouteTable;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_yaml(text) else {
        return;
    };
    assert_ne!(config.listen.0.port(), 0, "a listen address has a port");
    let _ = config.admin_listen.0;
    // Typed at load: the public URL is an http(s) URL with a host, and the issuer is it.
    let public = config.public_url();
    assert!(matches!(public.scheme(), "http" | "https") && public.host().is_some());
    assert!(public.query().is_none() && public.fragment().is_none());
    assert!(public.as_str().starts_with(&config.issuer()));
    let _ = config.secure_cookies();
    assert!(config.threads >= 1);
    let routes = RouteTable::new(&config);
    // Every configured route makes it into the table: none is dropped silently.
    assert_eq!(routes.all().len(), config.routes.len());
    for r in &config.routes {
        assert!(!r.upstream.host.is_empty());
        assert!(r.path_prefix.starts_with('/'));
    }
    for r in routes.all() {
        assert!(routes.find(&r.host, &r.path_prefix).is_some() || r.host == "*");
        let _ = config.tenant_for_host(&r.host);
    }
});
