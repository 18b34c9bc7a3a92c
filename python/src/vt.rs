//! `forgeflow.VirtualTexture`: a virtual texture streamed by a runtime (the
//! procedural terrain, or a tile pack), drawn headless by the examples'
//! flight scene from a camera Python gives per frame.

use forgeflow::jobs::vt::{TilePack, VtLayout};
use forgeflow::runtime::{RuntimeError, VtHandle};
use forgeflow::vt::VtConfig;
use forgeflow_test_support::gpu::VerifyRead as _;
use forgeflow_tools::flight::{Camera, Flight};
use forgeflow_tools::Terrain;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::array;
use crate::errors;
use crate::runtime::{Inner, PyRuntime};

/// What the tiles come from.
enum Source {
    Terrain,
    Pack,
}

struct Scene {
    handle: VtHandle,
    flight: Flight,
    target: wgpu::Texture,
    view: wgpu::TextureView,
    size: (u32, u32),
    layout: VtLayout,
    budget: u64,
    frames: u32,
    failures: u64,
    last_failure: Option<String>,
}

#[pyclass(module = "forgeflow._native", name = "VirtualTexture", frozen)]
pub struct PyVirtualTexture {
    runtime: Py<PyRuntime>,
    scene: std::sync::Mutex<Scene>,
}

impl Drop for PyVirtualTexture {
    /// The runtime lets the texture go (its memory is freed after the frames
    /// that used it). The runtime's lock is never held by a thread that waits
    /// for the GIL, so taking it here cannot deadlock.
    fn drop(&mut self) {
        let handle = self.scene.lock().unwrap_or_else(|p| p.into_inner()).handle;
        let runtime: &PyRuntime = self.runtime.get();
        let _ = runtime.lock().rt.remove_virtual_texture(handle);
    }
}

/// The flight path's camera at frame `frame`, as `render` takes it.
#[pyfunction]
pub fn flight_camera<'py>(py: Python<'py>, frame: u32) -> PyResult<Bound<'py, PyDict>> {
    let c = Camera::flight(frame);
    let d = PyDict::new(py);
    d.set_item("position", (c.position[0], c.position[1], c.position[2]))?;
    d.set_item("yaw", c.yaw)?;
    d.set_item("pitch", c.pitch)?;
    Ok(d)
}

impl Scene {
    /// One frame of the runtime with the scene drawn; the picture read back.
    fn render(&mut self, inner: &mut Inner, camera: &Camera) -> Result<Vec<u8>, RuntimeError> {
        inner.rt.begin_frame()?;
        let device = inner.gpu.device.clone();
        let mut encoder = device.create_command_encoder(&Default::default());
        let report = inner.rt.end_frame(&mut encoder)?;
        if let Some(f) = report.failure {
            self.failures += 1;
            self.last_failure = Some(f.to_string());
        }
        let group = inner.rt.vt_bind_group(self.handle)?;
        self.flight.draw_from(
            &inner.gpu.queue,
            &mut encoder,
            &self.view,
            group,
            (camera, self.size),
        );
        inner.gpu.queue.submit([encoder.finish()]);
        self.frames += 1;
        inner
            .gpu
            .read_texture(&self.target, 0, 0..1)
            .map_err(|e| RuntimeError::DeviceLost(e.to_string()))
    }
}

