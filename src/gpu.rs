//! A device for a renderer without a window: [`open`] picks the
//! highest-performance adapter and opens a device with its full limits and
//! the optional features forgeflow uses ([`wanted_features`]), with errors
//! that say what to do on a machine that has no GPU driver.
//!
//! A renderer with a window opens its own device (it needs the surface's
//! adapter); it should ask for [`wanted_features`] where the adapter has
//! them, so that block-compressed textures stay compressed on the GPU and
//! frames can be timed.

use std::fmt;

/// An opened GPU: instance, adapter, device, queue and what the adapter is.
pub struct Gpu {
    /// The wgpu instance the adapter came from.
    pub instance: wgpu::Instance,
    /// The adapter.
    pub adapter: wgpu::Adapter,
    /// The device, with the adapter's limits and the optional features forgeflow uses.
    pub device: wgpu::Device,
    /// The device's queue.
    pub queue: wgpu::Queue,
    /// Name, backend and type of the adapter.
    pub info: wgpu::AdapterInfo,
}

impl fmt::Debug for Gpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gpu")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Why no GPU could be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GpuError {
    /// No adapter on any enabled backend.
    NoAdapter {
        /// wgpu's own explanation.
        detail: String,
    },
    /// The adapter refused to create a device.
    RequestDevice {
        /// The adapter's name.
        adapter: String,
        /// wgpu's explanation.
        detail: String,
    },
}

impl fmt::Display for GpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuError::NoAdapter { detail } => write!(
                f,
                "no usable GPU adapter ({detail}). On a headless Linux machine install a Vulkan \
                 driver, e.g. Mesa's software rasterizer: `apt-get install -y mesa-vulkan-drivers`; \
                 WGPU_BACKEND=vulkan|gl selects a backend"
            ),
            GpuError::RequestDevice { adapter, detail } => {
                write!(f, "the adapter '{adapter}' could not create a device: {detail}")
            }
        }
    }
}

impl std::error::Error for GpuError {}

/// Optional features forgeflow uses when the adapter has them (block-compressed
/// textures, 3D textures of 2D blocks, 16-bit normalized formats, GPU
/// timestamps). None is required.
pub fn wanted_features() -> wgpu::Features {
    wgpu::Features::TEXTURE_COMPRESSION_BC
        | wgpu::Features::TEXTURE_COMPRESSION_BC_SLICED_3D
        | wgpu::Features::TEXTURE_COMPRESSION_ETC2
        | wgpu::Features::TEXTURE_COMPRESSION_ASTC
        | wgpu::Features::TEXTURE_COMPRESSION_ASTC_SLICED_3D
        | wgpu::Features::TEXTURE_FORMAT_16BIT_NORM
        | wgpu::Features::TIMESTAMP_QUERY
        | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
}

/// Opens the highest-performance adapter (environment overrides such as
/// `WGPU_BACKEND` and `WGPU_ADAPTER_NAME` apply) and a device with the adapter's
/// full limits and the [`wanted_features`] it supports.
pub fn open() -> Result<Gpu, GpuError> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle().with_env());
    let adapter = pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(
        &instance, None,
    ))
    .map_err(|e| GpuError::NoAdapter {
        detail: e.to_string(),
    })?;
    let info = adapter.get_info();
    let features = adapter.features() & wanted_features();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("forgeflow"),
        required_features: features,
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .map_err(|e| GpuError::RequestDevice {
        adapter: info.name.clone(),
        detail: e.to_string(),
    })?;
    Ok(Gpu {
        instance,
        adapter,
        device,
        queue,
        info,
    })
}
