//! [`StagingRing`]: fence-guarded upload buffers, one per frame in flight.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use forgeflow_graph::{MapState, Mapping};
use std::time::{Duration, Instant};

use forgeflow_jobs::staging::{align_up, BlockInfo, TextureCopyLayout};
use wgpu::WriteOnly;

use super::scatter::{self, Scatter};
use super::{GpuScatter, OverflowPolicy, StagingConfig, StagingError};
use crate::submit::Unsubmitted;

/// Counters of a [`StagingRing`] since it was created (VMA-style: first-class, cheap to read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StagingStats {
    /// Frames finished.
    pub frames: u64,
    /// Bytes staged by the last finished frame (alignment padding included).
    pub bytes_last_frame: u64,
    /// Bytes staged since creation.
    pub bytes_total: u64,
    /// Most bytes staged by one frame.
    pub high_water_bytes: u64,
    /// Pieces (copies) recorded since creation.
    pub pieces: u64,
    /// Of those, pieces written by the GPU scatter instead of a copy command.
    pub pieces_scattered: u64,
    /// Times the ring went past its last buffer back to the first.
    pub wraps: u64,
    /// Times a frame had to wait for a buffer to come back from the GPU.
    pub waits: u64,
    /// Total time spent waiting.
    pub wait_total: Duration,
    /// Longest single wait.
    pub wait_max: Duration,
    /// Ring buffers created (only at creation: never grows).
    pub ring_buffers_created: u64,
    /// Dedicated buffers created for pieces larger than a ring buffer.
    pub dedicated_buffers_created: u64,
    /// Bytes of dedicated buffers created.
    pub dedicated_bytes_created: u64,
    /// Bytes of dedicated buffers whose copy has not finished yet.
    pub dedicated_bytes_in_flight: u64,
    /// Pieces refused with `Deferred`, and their bytes.
    pub pieces_deferred: u64,
    /// See `pieces_deferred`.
    pub bytes_deferred: u64,
    /// Pieces refused with `Full`.
    pub pieces_refused: u64,
    /// Most staging memory alive at once: the ring buffers plus dedicated buffers in flight.
    pub peak_staging_bytes: u64,
    /// Frames whose encoder was dropped without being submitted: their
    /// buffers were taken back without waiting for the GPU.
    pub frames_abandoned: u64,
}

/// What one finished frame staged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UploadSummary {
    /// Copies recorded.
    pub pieces: u32,
    /// Bytes of staging used, padding included.
    pub bytes: u64,
    /// Ring buffers the frame used (more than one after a `Wait` overflow).
    pub ring_buffers: u32,
    /// Dedicated buffers the frame created.
    pub dedicated_buffers: u32,
}

/// One ring buffer. Its state is `Mapped` when the buffer is mapped and no GPU
/// work uses it (set by the mapping callback), `InUse` from the frame that
/// writes it until then, `Abandoned` when the encoder that was to map it again
/// was dropped unsubmitted (no GPU work uses it: it is mapped again
/// directly), `Failed` when the GPU refused to map it.
struct Slot {
    buffer: wgpu::Buffer,
    state: MapState,
}

/// A dedicated buffer whose copy is in flight; dropped (destroyed) once done.
struct InFlight {
    /// Held only to keep the buffer alive until its copy is done.
    _buffer: wgpu::Buffer,
    size: u64,
    done: Arc<AtomicBool>,
}

enum SegmentKind {
    Ring(usize),
    Dedicated(Arc<AtomicBool>),
}

/// A buffer a frame writes into, with its mapped view.
struct Segment {
    buffer: wgpu::Buffer,
    view: Option<wgpu::BufferViewMut>,
    kind: SegmentKind,
}

/// A copy the frame will record. Buffers are named by index, the source in
/// the frame's segments and the destination in its distinct destinations, so
/// that a piece costs no reference counting: at tens of thousands of small
/// pieces a frame, cloning two `wgpu::Buffer`s a piece was most of the
/// render thread's time in `write_buffer`.
enum PendingCopy {
    Buffer {
        segment: u32,
        src_offset: u64,
        dst: u32,
        dst_offset: u64,
        size: u64,
    },
    /// Boxed: a texture piece is several times a buffer piece's size, and
    /// the list of small buffer pieces is walked three times a frame.
    Texture(Box<TextureCopy>),
}

/// A texture piece's copy (`PendingCopy::Texture`).
struct TextureCopy {
    segment: u32,
    src_offset: u64,
    dst: wgpu::Texture,
    mip_level: u32,
    origin: wgpu::Origin3d,
    aspect: wgpu::TextureAspect,
    layout: TextureCopyLayout,
}

/// Fence-guarded upload staging: see the [module documentation](super).
///
/// ```no_run
/// # fn demo(device: &wgpu::Device, queue: &wgpu::Queue, dst: &wgpu::Buffer, data: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
/// use forgeflow::staging::{StagingConfig, StagingRing};
/// let mut ring = StagingRing::new(device, StagingConfig::default())?;
/// let mut encoder = device.create_command_encoder(&Default::default());
/// let frame = ring.begin_frame()?;
/// let mut piece = frame.write_buffer(dst, 0, data.len() as u64)?;
/// piece.write(data)?; // typically inside a worker job: pieces are Send
/// frame.finish(&mut encoder);
/// queue.submit([encoder.finish()]);
/// # Ok(()) }
/// ```
pub struct StagingRing {
    device: wgpu::Device,
    config: StagingConfig,
    slots: Vec<Slot>,
    next_slot: usize,
    in_flight: Vec<InFlight>,
    segments: Vec<Segment>,
    copies: Vec<PendingCopy>,
    /// The frame's distinct buffer destinations (`PendingCopy::Buffer::dst`),
    /// and where each is in that list.
    destinations: Vec<wgpu::Buffer>,
    destination_index: HashMap<wgpu::Buffer, u32>,
    scatter: Option<Scatter>,
    /// The frame's scatter dispatches: (destination, first table entry, pieces).
    scatter_dispatches: Vec<(u32, u64, u32)>,
    /// Per destination while the table is built: its scatter pieces, and its
    /// first entry in the table.
    scatter_counts: Vec<u32>,
    scatter_first: Vec<u64>,
    /// The frame's piece table, as bytes.
    scatter_table: Vec<u8>,
    stats: StagingStats,
}

