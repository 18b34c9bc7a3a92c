//! [`RuntimeError`]: everything the [`Runtime`](super::Runtime) can refuse or lose.

use std::fmt;
use std::sync::Arc;

use forgeflow_graph::{FrameError, GraphError, TaskFailed};
use forgeflow_jobs::texture::file::TextureError;

use crate::pool::PoolError;
use crate::staging::StagingError;
use crate::texture::TextureUploadError;
use crate::vt::VirtualTextureError;

/// Why a [`Runtime`](super::Runtime) call failed, or why a texture load did.
///
/// The errors of the layers below are kept as they are (behind an `Arc`
/// where they cannot be cloned), and [`source`](std::error::Error::source)
/// hands them out: a missing file is a [`TextureError::Io`] whose
/// `io::ErrorKind` can be matched, a budget names its numbers.
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
    Texture(Arc<TextureError>),
    /// A texture's upload could not be prepared (unsupported format, a
    /// device limit...).
    Upload(Arc<TextureUploadError>),
    /// The pool refused.
    Pool(PoolError),
    /// Staging memory refused or timed out.
    Staging(StagingError),
    /// The job graph refused (too many jobs, a fence timeout...).
    Graph(GraphError),
    /// A job of the frame failed or panicked (named in it). The frame's
    /// other work went ahead; textures loading in it failed.
    Frame(FrameError),
    /// A background task (a texture's read) panicked.
    Task(TaskFailed),
    /// A virtual texture could not be made.
    VirtualTexture(Arc<VirtualTextureError>),
    /// A buffer write that does not fit its allocation, or is not aligned.
    Write {
        /// The write's offset.
        offset: u64,
        /// Its length in bytes.
        len: u64,
        /// The allocation's size.
        size: u64,
    },
    /// A handle asked for as another type than it names (a virtual
    /// texture of another tile source).
    WrongType {
        /// The type asked for.
        asked: &'static str,
    },
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
            RuntimeError::Texture(e) => write!(f, "texture file: {e}"),
            RuntimeError::Upload(e) => write!(f, "texture upload: {e}"),
            RuntimeError::Pool(e) => write!(f, "buffer pool: {e}"),
            RuntimeError::Staging(e) => write!(f, "staging: {e}"),
            RuntimeError::Graph(e) => write!(f, "job graph: {e}"),
            RuntimeError::Frame(e) => write!(f, "frame failed: {e}"),
            RuntimeError::Task(e) => write!(f, "background task: {e}"),
            RuntimeError::VirtualTexture(e) => write!(f, "virtual texture: {e}"),
            RuntimeError::Write { offset, len, size } => write!(
                f,
                "a write of {len} bytes at offset {offset} does not fit an allocation of \
                 {size} bytes (offset and length must be multiples of 4)"
            ),
            RuntimeError::WrongType { asked } => write!(
                f,
                "the handle names a resource of another type than {asked}"
            ),
            RuntimeError::InvalidConfig(why) => write!(f, "invalid runtime setting: {why}"),
        }
    }
}

impl std::error::Error for RuntimeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RuntimeError::Texture(e) => Some(&**e),
            RuntimeError::Upload(e) => Some(&**e),
            RuntimeError::Pool(e) => Some(e),
            RuntimeError::Staging(e) => Some(e),
            RuntimeError::Graph(e) => Some(e),
            RuntimeError::Frame(e) => Some(e),
            RuntimeError::Task(e) => Some(e),
            RuntimeError::VirtualTexture(e) => Some(&**e),
            _ => None,
        }
    }
}

impl From<PoolError> for RuntimeError {
    fn from(e: PoolError) -> Self {
        RuntimeError::Pool(e)
    }
}

impl From<StagingError> for RuntimeError {
    fn from(e: StagingError) -> Self {
        RuntimeError::Staging(e)
    }
}

impl From<GraphError> for RuntimeError {
    fn from(e: GraphError) -> Self {
        RuntimeError::Graph(e)
    }
}

impl From<FrameError> for RuntimeError {
    fn from(e: FrameError) -> Self {
        RuntimeError::Frame(e)
    }
}

impl From<TaskFailed> for RuntimeError {
    fn from(e: TaskFailed) -> Self {
        RuntimeError::Task(e)
    }
}

impl From<TextureError> for RuntimeError {
    fn from(e: TextureError) -> Self {
        RuntimeError::Texture(Arc::new(e))
    }
}

impl From<TextureUploadError> for RuntimeError {
    fn from(e: TextureUploadError) -> Self {
        match e {
            TextureUploadError::Texture(e) => e.into(),
            TextureUploadError::Staging(e) => e.into(),
            TextureUploadError::Graph(e) => e.into(),
            TextureUploadError::Frame(e) => e.into(),
            other => RuntimeError::Upload(Arc::new(other)),
        }
    }
}

impl From<VirtualTextureError> for RuntimeError {
    fn from(e: VirtualTextureError) -> Self {
        match e {
            VirtualTextureError::Staging(e) => e.into(),
            VirtualTextureError::Graph(e) => e.into(),
            other => RuntimeError::VirtualTexture(Arc::new(other)),
        }
    }
}
