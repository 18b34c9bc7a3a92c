//! `forgeflow.Runtime`: the library's `Runtime` on a device it opens itself
//! (the best adapter; Mesa's lavapipe where there is no GPU), headless.
//! Every call takes the runtime's lock with the GIL released, so frames,
//! uploads and reads run while other Python threads do.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use forgeflow::gpu::Gpu;
use forgeflow::graph::{Scheduler, SchedulerConfig};
use forgeflow::pool::{BufferPoolConfig, PoolHandle};
use forgeflow::runtime::{
    FrameReport, Runtime, RuntimeConfig, RuntimeError, TextureHandle as RtTexture, TextureInput,
    TextureOptions, TextureStatus,
};
use forgeflow::staging::{OverflowPolicy, StagingConfig, StagingRing, StagingStats};
use forgeflow_test_support::gpu::VerifyRead as _;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::arrays::{array, bytes_of};
use crate::errors;

/// An allocation of the runtime's memory pool.
#[pyclass(module = "forgeflow._native", frozen, eq, hash, from_py_object)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BufferHandle {
    pub key: PoolHandle,
    /// The runtime it belongs to (see `PyRuntime::id`).
    pub runtime: u64,
}

#[pymethods]
impl BufferHandle {
    fn __repr__(&self) -> String {
        format!("BufferHandle({:?})", self.key)
    }
}

/// A texture loaded (or loading) through the runtime.
#[pyclass(module = "forgeflow._native", frozen, eq, hash, from_py_object)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TextureHandle {
    pub key: RtTexture,
    /// The runtime it belongs to (see `PyRuntime::id`).
    pub runtime: u64,
}

#[pymethods]
impl TextureHandle {
    fn __repr__(&self) -> String {
        format!("TextureHandle({:?})", self.key)
    }
}

/// The runtime, its device, and the ring `upload` streams through.
pub struct Inner {
    // Dropped first: the runtime waits for its frames on the device.
    pub rt: Runtime,
    /// Made by the first `upload` (its ring holds 3 x 128 MiB).
    transfers: Option<Transfers>,
    pool: Arc<rayon::ThreadPool>,
    frames_in_flight: u32,
    pub gpu: Gpu,
}

/// Uploads from Python memory as `forgeflow-stress upload` makes them: a
/// staging ring of its own, filled by jobs on the runtime's workers.
struct Transfers {
    ring: StagingRing,
    sched: Scheduler,
}

/// What one `upload` cost.
struct UploadTiming {
    bytes: u64,
    pieces: u64,
    render_thread: Duration,
    fill: Duration,
    fence_wait: Duration,
}

#[pyclass(module = "forgeflow._native", name = "Runtime", frozen)]
pub struct PyRuntime {
    inner: Mutex<Inner>,
    /// Names this runtime in its handles: a key of another runtime could
    /// name a live resource of this one, so it is refused, not looked up.
    id: u64,
}

/// The next runtime's id.
static NEXT_RUNTIME: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl PyRuntime {
    /// The key of a buffer handle of this runtime.
    fn buffer(&self, h: BufferHandle) -> PyResult<PoolHandle> {
        self.owns(h.runtime).map(|()| h.key)
    }

    /// The key of a texture handle of this runtime.
    fn texture_key(&self, h: TextureHandle) -> PyResult<RtTexture> {
        self.owns(h.runtime).map(|()| h.key)
    }

    fn owns(&self, runtime: u64) -> PyResult<()> {
        if runtime == self.id {
            Ok(())
        } else {
            Err(errors::raise(
                "WrongTypeError",
                "the handle belongs to another Runtime",
            ))
        }
    }

    /// The runtime's lock (a panic inside left its state as it was).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// One frame: begin, end (uploads recorded), submit; no drawing.
    pub fn frame(&mut self) -> Result<(FrameReport, Duration), RuntimeError> {
        let t0 = Instant::now();
        self.rt.begin_frame()?;
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        let report = self.rt.end_frame(&mut encoder)?;
        let cpu = t0.elapsed();
        self.gpu.queue.submit([encoder.finish()]);
        let _ = self.gpu.device.poll(wgpu::PollType::Poll);
        Ok((report, cpu))
    }
}

