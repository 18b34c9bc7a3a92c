//! The GPU for a test, and reads that check what forgeflow wrote without
//! going through forgeflow.

use std::fmt;
use std::ops::Deref;

use forgeflow::gpu::{self, Gpu};

/// One test at a time at a hardware GPU in a process. NVIDIA's Linux
/// driver deadlocks when threads create, use and destroy devices at once,
/// as parallel tests do: on an H100, the 15 runtime tests on 16 threads hung
/// in 8 runs of 8 (in 3 of 8 with only the openings serialized); one test
/// at a time they take 3 s. A CPU adapter (lavapipe) is not held to it.
struct TestTurn;

static TEST_TURN_TAKEN: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
static TEST_TURN_FREED: std::sync::Condvar = std::sync::Condvar::new();

impl TestTurn {
    /// Waits for the turn.
    fn take() -> TestTurn {
        let mut taken = TEST_TURN_TAKEN.lock().unwrap_or_else(|p| p.into_inner());
        while *taken {
            taken = TEST_TURN_FREED
                .wait(taken)
                .unwrap_or_else(|p| p.into_inner());
        }
        *taken = true;
        TestTurn
    }
}

impl Drop for TestTurn {
    fn drop(&mut self) {
        *TEST_TURN_TAKEN.lock().unwrap_or_else(|p| p.into_inner()) = false;
        TEST_TURN_FREED.notify_one();
    }
}

/// A GPU opened for a test: the [`Gpu`] (through `Deref`) and, on a
/// hardware adapter, the process's turn at it, given back after the GPU is
/// dropped (fields drop in order).
pub struct TestGpu {
    gpu: Gpu,
    _turn: Option<TestTurn>,
}

impl Deref for TestGpu {
    type Target = Gpu;
    fn deref(&self) -> &Gpu {
        &self.gpu
    }
}

impl fmt::Debug for TestGpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.gpu.fmt(f)
    }
}

/// Whether the test's adapter has `features` (`what` names them): a test
/// that needs them skips without them, saying so, except under
/// `FORGEFLOW_REQUIRE_GPU=1`, where it fails: CI's lavapipe has BC and
/// timestamps inside encoders, so there no test may pass by skipping.
///
/// # Panics
/// When `FORGEFLOW_REQUIRE_GPU=1` and the adapter lacks them.
pub fn has_features(gpu: &Gpu, features: wgpu::Features, what: &str) -> bool {
    if gpu.device.features().contains(features) {
        return true;
    }
    assert!(
        std::env::var("FORGEFLOW_REQUIRE_GPU").as_deref() != Ok("1"),
        "FORGEFLOW_REQUIRE_GPU=1 but the adapter ({}) has no {what}",
        gpu.info.name
    );
    eprintln!("SKIPPED: the adapter has no {what}");
    false
}

/// The GPU for a test, through the one rule every GPU test follows: with
/// `FORGEFLOW_REQUIRE_GPU=1` (as CI sets it) a missing GPU fails the test;
/// otherwise the test prints that it skipped and why, and gets `None`.
/// On a hardware GPU the tests of a process take turns: the returned `TestGpu`
/// holds the turn until it is dropped (NVIDIA's driver deadlocks when
/// threads create and use devices at once); a test must not open a second
/// one meanwhile. Tests on a CPU adapter (lavapipe) run side by side.
///
/// # Panics
/// When `FORGEFLOW_REQUIRE_GPU=1` and no GPU can be opened: that is the test failing.
pub fn for_test(test: &str) -> Option<TestGpu> {
    // Taken before opening, kept while the test holds the GPU unless the
    // adapter is a CPU one (see `TestTurn`).
    let turn = TestTurn::take();
    match gpu::open() {
        Ok(gpu) => {
            let hardware = gpu.info.device_type != wgpu::DeviceType::Cpu;
            Some(TestGpu {
                gpu,
                _turn: hardware.then_some(turn),
            })
        }
        Err(err) => {
            if std::env::var("FORGEFLOW_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("{test}: FORGEFLOW_REQUIRE_GPU=1 but {err}");
            }
            eprintln!(
                "{test}: SKIPPED, no GPU: {err} (set FORGEFLOW_REQUIRE_GPU=1 to fail instead)"
            );
            None
        }
    }
}

/// Why [`VerifyRead::read_buffer`] or [`VerifyRead::read_texture`] could not read data back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyReadError {
    /// The texture's format has no plain copy layout (a depth-stencil format
    /// that needs an aspect, for example).
    UnreadableFormat {
        /// The texture's format.
        format: wgpu::TextureFormat,
    },
    /// The device could not map the readback buffer (device lost, out of memory).
    Map {
        /// wgpu's explanation.
        detail: String,
    },
}

impl fmt::Display for VerifyReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyReadError::UnreadableFormat { format } => {
                write!(f, "textures of format {format:?} cannot be read back whole")
            }
            VerifyReadError::Map { detail } => {
                write!(f, "the readback buffer could not be mapped: {detail}")
            }
        }
    }
}

