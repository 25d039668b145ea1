//! Integration tests against the real `frontdoor` binary: one test binary for the whole suite
//! (each test file would otherwise link Pingora again).

mod account;
mod assertion;
mod attacks;
mod attacks_gateway;
mod attacks_provider;
mod audiences;
mod backchannel_logout;
mod chromium;
mod cluster;
mod cluster_notify;
mod config;
mod credentials;
mod federation;
mod federation_hostile;
mod forward_auth;
mod gateway;
mod harness;
mod hosts;
mod idp;
mod key_rotation;
mod mail;
mod manage_api;
mod oauth;
mod pages;
mod passkeys;
mod proxying;
mod regulation;
mod reload;
mod resilience;
mod rules;
mod scripted_idp;
mod takeover;
mod tls;
mod two_factor;
mod upstream_options;