/// Bytes a texture takes on the GPU: every level, every layer.
pub fn texture_bytes(t: &wgpu::Texture) -> u64 {
    let format = t.format();
    let (bw, bh) = format.block_dimensions();
    let block = format.block_copy_size(None).unwrap_or(4) as u64;
    (0..t.mip_level_count())
        .map(|mip| {
            let s = t.size().mip_level_size(mip, t.dimension());
            s.width.div_ceil(bw) as u64
                * s.height.div_ceil(bh) as u64
                * s.depth_or_array_layers as u64
                * block
        })
        .sum()
}

/// The numpy dtype and shape of one layer of `format` at `size` as
/// `VerifyRead::read_texture` returns it.
fn texel_layout(
    format: wgpu::TextureFormat,
    (w, h): (u32, u32),
    len: usize,
) -> (&'static str, Vec<usize>) {
    let (bw, bh) = format.block_dimensions();
    let (w, h) = (w as usize, h as usize);
    if (bw, bh) != (1, 1) {
        let (cols, rows) = (w.div_ceil(bw as usize), h.div_ceil(bh as usize));
        return ("uint8", vec![rows, cols, len / (rows * cols).max(1)]);
    }
    let components = format.components() as usize;
    let bytes = format.block_copy_size(None).unwrap_or(4) as usize;
    let name = format!("{format:?}");
    let signed = name.contains("Snorm") || name.contains("Sint");
    let dtype = match (bytes / components.max(1), name.contains("Float"), signed) {
        (1, _, false) => "uint8",
        (1, _, true) => "int8",
        (2, true, _) => "float16",
        (2, false, false) => "uint16",
        (2, false, true) => "int16",
        (4, true, _) => "float32",
        (4, false, false) => "uint32",
        (4, false, true) => "int32",
        // Packed formats (RGB10A2, RG11B10): their bytes.
        _ => return ("uint8", vec![h, w, bytes]),
    };
    (dtype, vec![h, w, components])
}

/// The frame report as a dict.
fn report_dict<'py>(
    py: Python<'py>,
    r: &FrameReport,
    cpu: Duration,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("frame", r.frame)?;
    d.set_item("jobs", r.jobs)?;
    d.set_item("textures_read", r.textures_read)?;
    d.set_item("textures_uploaded", r.textures_uploaded)?;
    d.set_item("textures_failed", r.textures_failed)?;
    d.set_item("buffer_writes", r.buffer_writes)?;
    d.set_item("staging_bytes", r.staging_bytes)?;
    d.set_item("defrag_moves", r.defrag_moves)?;
    d.set_item("abandoned_frames", r.abandoned_frames.clone())?;
    d.set_item("failure", r.failure.as_ref().map(|e| e.to_string()))?;
    d.set_item("cpu_ms", cpu.as_secs_f64() * 1e3)?;
    Ok(d)
}

/// A staging ring's counters as a dict.
fn staging_dict<'py>(
    py: Python<'py>,
    s: &StagingStats,
    alive: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("bytes_in_use", alive)?;
    d.set_item("frames", s.frames)?;
    d.set_item("bytes_total", s.bytes_total)?;
    d.set_item("bytes_last_frame", s.bytes_last_frame)?;
    d.set_item("high_water_bytes", s.high_water_bytes)?;
    d.set_item("peak_staging_bytes", s.peak_staging_bytes)?;
    d.set_item("pieces", s.pieces)?;
    d.set_item("wraps", s.wraps)?;
    d.set_item("waits", s.waits)?;
    d.set_item("wait_ms_total", s.wait_total.as_secs_f64() * 1e3)?;
    d.set_item("wait_ms_max", s.wait_max.as_secs_f64() * 1e3)?;
    d.set_item("ring_buffers_created", s.ring_buffers_created)?;
    d.set_item("dedicated_buffers_created", s.dedicated_buffers_created)?;
    Ok(d)
}

/// The source `load_texture` takes: a path, or a file's bytes.
#[derive(FromPyObject)]
enum Source<'py> {
    Bytes(Bound<'py, PyBytes>),
    Path(std::path::PathBuf),
}

