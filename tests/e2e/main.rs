//! Integration tests against the real `frontdoor` binary: one test binary for the whole suite
//! (each test file would otherwise link Pingora again).

mod credentials;
mod gateway;
mod harness;
mod mail;
mod oauth;
