//! The process's global allocator: mimalloc, asked the way it is fastest.
//!
//! The `mimalloc` crate's `GlobalAlloc` passes every request to `mi_malloc_aligned`, with the
//! layout's alignment. mimalloc v3 serves that from its small-object fast path only when a
//! free block of the size happens to be at hand and aligned; otherwise (every request over
//! 1 KiB, and any other size whose block is not a power of two) it takes the generic aligned
//! path, which over-allocates by `alignment - 1` bytes: a 1,024-byte header table lands in the
//! 1,280-byte size class. Under callgrind that path was 3,800 of the 6,200 instructions the
//! bare Pingora proxy's allocations cost per request; with the dispatch below they cost 3,200.
//! (Known upstream: mimalloc_rust PR #170.)
//!
//! A request whose alignment is at most 16 and whose size is a multiple of it is already met
//! by a plain `mi_malloc`: on 64-bit targets mimalloc's size classes are multiples of 8 bytes,
//! and of 16 for every request of 16 bytes or more, and a page's first block is 16-aligned
//! (`MI_PAGE_MIN_START_BLOCK_ALIGN`). Those go to the plain calls; everything else keeps the
//! aligned ones. Rust's own layouts (a type's size is a multiple of its alignment) nearly
//! all take the plain path.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// mimalloc's `MI_MAX_ALIGN_SIZE` on the targets frontdoor builds for.
const PLAIN_ALIGN: usize = 16;

/// The allocator `main.rs` (and the benchmark's bare proxy) install with `#[global_allocator]`.
pub struct MiMalloc;

/// Whether a plain (unaligned) mimalloc call returns memory aligned for `size` and `align`.
#[inline]
const fn plain(size: usize, align: usize) -> bool {
    align <= PLAIN_ALIGN && size.is_multiple_of(align)
}

/// A fresh block for `layout` from `plain` (size) or `aligned` (size, alignment), by `plain`'s
/// rule above.
///
/// # Safety
/// As `GlobalAlloc::alloc`: `layout` has a non-zero size.
#[inline]
unsafe fn fresh(
    layout: Layout,
    plain_call: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned_call: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    // SAFETY: mimalloc's allocation functions accept any size and power-of-two alignment.
    unsafe {
        if plain(layout.size(), layout.align()) {
            plain_call(layout.size()).cast()
        } else {
            aligned_call(layout.size(), layout.align()).cast()
        }
    }
}

// SAFETY: every call forwards to mimalloc, whose blocks are valid until `mi_free`; the plain
// calls are used only where their alignment guarantee covers the layout (see `plain`).
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `fresh`'s.
        unsafe { fresh(layout, mi::mi_malloc, mi::mi_malloc_aligned) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `fresh`'s.
        unsafe { fresh(layout, mi::mi_zalloc, mi::mi_zalloc_aligned) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the trait's contract); `mi_free` takes
        // plain and aligned blocks alike.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`; the new block keeps its
        // alignment by the same rule as `alloc`, for the new size.
        unsafe {
            if plain(new_size, layout.align()) {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes around mimalloc's size classes and its small/large boundary (1 KiB), and the
    /// alignments Rust types ask for, up to a page.
    const SIZES: [usize; 16] = [
        1,
        7,
        8,
        16,
        24,
        40,
        48,
        100,
        1000,
        1024,
        1031,
        1536,
        4096,
        10_000,
        70_000,
        1 << 21,
    ];
    const ALIGNS: [usize; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 4096];

    /// Every pair of the above.
    fn layouts() -> impl Iterator<Item = Layout> {
        SIZES.into_iter().flat_map(|size| {
            ALIGNS
                .into_iter()
                .filter_map(move |align| Layout::from_size_align(size, align).ok())
        })
    }

    #[test]
    fn every_block_has_its_alignment_and_keeps_its_bytes() {
        let a = MiMalloc;
        for layout in layouts() {
            let (size, align) = (layout.size(), layout.align());
            // Several at once, so that blocks come from inside pages, not only their start.
            let blocks: Vec<*mut u8> = (0..8)
                .map(|i| {
                    // SAFETY: a non-zero size; the block is written within its size only.
                    unsafe {
                        let p = a.alloc(layout);
                        assert!(!p.is_null(), "{size} bytes, aligned {align}");
                        assert_eq!(p as usize % align, 0, "{size} bytes, aligned {align}");
                        p.write_bytes(i as u8, size);
                        p
                    }
                })
                .collect();
            for (i, p) in blocks.into_iter().enumerate() {
                // SAFETY: `p` holds `size` bytes written above and is freed once.
                unsafe {
                    assert_eq!(*p, i as u8);
                    assert_eq!(*p.add(size - 1), i as u8);
                    a.dealloc(p, layout);
                }
            }
        }
    }

    #[test]
    fn zeroed_blocks_are_zero_and_aligned() {
        let a = MiMalloc;
        for layout in layouts() {
            let (size, align) = (layout.size(), layout.align());
            // Dirty a block of the same class first, so a reused block must be cleared.
            // SAFETY: as above; the zeroed block is read within its size.
            unsafe {
                let dirty = a.alloc(layout);
                dirty.write_bytes(0xa5, size);
                a.dealloc(dirty, layout);
                let p = a.alloc_zeroed(layout);
                assert_eq!(p as usize % align, 0, "{size} bytes, aligned {align}");
                let bytes = std::slice::from_raw_parts(p, size);
                assert!(
                    bytes.iter().all(|&b| b == 0),
                    "{size} bytes, aligned {align}"
                );
                a.dealloc(p, layout);
            }
        }
    }

    #[test]
    fn realloc_keeps_contents_and_alignment_growing_and_shrinking() {
        let a = MiMalloc;
        for align in ALIGNS {
            for (from, to) in [(16, 24), (24, 4096), (1024, 1031), (4096, 16), (70_000, 48)] {
                let Ok(layout) = Layout::from_size_align(from, align) else {
                    continue;
                };
                // SAFETY: the block is written within `from` bytes and read within the smaller
                // of both sizes after the move; it is freed once, with its new layout.
                unsafe {
                    let p = a.alloc(layout);
                    for i in 0..from {
                        p.add(i).write((i % 251) as u8);
                    }
                    let q = a.realloc(p, layout, to);
                    assert!(!q.is_null());
                    assert_eq!(q as usize % align, 0, "{from} -> {to}, aligned {align}");
                    for i in 0..from.min(to) {
                        assert_eq!(
                            *q.add(i),
                            (i % 251) as u8,
                            "{from} -> {to}, aligned {align}"
                        );
                    }
                    a.dealloc(q, Layout::from_size_align_unchecked(to, align));
                }
            }
        }
    }

    #[test]
    fn the_plain_path_is_taken_only_where_it_is_aligned() {
        assert!(plain(24, 8));
        assert!(plain(48, 16));
        assert!(plain(1031, 1));
        // A size that is not a multiple of the alignment may land in an 8-byte-grained class.
        assert!(!plain(24, 16));
        assert!(!plain(64, 32));
        assert!(!plain(4096, 4096));
    }
}