#[pymethods]
impl PyRuntime {
    /// Opens the best adapter (or lavapipe), a device, and a runtime on it.
    #[new]
    #[pyo3(signature = (
        frames_in_flight = 3,
        threads = None,
        staging_buffer_size = None,
        pool_block_size = None,
        pool_budget = None,
        texture_budget = None,
        texture_upload_per_frame = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        frames_in_flight: u32,
        threads: Option<usize>,
        staging_buffer_size: Option<u64>,
        pool_block_size: Option<u64>,
        pool_budget: Option<u64>,
        texture_budget: Option<u64>,
        texture_upload_per_frame: Option<u64>,
    ) -> PyResult<Self> {
        let inner = py.detach(|| -> PyResult<Inner> {
            let gpu = forgeflow::gpu::open().map_err(|e| errors::other("NoGpuError", e))?;
            let mut builder =
                rayon::ThreadPoolBuilder::new().thread_name(|i| format!("forgeflow-worker-{i}"));
            if let Some(n) = threads {
                builder = builder.num_threads(n);
            }
            let pool = Arc::new(
                builder
                    .build()
                    .map_err(|e| errors::other("InvalidConfigError", e))?,
            );
            let defaults = RuntimeConfig::default();
            let config = RuntimeConfig {
                frames_in_flight,
                thread_pool: Some(Arc::clone(&pool)),
                staging: StagingConfig {
                    buffer_size: staging_buffer_size.unwrap_or(defaults.staging.buffer_size),
                    ..defaults.staging.clone()
                },
                pool: BufferPoolConfig {
                    block_size: pool_block_size.unwrap_or(defaults.pool.block_size),
                    budget_bytes: pool_budget.unwrap_or(defaults.pool.budget_bytes),
                    ..defaults.pool.clone()
                },
                texture_budget_bytes: texture_budget.unwrap_or(defaults.texture_budget_bytes),
                texture_upload_bytes_per_frame: texture_upload_per_frame
                    .unwrap_or(defaults.texture_upload_bytes_per_frame),
                // Textures can be read back (`read_texture`).
                texture_usage: defaults.texture_usage | wgpu::TextureUsages::COPY_SRC,
                ..defaults
            };
            let rt = Runtime::new(&gpu.device, &gpu.queue, config).map_err(errors::runtime)?;
            Ok(Inner {
                rt,
                transfers: None,
                pool,
                frames_in_flight,
                gpu,
            })
        })?;
        Ok(PyRuntime {
            inner: Mutex::new(inner),
            id: NEXT_RUNTIME.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// The adapter the runtime runs on: name, backend, device type, driver.
    #[getter]
    fn adapter<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let info = py.detach(|| self.lock().gpu.info.clone());
        let d = PyDict::new(py);
        d.set_item("name", info.name)?;
        d.set_item("backend", format!("{:?}", info.backend))?;
        d.set_item("device_type", format!("{:?}", info.device_type))?;
        d.set_item("driver", format!("{} {}", info.driver, info.driver_info))?;
        Ok(d)
    }

    /// Starts loading a texture (a path or a file's bytes): it is read,
    /// validated and decoded on background threads and uploaded over the next
    /// frames. Poll `texture_status` or call `wait_texture`.
    fn load_texture(&self, py: Python<'_>, source: Source<'_>) -> TextureHandle {
        let input = match source {
            Source::Bytes(b) => TextureInput::Bytes(b.as_bytes().to_vec()),
            Source::Path(p) => TextureInput::Path(p),
        };
        let key = py.detach(|| {
            self.lock()
                .rt
                .load_texture_with(input, TextureOptions::default())
        });
        TextureHandle {
            key,
            runtime: self.id,
        }
    }

    /// `"loading"`, `"uploading"`, `"ready"` or `"failed"`.
    fn texture_status(&self, py: Python<'_>, handle: TextureHandle) -> PyResult<&'static str> {
        let key = self.texture_key(handle)?;
        py.detach(|| {
            let inner = self.lock();
            Ok(match inner.rt.texture(key).map_err(errors::runtime)? {
                TextureStatus::Loading => "loading",
                TextureStatus::Uploading => "uploading",
                TextureStatus::Ready(_) => "ready",
                TextureStatus::Failed(_) => "failed",
            })
        })
    }

    /// Runs frames until the texture is ready; raises the load's error if it
    /// failed, `LoadTimeoutError` after `timeout` seconds.
    #[pyo3(signature = (handle, timeout = 30.0))]
    fn wait_texture(&self, py: Python<'_>, handle: TextureHandle, timeout: f64) -> PyResult<()> {
        let key = self.texture_key(handle)?;
        py.detach(|| {
            let start = Instant::now();
            let mut inner = self.lock();
            loop {
                match inner.rt.texture(key).map_err(errors::runtime)? {
                    TextureStatus::Ready(_) => return Ok(()),
                    TextureStatus::Failed(e) => return Err(errors::runtime(e.clone())),
                    _ => {}
                }
                if start.elapsed().as_secs_f64() > timeout {
                    return Err(errors::raise(
                        "LoadTimeoutError",
                        format!("texture not ready after {timeout} s"),
                    ));
                }
                inner.frame().map_err(errors::runtime)?;
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    }

    /// A ready texture: its wgpu format, size, levels, layers, and the bytes
    /// it takes on the GPU.
    fn texture_info<'py>(
        &self,
        py: Python<'py>,
        handle: TextureHandle,
    ) -> PyResult<Bound<'py, PyDict>> {
        let key = self.texture_key(handle)?;
        let (format, size, levels, bytes, first_level) = py.detach(|| {
            let inner = self.lock();
            match inner.rt.texture(key).map_err(errors::runtime)? {
                TextureStatus::Ready(t) => Ok((
                    t.texture.format(),
                    t.texture.size(),
                    t.texture.mip_level_count(),
                    texture_bytes(t.texture),
                    t.first_level,
                )),
                other => Err(errors::raise(
                    "FrameOrderError",
                    format!("texture not ready ({other:?}): call wait_texture first"),
                )),
            }
        })?;
        let d = PyDict::new(py);
        d.set_item("format", format!("{format:?}"))?;
        d.set_item("compressed", format.is_compressed())?;
        d.set_item("width", size.width)?;
        d.set_item("height", size.height)?;
        d.set_item("depth_or_layers", size.depth_or_array_layers)?;
        d.set_item("levels", levels)?;
        d.set_item("first_level", first_level)?;
        d.set_item("gpu_bytes", bytes)?;
        Ok(d)
    }

    /// Reads a ready texture's level and layer back from the GPU: (height,
    /// width, channels) texels for uncompressed formats, (block rows, block
    /// columns, bytes per block) `uint8` for block-compressed ones.
    #[pyo3(signature = (handle, level = 0, layer = 0))]
    fn read_texture<'py>(
        &self,
        py: Python<'py>,
        handle: TextureHandle,
        level: u32,
        layer: u32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = self.texture_key(handle)?;
        let (format, size, bytes) = py.detach(|| {
            let inner = self.lock();
            let TextureStatus::Ready(t) = inner.rt.texture(key).map_err(errors::runtime)? else {
                return Err(errors::raise(
                    "FrameOrderError",
                    "texture not ready: call wait_texture first",
                ));
            };
            let t = t.texture;
            if level >= t.mip_level_count() || layer >= t.size().depth_or_array_layers {
                return Err(errors::raise(
                    "NoSuchImageError",
                    format!(
                        "level {level}, layer {layer} of a texture of {} level(s), {} layer(s)",
                        t.mip_level_count(),
                        t.size().depth_or_array_layers
                    ),
                ));
            }
            let size = t.size().mip_level_size(level, t.dimension());
            let bytes = inner
                .gpu
                .read_texture(t, level, layer..layer + 1)
                .map_err(|e| errors::other("DeviceLostError", e))?;
            Ok((t.format(), (size.width, size.height), bytes))
        })?;
        let (dtype, shape) = texel_layout(format, size, bytes.len());
        array(py, &bytes, dtype, &shape)
    }

    /// Allocates `size` bytes of the memory pool (`align`: a power of two).
    #[pyo3(signature = (size, align = 256))]
    fn alloc_buffer(&self, py: Python<'_>, size: u64, align: u64) -> PyResult<BufferHandle> {
        let key = py
            .detach(|| self.lock().rt.alloc_buffer(size, align))
            .map_err(errors::runtime)?;
        Ok(BufferHandle {
            key,
            runtime: self.id,
        })
    }

    /// Queues a write of `data` (bytes, or a numpy array's bytes) at
    /// `offset`; the next `frame()` uploads it. Sizes and offsets: multiples
    /// of 4.
    #[pyo3(signature = (handle, data, offset = 0))]
    fn write_buffer(
        &self,
        py: Python<'_>,
        handle: BufferHandle,
        data: &Bound<'_, PyAny>,
        offset: u64,
    ) -> PyResult<()> {
        let key = self.buffer(handle)?;
        let data = bytes_of(data)?;
        let bytes = data.as_bytes();
        py.detach(|| self.lock().rt.write_buffer(key, offset, bytes))
            .map_err(errors::runtime)
    }

    /// Uploads `data` into the allocation now, as `forgeflow-stress upload`
    /// does: reserved in a staging ring in pieces of `piece_size` bytes, the
    /// pieces filled by jobs on the worker threads, the copies submitted.
    /// Returns the figures: `bytes`, `pieces`, `render_thread_ms` (this
    /// thread's time in forgeflow, waits for the GPU and the workers'
    /// filling excluded, as the stress tool counts it), `fill_ms`,
    /// `fence_wait_ms`. `data` must not change during the call.
    #[pyo3(signature = (handle, data, offset = 0, piece_size = 65536))]
    fn upload<'py>(
        &self,
        py: Python<'py>,
        handle: BufferHandle,
        data: &Bound<'py, PyAny>,
        offset: u64,
        piece_size: u64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let key = self.buffer(handle)?;
        let data = bytes_of(data)?;
        let bytes = data.as_bytes();
        let t = py.detach(|| {
            let mut guard = self.lock();
            let inner = &mut *guard;
            let transfers = match &mut inner.transfers {
                Some(t) => t,
                None => inner.transfers.insert(Transfers::new(
                    &inner.gpu,
                    Arc::clone(&inner.pool),
                    inner.frames_in_flight,
                )?),
            };
            transfers.upload(&inner.rt, &inner.gpu, key, offset, bytes, piece_size)
        })?;
        let d = PyDict::new(py);
        d.set_item("bytes", t.bytes)?;
        d.set_item("pieces", t.pieces)?;
        d.set_item("render_thread_ms", t.render_thread.as_secs_f64() * 1e3)?;
        d.set_item("fill_ms", t.fill.as_secs_f64() * 1e3)?;
        d.set_item("fence_wait_ms", t.fence_wait.as_secs_f64() * 1e3)?;
        Ok(d)
    }

    /// Reads `size` bytes (all by default) of an allocation back from the
    /// GPU as a `uint8` array: what the frames so far have written.
    #[pyo3(signature = (handle, offset = 0, size = None))]
    fn read_buffer<'py>(
        &self,
        py: Python<'py>,
        handle: BufferHandle,
        offset: u64,
        size: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = self.buffer(handle)?;
        let bytes = py.detach(|| {
            let inner = self.lock();
            let r = inner.rt.resolve_buffer(key).map_err(errors::runtime)?;
            let size = size.unwrap_or(r.size.saturating_sub(offset));
            if offset.checked_add(size).is_none_or(|e| e > r.size) || !offset.is_multiple_of(4) || !size.is_multiple_of(4) {
                return Err(errors::raise(
                    "WriteError",
                    format!("a read of {size} bytes at {offset} from an allocation of {} (multiples of 4)", r.size),
                ));
            }
            if size == 0 {
                return Ok(Vec::new());
            }
            inner
                .gpu
                .read_buffer(r.buffer, r.offset + offset, size)
                .map_err(|e| errors::other("DeviceLostError", e))
        })?;
        let n = bytes.len();
        array(py, &bytes, "uint8", &[n])
    }

    /// Frees a buffer or a texture (their memory is reused once the frames
    /// that used it have finished on the GPU).
    fn free(&self, py: Python<'_>, handle: &Bound<'_, PyAny>) -> PyResult<()> {
        if let Ok(b) = handle.extract::<BufferHandle>() {
            let key = self.buffer(b)?;
            return py
                .detach(|| self.lock().rt.free_buffer(key))
                .map_err(errors::runtime);
        }
        if let Ok(t) = handle.extract::<TextureHandle>() {
            let key = self.texture_key(t)?;
            return py
                .detach(|| self.lock().rt.free_texture(key))
                .map_err(errors::runtime);
        }
        Err(errors::raise(
            "WrongTypeError",
            format!(
                "free() takes a BufferHandle or a TextureHandle, not {}",
                handle.get_type().name()?
            ),
        ))
    }

    /// Runs one frame (begin, end, submit): queued writes, texture uploads,
    /// defragmentation. Returns its report; a failed job is reported in
    /// `failure`, not raised (the runtime goes on).
    fn frame<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (report, cpu) = py.detach(|| self.lock().frame()).map_err(errors::runtime)?;
        report_dict(py, &report, cpu)
    }

    /// Waits until the GPU has finished every submitted frame.
    #[pyo3(signature = (timeout = 10.0))]
    fn wait_idle(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        py.detach(|| self.lock().rt.wait_idle(Duration::from_secs_f64(timeout)))
            .map_err(errors::runtime)
    }

    /// The statistics: `runtime` (frames, textures, writes), `staging` (the
    /// runtime's staging ring: bytes in use, wraps, waits, ...), `transfers`
    /// (the ring `upload` uses), `pool` (bytes in use, free, fragmentation,
    /// moves, utilization, ...).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        struct Snapshot {
            rt: forgeflow::runtime::RuntimeStats,
            gpu_bytes: u64,
            staging: (StagingStats, u64),
            transfers: (StagingStats, u64),
            pool: forgeflow::jobs::alloc::PoolMetrics,
            pool_stats: forgeflow::jobs::alloc::PoolStats,
            blocks: usize,
            blocks_released: u64,
        }
        let s = py.detach(|| {
            let inner = self.lock();
            let pool = inner.rt.pool();
            Snapshot {
                rt: inner.rt.stats(),
                gpu_bytes: inner.rt.gpu_bytes(),
                staging: (
                    inner.rt.staging().stats().clone(),
                    inner.rt.staging().staging_bytes(),
                ),
                transfers: inner
                    .transfers
                    .as_ref()
                    .map(|t| (t.ring.stats().clone(), t.ring.staging_bytes()))
                    .unwrap_or_default(),
                pool: pool.allocator().metrics(),
                pool_stats: pool.stats().clone(),
                blocks: pool.blocks(),
                blocks_released: pool.blocks_released(),
            }
        });
        let out = PyDict::new(py);
        let rt = PyDict::new(py);
        rt.set_item("frames", s.rt.frames)?;
        rt.set_item("failed_frames", s.rt.failed_frames)?;
        rt.set_item("textures_ready", s.rt.textures_ready)?;
        rt.set_item("textures_failed", s.rt.textures_failed)?;
        rt.set_item("textures_live", s.rt.textures_live)?;
        rt.set_item("texture_bytes", s.rt.texture_bytes)?;
        rt.set_item("buffer_writes", s.rt.buffer_writes)?;
        rt.set_item("buffer_write_bytes", s.rt.buffer_write_bytes)?;
        rt.set_item("abandoned_frames", s.rt.abandoned_frames)?;
        rt.set_item("gpu_bytes", s.gpu_bytes)?;
        out.set_item("runtime", rt)?;
        out.set_item("staging", staging_dict(py, &s.staging.0, s.staging.1)?)?;
        out.set_item(
            "transfers",
            staging_dict(py, &s.transfers.0, s.transfers.1)?,
        )?;
        let p = PyDict::new(py);
        p.set_item("pool_bytes", s.pool.pool_bytes)?;
        p.set_item("bytes_in_use", s.pool.live_bytes)?;
        p.set_item("pending_bytes", s.pool.pending_bytes)?;
        p.set_item("free_bytes", s.pool.free_bytes)?;
        p.set_item("largest_free", s.pool.largest_free)?;
        p.set_item("fragmentation", s.pool.fragmentation)?;
        p.set_item(
            "utilization",
            if s.pool.pool_bytes == 0 {
                0.0
            } else {
                s.pool.live_bytes as f64 / s.pool.pool_bytes as f64
            },
        )?;
        p.set_item("allocations", s.pool_stats.allocations)?;
        p.set_item("frees", s.pool_stats.frees)?;
        p.set_item("failures", s.pool_stats.failures)?;
        p.set_item("moves", s.pool_stats.allocations_moved)?;
        p.set_item("bytes_moved", s.pool_stats.bytes_moved)?;
        p.set_item("blocks", s.blocks)?;
        p.set_item("blocks_released", s.blocks_released)?;
        out.set_item("pool", p)?;
        Ok(out)
    }

    /// Bytes of GPU memory the runtime holds (pool blocks, textures, staging).
    #[getter]
    fn gpu_bytes(&self, py: Python<'_>) -> u64 {
        py.detach(|| self.lock().rt.gpu_bytes())
    }
}

