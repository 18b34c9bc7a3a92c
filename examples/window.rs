//! A windowed renderer that embeds forgeflow: the reference for embedders
//! with a window (`terrain.rs` is the headless one).
//!
//! It streams a 16384x16384 procedural terrain as a virtual texture and
//! loads a KTX2 texture through the runtime, and draws a low flight over the
//! terrain with the texture in a corner, into a winit window. It follows
//! the window's size, skips frames while the window is minimised or its
//! surface cannot be had (dropping that frame's encoder: the runtime does
//! the frame's work again), and quits when the window is closed, or after
//! `--frames N`.
//!
//! ```text
//! cargo run --release --example window -- [TEXTURE.ktx2] [--frames N]
//! ```
//!
//! Without a display it says so and exits with status 0.

use std::path::PathBuf;
use std::sync::Arc;

use forgeflow::jobs::vt::VtLayout;
use forgeflow::runtime::{Runtime, RuntimeConfig, TextureHandle, TextureStatus, VtHandle};
use forgeflow::vt::VtConfig;
use forgeflow_tools::flight::Flight;
use forgeflow_tools::Terrain;
use winit::application::ApplicationHandler;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, EventLoop};
use winit::window::{Window, WindowId};

type Error = Box<dyn std::error::Error>;

/// Everything that lives as long as the window.
struct Scene {
    window: Arc<Window>,
    surface: wgpu::Surface<'static>,
    config: wgpu::SurfaceConfiguration,
    device: wgpu::Device,
    queue: wgpu::Queue,
    rt: Runtime,
    terrain: VtHandle,
    texture: Option<TextureHandle>,
    flight: Flight,
    frame: u32,
    skipped: u32,
}

impl Scene {
    fn new(window: Arc<Window>, texture: Option<&PathBuf>) -> Result<Self, Error> {
        // 1. The embedder's device, presenting to the window.
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle().with_env());
        let surface = instance.create_surface(Arc::clone(&window))?;
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            compatible_surface: Some(&surface),
            ..Default::default()
        }))?;
        let (device, queue) =
            pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
                required_features: adapter.features() & forgeflow::gpu::wanted_features(),
                required_limits: adapter.limits(),
                ..Default::default()
            }))?;
        let size = window.inner_size();
        let config = surface
            .get_default_config(&adapter, size.width.max(1), size.height.max(1))
            .ok_or("the adapter cannot present to this window")?;
        surface.configure(&device, &config);

        // 2. The runtime, and what it streams. The device-lost callback
        //    stays the application's; it tells the runtime.
        let mut rt = Runtime::new(&device, &queue, RuntimeConfig::default())?;
        let loss = rt.device_loss();
        device.set_device_lost_callback(move |reason, message| {
            eprintln!("device lost: {reason:?} {message}");
            loss.report(reason, &message);
        });
        let layout = VtLayout::new(16384, 16384, 128, 4)?;
        let terrain = rt.add_virtual_texture(
            Terrain::new(layout, 1),
            VtConfig {
                budget_bytes: 64 << 20,
                ..VtConfig::default()
            },
            (config.width, config.height),
        )?;
        let texture = texture.map(|p| rt.load_texture_path(p));

        // 3. The embedder's own scene: its bind group 0, the virtual texture's at 1.
        let vt_layout = rt.virtual_texture::<Terrain>(terrain)?.bind_group_layout();
        let flight = Flight::new(&device, vt_layout, config.format);
        Ok(Scene {
            window,
            surface,
            config,
            device,
            queue,
            rt,
            terrain,
            texture,
            flight,
            frame: 0,
            skipped: 0,
        })
    }

    /// The window's new size: the surface and the virtual texture's feedback follow.
    fn resize(&mut self, width: u32, height: u32) -> Result<(), Error> {
        (self.config.width, self.config.height) = (width, height);
        self.surface.configure(&self.device, &self.config);
        let (rt, screen) = (&mut self.rt, (width, height));
        rt.resize_virtual_texture(self.terrain, screen)?;
        Ok(())
    }

    /// One frame: the runtime's work into the encoder, then the scene.
    fn frame(&mut self) -> Result<(), Error> {
        self.rt.begin_frame()?;
        if let Some(h) = self.texture.filter(|_| !self.flight.shows_picture()) {
            match self.rt.texture(h)? {
                TextureStatus::Ready(t) => self.flight.show(&self.device, t.texture),
                TextureStatus::Failed(e) => return Err(e.clone().into()),
                _ => {}
            }
        }
        let mut encoder = self.device.create_command_encoder(&Default::default());
        let report = self.rt.end_frame(&mut encoder)?; // uploads first, into our encoder
        if let Some(failure) = report.failure {
            eprintln!("frame {}: {failure}", self.frame);
        }
        // No surface texture this time: skip the frame by dropping its
        // encoder (the runtime does the frame's work again).
        use wgpu::CurrentSurfaceTexture as Current;
        let target = match self.surface.get_current_texture() {
            Current::Success(t) | Current::Suboptimal(t) => t,
            Current::Outdated | Current::Lost => {
                self.surface.configure(&self.device, &self.config);
                self.skipped += 1;
                return Ok(());
            }
            Current::Timeout | Current::Occluded => {
                self.skipped += 1;
                return Ok(());
            }
            other => return Err(format!("the surface refused a frame: {other:?}").into()),
        };
        let view = target.texture.create_view(&Default::default());
        let vt_group = self.rt.vt_bind_group(self.terrain)?;
        let size = (self.config.width, self.config.height);
        let frame = (self.frame, size);
        let (queue, flight) = (&self.queue, &self.flight);
        flight.draw(queue, &mut encoder, &view, vt_group, frame);
        self.queue.submit([encoder.finish()]); // the frame's fence follows this submission
        self.window.pre_present_notify();
        self.queue.present(target);
        self.frame += 1;
        if self.frame.is_multiple_of(120) {
            let vt = self.rt.vt_stats(self.terrain)?;
            let (resident, skipped) = (vt.resident, self.skipped);
            println!(
                "frame {}: {resident} tiles resident, {skipped} frames skipped",
                self.frame
            );
        }
        Ok(())
    }
}

