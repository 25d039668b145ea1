//! Request framing and header-size checks (smuggling shapes). A request that passes has at
//! most one Transfer-Encoding, exactly `chunked`, only identical all-digit Content-Lengths,
//! and a bounded header section.
#![no_main]

use frontdoor::gateway::framing::{MAX_HEADER_BYTES, MAX_HEADER_COUNT, check};
use frontdoor_fuzz::headers;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let h = headers(data);
    let Ok(()) = check(&h) else {
        return;
    };
    assert!(h.len() <= MAX_HEADER_COUNT);
    let size: usize = h.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    assert!(size <= MAX_HEADER_BYTES);
    let te: Vec<_> = h.get_all(TRANSFER_ENCODING).iter().collect();
    assert!(te.len() <= 1);
    if let Some(v) = te.first() {
        assert!(v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked"));
    }
    let cl: Vec<_> = h.get_all(CONTENT_LENGTH).iter().collect();
    if let Some(first) = cl.first() {
        assert!(!first.is_empty() && first.as_bytes().iter().all(u8::is_ascii_digit));
        assert!(cl.iter().all(|v| v == first));
    }
});
