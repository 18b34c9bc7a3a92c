//! [`RuntimeError`]: everything the [`Runtime`](super::Runtime) can refuse or lose.

use std::fmt;

use forgeflow_graph::{FrameError, GraphError};
use forgeflow_jobs::texture::file::TextureError;

use crate::pool::PoolError;
use crate::staging::StagingError;
use crate::texture::TextureUploadError;
use crate::vt::VirtualTextureError;

/// Why a [`Runtime`](super::Runtime) call failed, or why a texture load did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RuntimeError {
    /// A handle whose resource was freed (or that another runtime made).
    StaleHandle(&'static str),
    /// `begin_frame` and `end_frame` were not called in turn.
    FrameOrder(&'static str),
    /// The device was lost (`reason` as wgpu gave it). Resources already
    /// resident are gone with it; create a new device and a new runtime.
    DeviceLost(String),
    /// wgpu could not allocate GPU memory for a resource.
    OutOfMemory(String),
    /// A budget is used up: free something, or raise the budget in the config.
    Budget {
        /// Which budget.
        what: &'static str,
        /// Bytes asked for.
        requested: u64,
        /// Bytes in use.
        in_use: u64,
        /// The budget.
        budget: u64,
    },
    /// A request queue is full (back-pressure): end a frame to drain it,
    /// or raise the limit in the config.
    QueueFull {
        /// Which queue.
        what: &'static str,
        /// Its limit.
        limit: u64,
        /// What the limit counts.
        unit: &'static str,
    },
    /// A texture file could not be read or is not a valid texture.
    Texture(String),
    /// A texture's upload could not be prepared (unsupported format...).
    Upload(String),
    /// The pool refused.
    Pool(PoolError),
    /// Staging memory refused or timed out.
    Staging(String),
    /// The job graph refused (too many jobs, a fence timeout...).
    Graph(String),
    /// A job of the frame failed or panicked (named in the message). The
    /// frame's other work went ahead; textures loading in it failed.
    Frame(String),
    /// A virtual texture could not be made.
    VirtualTexture(String),
    /// A configuration value out of range.
    InvalidConfig(String),
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuntimeError::StaleHandle(what) => write!(
                f,
                "stale {what} handle: the resource was freed, or the handle belongs to another runtime"
            ),
            RuntimeError::FrameOrder(why) => write!(f, "frame order: {why}"),
            RuntimeError::DeviceLost(why) => write!(
                f,
                "the GPU device was lost ({why}); create a new device and a new runtime"
            ),
            RuntimeError::OutOfMemory(why) => write!(
                f,
                "the GPU is out of memory ({why}); free resources or lower the budgets"
            ),
            RuntimeError::Budget { what, requested, in_use, budget } => write!(
                f,
                "the {what} budget of {budget} bytes cannot take {requested} more ({in_use} in use); \
                 free resources or raise it in RuntimeConfig"
            ),
            RuntimeError::QueueFull { what, limit, unit } => write!(
                f,
                "the queue of {what} is full ({limit} {unit}); end a frame to drain it, or raise \
                 the limit in RuntimeConfig"
            ),
            RuntimeError::Texture(why) => write!(f, "texture file: {why}"),
            RuntimeError::Upload(why) => write!(f, "texture upload: {why}"),
            RuntimeError::Pool(e) => write!(f, "buffer pool: {e}"),
            RuntimeError::Staging(why) => write!(f, "staging: {why}"),
            RuntimeError::Graph(why) => write!(f, "job graph: {why}"),
            RuntimeError::Frame(why) => write!(f, "frame failed: {why}"),
            RuntimeError::VirtualTexture(why) => write!(f, "virtual texture: {why}"),
            RuntimeError::InvalidConfig(why) => write!(f, "invalid runtime setting: {why}"),
        }
    }
}

impl std::error::Error for RuntimeError {}

impl From<PoolError> for RuntimeError {
    fn from(e: PoolError) -> Self {
        RuntimeError::Pool(e)
    }
}

impl From<StagingError> for RuntimeError {
    fn from(e: StagingError) -> Self {
        RuntimeError::Staging(e.to_string())
    }
}

impl From<GraphError> for RuntimeError {
    fn from(e: GraphError) -> Self {
        RuntimeError::Graph(e.to_string())
    }
}

impl From<FrameError> for RuntimeError {
    fn from(e: FrameError) -> Self {
        RuntimeError::Frame(e.to_string())
    }
}

impl From<TextureError> for RuntimeError {
    fn from(e: TextureError) -> Self {
        RuntimeError::Texture(e.to_string())
    }
}

impl From<TextureUploadError> for RuntimeError {
    fn from(e: TextureUploadError) -> Self {
        match e {
            TextureUploadError::Texture(e) => RuntimeError::Texture(e.to_string()),
            TextureUploadError::Staging(e) => e.into(),
            TextureUploadError::Graph(e) => e.into(),
            other => RuntimeError::Upload(other.to_string()),
        }
    }
}

impl From<VirtualTextureError> for RuntimeError {
    fn from(e: VirtualTextureError) -> Self {
        match e {
            VirtualTextureError::Staging(e) => e.into(),
            VirtualTextureError::Graph(e) => e.into(),
            other => RuntimeError::VirtualTexture(other.to_string()),
        }
    }
}
