//! numpy arrays from bytes, and bytes from what Python passes in. The
//! extension links no numpy API (abi3 has no buffer protocol before 3.11):
//! arrays are made by `numpy.frombuffer` over a `bytearray` (one copy,
//! writable), inputs are read from `bytes` without a copy, other objects
//! through their `tobytes()` (one copy).

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

/// A writable numpy array of `dtype` and `shape` over `data`.
pub fn array<'py>(
    py: Python<'py>,
    data: &[u8],
    dtype: &str,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let np = py.import("numpy")?;
    let bytes = PyByteArray::new(py, data);
    np.call_method1("frombuffer", (bytes, dtype))?
        .call_method1("reshape", (shape.to_vec(),))
}

/// The bytes of `data`: a `bytes` object as it is; a numpy array, a
/// `bytearray` or a `memoryview` through its `tobytes()`.
pub fn bytes_of<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(b.clone());
    }
    let b = if data.hasattr("tobytes")? {
        data.call_method0("tobytes")?
    } else {
        data.py().get_type::<PyBytes>().call1((data,))?
    };
    Ok(b.cast_into::<PyBytes>()?)
}
