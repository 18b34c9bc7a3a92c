//! [`ReadbackRing`]: GPU-to-CPU copies delivered once they have finished.

use forgeflow_graph::{MapState, Mapping};
use forgeflow_jobs::staging::{align_up, LinearAllocator, TextureCopyLayout};

use super::ring::texture_region;
use super::StagingError;
use crate::submit::Unsubmitted;

/// How a [`ReadbackRing`] is set up.
#[derive(Debug, Clone)]
pub struct ReadbackConfig {
    /// Bytes per readback buffer (default 16 MiB; a multiple of 256).
    pub buffer_size: u64,
    /// Buffers, normally the number of frames in flight (1..=8, default 3).
    pub buffers: u32,
}

impl Default for ReadbackConfig {
    fn default() -> Self {
        ReadbackConfig {
            buffer_size: 16 << 20,
            buffers: 3,
        }
    }
}

/// Counters of a [`ReadbackRing`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadbackStats {
    /// Frames whose readbacks were recorded.
    pub frames: u64,
    /// Readbacks requested and recorded.
    pub requests: u64,
    /// Readbacks delivered to their callback.
    pub delivered: u64,
    /// Bytes delivered.
    pub bytes_delivered: u64,
    /// Requests refused because no buffer was free or the frame's buffer was full.
    pub refused: u64,
    /// Frames whose encoder was dropped unsubmitted (their requests were
    /// answered [`StagingError::Abandoned`]).
    pub abandoned: u64,
}

/// The bytes of one finished readback, as handed to its callback.
#[derive(Debug)]
pub struct ReadbackData<'a> {
    /// The copied bytes; for a texture, rows padded to `layout.bytes_per_row`.
    pub bytes: &'a [u8],
    /// For a texture readback, where its rows are.
    pub layout: Option<TextureCopyLayout>,
}

impl ReadbackData<'_> {
    /// The rows of blocks without padding (the whole buffer range for a buffer readback).
    pub fn rows(&self) -> impl Iterator<Item = &[u8]> {
        let (row, stride, count) = match self.layout {
            Some(l) => (
                l.row_bytes as usize,
                l.bytes_per_row as usize,
                l.rows() as usize,
            ),
            None => (self.bytes.len(), self.bytes.len().max(1), 1),
        };
        (0..count).map(move |r| &self.bytes[r * stride..r * stride + row])
    }

    /// The data tightly packed (allocates).
    pub fn to_tight_vec(&self) -> Vec<u8> {
        self.rows().flat_map(|r| r.iter().copied()).collect()
    }
}

