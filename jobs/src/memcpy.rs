//! Copying into staging memory: memory the CPU writes once and never reads.
//!
//! A plain `memcpy` first reads every destination cache line it writes
//! (read-for-ownership), and glibc switches to non-temporal stores only above a
//! threshold of several MiB, so staging pieces of kilobytes to a few MiB cost
//! three memory transfers per byte: read the source, read the destination,
//! write it. Streaming (non-temporal) stores write around the cache: two
//! transfers, and no pollution of the caches the rest of the frame uses. On a
//! GPU's write-combined host memory they are the natural way to write.

/// Copies `src` to `dst`, with streaming stores where the CPU has them (x86_64:
/// SSE2, always present) for copies of at least [`STREAM_THRESHOLD`] bytes.
/// The stores are fenced before returning, so they are ordered before any later
/// store of this thread (such as marking the job done).
///
/// # Safety
/// `dst` must be valid for writes of `src.len()` bytes and must not overlap `src`.
pub unsafe fn copy_streaming(dst: *mut u8, src: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        if src.len() >= STREAM_THRESHOLD {
            // SAFETY: the caller's promise covers every byte written.
            unsafe { x86::copy_nt(dst, src) };
            return;
        }
    }
    // SAFETY: as above.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
}

/// Below this many bytes a plain copy is as fast and keeps the code simple.
pub const STREAM_THRESHOLD: usize = 1024;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_sfence, _mm_stream_si128};

    /// # Safety
    /// As [`super::copy_streaming`].
    pub(super) unsafe fn copy_nt(dst: *mut u8, src: &[u8]) {
        let len = src.len();
        let s = src.as_ptr();
        // Plain copy up to the first 16-byte aligned destination address.
        let head = (dst.align_offset(16)).min(len);
        // SAFETY: within the caller's `len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(s, dst, head) };
        let mut i = head;
        // 64 bytes (a cache line) per iteration: unaligned loads, aligned streaming stores.
        while i + 64 <= len {
            // SAFETY: `dst + i` is 16-byte aligned and `i + 64 <= len`; SSE2 is
            // part of the x86_64 baseline.
            unsafe {
                let a = _mm_loadu_si128(s.add(i) as *const __m128i);
                let b = _mm_loadu_si128(s.add(i + 16) as *const __m128i);
                let c = _mm_loadu_si128(s.add(i + 32) as *const __m128i);
                let d = _mm_loadu_si128(s.add(i + 48) as *const __m128i);
                _mm_stream_si128(dst.add(i) as *mut __m128i, a);
                _mm_stream_si128(dst.add(i + 16) as *mut __m128i, b);
                _mm_stream_si128(dst.add(i + 32) as *mut __m128i, c);
                _mm_stream_si128(dst.add(i + 48) as *mut __m128i, d);
            }
            i += 64;
        }
        while i + 16 <= len {
            // SAFETY: as above, one 16-byte store.
            unsafe {
                let a = _mm_loadu_si128(s.add(i) as *const __m128i);
                _mm_stream_si128(dst.add(i) as *mut __m128i, a);
            }
            i += 16;
        }
        // SAFETY: the tail, within `len`; then order the streaming stores.
        unsafe {
            std::ptr::copy_nonoverlapping(s.add(i), dst.add(i), len - i);
            _mm_sfence();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_copy_matches_a_plain_copy_for_every_alignment_and_length() {
        let src: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect();
        let mut dst = vec![0u8; 5200];
        for dst_off in 0..20 {
            for src_off in [0, 1, 7, 16] {
                for len in [0, 1, 15, 16, 63, 64, 65, 1023, 1024, 1025, 1100, 4000] {
                    dst.fill(0xAA);
                    // SAFETY: dst has room for dst_off + len bytes; no overlap.
                    unsafe {
                        copy_streaming(dst.as_mut_ptr().add(dst_off), &src[src_off..src_off + len])
                    };
                    assert_eq!(
                        &dst[dst_off..dst_off + len],
                        &src[src_off..src_off + len],
                        "dst+{dst_off} src+{src_off} len {len}"
                    );
                    assert!(
                        dst[..dst_off].iter().all(|&b| b == 0xAA),
                        "wrote before the start"
                    );
                    assert!(
                        dst[dst_off + len..].iter().all(|&b| b == 0xAA),
                        "wrote past the end"
                    );
                }
            }
        }
    }
}