impl Transfers {
    /// A ring of `buffers` x 128 MiB (a 100 MB transfer fits one buffer) and
    /// a scheduler on the runtime's workers.
    fn new(gpu: &Gpu, pool: Arc<rayon::ThreadPool>, buffers: u32) -> PyResult<Self> {
        let sched = Scheduler::with_pool(
            pool,
            SchedulerConfig {
                frames_in_flight: buffers,
                auto_signal_fences: true,
                // The workers' parallel fill, as forgeflow-stress upload.
                inline_below: Duration::ZERO,
                ..SchedulerConfig::default()
            },
        )
        .map_err(|e| errors::other("InvalidConfigError", e))?;
        let ring = StagingRing::new(
            &gpu.device,
            StagingConfig {
                buffer_size: 128 << 20,
                buffers,
                overflow: OverflowPolicy::Wait,
                wait_timeout: Duration::from_secs(30),
                ..StagingConfig::default()
            },
        )
        .map_err(|e| errors::other("StagingError", e))?;
        Ok(Transfers { ring, sched })
    }

    fn upload(
        &mut self,
        rt: &Runtime,
        gpu: &Gpu,
        handle: PoolHandle,
        offset: u64,
        data: &[u8],
        piece: u64,
    ) -> PyResult<UploadTiming> {
        let r = rt.resolve_buffer(handle).map_err(errors::runtime)?;
        let len = data.len() as u64;
        if offset.checked_add(len).is_none_or(|e| e > r.size)
            || !offset.is_multiple_of(4)
            || !len.is_multiple_of(4)
            || piece == 0
            || !piece.is_multiple_of(4)
        {
            return Err(errors::raise(
                "WriteError",
                format!(
                    "an upload of {len} bytes at {offset} in pieces of {piece} into an allocation of {} (multiples of 4)",
                    r.size
                ),
            ));
        }
        let t0 = Instant::now();
        let wait0 = self.ring.stats().wait_total;
        let staging = self
            .ring
            .begin_frame()
            .map_err(|e| errors::other("StagingError", e))?;
        let mut frame = self
            .sched
            .begin_frame()
            .map_err(|e| errors::other("FrameError", e))?;
        // Pieces grouped into jobs of about 1 MiB each.
        let per_job = ((1u64 << 20) / piece).max(1);
        let mut pieces = 0u64;
        for (g, group) in data.chunks((per_job * piece) as usize).enumerate() {
            let first = g as u64 * per_job * piece;
            let mut writes = Vec::with_capacity(per_job as usize);
            for (i, chunk) in group.chunks(piece as usize).enumerate() {
                let at = r.offset + offset + first + i as u64 * piece;
                let w = staging
                    .write_buffer(r.buffer, at, chunk.len() as u64)
                    .map_err(|e| errors::other("StagingError", e))?;
                writes.push((w, chunk));
            }
            pieces += writes.len() as u64;
            frame
                .add("upload", move |_| {
                    for (mut w, from) in writes {
                        w.write(from)?;
                    }
                    Ok(())
                })
                .map_err(|e| errors::other("FrameError", e))?;
        }
        let declared = Instant::now();
        frame.run().map_err(|e| errors::other("FrameError", e))?;
        let ran = Instant::now();
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        staging.finish(&mut encoder);
        let finished = Instant::now();
        gpu.queue.submit([encoder.finish()]);
        let waited = self.ring.stats().wait_total - wait0;
        Ok(UploadTiming {
            bytes: len,
            pieces,
            render_thread: (declared - t0).saturating_sub(waited) + (finished - ran),
            fill: ran - declared,
            fence_wait: waited,
        })
    }
}