/// The window's life as winit drives it.
struct App {
    texture: Option<PathBuf>,
    frames: Option<u32>,
    scene: Option<Scene>,
    minimised: bool,
    error: Option<Error>,
}

impl App {
    fn fail(&mut self, event_loop: &ActiveEventLoop, e: Error) {
        self.error = Some(e);
        event_loop.exit();
    }
}

impl ApplicationHandler for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.scene.is_some() {
            return;
        }
        let attributes = Window::default_attributes()
            .with_title("forgeflow: a virtual texture over a window")
            .with_inner_size(winit::dpi::LogicalSize::new(960, 540));
        let scene = event_loop
            .create_window(attributes)
            .map_err(Into::into)
            .and_then(|w| Scene::new(Arc::new(w), self.texture.as_ref()));
        match scene {
            Ok(scene) => self.scene = Some(scene),
            Err(e) => self.fail(event_loop, e),
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
        let Some(scene) = self.scene.as_mut() else {
            return;
        };
        let result = match event {
            WindowEvent::CloseRequested => {
                event_loop.exit();
                Ok(())
            }
            // Minimised: no frames until the window has a size again.
            WindowEvent::Resized(size) if size.width == 0 || size.height == 0 => {
                self.minimised = true;
                Ok(())
            }
            WindowEvent::Resized(size) => {
                self.minimised = false;
                scene.resize(size.width, size.height)
            }
            WindowEvent::RedrawRequested if !self.minimised => {
                let r = scene.frame();
                if self.frames.is_some_and(|n| scene.frame >= n) {
                    println!(
                        "{} frames drawn, {} skipped: done",
                        scene.frame, scene.skipped
                    );
                    event_loop.exit();
                }
                r
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            self.fail(event_loop, e);
        }
    }

    fn about_to_wait(&mut self, _: &ActiveEventLoop) {
        if let Some(scene) = &self.scene {
            scene.window.request_redraw();
        }
    }
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let mut app = App {
        texture: None,
        frames: None,
        scene: None,
        minimised: false,
        error: None,
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--frames" => app.frames = Some(args.next().ok_or("--frames needs a number")?.parse()?),
            path => app.texture = Some(PathBuf::from(path)),
        }
    }
    let event_loop = match EventLoop::new() {
        Ok(event_loop) => event_loop,
        Err(e) => {
            println!("no display to open a window on ({e}); nothing to do");
            return Ok(());
        }
    };
    event_loop.run_app(&mut app)?;
    // Quitting cleanly: the runtime waits for the GPU before it goes.
    if let Some(mut scene) = app.scene.take() {
        scene.rt.wait_idle(std::time::Duration::from_secs(10))?;
    }
    app.error.map_or(Ok(()), Err)
}
