//! [`DeviceLoss`]: how a runtime learns that its device is lost, without
//! taking the device's lost callback from the application.
//!
//! wgpu keeps one lost callback per device, and setting one replaces the
//! last; a runtime that set its own would silence the application's (and a
//! second runtime the first's). So the runtime leaves the callback alone:
//! the application forwards the loss to each runtime's [`DeviceLoss`] from
//! its own callback. A runtime also marks itself lost when the GPU refuses
//! to map its staging buffers, which is how a device loss shows where
//! nothing is forwarded.
//!
//! ```no_run
//! # fn demo(device: wgpu::Device, queue: wgpu::Queue) -> Result<(), forgeflow::runtime::RuntimeError> {
//! use forgeflow::runtime::{Runtime, RuntimeConfig};
//! let rt = Runtime::new(&device, &queue, RuntimeConfig::default())?;
//! let loss = rt.device_loss();
//! device.set_device_lost_callback(move |reason, message| {
//!     loss.report(reason, &message);
//!     eprintln!("the renderer's own handling: {reason:?} {message}");
//! });
//! # Ok(()) }
//! ```

use std::sync::{Arc, Mutex};

/// A runtime's device-loss flag, to forward the device's lost callback to;
/// cheap to clone, `Send` and `Sync`.
#[derive(Debug, Clone, Default)]
pub struct DeviceLoss {
    why: Arc<Mutex<Option<String>>>,
}

impl DeviceLoss {
    /// The device is lost, as wgpu's lost callback says: from now on every
    /// call of the runtime returns [`RuntimeError::DeviceLost`](super::RuntimeError::DeviceLost)
    /// with this reason and message. A second report keeps the first.
    pub fn report(&self, reason: wgpu::DeviceLostReason, message: &str) {
        self.set(format!("{reason:?}: {message}"));
    }

    /// Whether a loss was reported.
    pub fn is_lost(&self) -> bool {
        self.why().is_some()
    }

    /// The loss, as reported.
    pub fn why(&self) -> Option<String> {
        self.why.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn set(&self, why: String) {
        self.why
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(why);
    }
}
