//! Frames with every kind of job the runtime declares, for the tests of what
//! a Tracy profiler receives (`tests/tracy.rs` with forgeflow's capture,
//! `tests/tracy_tools.rs` with Tracy's own): buffer uploads and
//! defragmentation (a pool with holes), texture reads and uploads (PNGs by
//! bytes), page faults (a virtual texture asked for tiles of its finest
//! level).
// Each test binary that includes this module uses part of it.
#![allow(dead_code)]

use forgeflow::gpu::Gpu;
use forgeflow::jobs::vt::{TileId, VtLayout};
use forgeflow::pool::{BufferPoolConfig, PoolHandle};
use forgeflow::runtime::{FrameReport, Runtime, RuntimeConfig, TextureHandle, VtHandle};
use forgeflow::vt::VtConfig;
use forgeflow_tools::Terrain;

/// The runtime the workload runs on: 2 threads, a pool of 1 MiB blocks.
pub fn runtime(gpu: &Gpu) -> Runtime {
    Runtime::new(
        &gpu.device,
        &gpu.queue,
        RuntimeConfig {
            threads: Some(2),
            pool: BufferPoolConfig {
                block_size: 1 << 20,
                budget_bytes: 8 << 20,
                ..Default::default()
            },
            ..RuntimeConfig::default()
        },
    )
    .expect("runtime")
}

/// One frame: begin, end, submit, wait.
pub fn frame(gpu: &Gpu, rt: &mut Runtime) -> FrameReport {
    rt.begin_frame().expect("begin_frame");
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    let report = rt.end_frame(&mut encoder).expect("end_frame");
    gpu.queue.submit([encoder.finish()]);
    let _ = gpu.device.poll(wgpu::PollType::wait_indefinitely());
    report
}

/// A `w` x `h` RGBA PNG of a gradient.
fn png(w: u32, h: u32) -> Vec<u8> {
    let pixels: Vec<u8> = (0..w * h * 4).map(|i| (i * 7 % 251) as u8).collect();
    forgeflow_test_support::png::rgba(w, h, &pixels)
}

/// The workload's resources and its frame count.
pub struct Workload {
    buffers: Vec<PoolHandle>,
    vt: VtHandle,
    /// The textures it loads.
    pub textures: Vec<TextureHandle>,
    frames: u32,
    /// Allocations defragmentation moved so far.
    pub moves: u32,
}

impl Workload {
    /// Sixteen buffers written, a virtual texture, four PNGs loading.
    pub fn new(rt: &mut Runtime) -> Self {
        let buffers = (0..16)
            .map(|i| {
                let h = rt.alloc_buffer(32 << 10, 16).unwrap();
                rt.write_buffer(h, 0, &vec![i as u8; 32 << 10]).unwrap();
                h
            })
            .collect();
        let vt = rt
            .add_virtual_texture(
                Terrain::new(VtLayout::new(512, 512, 64, 4).unwrap(), 7),
                VtConfig {
                    budget_bytes: 4 << 20,
                    ..VtConfig::default()
                },
                (64, 64),
            )
            .unwrap();
        let textures = (0..4)
            .map(|i| rt.load_texture_bytes(png(64 + i * 16, 64)))
            .collect();
        Workload {
            buffers,
            vt,
            textures,
            frames: 0,
            moves: 0,
        }
    }

    /// The next frame: every other buffer freed in frame 2 (holes that
    /// defragmentation closes), a write every fourth frame, a tile of the
    /// finest level asked for every frame.
    pub fn frame(&mut self, gpu: &Gpu, rt: &mut Runtime) -> FrameReport {
        let f = self.frames;
        if f == 2 {
            for &h in self.buffers.iter().step_by(2) {
                rt.free_buffer(h).unwrap();
            }
        }
        if f.is_multiple_of(4) {
            rt.write_buffer(self.buffers[1], 0, &[f as u8; 256])
                .unwrap();
        }
        let (x, y) = ((f % 8) as u16, ((f / 8) % 8) as u16);
        rt.push_vt_feedback(self.vt, vec![TileId { mip: 0, x, y }.pack(1)])
            .unwrap();
        let report = frame(gpu, rt);
        self.moves += report.defrag_moves;
        self.frames += 1;
        report
    }
}
