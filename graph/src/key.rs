//! Generational keys: the only way to name a job, a resource or a frame.
//!
//! Keys are [`slotmap`] keys: an index plus a version. A key whose slot has been
//! reused (a job key from an earlier frame, a resource that was removed) no longer
//! matches and every lookup through it returns an error instead of another
//! job's or resource's data.

use std::fmt;

slotmap::new_key_type! {
    /// Names one job of the frame being declared.
    ///
    /// Job keys live for one frame: at the next [`Scheduler::begin_frame`](crate::Scheduler::begin_frame)
    /// every key of the previous frame becomes stale and using it is a
    /// [`GraphError::StaleJob`](crate::GraphError::StaleJob).
    pub struct JobKey;

    /// Names a resource (a buffer, a texture, a tile table...) whose reads and
    /// writes jobs declare, so that the scheduler can order them.
    ///
    /// Resource keys live until [`Scheduler::remove_resource`](crate::Scheduler::remove_resource).
    pub struct ResourceKey;
}

/// The number of a frame, counted from 0 by [`Scheduler::begin_frame`](crate::Scheduler::begin_frame).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrameIndex(pub u64);

impl FrameIndex {
    /// The frame number as a plain integer.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for FrameIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "frame {}", self.0)
    }
}

/// How a job touches a resource it declares.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// The job only reads: it runs after the last earlier writer, alongside other readers.
    Read,
    /// The job writes: it runs after the last earlier writer and after every earlier reader.
    Write,
}
