//! The `forgeflow` Python package's extension module, `forgeflow._native`:
//! bindings over forgeflow's public API only. The Python package
//! (`python/forgeflow/`) re-exports it; `_native.pyi` types it.
//!
//! - [`texture`]: texture files without a GPU (info, validate, decode,
//!   transcode).
//! - [`runtime`]: the runtime on a device it opens (buffers, textures,
//!   frames, uploads, statistics).
//! - [`vt`]: virtual textures drawn headless from a camera.
//! - [`pool`]: the pool's allocator core under a simulated churn.
//!
//! Errors become the exceptions of `forgeflow.errors` ([`errors`]); the GIL
//! is released wherever forgeflow runs.

mod arrays;
mod errors;
mod pool;
mod runtime;
mod texture;
mod vt;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(texture::info, m)?)?;
    m.add_function(wrap_pyfunction!(texture::validate, m)?)?;
    m.add_function(wrap_pyfunction!(texture::decode_file, m)?)?;
    m.add_function(wrap_pyfunction!(texture::transcode, m)?)?;
    m.add_function(wrap_pyfunction!(texture::transcode_targets, m)?)?;
    m.add_function(wrap_pyfunction!(pool::simulate_churn, m)?)?;
    m.add_function(wrap_pyfunction!(vt::flight_camera, m)?)?;
    m.add_class::<runtime::PyRuntime>()?;
    m.add_class::<runtime::BufferHandle>()?;
    m.add_class::<runtime::TextureHandle>()?;
    m.add_class::<vt::PyVirtualTexture>()?;
    Ok(())
}