impl std::fmt::Debug for StagingRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagingRing")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl StagingRing {
    /// Creates the ring's buffers, mapped and ready.
    pub fn new(device: &wgpu::Device, config: StagingConfig) -> Result<Self, StagingError> {
        if !(1..=8).contains(&config.buffers) {
            return Err(StagingError::InvalidConfig {
                setting: "buffers",
                reason: format!("{} is out of range; use 1 to 8", config.buffers),
            });
        }
        let max = device.limits().max_buffer_size;
        if config.buffer_size == 0
            || !config.buffer_size.is_multiple_of(4)
            || config.buffer_size > max
        {
            return Err(StagingError::InvalidConfig {
                setting: "buffer_size",
                reason: format!(
                    "{} must be a non-zero multiple of 4 of at most the device's max_buffer_size ({max})",
                    config.buffer_size
                ),
            });
        }
        let slots = (0..config.buffers)
            .map(|i| Slot {
                buffer: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("forgeflow staging ring {i}")),
                    size: config.buffer_size,
                    usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: true,
                }),
                state: MapState::new(Mapping::Mapped),
            })
            .collect::<Vec<_>>();
        let stats = StagingStats {
            ring_buffers_created: slots.len() as u64,
            peak_staging_bytes: config.buffer_size * slots.len() as u64,
            ..StagingStats::default()
        };
        let wanted = match config.gpu_scatter {
            GpuScatter::Always => true,
            GpuScatter::Never => false,
            GpuScatter::Auto => device.adapter_info().device_type != wgpu::DeviceType::Cpu,
        };
        let scatter = if wanted {
            Scatter::new(device, config.buffer_size)
        } else {
            None
        };
        Ok(StagingRing {
            device: device.clone(),
            config,
            slots,
            next_slot: 0,
            in_flight: Vec::new(),
            segments: Vec::new(),
            copies: Vec::new(),
            destinations: Vec::new(),
            destination_index: HashMap::new(),
            scatter,
            scatter_dispatches: Vec::new(),
            scatter_counts: Vec::new(),
            scatter_first: Vec::new(),
            scatter_table: Vec::new(),
            stats,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &StagingConfig {
        &self.config
    }

    /// Counters since creation.
    pub fn stats(&self) -> &StagingStats {
        &self.stats
    }

    /// Whether small pieces are scattered on the GPU (see [`GpuScatter`]).
    pub fn scatters(&self) -> bool {
        self.scatter.is_some()
    }

    /// Bytes of staging memory alive now: ring buffers plus dedicated buffers in flight.
    pub fn staging_bytes(&self) -> u64 {
        self.config.buffer_size * self.slots.len() as u64 + self.stats.dedicated_bytes_in_flight
    }

    /// Starts a frame's uploads in the next ring buffer, waiting (bounded, counted)
    /// if the GPU has not finished with it yet.
    pub fn begin_frame(&mut self) -> Result<StagingFrame<'_>, StagingError> {
        self.reclaim_dedicated();
        self.remap_abandoned();
        self.segments.clear();
        self.clear_copies();
        let (segment, tail) = self.acquire_slot()?;
        self.segments.push(segment);
        Ok(StagingFrame {
            inner: RefCell::new(FrameInner {
                ring: self,
                tail,
                tail_offset: 0,
                current: 0,
                bytes: 0,
                dedicated: 0,
                ring_buffers: 1,
                last_destination: None,
            }),
        })
    }

    /// Maps again the ring buffers whose frame's encoder was dropped
    /// unsubmitted: no GPU work uses them, so the mapping completes at the
    /// next poll instead of never.
    /// Forgets the frame's copies and destinations.
    fn clear_copies(&mut self) {
        self.copies.clear();
        self.destinations.clear();
        self.destination_index.clear();
        self.scatter_dispatches.clear();
    }

    fn remap_abandoned(&mut self) {
        for slot in &self.slots {
            if slot.state.take(Mapping::Abandoned) {
                self.stats.frames_abandoned += 1;
                let state = slot.state.clone();
                slot.buffer
                    .map_async(wgpu::MapMode::Write, .., move |result| {
                        state.mapped(result.is_ok());
                    });
            }
        }
    }

    /// Drops dedicated buffers whose copies have finished.
    fn reclaim_dedicated(&mut self) {
        let stats = &mut self.stats;
        self.in_flight.retain(|d| {
            let done = d.done.load(Ordering::Acquire);
            if done {
                stats.dedicated_bytes_in_flight -= d.size;
            }
            !done
        });
    }

    /// Polls the device until `ready()` holds or the timeout passes; counts the wait.
    fn wait_until(&mut self, ready: impl Fn(&Self) -> bool) -> Result<(), StagingError> {
        if ready(self) {
            return Ok(());
        }
        let start = Instant::now();
        let mut spins = 0u32;
        let result = loop {
            // Non-blocking poll: runs mapping callbacks of finished submissions
            // without waiting for newer frames still in flight.
            let _ = self.device.poll(wgpu::PollType::Poll);
            self.reclaim_dedicated();
            self.remap_abandoned();
            if ready(self) {
                break Ok(());
            }
            if start.elapsed() >= self.config.wait_timeout {
                break Err(StagingError::Timeout {
                    waited: start.elapsed(),
                });
            }
            spins += 1;
            if spins < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        };
        let waited = start.elapsed();
        self.stats.waits += 1;
        self.stats.wait_total += waited;
        self.stats.wait_max = self.stats.wait_max.max(waited);
        result
    }

    /// Records the scatter of this frame's small pieces: the staged bytes and
    /// the piece table to the GPU, then one dispatch per destination.
    fn record_scatter(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        segment: usize,
        data_end: u64,
        table_offset: u64,
    ) {
        let Some(scatter) = self.scatter.as_mut() else {
            return;
        };
        let source = &self.segments[segment].buffer;
        let table_bytes = self.scatter_table.len() as u64;
        encoder.copy_buffer_to_buffer(source, 0, &scatter.landing, 0, align_up(data_end, 4));
        encoder.copy_buffer_to_buffer(source, table_offset, &scatter.table, 0, table_bytes);
        let frame = self.stats.frames;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("forgeflow scatter"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&scatter.pipeline);
        for &(dst, start, pieces) in &self.scatter_dispatches {
            let bind_group =
                scatter.bind_group(&self.device, &self.destinations[dst as usize], frame);
            pass.set_bind_group(0, bind_group, &[(start * scatter::ENTRY_BYTES) as u32]);
            pass.dispatch_workgroups(pieces, 1, 1);
            self.stats.pieces_scattered += pieces as u64;
        }
        drop(pass);
        self.scatter_dispatches.clear();
        // Destinations unused for a while are released.
        scatter.evict(frame.saturating_sub(4 * self.slots.len() as u64));
    }

    /// Takes the next ring buffer (waiting for it if needed) and maps a view of it.
    fn acquire_slot(&mut self) -> Result<(Segment, WriteOnly<'static, [u8]>), StagingError> {
        let index = self.next_slot;
        if self.slots[index].state.get() == Mapping::Failed {
            return Err(StagingError::Map(
                "the GPU reported an error mapping this staging buffer (device lost?)".into(),
            ));
        }
        self.wait_until(|ring| {
            matches!(
                ring.slots[index].state.get(),
                Mapping::Mapped | Mapping::Failed
            )
        })?;
        let slot = &self.slots[index];
        if slot.state.get() == Mapping::Failed {
            return Err(StagingError::Map(
                "mapping a staging buffer failed (device lost?)".into(),
            ));
        }
        // The fence check: `Mapped` was set by the mapping callback, so no GPU work uses the buffer.
        let mut view = slot
            .buffer
            .get_mapped_range_mut(..)
            .map_err(|e| StagingError::Map(e.to_string()))?;
        // Only this thread leaves `Mapped`, so the take cannot be refused.
        let taken = slot.state.take(Mapping::Mapped);
        debug_assert!(
            taken,
            "a Mapped staging buffer is the render thread's to take"
        );
        let tail = erase(&mut view);
        self.next_slot = (index + 1) % self.slots.len();
        if self.next_slot == 0 {
            self.stats.wraps += 1;
        }
        Ok((
            Segment {
                buffer: slot.buffer.clone(),
                view: Some(view),
                kind: SegmentKind::Ring(index),
            },
            tail,
        ))
    }
}

