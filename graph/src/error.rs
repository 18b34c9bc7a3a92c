//! Errors: what went wrong, in words a user can act on.

use std::fmt;
use std::time::Duration;

use crate::key::{FrameIndex, JobKey, ResourceKey};
use crate::stats::FrameSummary;

/// An error from the scheduler's API: a bad argument, a stale key, a fence that
/// never came. Job failures are reported separately, as a [`FrameError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GraphError {
    /// A job key that does not belong to the frame being declared or run.
    StaleJob {
        /// The key that was given.
        key: JobKey,
        /// The frame that is being declared now.
        frame: FrameIndex,
    },
    /// A resource key whose resource was removed (or that came from another scheduler).
    StaleResource {
        /// The key that was given.
        key: ResourceKey,
    },
    /// A configuration value out of its range.
    InvalidConfig {
        /// Which setting.
        setting: &'static str,
        /// What is wrong with it and what is allowed.
        reason: String,
    },
    /// `begin_frame` waited the configured fence timeout for an old frame's fence.
    FenceTimeout {
        /// The frame whose fence did not signal.
        frame: FrameIndex,
        /// How long `begin_frame` waited.
        waited: Duration,
    },
    /// A frame number that has not been begun yet.
    FrameNotBegun {
        /// The frame that was named.
        frame: FrameIndex,
        /// The next frame `begin_frame` will start.
        next: FrameIndex,
    },
    /// More jobs in one frame than the scheduler can index.
    TooManyJobs {
        /// The most jobs one frame may hold.
        limit: usize,
    },
    /// The worker thread pool could not be created.
    ThreadPool(String),
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::StaleJob { key, frame } => write!(
                f,
                "stale job key {key:?}: it is not a job of {frame}; job keys are valid only in the frame that declared them"
            ),
            GraphError::StaleResource { key } => write!(
                f,
                "stale resource key {key:?}: the resource was removed or belongs to another scheduler; register it again with Scheduler::register_resource"
            ),
            GraphError::InvalidConfig { setting, reason } => {
                write!(f, "invalid scheduler setting `{setting}`: {reason}")
            }
            GraphError::FenceTimeout { frame, waited } => write!(
                f,
                "the fence of {frame} was not signalled within {waited:?}; signal it with FrameFence::signal once that frame's GPU work has completed (or enable auto_signal_fences for CPU-only frames)"
            ),
            GraphError::FrameNotBegun { frame, next } => write!(
                f,
                "{frame} has not begun yet (the next frame is {})",
                next.0
            ),
            GraphError::TooManyJobs { limit } => {
                write!(f, "too many jobs in one frame: at most {limit}")
            }
            GraphError::ThreadPool(msg) => write!(f, "could not create the worker thread pool: {msg}"),
        }
    }
}

impl std::error::Error for GraphError {}

/// The error a job returns. Anything that implements [`std::error::Error`]
/// converts into it, so `?` works inside jobs; [`JobError::msg`] makes one from text.
pub struct JobError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl JobError {
    /// An error with this message.
    pub fn msg(message: impl fmt::Display) -> Self {
        JobError {
            message: message.to_string(),
            source: None,
        }
    }

    /// The message, including the chain of causes.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The underlying error, when the job's error was converted from one.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for JobError {
    fn from(err: E) -> Self {
        let mut message = err.to_string();
        let mut cause = err.source();
        while let Some(c) = cause {
            message.push_str(": ");
            message.push_str(&c.to_string());
            cause = c.source();
        }
        JobError {
            message,
            source: Some(Box::new(err)),
        }
    }
}

impl fmt::Debug for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobError")
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a job returns.
pub type JobResult = Result<(), JobError>;

/// How a job failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The job returned an `Err`.
    Error,
    /// The job panicked; the panic was caught and did not reach the process.
    Panic,
}

/// One failed job of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    /// The failed job.
    pub job: JobKey,
    /// Its name, as declared.
    pub name: &'static str,
    /// Error or panic.
    pub kind: FailureKind,
    /// The error's message or the panic's payload.
    pub message: String,
}

impl fmt::Display for JobFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            FailureKind::Error => write!(f, "job '{}' failed: {}", self.name, self.message),
            FailureKind::Panic => write!(f, "job '{}' panicked: {}", self.name, self.message),
        }
    }
}

/// A frame in which at least one job failed. Jobs that depended on a failed job
/// were skipped; independent jobs ran. The scheduler is ready for the next frame.
#[derive(Debug, Clone)]
pub struct FrameError {
    /// The failed jobs, in the order they failed.
    pub failures: Vec<JobFailure>,
    /// What ran, what was skipped, how long it took.
    pub summary: FrameSummary,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: ", self.summary.frame)?;
        match self.failures.first() {
            Some(first) => write!(f, "{first}")?,
            None => f.write_str("no failure recorded")?,
        }
        if self.failures.len() > 1 {
            write!(f, " (and {} more)", self.failures.len() - 1)?;
        }
        if self.summary.jobs_skipped > 0 {
            write!(
                f,
                "; {} dependent job(s) skipped",
                self.summary.jobs_skipped
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for FrameError {}