type Deliver = Box<dyn FnOnce(Result<ReadbackData<'_>, StagingError>) + Send>;

struct Request {
    offset: u64,
    size: u64,
    layout: Option<TextureCopyLayout>,
    deliver: Deliver,
}

enum Copy {
    Buffer {
        src: wgpu::Buffer,
        src_offset: u64,
        offset: u64,
        size: u64,
    },
    Texture {
        src: wgpu::Texture,
        mip_level: u32,
        origin: wgpu::Origin3d,
        aspect: wgpu::TextureAspect,
        offset: u64,
        layout: TextureCopyLayout,
    },
}

struct Slot {
    buffer: wgpu::Buffer,
    state: MapState,
    requests: Vec<Request>,
    copies: Vec<Copy>,
}

/// Reads buffers and textures back from the GPU without stalling: requests are
/// recorded into a frame's buffer, and [`poll`](Self::poll) hands each result to
/// its callback once the copy has finished on the GPU.
pub struct ReadbackRing {
    device: wgpu::Device,
    config: ReadbackConfig,
    slots: Vec<Slot>,
    /// The slot the next frame records into; slots after it (cyclically) are older.
    next: usize,
    stats: ReadbackStats,
}

impl std::fmt::Debug for ReadbackRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadbackRing")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl ReadbackRing {
    /// Creates the ring's buffers.
    pub fn new(device: &wgpu::Device, config: ReadbackConfig) -> Result<Self, StagingError> {
        if !(1..=8).contains(&config.buffers) {
            return Err(StagingError::InvalidConfig {
                setting: "buffers",
                reason: format!("{} is out of range; use 1 to 8", config.buffers),
            });
        }
        if config.buffer_size == 0
            || !config.buffer_size.is_multiple_of(256)
            || config.buffer_size > device.limits().max_buffer_size
        {
            return Err(StagingError::InvalidConfig {
                setting: "buffer_size",
                reason: format!(
                    "{} must be a non-zero multiple of 256 within max_buffer_size",
                    config.buffer_size
                ),
            });
        }
        let slots = (0..config.buffers)
            .map(|i| Slot {
                buffer: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("forgeflow readback ring {i}")),
                    size: config.buffer_size,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                state: MapState::new(Mapping::Free),
                requests: Vec::new(),
                copies: Vec::new(),
            })
            .collect();
        Ok(ReadbackRing {
            device: device.clone(),
            config,
            slots,
            next: 0,
            stats: ReadbackStats::default(),
        })
    }

    /// Counters since creation.
    pub fn stats(&self) -> &ReadbackStats {
        &self.stats
    }

    /// Starts recording this frame's readbacks. Never waits: if the next buffer
    /// still holds results not yet collected, every request of this frame is
    /// refused with [`StagingError::ReadbackBusy`].
    pub fn begin_frame(&mut self) -> ReadbackFrame<'_> {
        let slot = (self.slots[self.next].state.get() == Mapping::Free).then_some(self.next);
        let capacity = self.config.buffer_size;
        ReadbackFrame {
            ring: self,
            slot,
            alloc: LinearAllocator::new(capacity),
        }
    }

    /// Delivers every finished readback to its callback, oldest frame first, and
    /// frees its buffer. Never blocks. Returns how many were delivered.
    pub fn poll(&mut self) -> usize {
        let _ = self.device.poll(wgpu::PollType::Poll);
        let n = self.slots.len();
        let mut delivered = 0;
        for k in 0..n {
            let slot = &mut self.slots[(self.next + k) % n];
            match slot.state.get() {
                Mapping::Mapped => {
                    match slot.buffer.get_mapped_range(..) {
                        Ok(view) => {
                            for r in slot.requests.drain(..) {
                                let bytes = &view[r.offset as usize..(r.offset + r.size) as usize];
                                self.stats.bytes_delivered += r.size;
                                (r.deliver)(Ok(ReadbackData {
                                    bytes,
                                    layout: r.layout,
                                }));
                                delivered += 1;
                            }
                        }
                        Err(e) => {
                            for r in slot.requests.drain(..) {
                                (r.deliver)(Err(StagingError::Map(e.to_string())));
                            }
                        }
                    }
                    // Destroyed with a lost device, it cannot be unmapped:
                    // `Failed`, freed at the next poll like any failed slot.
                    let after = match super::unmapping(&self.device, || slot.buffer.unmap()) {
                        Ok(()) => Mapping::Free,
                        Err(_) => Mapping::Failed,
                    };
                    slot.state.change(Mapping::Mapped, after);
                }
                Mapping::Failed => {
                    for r in slot.requests.drain(..) {
                        (r.deliver)(Err(StagingError::Map(
                            "mapping a readback buffer failed (device lost?)".into(),
                        )));
                    }
                    slot.state.change(Mapping::Failed, Mapping::Free);
                }
                Mapping::Abandoned => {
                    for r in slot.requests.drain(..) {
                        (r.deliver)(Err(StagingError::Abandoned));
                    }
                    self.stats.abandoned += 1;
                    slot.state.change(Mapping::Abandoned, Mapping::Free);
                }
                _ => {}
            }
        }
        self.stats.delivered += delivered as u64;
        delivered
    }

    /// Readbacks recorded whose results have not been delivered yet.
    pub fn pending(&self) -> usize {
        self.slots.iter().map(|s| s.requests.len()).sum()
    }
}

/// One frame's readback requests; [`finish`](Self::finish) records the copies.
pub struct ReadbackFrame<'r> {
    ring: &'r mut ReadbackRing,
    slot: Option<usize>,
    alloc: LinearAllocator,
}

impl std::fmt::Debug for ReadbackFrame<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadbackFrame")
            .field("slot", &self.slot)
            .field("used", &self.alloc.used())
            .finish()
    }
}

