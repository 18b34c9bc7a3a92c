//! The staging rings' errors.

use std::fmt;
use std::time::Duration;

/// Why an upload or readback could not be staged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StagingError {
    /// A configuration value out of range.
    InvalidConfig {
        /// Which setting.
        setting: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// An offset or size that the copy cannot use.
    Unaligned {
        /// What was misaligned.
        what: &'static str,
        /// Its value.
        value: u64,
        /// The multiple it must be.
        required: u64,
    },
    /// A copy that reaches past the end of its destination (or source).
    OutOfBounds {
        /// One past the last byte the copy would touch.
        end: u64,
        /// The resource's size.
        size: u64,
    },
    /// A zero-sized upload or readback.
    Empty,
    /// A texture region the copy cannot address (format, mip, origin or extent).
    Texture(String),
    /// The piece does not fit and the policy is [`OverflowPolicy::Error`](super::OverflowPolicy::Error).
    Full {
        /// Bytes asked for.
        requested: u64,
        /// Bytes left in the frame's buffer.
        available: u64,
    },
    /// The piece does not fit and the policy is [`OverflowPolicy::Defer`](super::OverflowPolicy::Defer):
    /// keep it and ask again next frame.
    Deferred {
        /// Bytes asked for.
        requested: u64,
    },
    /// Dedicated buffers in flight would exceed `max_dedicated_bytes`.
    DedicatedBudget {
        /// Bytes asked for.
        requested: u64,
        /// Bytes of dedicated buffers still in flight.
        in_flight: u64,
        /// The budget.
        budget: u64,
    },
    /// A buffer did not come back from the GPU in time.
    Timeout {
        /// How long it waited.
        waited: Duration,
    },
    /// wgpu could not map a staging buffer (device lost, out of memory...).
    Map(String),
    /// The frame's data did not match the reservation (a source of the wrong length...).
    Mismatch {
        /// Bytes the reservation holds.
        expected: u64,
        /// Bytes given.
        got: u64,
    },
    /// No space is free for a readback this frame; ask again later.
    ReadbackBusy,
    /// The encoder the readback was recorded into was dropped without
    /// being submitted: its copy never ran. Ask again.
    Abandoned,
}

impl fmt::Display for StagingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StagingError::InvalidConfig { setting, reason } => {
                write!(f, "invalid staging setting `{setting}`: {reason}")
            }
            StagingError::Unaligned { what, value, required } => write!(
                f,
                "{what} {value} is not a multiple of {required}, which the GPU copy requires"
            ),
            StagingError::OutOfBounds { end, size } => write!(
                f,
                "the copy would reach byte {end} of a resource of {size} bytes"
            ),
            StagingError::Empty => f.write_str("nothing to copy: the size is 0"),
            StagingError::Texture(reason) => write!(f, "cannot copy this texture region: {reason}"),
            StagingError::Full { requested, available } => write!(
                f,
                "staging ring full: {requested} bytes asked, {available} left this frame; \
                 use a larger buffer_size, split the upload, or the Wait or Defer policy"
            ),
            StagingError::Deferred { requested } => write!(
                f,
                "{requested} bytes deferred: the frame's staging space is used up; upload them next frame"
            ),
            StagingError::DedicatedBudget { requested, in_flight, budget } => write!(
                f,
                "a dedicated staging buffer of {requested} bytes would exceed max_dedicated_bytes \
                 ({in_flight} of {budget} bytes in flight); raise buffer_size or max_dedicated_bytes, or split the upload"
            ),
            StagingError::Timeout { waited } => write!(
                f,
                "a staging buffer did not come back from the GPU within {waited:?}: was the \
                 encoder passed to finish() submitted? is the device polled?"
            ),
            StagingError::Map(msg) => write!(f, "could not map a staging buffer: {msg}"),
            StagingError::Mismatch { expected, got } => write!(
                f,
                "the reservation holds {expected} bytes but {got} were given"
            ),
            StagingError::ReadbackBusy => f.write_str(
                "no readback space is free this frame (results of earlier frames are not collected yet); ask again next frame",
            ),
            StagingError::Abandoned => f.write_str(
                "the encoder this readback was recorded into was dropped unsubmitted; ask again",
            ),
        }
    }
}

impl std::error::Error for StagingError {}