/// The whole mapped range of `view` as a `WriteOnly` whose lifetime is no longer
/// tied to the borrow of `view`.
fn erase(view: &mut wgpu::BufferViewMut) -> WriteOnly<'static, [u8]> {
    let write: WriteOnly<'_, [u8]> = view.slice(..);
    // SAFETY: the WriteOnly points into the buffer's mapped memory, not into the
    // view struct, so moving the view does not move it. The view it came from is
    // kept in the frame's segments and is neither used again nor dropped until
    // `StagingFrame::finish` or the frame's drop, and every piece split from it
    // is a `StagingWrite<'f>` borrowing the frame, which the borrow checker ends
    // before either can run. Pieces are disjoint (split with `split_at`).
    unsafe { std::mem::transmute::<WriteOnly<'_, [u8]>, WriteOnly<'static, [u8]>>(write) }
}

struct FrameInner<'r> {
    ring: &'r mut StagingRing,
    /// What is left of the current ring buffer.
    tail: WriteOnly<'static, [u8]>,
    /// Offset of `tail` in the current ring buffer.
    tail_offset: u64,
    /// Index in `ring.segments` of the current ring buffer.
    current: usize,
    bytes: u64,
    dedicated: u32,
    ring_buffers: u32,
    /// The last buffer piece's destination (see `destination`).
    last_destination: Option<u32>,
}

/// One frame's uploads. Reserve pieces ([`write_buffer`](Self::write_buffer),
/// [`write_texture`](Self::write_texture)), fill them (on any thread), then
/// [`finish`](Self::finish) records the copies into the embedder's encoder.
/// Dropping a frame without finishing discards its uploads and returns its buffers.
pub struct StagingFrame<'r> {
    inner: RefCell<FrameInner<'r>>,
}

impl std::fmt::Debug for StagingFrame<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("StagingFrame")
            .field("bytes", &inner.bytes)
            .field("pieces", &inner.ring.copies.len())
            .finish_non_exhaustive()
    }
}

