//! The library's errors as the Python exceptions of `forgeflow.errors`,
//! one class per error kind.

use forgeflow::jobs::alloc::AllocError;
use forgeflow::jobs::texture::file::TextureError;
use forgeflow::pool::PoolError;
use forgeflow::runtime::RuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// An exception of class `kind` (a name in `forgeflow.errors`) with `message`.
pub fn raise(kind: &str, message: impl Into<String>) -> PyErr {
    let message = message.into();
    Python::attach(|py| {
        match py
            .import("forgeflow.errors")
            .and_then(|m| m.getattr(kind))
            .and_then(|c| Ok(c.cast_into::<PyType>()?))
        {
            Ok(class) => PyErr::from_type(class, message),
            Err(e) => e,
        }
    })
}

/// The class a texture file's error is raised as.
fn texture_kind(e: &TextureError) -> &'static str {
    match e {
        TextureError::Io(_) => "TextureFileError",
        TextureError::Invalid(_)
        | TextureError::InvalidDds(_)
        | TextureError::InvalidKtx1(_)
        | TextureError::InvalidPng(_) => "InvalidTextureError",
        TextureError::Unsupported(_)
        | TextureError::NeedsTranscoder { .. }
        | TextureError::VendorSupercompression { .. } => "UnsupportedFormatError",
        TextureError::NoSuchImage { .. } => "NoSuchImageError",
        _ => "TextureError",
    }
}

/// A texture file's error as its exception.
pub fn texture(e: TextureError) -> PyErr {
    raise(texture_kind(&e), e.to_string())
}

/// A runtime error as its exception.
pub fn runtime(e: RuntimeError) -> PyErr {
    let kind = match &e {
        RuntimeError::StaleHandle(_) => "StaleHandleError",
        RuntimeError::FrameOrder(_) => "FrameOrderError",
        RuntimeError::DeviceLost(_) => "DeviceLostError",
        RuntimeError::OutOfMemory(_) => "OutOfMemoryError",
        RuntimeError::Budget { .. } => "BudgetError",
        RuntimeError::QueueFull { .. } => "QueueFullError",
        RuntimeError::Texture(t) => texture_kind(t),
        RuntimeError::Upload(_) => "UploadError",
        RuntimeError::Pool(p) => pool_kind(p),
        RuntimeError::Staging(_) => "StagingError",
        RuntimeError::Graph(_) | RuntimeError::Frame(_) | RuntimeError::Task(_) => "FrameError",
        RuntimeError::VirtualTexture(_) => "VirtualTextureError",
        RuntimeError::Write { .. } => "WriteError",
        RuntimeError::WrongType { .. } => "WrongTypeError",
        RuntimeError::InvalidConfig(_) => "InvalidConfigError",
        _ => "ForgeflowError",
    };
    raise(kind, e.to_string())
}

/// The class a pool error is raised as.
fn pool_kind(e: &PoolError) -> &'static str {
    match e {
        PoolError::Budget { .. } => "BudgetError",
        PoolError::Alloc(AllocError::Stale(_)) => "StaleHandleError",
        PoolError::InvalidConfig(_) => "InvalidConfigError",
        _ => "PoolError",
    }
}

/// Anything with a message, as `kind`.
pub fn other(kind: &str, e: impl std::fmt::Display) -> PyErr {
    raise(kind, e.to_string())
}
