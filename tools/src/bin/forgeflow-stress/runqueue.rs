//! How long the calling thread has waited for a CPU while runnable (Linux
//! `/proc/thread-self/schedstat`): it tells a slow frame that the OS kept
//! off a core (lavapipe's threads share the VM's two) from one that worked.

/// The calling thread's schedstat, kept open: a reading is one `pread`.
pub struct RunQueueWait {
    #[cfg(target_os = "linux")]
    file: Option<std::fs::File>,
}

impl RunQueueWait {
    /// For the calling thread (the file names the thread that opens it).
    pub fn for_this_thread() -> Self {
        RunQueueWait {
            #[cfg(target_os = "linux")]
            file: std::fs::File::open("/proc/thread-self/schedstat").ok(),
        }
    }

    /// Nanoseconds the thread has spent runnable but not running since it
    /// started; `None` where the kernel does not say.
    pub fn total_ns(&self) -> Option<u64> {
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::FileExt;
            let mut buf = [0u8; 96];
            let n = self.file.as_ref()?.read_at(&mut buf, 0).ok()?;
            // "<ns on a CPU> <ns waiting on a run queue> <time slices>\n"
            std::str::from_utf8(&buf[..n])
                .ok()?
                .split_ascii_whitespace()
                .nth(1)?
                .parse()
                .ok()
        }
        #[cfg(not(target_os = "linux"))]
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_never_decreases() {
        let rq = RunQueueWait::for_this_thread();
        let Some(a) = rq.total_ns() else {
            return; // not Linux, or no schedstat in this kernel
        };
        // Give the scheduler reasons to count: a few yields.
        for _ in 0..100 {
            std::thread::yield_now();
        }
        assert!(rq.total_ns().unwrap() >= a);
    }
}