impl<'r> StagingFrame<'r> {
    /// Reserves `size` bytes to be copied to `dst` at `dst_offset` (both multiples of 4).
    pub fn write_buffer(
        &self,
        dst: &wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    ) -> Result<StagingWrite<'_>, StagingError> {
        if size == 0 {
            return Err(StagingError::Empty);
        }
        for (what, value) in [("upload size", size), ("destination offset", dst_offset)] {
            if value % 4 != 0 {
                return Err(StagingError::Unaligned {
                    what,
                    value,
                    required: 4,
                });
            }
        }
        let end = dst_offset.saturating_add(size);
        if end > dst.size() {
            return Err(StagingError::OutOfBounds {
                end,
                size: dst.size(),
            });
        }
        if !dst.usage().contains(wgpu::BufferUsages::COPY_DST) {
            return Err(StagingError::Texture(
                "the destination buffer lacks BufferUsages::COPY_DST".into(),
            ));
        }
        let mut inner = self.inner.borrow_mut();
        let (segment, src_offset, target) = inner.reserve(size, 4)?;
        let dst = inner.destination(dst);
        inner.ring.copies.push(PendingCopy::Buffer {
            segment,
            src_offset,
            dst,
            dst_offset,
            size,
        });
        Ok(StagingWrite {
            target,
            _frame: std::marker::PhantomData,
        })
    }

    /// Reserves a texture region: `extent` texels (rounded up to whole blocks) of
    /// mip `mip_level` at `origin` (block-aligned; `z` is the first layer or slice).
    /// Fill it with [`TextureWrite::write_tight`] (rows packed without padding).
    pub fn write_texture(
        &self,
        dst: &wgpu::Texture,
        mip_level: u32,
        origin: wgpu::Origin3d,
        extent: wgpu::Extent3d,
        aspect: wgpu::TextureAspect,
    ) -> Result<TextureWrite<'_>, StagingError> {
        let (layout, block) = texture_region(
            dst,
            mip_level,
            origin,
            extent,
            aspect,
            wgpu::TextureUsages::COPY_DST,
        )?;
        let align = (block.bytes as u64).max(4).next_power_of_two();
        let mut inner = self.inner.borrow_mut();
        let (segment, src_offset, target) = inner.reserve(layout.staged_bytes, align)?;
        inner
            .ring
            .copies
            .push(PendingCopy::Texture(Box::new(TextureCopy {
                segment,
                src_offset,
                dst: dst.clone(),
                mip_level,
                origin,
                aspect,
                layout,
            })));
        Ok(TextureWrite {
            write: StagingWrite {
                target,
                _frame: std::marker::PhantomData,
            },
            layout,
        })
    }

    /// Bytes reserved so far, alignment padding included.
    pub fn bytes(&self) -> u64 {
        self.inner.borrow().bytes
    }

    /// Records every copy into `encoder` and hands the buffers to the GPU. Submit
    /// `encoder` afterwards: each buffer is remapped (and becomes reusable) once
    /// that submission has completed.
    pub fn finish(self, encoder: &mut wgpu::CommandEncoder) -> UploadSummary {
        let mut inner = self.inner.into_inner();
        let scattered = inner.prepare_scatter();
        inner.tail = WriteOnly::default();
        let ring = &mut *inner.ring;
        // Views must be gone before unmapping; pieces were borrowed from `self`, so they are.
        // A buffer the device's loss destroyed is not unmapped; its map callback
        // reports the failure, and the next frame's `acquire_slot` the loss.
        let _ = super::unmapping(&ring.device, || {
            for segment in &mut ring.segments {
                drop(segment.view.take());
                segment.buffer.unmap();
            }
        });
        let scattered_pieces: u32 = ring.scatter_dispatches.iter().map(|d| d.2).sum();
        let pieces = ring.copies.len() as u32 + scattered_pieces;
        ring.stats.pieces += pieces as u64;
        record_copies(encoder, &ring.copies, &ring.segments, &ring.destinations);
        if let Some((segment, data_end, table_offset)) = scattered {
            ring.record_scatter(encoder, segment, data_end, table_offset);
        }
        ring.clear_copies();
        for segment in ring.segments.drain(..) {
            match segment.kind {
                SegmentKind::Ring(index) => {
                    let state = ring.slots[index].state.clone();
                    let dropped = state.clone();
                    let unsubmitted = Unsubmitted::new(move || {
                        dropped.abandoned();
                    });
                    encoder.map_buffer_on_submit(
                        &segment.buffer,
                        wgpu::MapMode::Write,
                        ..,
                        move |result| {
                            unsubmitted.disarm();
                            state.mapped(result.is_ok());
                        },
                    );
                }
                SegmentKind::Dedicated(done) => {
                    let flag = Arc::clone(&done);
                    // Mapping it again after the copy is the completion signal; then it is
                    // dropped. Never submitted, its copy never runs: done as well.
                    let dropped = Arc::clone(&done);
                    let unsubmitted =
                        Unsubmitted::new(move || dropped.store(true, Ordering::Release));
                    encoder.map_buffer_on_submit(
                        &segment.buffer,
                        wgpu::MapMode::Write,
                        ..,
                        move |_| {
                            unsubmitted.disarm();
                            flag.store(true, Ordering::Release);
                        },
                    );
                    let size = segment.buffer.size();
                    ring.in_flight.push(InFlight {
                        _buffer: segment.buffer,
                        size,
                        done,
                    });
                }
            }
        }
        let stats = &mut ring.stats;
        stats.frames += 1;
        stats.bytes_last_frame = inner.bytes;
        stats.bytes_total += inner.bytes;
        stats.high_water_bytes = stats.high_water_bytes.max(inner.bytes);
        #[cfg(feature = "tracy")]
        plot(stats, ring.config.buffer_size * ring.slots.len() as u64);
        UploadSummary {
            pieces,
            bytes: inner.bytes,
            ring_buffers: inner.ring_buffers,
            dedicated_buffers: inner.dedicated,
        }
    }
}

