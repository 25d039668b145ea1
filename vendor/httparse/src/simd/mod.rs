mod swar;

/// frontdoor patch (0010): the block scans step by a constant block while a block is all
/// valid. Whatever the length and wherever the first invalid byte lies (in the first block,
/// after several, in the tail the SWAR code finishes, or nowhere), `scan` must stop exactly where
/// a byte-by-byte scan with `table` stops, with invalid bytes after it changing nothing.
/// Lengths run to five blocks of `block` bytes and a few more.
///
/// # Safety
/// `scan` must be callable on this CPU (its target feature detected).
#[cfg(test)]
pub(crate) unsafe fn check_stops_at_the_first_invalid_byte(
    scan: unsafe fn(&mut crate::iter::Bytes<'_>),
    table: &[bool; 256],
    block: usize,
    name: &str,
) {
    for len in 0..(5 * block + 3) {
        for first_bad in 0..=len {
            for bad in [b'\0', b'\n', 0x7f] {
                let mut buf = vec![b'a'; len];
                if first_bad < len {
                    buf[first_bad] = bad;
                }
                if first_bad + 3 < len {
                    buf[first_bad + 3] = bad;
                }
                let expected = buf.iter().position(|&b| !table[b as usize]).unwrap_or(len);
                let mut bytes = crate::iter::Bytes::new(&buf);
                scan(&mut bytes);
                assert_eq!(
                    bytes.pos(), expected,
                    "{name}: {len} bytes, byte {bad:#x} at {first_bad}"
                );
            }
        }
    }
}

#[cfg(not(all(
    httparse_simd,
    any(
        target_arch = "x86",
        target_arch = "x86_64",
        all(
            target_arch = "aarch64",
            httparse_simd_neon_intrinsics,
        )
    ),
)))]
pub use self::swar::*;

#[cfg(all(
    httparse_simd,
    not(httparse_simd_target_feature_avx2),
    any(
        target_arch = "x86",
        target_arch = "x86_64",
    ),
))]
mod sse42;

#[cfg(all(
    httparse_simd,
    any(
        httparse_simd_target_feature_avx2,
        not(httparse_simd_target_feature_sse42),
    ),
    any(
        target_arch = "x86",
        target_arch = "x86_64",
    ),
))]
mod avx2;

#[cfg(all(
    httparse_simd,
    not(any(
        httparse_simd_target_feature_sse42,
        httparse_simd_target_feature_avx2,
    )),
    any(
        target_arch = "x86",
        target_arch = "x86_64",
    ),
))]
mod runtime;

#[cfg(all(
    httparse_simd,
    not(any(
        httparse_simd_target_feature_sse42,
        httparse_simd_target_feature_avx2,
    )),
    any(
        target_arch = "x86",
        target_arch = "x86_64",
    ),
))]
pub use self::runtime::*;

#[cfg(all(
    httparse_simd,
    httparse_simd_target_feature_sse42,
    not(httparse_simd_target_feature_avx2),
    any(
        target_arch = "x86",
        target_arch = "x86_64",
    ),
))]
mod sse42_compile_time {
    #[inline(always)]
    pub fn match_header_name_vectored(b: &mut crate::iter::Bytes<'_>) {
        super::swar::match_header_name_vectored(b);
    }

    #[inline(always)]
    pub fn match_uri_vectored(b: &mut crate::iter::Bytes<'_>) {
        // SAFETY: calls are guarded by a compile time feature check
        unsafe { crate::simd::sse42::match_uri_vectored(b) }
    }
    
    #[inline(always)]
    pub fn match_header_value_vectored(b: &mut crate::iter::Bytes<'_>) {
        // SAFETY: calls are guarded by a compile time feature check
        unsafe { crate::simd::sse42::match_header_value_vectored(b) }
    }
}

#[cfg(all(
    httparse_simd,
    httparse_simd_target_feature_sse42,
    not(httparse_simd_target_feature_avx2),
    any(
        target_arch = "x86",
        target_arch = "x86_64",
    ),
))]
pub use self::sse42_compile_time::*;

#[cfg(all(
    httparse_simd,
    httparse_simd_target_feature_avx2,
    any(
        target_arch = "x86",
        target_arch = "x86_64",
    ),
))]
mod avx2_compile_time {
    #[inline(always)]
    pub fn match_header_name_vectored(b: &mut crate::iter::Bytes<'_>) {
        super::swar::match_header_name_vectored(b);
    }

    #[inline(always)]
    pub fn match_uri_vectored(b: &mut crate::iter::Bytes<'_>) {
        // SAFETY: calls are guarded by a compile time feature check
        unsafe { crate::simd::avx2::match_uri_vectored(b) }
    }
    
    #[inline(always)]
    pub fn match_header_value_vectored(b: &mut crate::iter::Bytes<'_>) {
        // SAFETY: calls are guarded by a compile time feature check
        unsafe { crate::simd::avx2::match_header_value_vectored(b) }
    }
}

#[cfg(all(
    httparse_simd,
    httparse_simd_target_feature_avx2,
    any(
        target_arch = "x86",
        target_arch = "x86_64",
    ),
))]
pub use self::avx2_compile_time::*;

#[cfg(all(
    httparse_simd,
    target_arch = "aarch64",
    httparse_simd_neon_intrinsics,
))]
mod neon;

#[cfg(all(
    httparse_simd,
    target_arch = "aarch64",
    httparse_simd_neon_intrinsics,
))]
pub use self::neon::*;