impl std::error::Error for VerifyReadError {}

/// Verification reads: plain, blocking wgpu copies into a fresh `MAP_READ`
/// buffer, independent of the staging and readback rings, so that tests and
/// the tools' integrity checks do not check forgeflow with itself. Too slow
/// for a frame loop (each call waits for the GPU to go idle).
pub trait VerifyRead {
    /// `size` bytes of `src` from `offset` (both multiples of 4, as wgpu's
    /// buffer copies require).
    fn read_buffer(
        &self,
        src: &wgpu::Buffer,
        offset: u64,
        size: u64,
    ) -> Result<Vec<u8>, VerifyReadError>;

    /// Array layers (or 3D slices) `layers` of mip `mip`, as tight rows of
    /// blocks (texels for uncompressed formats), layer after layer: the layout
    /// a KTX2 file stores an image in.
    fn read_texture(
        &self,
        tex: &wgpu::Texture,
        mip: u32,
        layers: std::ops::Range<u32>,
    ) -> Result<Vec<u8>, VerifyReadError>;
}

impl VerifyRead for Gpu {
    fn read_buffer(
        &self,
        src: &wgpu::Buffer,
        offset: u64,
        size: u64,
    ) -> Result<Vec<u8>, VerifyReadError> {
        let tmp = readback_buffer(self, size);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(src, offset, &tmp, 0, size);
        self.queue.submit([encoder.finish()]);
        Ok(map_blocking(self, &tmp)?.to_vec())
    }

    fn read_texture(
        &self,
        tex: &wgpu::Texture,
        mip: u32,
        layers: std::ops::Range<u32>,
    ) -> Result<Vec<u8>, VerifyReadError> {
        let format = tex.format();
        let (bw, bh) = format.block_dimensions();
        let block_bytes = format
            .block_copy_size(None)
            .ok_or(VerifyReadError::UnreadableFormat { format })?;
        let size = tex
            .size()
            .mip_level_size(mip, tex.dimension())
            .physical_size(format);
        let (blocks_x, blocks_y) = (size.width / bw, size.height / bh);
        let row = (blocks_x * block_bytes) as usize;
        let padded_row = row.next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT as usize);
        let count = layers.len() as u32;
        let tmp = readback_buffer(self, (padded_row * blocks_y as usize) as u64 * count as u64);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo {
                texture: tex,
                mip_level: mip,
                origin: wgpu::Origin3d {
                    x: 0,
                    y: 0,
                    z: layers.start,
                },
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyBufferInfo {
                buffer: &tmp,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(padded_row as u32),
                    rows_per_image: Some(blocks_y),
                },
            },
            wgpu::Extent3d {
                depth_or_array_layers: count,
                ..size
            },
        );
        self.queue.submit([encoder.finish()]);
        let view = map_blocking(self, &tmp)?;
        Ok(view
            .chunks_exact(padded_row)
            .flat_map(|padded| &padded[..row])
            .copied()
            .collect())
    }
}

fn readback_buffer(gpu: &Gpu, size: u64) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("forgeflow verification readback"),
        size,
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
        mapped_at_creation: false,
    })
}

/// Maps all of `buffer` for reading, waiting for the GPU.
fn map_blocking(gpu: &Gpu, buffer: &wgpu::Buffer) -> Result<wgpu::BufferView, VerifyReadError> {
    let (tx, rx) = std::sync::mpsc::channel();
    buffer.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    let map_err = |detail: String| VerifyReadError::Map { detail };
    gpu.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| map_err(e.to_string()))?;
    rx.recv()
        .map_err(|e| map_err(e.to_string()))?
        .map_err(|e| map_err(e.to_string()))?;
    buffer
        .get_mapped_range(..)
        .map_err(|e| map_err(e.to_string()))
}

/// Loads `file` onto the test's GPU through forgeflow's blocking path (a
/// staging ring of 16 MiB and a scheduler of its own, `COPY_SRC` so that it
/// can be read back), the texture decoded on the CPU when `force_fallback`.
pub fn load_texture(
    gpu: &Gpu,
    file: &(impl forgeflow::jobs::texture::source::TextureSource + ?Sized),
    force_fallback: bool,
) -> Result<forgeflow::texture::LoadedTexture, forgeflow::texture::TextureUploadError> {
    use forgeflow::graph::{Scheduler, SchedulerConfig};
    use forgeflow::staging::{StagingConfig, StagingRing};
    let mut ring = StagingRing::new(
        &gpu.device,
        StagingConfig {
            buffer_size: 16 << 20,
            ..Default::default()
        },
    )?;
    let mut sched = Scheduler::new(SchedulerConfig {
        auto_signal_fences: true,
        ..Default::default()
    })?;
    forgeflow::texture::load_texture_blocking(
        &gpu.device,
        &gpu.queue,
        file,
        &mut ring,
        &mut sched,
        forgeflow::texture::UploadOptions {
            force_fallback,
            usage: wgpu::TextureUsages::COPY_SRC,
            ..forgeflow::texture::UploadOptions::default()
        },
    )
}