impl Drop for FrameInner<'_> {
    fn drop(&mut self) {
        // Reached with segments only when the frame is dropped without `finish`:
        // the buffers are still mapped and unused by the GPU, so ring buffers are
        // ready again and dedicated ones are simply dropped.
        self.tail = WriteOnly::default();
        let ring = &mut *self.ring;
        ring.clear_copies();
        for segment in ring.segments.drain(..) {
            match segment.kind {
                SegmentKind::Ring(index) => {
                    ring.slots[index]
                        .state
                        .change(Mapping::InUse, Mapping::Mapped);
                }
                SegmentKind::Dedicated(_) => {
                    ring.stats.dedicated_bytes_in_flight -= segment.buffer.size();
                }
            }
        }
    }
}

impl FrameInner<'_> {
    /// Moves the small buffer pieces of the current ring buffer whose
    /// destination allows it from the copy list to the scatter list, and writes
    /// their piece table into the buffer's free tail. Returns the segment, the
    /// end of the staged data and the table's offset, or `None` (everything
    /// stays a copy) when there is nothing to scatter or no room for the table.
    fn prepare_scatter(&mut self) -> Option<(usize, u64, u64)> {
        const NOT_SCATTERED: u64 = u64::MAX;
        let ring = &mut *self.ring;
        let scatter = ring.scatter.as_ref()?;
        if !matches!(ring.segments[self.current].kind, SegmentKind::Ring(_)) {
            return None;
        }
        let current = self.current as u32;
        let max_piece = ring.config.scatter_max_piece;
        // Per destination, decided once (not per piece): whether it can be
        // scattered to; later, where its first table entry is.
        let first = &mut ring.scatter_first;
        first.clear();
        first.extend(ring.destinations.iter().map(|d| {
            if scatter.accepts(d) {
                0
            } else {
                NOT_SCATTERED
            }
        }));
        let eligible = |copy: &PendingCopy, first: &[u64]| match *copy {
            PendingCopy::Buffer {
                segment, dst, size, ..
            } => segment == current && size <= max_piece && first[dst as usize] != NOT_SCATTERED,
            PendingCopy::Texture(_) => false,
        };
        // Each destination's pieces.
        let counts = &mut ring.scatter_counts;
        counts.clear();
        counts.resize(ring.destinations.len(), 0);
        let mut total = 0u32;
        for copy in &ring.copies {
            if let PendingCopy::Buffer { dst, .. } = *copy {
                if eligible(copy, first) {
                    counts[dst as usize] += 1;
                    total += 1;
                }
            }
        }
        if total < 2 {
            return None;
        }
        // The table: each destination's pieces together, in the order they
        // were reserved, a dispatch per `MAX_PIECES_PER_DISPATCH` of them,
        // each dispatch starting at a multiple of `per_align` entries (its
        // dynamic offset must be aligned).
        let per_align = (scatter.offset_alignment / scatter::ENTRY_BYTES).max(1);
        let chunk_span = align_up(scatter::MAX_PIECES_PER_DISPATCH, per_align);
        let mut entries = 0u64;
        ring.scatter_dispatches.clear();
        for (dst, (&pieces, first)) in counts.iter().zip(first.iter_mut()).enumerate() {
            let pieces = pieces as u64;
            if pieces == 0 {
                *first = NOT_SCATTERED;
                continue;
            }
            *first = align_up(entries, per_align);
            for chunk in 0..pieces.div_ceil(scatter::MAX_PIECES_PER_DISPATCH) {
                let n = (pieces - chunk * scatter::MAX_PIECES_PER_DISPATCH)
                    .min(scatter::MAX_PIECES_PER_DISPATCH);
                let start = *first + chunk * chunk_span;
                ring.scatter_dispatches.push((dst as u32, start, n as u32));
                entries = start + n;
            }
        }
        let table_bytes = entries * scatter::ENTRY_BYTES;
        let pad = align_up(self.tail_offset, scatter.offset_alignment) - self.tail_offset;
        if table_bytes > scatter::TABLE_BYTES || pad + table_bytes > self.tail.len() as u64 {
            ring.scatter_dispatches.clear();
            return None;
        }
        // The table, as the shader reads it: (src word, dst word, words, 0).
        let table = &mut ring.scatter_table;
        table.clear();
        table.resize(table_bytes as usize, 0);
        counts.fill(0);
        let mut data_end = 0;
        for copy in &ring.copies {
            let PendingCopy::Buffer {
                src_offset,
                dst,
                dst_offset,
                size,
                ..
            } = *copy
            else {
                continue;
            };
            if !eligible(copy, first) {
                continue;
            }
            // The destination's j-th piece.
            let j = &mut counts[dst as usize];
            let (chunk, within) = (
                *j as u64 / scatter::MAX_PIECES_PER_DISPATCH,
                *j as u64 % scatter::MAX_PIECES_PER_DISPATCH,
            );
            *j += 1;
            let e = ((first[dst as usize] + chunk * chunk_span + within) * scatter::ENTRY_BYTES)
                as usize;
            let entry = [src_offset / 4, dst_offset / 4, size / 4, 0].map(|v| v as u32);
            for (k, v) in entry.into_iter().enumerate() {
                table[e + 4 * k..e + 4 * k + 4].copy_from_slice(&v.to_le_bytes());
            }
            data_end = data_end.max(src_offset + size);
        }
        let tail = std::mem::take(&mut self.tail);
        let (_padding, rest) = tail.split_at(pad as usize);
        let (mut piece, rest) = rest.split_at(table_bytes as usize);
        self.tail = rest;
        let table_offset = self.tail_offset + pad;
        // SAFETY: `piece` is `table_bytes` bytes of this frame's mapped memory; the table is CPU memory.
        unsafe {
            forgeflow_jobs::memcpy::copy_streaming(piece.as_raw_element_ptr().as_ptr(), table)
        };
        ring.copies.retain(|c| !eligible(c, first));
        Some((self.current, data_end, table_offset))
    }

    /// Takes `size` bytes at `align` from the current ring buffer, applying the
    /// overflow policy when they do not fit, or from a dedicated buffer when they
    /// are larger than a ring buffer.
    fn reserve(
        &mut self,
        size: u64,
        align: u64,
    ) -> Result<(u32, u64, WriteOnly<'static, [u8]>), StagingError> {
        if size > self.ring.config.buffer_size {
            return self.dedicated(size);
        }
        let pad = align_up(self.tail_offset, align) - self.tail_offset;
        if pad + size > self.tail.len() as u64 {
            match self.ring.config.overflow {
                OverflowPolicy::Wait => self.next_ring_buffer(size)?,
                OverflowPolicy::Defer => {
                    self.ring.stats.pieces_deferred += 1;
                    self.ring.stats.bytes_deferred += size;
                    return Err(StagingError::Deferred { requested: size });
                }
                OverflowPolicy::Error => {
                    self.ring.stats.pieces_refused += 1;
                    return Err(StagingError::Full {
                        requested: size,
                        available: (self.tail.len() as u64).saturating_sub(pad),
                    });
                }
            }
        }
        let pad = align_up(self.tail_offset, align) - self.tail_offset;
        let tail = std::mem::take(&mut self.tail);
        let (_padding, rest) = tail.split_at(pad as usize);
        let (piece, rest) = rest.split_at(size as usize);
        self.tail = rest;
        let offset = self.tail_offset + pad;
        self.tail_offset = offset + size;
        self.bytes += pad + size;
        Ok((self.current as u32, offset, piece))
    }

    /// `dst`'s index among the frame's destinations, added if new: one
    /// comparison when it is the last piece's destination, a hash lookup
    /// otherwise.
    fn destination(&mut self, dst: &wgpu::Buffer) -> u32 {
        let ring = &mut *self.ring;
        if let Some(last) = self.last_destination {
            if ring.destinations[last as usize] == *dst {
                return last;
            }
        }
        let index = match ring.destination_index.get(dst) {
            Some(&i) => i,
            None => {
                let i = ring.destinations.len() as u32;
                ring.destinations.push(dst.clone());
                ring.destination_index.insert(dst.clone(), i);
                i
            }
        };
        self.last_destination = Some(index);
        index
    }

    /// Moves the frame on to the next ring buffer (the `Wait` policy).
    fn next_ring_buffer(&mut self, size: u64) -> Result<(), StagingError> {
        let next = self.ring.next_slot;
        let held = self
            .ring
            .segments
            .iter()
            .any(|s| matches!(s.kind, SegmentKind::Ring(i) if i == next));
        if held {
            // Every ring buffer already belongs to this frame: waiting would never end.
            self.ring.stats.pieces_refused += 1;
            return Err(StagingError::Full {
                requested: size,
                available: self.tail.len() as u64,
            });
        }
        let (segment, tail) = self.ring.acquire_slot()?;
        self.ring.segments.push(segment);
        self.current = self.ring.segments.len() - 1;
        self.tail = tail;
        self.tail_offset = 0;
        self.ring_buffers += 1;
        Ok(())
    }

    /// A buffer of its own for a piece larger than a ring buffer.
    fn dedicated(
        &mut self,
        size: u64,
    ) -> Result<(u32, u64, WriteOnly<'static, [u8]>), StagingError> {
        let ring = &mut *self.ring;
        let budget = ring.config.max_dedicated_bytes;
        let size = align_up(size, 4);
        if size > budget {
            return Err(StagingError::DedicatedBudget {
                requested: size,
                in_flight: ring.stats.dedicated_bytes_in_flight,
                budget,
            });
        }
        ring.reclaim_dedicated();
        if ring.stats.dedicated_bytes_in_flight + size > budget {
            match ring.config.overflow {
                OverflowPolicy::Wait => {
                    ring.wait_until(|r| r.stats.dedicated_bytes_in_flight + size <= budget)?;
                }
                OverflowPolicy::Defer => {
                    ring.stats.pieces_deferred += 1;
                    ring.stats.bytes_deferred += size;
                    return Err(StagingError::Deferred { requested: size });
                }
                OverflowPolicy::Error => {
                    ring.stats.pieces_refused += 1;
                    return Err(StagingError::DedicatedBudget {
                        requested: size,
                        in_flight: ring.stats.dedicated_bytes_in_flight,
                        budget,
                    });
                }
            }
        }
        let buffer = ring.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("forgeflow dedicated staging"),
            size,
            usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: true,
        });
        let mut view = buffer
            .get_mapped_range_mut(..)
            .map_err(|e| StagingError::Map(e.to_string()))?;
        let piece = erase(&mut view);
        ring.stats.dedicated_buffers_created += 1;
        ring.stats.dedicated_bytes_created += size;
        ring.stats.dedicated_bytes_in_flight += size;
        let alive = ring.config.buffer_size * ring.slots.len() as u64
            + ring.stats.dedicated_bytes_in_flight;
        ring.stats.peak_staging_bytes = ring.stats.peak_staging_bytes.max(alive);
        ring.segments.push(Segment {
            buffer,
            view: Some(view),
            kind: SegmentKind::Dedicated(Arc::new(AtomicBool::new(false))),
        });
        self.bytes += size;
        self.dedicated += 1;
        Ok((ring.segments.len() as u32 - 1, 0, piece))
    }
}