impl ReadbackFrame<'_> {
    fn reserve(&mut self, size: u64, align: u64) -> Result<(usize, u64), StagingError> {
        let Some(slot) = self.slot else {
            self.ring.stats.refused += 1;
            return Err(StagingError::ReadbackBusy);
        };
        match self.alloc.alloc(size, align) {
            Some(offset) => Ok((slot, offset)),
            None => {
                self.ring.stats.refused += 1;
                Err(StagingError::Full {
                    requested: size,
                    available: self.alloc.remaining(),
                })
            }
        }
    }

    /// Reads `size` bytes of `src` at `offset` (multiples of 4); `deliver` gets them after the copy.
    pub fn read_buffer(
        &mut self,
        src: &wgpu::Buffer,
        offset: u64,
        size: u64,
        deliver: impl FnOnce(Result<ReadbackData<'_>, StagingError>) + Send + 'static,
    ) -> Result<(), StagingError> {
        if size == 0 {
            return Err(StagingError::Empty);
        }
        for (what, value) in [("readback size", size), ("source offset", offset)] {
            if value % 4 != 0 {
                return Err(StagingError::Unaligned {
                    what,
                    value,
                    required: 4,
                });
            }
        }
        let end = offset.saturating_add(size);
        if end > src.size() {
            return Err(StagingError::OutOfBounds {
                end,
                size: src.size(),
            });
        }
        let (slot, at) = self.reserve(size, 4)?;
        let s = &mut self.ring.slots[slot];
        s.copies.push(Copy::Buffer {
            src: src.clone(),
            src_offset: offset,
            offset: at,
            size,
        });
        s.requests.push(Request {
            offset: at,
            size,
            layout: None,
            deliver: Box::new(deliver),
        });
        Ok(())
    }

    /// Reads a texture region (see `StagingFrame::write_texture` for the
    /// arguments); `deliver` gets padded rows and their layout.
    pub fn read_texture(
        &mut self,
        src: &wgpu::Texture,
        mip_level: u32,
        origin: wgpu::Origin3d,
        extent: wgpu::Extent3d,
        aspect: wgpu::TextureAspect,
        deliver: impl FnOnce(Result<ReadbackData<'_>, StagingError>) + Send + 'static,
    ) -> Result<(), StagingError> {
        let (layout, block) = texture_region(
            src,
            mip_level,
            origin,
            extent,
            aspect,
            wgpu::TextureUsages::COPY_SRC,
        )?;
        let align = align_up((block.bytes as u64).max(4), 4).next_power_of_two();
        let (slot, at) = self.reserve(layout.staged_bytes, align)?;
        let s = &mut self.ring.slots[slot];
        s.copies.push(Copy::Texture {
            src: src.clone(),
            mip_level,
            origin,
            aspect,
            offset: at,
            layout,
        });
        s.requests.push(Request {
            offset: at,
            size: layout.staged_bytes,
            layout: Some(layout),
            deliver: Box::new(deliver),
        });
        Ok(())
    }

    /// Records the copies into `encoder`. Submit it; [`ReadbackRing::poll`] then
    /// delivers the results once the GPU has finished.
    pub fn finish(self, encoder: &mut wgpu::CommandEncoder) {
        let Some(index) = self.slot else { return };
        let ring = self.ring;
        let slot = &mut ring.slots[index];
        if slot.copies.is_empty() {
            return;
        }
        for copy in slot.copies.drain(..) {
            match copy {
                Copy::Buffer {
                    src,
                    src_offset,
                    offset,
                    size,
                } => encoder.copy_buffer_to_buffer(&src, src_offset, &slot.buffer, offset, size),
                Copy::Texture {
                    src,
                    mip_level,
                    origin,
                    aspect,
                    offset,
                    layout,
                } => encoder.copy_texture_to_buffer(
                    wgpu::TexelCopyTextureInfo {
                        texture: &src,
                        mip_level,
                        origin,
                        aspect,
                    },
                    wgpu::TexelCopyBufferInfo {
                        buffer: &slot.buffer,
                        layout: wgpu::TexelCopyBufferLayout {
                            offset,
                            bytes_per_row: Some(layout.bytes_per_row),
                            rows_per_image: Some(layout.rows_per_image),
                        },
                    },
                    wgpu::Extent3d {
                        width: layout.physical_width,
                        height: layout.physical_height,
                        depth_or_array_layers: layout.layers,
                    },
                ),
            }
        }
        let state = slot.state.clone();
        // `begin_frame` chose this slot because it was free, and only this
        // thread leaves `Free`.
        let taken = state.take(Mapping::Free);
        debug_assert!(
            taken,
            "a free readback buffer is the render thread's to take"
        );
        // Never submitted, its copies never run: the requests are answered
        // `Abandoned` and the buffer (never mapped) is free again.
        let dropped = state.clone();
        let unsubmitted = Unsubmitted::new(move || {
            dropped.abandoned();
        });
        encoder.map_buffer_on_submit(&slot.buffer, wgpu::MapMode::Read, .., move |result| {
            unsubmitted.disarm();
            state.mapped(result.is_ok());
        });
        ring.stats.requests += slot.requests.len() as u64;
        ring.stats.frames += 1;
        ring.next = (index + 1) % ring.slots.len();
    }
}
