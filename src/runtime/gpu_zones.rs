//! Tracy GPU zones (feature `tracy`): how long the GPU spends on each frame's
//! forgeflow commands, from timestamp queries where the device has them.
//!
//! Three timestamps per frame bracket two zones in the embedder's encoder:
//! *forgeflow uploads* (the staging copies and scatter) and *forgeflow
//! defrag* (the pool's moves). They are resolved into a buffer and read back
//! through the readback ring, never stalling a frame; the zones' times reach
//! Tracy when the readback is delivered. The GPU clock is calibrated once,
//! at creation, with one blocking timestamp read.

use std::sync::mpsc;

use tracy_client::{Client, GpuContext, GpuContextType};

use crate::staging::ReadbackFrame;

/// Frames whose timestamps may be in flight at once (slots of the query set).
const SLOTS: u32 = 8;
/// Timestamps per frame: before uploads, between uploads and defrag, after.
const PER_FRAME: u32 = 3;

/// The timestamp query set, its resolve buffer and the Tracy GPU context.
pub(crate) struct GpuZones {
    context: GpuContext,
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    next: u32,
}

impl GpuZones {
    /// Zones for `device`, or `None` without a profiler client or without
    /// `TIMESTAMP_QUERY | TIMESTAMP_QUERY_INSIDE_ENCODERS`.
    pub(crate) fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Option<Self> {
        let needed =
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
        if !device.features().contains(needed) {
            return None;
        }
        let client = Client::running()?;
        let queries = device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("forgeflow tracy timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: SLOTS * PER_FRAME,
        });
        let resolve = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("forgeflow tracy timestamps resolved"),
            size: SLOTS as u64 * wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        // Calibration: one timestamp, read back now.
        let read = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("forgeflow tracy calibration"),
            size: 8,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = device.create_command_encoder(&Default::default());
        encoder.write_timestamp(&queries, 0);
        encoder.resolve_query_set(&queries, 0..1, &resolve, 0);
        encoder.copy_buffer_to_buffer(&resolve, 0, &read, 0, 8);
        queue.submit([encoder.finish()]);
        let (tx, rx) = mpsc::channel();
        read.slice(..)
            .map_async(wgpu::MapMode::Read, move |r| drop(tx.send(r)));
        device.poll(wgpu::PollType::wait_indefinitely()).ok()?;
        rx.recv().ok()?.ok()?;
        let start = {
            let view = read.slice(..).get_mapped_range().ok()?;
            i64::from_le_bytes(view[..8].try_into().ok()?)
        };
        read.unmap();
        let context = client
            .new_gpu_context(
                Some("forgeflow"),
                GpuContextType::Vulkan,
                start,
                queue.get_timestamp_period(),
            )
            .ok()?;
        Some(GpuZones {
            context,
            queries,
            resolve,
            next: 0,
        })
    }

    /// The first timestamp of a frame (before its uploads); returns its slot.
    pub(crate) fn begin(&mut self, encoder: &mut wgpu::CommandEncoder) -> u32 {
        let slot = self.next;
        self.next = (self.next + 1) % SLOTS;
        encoder.write_timestamp(&self.queries, slot * PER_FRAME);
        slot
    }

    /// Timestamp `k` (1: uploads done, 2: defrag done) of `slot`.
    pub(crate) fn mark(&self, encoder: &mut wgpu::CommandEncoder, slot: u32, k: u32) {
        encoder.write_timestamp(&self.queries, slot * PER_FRAME + k);
    }

    /// Resolves the frame's timestamps and asks `readback` for them; the
    /// zones are emitted when they arrive.
    pub(crate) fn finish(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        slot: u32,
        readback: &mut ReadbackFrame<'_>,
    ) {
        let first = slot * PER_FRAME;
        // Each slot resolves at its own aligned place.
        let offset = slot as u64 * wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT;
        encoder.resolve_query_set(
            &self.queries,
            first..first + PER_FRAME,
            &self.resolve,
            offset,
        );
        // Static locations: nothing allocated or sent by name per frame.
        let span = |loc: &'static tracy_client::SpanLocation| {
            let mut s = self.context.span(loc).ok()?;
            s.end_zone();
            Some(s)
        };
        let (Some(uploads), Some(defrag)) = (
            span(tracy_client::span_location!("forgeflow uploads")),
            span(tracy_client::span_location!("forgeflow defrag")),
        ) else {
            return; // too many spans pending: this frame goes unmeasured
        };
        let _ = readback.read_buffer(&self.resolve, offset, PER_FRAME as u64 * 8, move |r| {
            let Ok(data) = r else { return };
            let at = |i: usize| {
                data.bytes
                    .get(8 * i..8 * i + 8)
                    .and_then(|b| b.try_into().ok())
                    .map(i64::from_le_bytes)
            };
            if let (Some(a), Some(b), Some(c)) = (at(0), at(1), at(2)) {
                uploads.upload_timestamp_start(a);
                uploads.upload_timestamp_end(b);
                defrag.upload_timestamp_start(b);
                defrag.upload_timestamp_end(c);
            }
        });
    }
}