/// The ring's statistics as Tracy plots, once per finished frame.
#[cfg(feature = "tracy")]
fn plot(stats: &StagingStats, ring_bytes: u64) {
    use tracy_client::plot_name;
    let Some(client) = tracy_client::Client::running() else {
        return;
    };
    client.plot(
        plot_name!("forgeflow staging bytes per frame"),
        stats.bytes_last_frame as f64,
    );
    client.plot(
        plot_name!("forgeflow staging high water bytes"),
        stats.high_water_bytes as f64,
    );
    client.plot(
        plot_name!("forgeflow staging memory bytes"),
        (ring_bytes + stats.dedicated_bytes_in_flight) as f64,
    );
    client.plot(plot_name!("forgeflow staging waits"), stats.waits as f64);
    client.plot(
        plot_name!("forgeflow staging wait ms total"),
        stats.wait_total.as_secs_f64() * 1e3,
    );
    client.plot(plot_name!("forgeflow staging wraps"), stats.wraps as f64);
    client.plot(
        plot_name!("forgeflow staging dedicated buffers"),
        stats.dedicated_buffers_created as f64,
    );
    client.plot(
        plot_name!("forgeflow staging bytes deferred"),
        stats.bytes_deferred as f64,
    );
}

/// Records `copies` in order. Buffer copies adjacent both in staging and in the
/// destination are merged into one command (many small pieces of one mesh
/// buffer, say): fewer commands for the driver, same bytes.
fn record_copies(
    encoder: &mut wgpu::CommandEncoder,
    copies: &[PendingCopy],
    segments: &[Segment],
    destinations: &[wgpu::Buffer],
) {
    // (segment, its offset, destination, its offset, bytes)
    type Run = (u32, u64, u32, u64, u64);
    let flush = |encoder: &mut wgpu::CommandEncoder, run: &mut Option<Run>| {
        if let Some((src, src_offset, dst, dst_offset, size)) = run.take() {
            encoder.copy_buffer_to_buffer(
                &segments[src as usize].buffer,
                src_offset,
                &destinations[dst as usize],
                dst_offset,
                size,
            );
        }
    };
    let mut run: Option<Run> = None;
    for copy in copies {
        match *copy {
            PendingCopy::Buffer {
                segment: src,
                src_offset,
                dst,
                dst_offset,
                size,
            } => match &mut run {
                Some((rs, ro, rd, rdo, rsize))
                    if *rs == src
                        && *ro + *rsize == src_offset
                        && *rd == dst
                        && *rdo + *rsize == dst_offset =>
                {
                    *rsize += size;
                }
                _ => {
                    flush(encoder, &mut run);
                    run = Some((src, src_offset, dst, dst_offset, size));
                }
            },
            PendingCopy::Texture(ref t) => {
                let TextureCopy {
                    segment,
                    src_offset,
                    ref dst,
                    mip_level,
                    origin,
                    aspect,
                    layout,
                } = **t;
                flush(encoder, &mut run);
                encoder.copy_buffer_to_texture(
                    wgpu::TexelCopyBufferInfo {
                        buffer: &segments[segment as usize].buffer,
                        layout: wgpu::TexelCopyBufferLayout {
                            offset: src_offset,
                            bytes_per_row: Some(layout.bytes_per_row),
                            rows_per_image: Some(layout.rows_per_image),
                        },
                    },
                    wgpu::TexelCopyTextureInfo {
                        texture: dst,
                        mip_level,
                        origin,
                        aspect,
                    },
                    wgpu::Extent3d {
                        width: layout.physical_width,
                        height: layout.physical_height,
                        depth_or_array_layers: layout.layers,
                    },
                );
            }
        }
    }
    flush(encoder, &mut run);
}