#[pymethods]
impl PyVirtualTexture {
    /// A virtual texture on `runtime`: the procedural terrain of `size`
    /// texels a side, or the tile pack at `pack` (made by `forgeflow-tex
    /// vt-build`), resident within `budget` bytes, drawn at `resolution`.
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (runtime, size = 16384, budget = 256 << 20, resolution = (640, 360), pack = None, tile_size = 128, seed = 1))]
    fn new(
        py: Python<'_>,
        runtime: Py<PyRuntime>,
        size: u32,
        budget: u64,
        resolution: (u32, u32),
        pack: Option<std::path::PathBuf>,
        tile_size: u32,
        seed: u64,
    ) -> PyResult<Self> {
        let rt_ref: &PyRuntime = runtime.get();
        let scene = py.detach(|| -> PyResult<Scene> {
            let mut inner = rt_ref.lock();
            // The target is a texture of that size: checked before wgpu sees it.
            let side = inner.gpu.device.limits().max_texture_dimension_2d;
            if resolution.0 == 0 || resolution.1 == 0 || resolution.0.max(resolution.1) > side {
                return Err(errors::raise(
                    "InvalidConfigError",
                    format!("resolution {resolution:?}: each side from 1 to {side}"),
                ));
            }
            let config = VtConfig {
                budget_bytes: budget,
                ..VtConfig::default()
            };
            let (handle, layout, source) = match pack {
                Some(path) => {
                    let pack = TilePack::open(&path)
                        .map_err(|e| errors::other("VirtualTextureError", e))?;
                    let layout = *pack.layout();
                    let h = inner
                        .rt
                        .add_virtual_texture(pack, config, resolution)
                        .map_err(errors::runtime)?;
                    (h, layout, Source::Pack)
                }
                None => {
                    let layout = VtLayout::new(size, size, tile_size, 4)
                        .map_err(|e| errors::other("InvalidConfigError", e))?;
                    let h = inner
                        .rt
                        .add_virtual_texture(Terrain::new(layout, seed), config, resolution)
                        .map_err(errors::runtime)?;
                    (h, layout, Source::Terrain)
                }
            };
            let vt_layout = match source {
                Source::Terrain => inner
                    .rt
                    .virtual_texture::<Terrain>(handle)
                    .map(|v| v.bind_group_layout().clone()),
                Source::Pack => inner
                    .rt
                    .virtual_texture::<TilePack>(handle)
                    .map(|v| v.bind_group_layout().clone()),
            }
            .map_err(errors::runtime)?;
            let device = &inner.gpu.device;
            let flight = Flight::new(device, &vt_layout, wgpu::TextureFormat::Rgba8Unorm);
            let target =
                forgeflow_tools::flight::target(device, "forgeflow-python target", resolution);
            let view = target.create_view(&Default::default());
            Ok(Scene {
                handle,
                flight,
                target,
                view,
                size: resolution,
                layout,
                budget,
                frames: 0,
                failures: 0,
                last_failure: None,
            })
        })?;
        Ok(PyVirtualTexture {
            runtime,
            scene: std::sync::Mutex::new(scene),
        })
    }

    /// Runs one frame of the runtime and draws the terrain seen from the
    /// camera (`position`: x, height, z with x and z in [0, 1]; `yaw` and
    /// `pitch` in radians; each defaults to the flight path's at this frame):
    /// returns the picture, (height, width, 4) `uint8` RGBA.
    #[pyo3(signature = (position = None, yaw = None, pitch = None))]
    fn render<'py>(
        &self,
        py: Python<'py>,
        position: Option<(f32, f32, f32)>,
        yaw: Option<f32>,
        pitch: Option<f32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let rt: &PyRuntime = self.runtime.get();
        let (pixels, (w, h)) = py.detach(|| {
            let mut scene = self.scene.lock().unwrap_or_else(|p| p.into_inner());
            let path = Camera::flight(scene.frames);
            let camera = Camera {
                position: position.map_or(path.position, |(x, y, z)| [x, y, z]),
                yaw: yaw.unwrap_or(path.yaw),
                pitch: pitch.unwrap_or(path.pitch),
            };
            let mut inner = rt.lock();
            let pixels = scene.render(&mut inner, &camera).map_err(errors::runtime)?;
            Ok::<_, PyErr>((pixels, scene.size))
        })?;
        array(py, &pixels, "uint8", &[h as usize, w as usize, 4])
    }

    /// Streaming statistics: `resident` tiles, `slots`, `hit_rate`,
    /// `fault_latency_frames_p50`/`_p95` (frames from a tile's first request
    /// to its upload), `mip_bias`, `gpu_bytes`, `budget_bytes`, `faults`,
    /// `tiles_uploaded`, `evicted`, `failed_loads`, `frames`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let rt: &PyRuntime = self.runtime.get();
        let (s, budget, frames, failures, last, layout) = py
            .detach(|| {
                let scene = self.scene.lock().unwrap_or_else(|p| p.into_inner());
                let inner = rt.lock();
                inner.rt.vt_stats(scene.handle).cloned().map(|s| {
                    (
                        s,
                        scene.budget,
                        scene.frames,
                        scene.failures,
                        scene.last_failure.clone(),
                        scene.layout,
                    )
                })
            })
            .map_err(errors::runtime)?;
        let quantile = |q: f64| -> u64 {
            let total: u64 = s.fault_latency_frames.iter().sum();
            if total == 0 {
                return 0;
            }
            let want = (q * total as f64).ceil() as u64;
            let mut seen = 0;
            for (frames, &n) in s.fault_latency_frames.iter().enumerate() {
                seen += n;
                if seen >= want {
                    return frames as u64;
                }
            }
            63
        };
        let d = PyDict::new(py);
        d.set_item("frames", frames)?;
        d.set_item("resident", s.resident)?;
        d.set_item("slots", s.slots)?;
        d.set_item("requested", s.requested)?;
        d.set_item("faults", s.faults)?;
        d.set_item("hits", s.hits)?;
        d.set_item("requests", s.requests)?;
        d.set_item(
            "hit_rate",
            if s.requests == 0 {
                0.0
            } else {
                s.hits as f64 / s.requests as f64
            },
        )?;
        d.set_item("fault_latency_frames_p50", quantile(0.5))?;
        d.set_item("fault_latency_frames_p95", quantile(0.95))?;
        d.set_item("mip_bias", s.bias)?;
        d.set_item("gpu_bytes", s.gpu_bytes)?;
        d.set_item("budget_bytes", budget)?;
        d.set_item("tiles_uploaded", s.tiles_uploaded)?;
        d.set_item("evicted", s.evicted)?;
        d.set_item("failed_loads", s.failed_loads)?;
        d.set_item("failed_frames", failures)?;
        d.set_item("last_failure", last)?;
        d.set_item("size", layout.size())?;
        Ok(d)
    }
}
