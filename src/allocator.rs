//! The process's allocator: mimalloc, entered by its plain functions
//! whenever the alignment asked for is one every mimalloc block already
//! has, and by its aligned ones only otherwise.
//!
//! The `mimalloc` crate's allocator calls `mi_malloc_aligned` for every
//! allocation, which checks the alignment, looks for a free block that
//! happens to be aligned and falls back to a slower generic path for any
//! block over 1 KB. Almost every Rust allocation asks for 8 or 16 bytes,
//! which every mimalloc block of that size already has: mimalloc aligns
//! blocks of 16 bytes or more to 16 (`MI_MAX_ALIGN_SIZE`) and smaller
//! ones to 8. Rust's own `System` allocator makes the same choice between
//! `malloc` and `aligned_alloc`.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

// Links the mimalloc library this module calls.
use mimalloc as _;

/// The alignment of every mimalloc block of at least this many bytes, and
/// the largest one `mi_malloc` promises (`MI_MAX_ALIGN_SIZE`).
const PLAIN_ALIGNMENT: usize = 16;

extern "C" {
    fn mi_malloc(size: usize) -> *mut c_void;
    fn mi_zalloc(size: usize) -> *mut c_void;
    fn mi_realloc(block: *mut c_void, new_size: usize) -> *mut c_void;
    fn mi_malloc_aligned(size: usize, alignment: usize) -> *mut c_void;
    fn mi_zalloc_aligned(size: usize, alignment: usize) -> *mut c_void;
    fn mi_realloc_aligned(block: *mut c_void, new_size: usize, alignment: usize) -> *mut c_void;
    fn mi_free(block: *mut c_void);
}

/// mimalloc, by its plain entry points where they suffice (see the module).
pub struct Allocator;

/// Whether a block of `size` bytes from the plain entry points is aligned
/// to `alignment`: mimalloc's blocks under 16 bytes are 8-aligned, and a
/// Rust layout's size is a multiple of its alignment, so `alignment <=
/// size` keeps a small block's alignment within what it has.
const fn plain_suffices(size: usize, alignment: usize) -> bool {
    alignment <= PLAIN_ALIGNMENT && alignment <= size
}

// SAFETY: every block comes from mimalloc and goes back to it (`mi_free`
// takes blocks from every entry point above); the plain entry points are
// used only where their blocks have the layout's alignment
// (`plain_suffices`), the aligned ones everywhere else.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if plain_suffices(layout.size(), layout.align()) {
            mi_malloc(layout.size()).cast()
        } else {
            mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if plain_suffices(layout.size(), layout.align()) {
            mi_zalloc(layout.size()).cast()
        } else {
            mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn dealloc(&self, block: *mut u8, _layout: Layout) {
        mi_free(block.cast());
    }

    #[inline]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if plain_suffices(new_size, layout.align()) {
            mi_realloc(block.cast(), new_size).cast()
        } else {
            mi_realloc_aligned(block.cast(), new_size, layout.align()).cast()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size class mimalloc has up to a few pages, each alignment a
    /// Rust type can ask for up to a page: the block has the alignment,
    /// holds what was written, keeps it when grown and shrunk, and a
    /// zeroed one is zero.
    #[test]
    fn every_block_has_its_layouts_alignment_through_alloc_zeroing_and_realloc() {
        let sizes = (1..=256).chain((257..=20_000).step_by(37)).chain([65_536, 1 << 20]);
        for size in sizes {
            for alignment in [1, 2, 4, 8, 16, 32, 64, 4096] {
                let Ok(layout) = Layout::from_size_align(size, alignment) else { continue };
                // SAFETY: a non-zero size; each block is written within its
                // size and freed once, with the layout it was made with.
                unsafe {
                    let block = Allocator.alloc(layout);
                    assert!(!block.is_null());
                    assert_eq!(block as usize % alignment, 0, "size {size}, alignment {alignment}");
                    block.write_bytes(0xA5, size);
                    let grown = Allocator.realloc(block, layout, size * 3);
                    assert_eq!(grown as usize % alignment, 0, "grown {size}, alignment {alignment}");
                    assert!((0..size).all(|at| *grown.add(at) == 0xA5));
                    let shrunk_size = size.div_ceil(2);
                    let shrunk =
                        Allocator.realloc(grown, Layout::from_size_align(size * 3, alignment).unwrap(), shrunk_size);
                    assert_eq!(shrunk as usize % alignment, 0, "shrunk {size}, alignment {alignment}");
                    assert!((0..shrunk_size).all(|at| *shrunk.add(at) == 0xA5));
                    Allocator.dealloc(shrunk, Layout::from_size_align(shrunk_size, alignment).unwrap());

                    let zeroed = Allocator.alloc_zeroed(layout);
                    assert_eq!(zeroed as usize % alignment, 0, "zeroed {size}, alignment {alignment}");
                    assert!((0..size).all(|at| *zeroed.add(at) == 0));
                    Allocator.dealloc(zeroed, layout);
                }
            }
        }
    }

    #[test]
    fn the_plain_entry_points_serve_only_what_their_blocks_are_aligned_for() {
        assert!(plain_suffices(8, 8));
        assert!(plain_suffices(24, 8));
        assert!(plain_suffices(16, 16));
        assert!(plain_suffices(48, 16));
        // An 8-byte block is only 8-aligned.
        assert!(!plain_suffices(8, 16));
        assert!(!plain_suffices(64, 32));
        assert!(!plain_suffices(4096, 4096));
    }
}