/// Checks a texture region (that the texture has `usage`, that the mip exists,
/// that origin and extent are whole blocks inside it) and computes its layout in
/// a buffer.
pub(super) fn texture_region(
    dst: &wgpu::Texture,
    mip_level: u32,
    origin: wgpu::Origin3d,
    extent: wgpu::Extent3d,
    aspect: wgpu::TextureAspect,
    usage: wgpu::TextureUsages,
) -> Result<(TextureCopyLayout, BlockInfo), StagingError> {
    let format = dst.format();
    let bytes = format.block_copy_size(Some(aspect)).ok_or_else(|| {
        StagingError::Texture(format!(
            "{format:?} (aspect {aspect:?}) cannot be copied from a buffer"
        ))
    })?;
    let (bw, bh) = format.block_dimensions();
    let block = BlockInfo {
        width: bw,
        height: bh,
        bytes,
    };
    if !dst.usage().contains(usage) {
        return Err(StagingError::Texture(format!(
            "the texture lacks TextureUsages::{usage:?}"
        )));
    }
    if mip_level >= dst.mip_level_count() {
        return Err(StagingError::Texture(format!(
            "mip {mip_level} does not exist (the texture has {})",
            dst.mip_level_count()
        )));
    }
    let mip = dst.size().mip_level_size(mip_level, dst.dimension());
    let physical = mip.physical_size(format);
    let layout = TextureCopyLayout::new(
        extent.width,
        extent.height,
        extent.depth_or_array_layers,
        block,
    )
    .ok_or_else(|| StagingError::Texture(format!("empty or oversized extent {extent:?}")))?;
    if !origin.x.is_multiple_of(bw) || !origin.y.is_multiple_of(bh) {
        return Err(StagingError::Texture(format!(
            "origin ({}, {}) is not a multiple of the {bw}x{bh} block",
            origin.x, origin.y
        )));
    }
    let layers = match dst.dimension() {
        wgpu::TextureDimension::D3 => physical.depth_or_array_layers,
        _ => dst.size().depth_or_array_layers,
    };
    if origin.x + layout.physical_width > physical.width
        || origin.y + layout.physical_height > physical.height
        || origin.z + layout.layers > layers
    {
        return Err(StagingError::Texture(format!(
            "region {extent:?} at {origin:?} exceeds mip {mip_level} ({}x{}, {layers} layers)",
            mip.width, mip.height
        )));
    }
    Ok((layout, block))
}

