//! [`WriteQueue`]: the buffer writes queued between two `end_frame`s, their
//! bytes in one arena reused frame after frame (no allocation once warm).

use std::collections::HashMap;
use std::ops::Range;

use crate::pool::PoolHandle;

/// One queued write.
pub(super) struct BufferWrite {
    pub(super) handle: PoolHandle,
    pub(super) offset: u64,
    /// Its bytes in [`WriteQueue::bytes`].
    pub(super) bytes: Range<usize>,
    /// The frame's previous write to the same allocation.
    prev_same: Option<u32>,
}

/// A frame's buffer writes: their bytes in one arena, reused frame after
/// frame (no allocation once warm).
#[derive(Default)]
pub(super) struct WriteQueue {
    pub(super) writes: Vec<BufferWrite>,
    pub(super) bytes: Vec<u8>,
    /// Per allocation, its newest write of the frame (an index in `writes`).
    last: HashMap<PoolHandle, u32>,
}

impl WriteQueue {
    /// Queues `data` at `offset` of `handle`. Writes of one frame reach the
    /// GPU in no set order (small ones are scattered by a compute dispatch):
    /// where this write overlaps an earlier one of the frame, its bytes also
    /// go into the earlier one, so that whichever lands last, the newest
    /// bytes are there.
    pub(super) fn push(&mut self, handle: PoolHandle, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        let mut prev = self.last.get(&handle).copied();
        while let Some(i) = prev {
            let e = &self.writes[i as usize];
            let e_end = e.offset + e.bytes.len() as u64;
            let (lo, hi) = (e.offset.max(offset), e_end.min(end));
            if lo < hi {
                let dst = e.bytes.start + (lo - e.offset) as usize;
                let src = (lo - offset) as usize..(hi - offset) as usize;
                self.bytes[dst..dst + src.len()].copy_from_slice(&data[src]);
            }
            prev = e.prev_same;
        }
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        let index = self.writes.len() as u32;
        self.writes.push(BufferWrite {
            handle,
            offset,
            bytes: start..self.bytes.len(),
            prev_same: self.last.insert(handle, index),
        });
    }

    /// Puts `older`'s writes (a frame that never reached the GPU) ahead of
    /// this queue's: where they overlap, this queue's bytes win.
    pub(super) fn requeue_before(&mut self, older: &WriteQueue) {
        let newer = std::mem::take(self);
        for queue in [older, &newer] {
            for w in &queue.writes {
                self.push(w.handle, w.offset, &queue.bytes[w.bytes.clone()]);
            }
        }
    }

    /// Empties the queue, keeping its capacity.
    pub(super) fn clear(&mut self) {
        self.writes.clear();
        self.bytes.clear();
        self.last.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use forgeflow_test_support::SplitMix64;

    /// Whatever order the GPU applies a frame's writes in, the buffer ends
    /// with the newest bytes: every queued write agrees, over its range,
    /// with the last writes (the GPU test cannot show this on lavapipe,
    /// which happens to apply them in order).
    #[test]
    fn every_queued_write_holds_the_newest_bytes_of_its_range() {
        let mut rng = SplitMix64::new(3);
        let handles: Vec<PoolHandle> = {
            let mut keys = slotmap::SlotMap::<PoolHandle, ()>::with_key();
            (0..3).map(|_| keys.insert(())).collect()
        };
        let mut q = WriteQueue::default();
        for round in 0..20 {
            let mut shadow = vec![vec![0u8; 4096]; handles.len()];
            for _ in 0..40 {
                let h = rng.below(handles.len() as u64) as usize;
                let a = 4 * rng.below(1000) as usize;
                let b = (a + 4 * (1 + rng.below(200)) as usize).min(4096);
                let data: Vec<u8> = (a..b).map(|_| rng.next_u64() as u8).collect();
                q.push(handles[h], a as u64, &data);
                shadow[h][a..b].copy_from_slice(&data);
            }
            for w in &q.writes {
                let h = handles.iter().position(|&k| k == w.handle).unwrap();
                let at = w.offset as usize;
                let want = &shadow[h][at..at + w.bytes.len()];
                assert!(
                    q.bytes[w.bytes.clone()] == *want,
                    "round {round}: a queued write holds older bytes than a later overlapping one"
                );
            }
            assert_eq!(q.writes.len(), 40);
            q.clear();
        }
    }
}