/// A reserved piece of staging memory, to fill before the frame finishes. It is
/// `Send`: fill it on a worker thread. Split it to fill it from several.
pub struct StagingWrite<'f> {
    target: WriteOnly<'static, [u8]>,
    _frame: std::marker::PhantomData<&'f ()>,
}

// SAFETY: a `WriteOnly<[u8]>` is an exclusive, write-only `&mut [u8]`, and
// `&mut [u8]` is `Send`. wgpu declares `impl<T: Send> Send for WriteOnly<'_, T>`
// without `?Sized`, so the unsized slice case misses the impl it is meant to have.
// Each piece covers bytes no other piece covers (split with `split_at`).
unsafe impl Send for StagingWrite<'_> {}

impl std::fmt::Debug for StagingWrite<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagingWrite")
            .field("len", &self.len())
            .finish()
    }
}

impl<'f> StagingWrite<'f> {
    /// Bytes in the piece.
    pub fn len(&self) -> usize {
        self.target.len()
    }

    /// Whether the piece is empty.
    pub fn is_empty(&self) -> bool {
        self.target.len() == 0
    }

    /// Copies `src` (exactly the piece's length) into the piece.
    pub fn write(&mut self, src: &[u8]) -> Result<(), StagingError> {
        if src.len() != self.len() {
            return Err(StagingError::Mismatch {
                expected: self.len() as u64,
                got: src.len() as u64,
            });
        }
        let dst = self.target.as_raw_element_ptr().as_ptr();
        // SAFETY: the piece is `src.len()` writable bytes of mapped memory that
        // only this piece covers, and `src` is CPU memory, so they do not overlap.
        unsafe { forgeflow_jobs::memcpy::copy_streaming(dst, src) };
        Ok(())
    }

    /// Copies `src` at `offset` within the piece.
    pub fn write_at(&mut self, offset: usize, src: &[u8]) -> Result<(), StagingError> {
        let end = offset.saturating_add(src.len());
        if end > self.len() {
            return Err(StagingError::OutOfBounds {
                end: end as u64,
                size: self.len() as u64,
            });
        }
        let mut part = self.target.slice(offset..end);
        let dst = part.as_raw_element_ptr().as_ptr();
        // SAFETY: as in `write`, for the bytes `offset..end` of this piece.
        unsafe { forgeflow_jobs::memcpy::copy_streaming(dst, src) };
        Ok(())
    }

    /// The piece as wgpu's write-only slice, to decode or generate data straight into it.
    pub fn as_write_only(&mut self) -> WriteOnly<'_, [u8]> {
        self.target.slice(..)
    }

    /// Splits the piece at `mid` (clamped to its length) into two disjoint pieces.
    pub fn split_at(self, mid: usize) -> (StagingWrite<'f>, StagingWrite<'f>) {
        let mid = mid.min(self.len());
        let (a, b) = self.target.split_at(mid);
        (
            StagingWrite {
                target: a,
                _frame: std::marker::PhantomData,
            },
            StagingWrite {
                target: b,
                _frame: std::marker::PhantomData,
            },
        )
    }

    /// Splits the piece into chunks of `chunk` bytes (the last may be shorter),
    /// e.g. to copy one large upload from several workers.
    pub fn into_chunks(self, chunk: usize) -> impl Iterator<Item = StagingWrite<'f>> {
        let chunk = chunk.max(1);
        let mut rest = Some(self);
        std::iter::from_fn(move || {
            let piece = rest.take()?;
            if piece.is_empty() {
                return None;
            }
            let (head, tail) = piece.split_at(chunk);
            if !tail.is_empty() {
                rest = Some(tail);
            }
            Some(head)
        })
    }
}

/// A reserved texture region in staging memory.
#[derive(Debug)]
pub struct TextureWrite<'f> {
    write: StagingWrite<'f>,
    layout: TextureCopyLayout,
}

impl<'f> TextureWrite<'f> {
    /// Where rows go: padded rows of `bytes_per_row`, `rows_per_image` per layer.
    pub fn layout(&self) -> &TextureCopyLayout {
        &self.layout
    }

    /// Copies tightly packed rows of blocks (`layout().tight_bytes` bytes) into the padded layout.
    pub fn write_tight(&mut self, src: &[u8]) -> Result<(), StagingError> {
        let l = self.layout;
        if src.len() as u64 != l.tight_bytes {
            return Err(StagingError::Mismatch {
                expected: l.tight_bytes,
                got: src.len() as u64,
            });
        }
        if l.bytes_per_row == l.row_bytes {
            return self.write.write(src);
        }
        let mut dst = self.write.as_write_only();
        for (row, bytes) in src.chunks_exact(l.row_bytes as usize).enumerate() {
            let start = row * l.bytes_per_row as usize;
            let mut part = dst.slice(start..start + bytes.len());
            let ptr = part.as_raw_element_ptr().as_ptr();
            // SAFETY: one row of this piece's mapped bytes; `src` is CPU memory.
            unsafe { forgeflow_jobs::memcpy::copy_streaming(ptr, bytes) };
        }
        Ok(())
    }

    /// The raw piece (padded layout), for writers that produce rows themselves.
    pub fn into_raw(self) -> StagingWrite<'f> {
        self.write
    }
}
