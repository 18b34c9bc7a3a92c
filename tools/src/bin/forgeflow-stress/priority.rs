//! The render thread's scheduling class. On the 2-core VM, lavapipe's
//! threads (the stand-in GPU) keep both cores busy, and a render thread of
//! the normal class that wakes up waits for the next scheduler tick (4 ms
//! at 250 Hz, sometimes two) to get a core back: over an hour, frames of
//! 8 ms of which 8 were spent runnable without a CPU (see `runqueue`). A
//! nice of -10 or a short EEVDF slice did not change that; the real-time
//! class does: a woken FIFO thread preempts normal ones at once. Latency-
//! bound frame loops (compositors, audio) run so; this binary runs its
//! render thread so where the system allows it, and says so in its report.
//! The thread blocks every frame (fences, the driver's submit), and the
//! kernel's real-time throttling bounds it anyway.

/// Puts the calling thread in the real-time FIFO class at `priority`
/// (1..=99; 1, the lowest, is enough to preempt every normal thread).
/// Returns why not, where the system refuses (it needs `CAP_SYS_NICE` or an
/// `RLIMIT_RTPRIO` of `priority`).
pub fn set_this_thread_fifo(priority: i32) -> Result<(), String> {
    set_thread_fifo(0, priority)
}

/// The same for the thread `tid` of this process (0: the calling thread).
fn set_thread_fifo(tid: i32, priority: i32) -> Result<(), String> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let param = libc::sched_param {
            sched_priority: priority,
        };
        // SAFETY: `param` is a valid sched_param for the call's duration;
        // on Linux a pid argument names one thread.
        if unsafe { libc::sched_setscheduler(tid, libc::SCHED_FIFO, &param) } != 0 {
            return Err(format!(
                "real-time priority {priority} refused ({}): the thread stays in the normal \
                 class",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        Err(format!(
            "real-time priority {priority}: not supported on this platform"
        ))
    }
}

/// Puts the threads of this process whose name starts with `prefix` in
/// the real-time FIFO class at `priority`; returns how many. The frame's
/// jobs run on the runtime's workers when they are not run inline, and the
/// render thread waits for them: a worker of the normal class waits for a
/// tick as the render thread did.
pub fn set_threads_fifo(prefix: &str, priority: i32) -> Result<usize, String> {
    let tasks = std::fs::read_dir("/proc/self/task").map_err(|e| e.to_string())?;
    let mut n = 0;
    for task in tasks.flatten() {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let tid = task.file_name().to_string_lossy().parse::<i32>();
        if let (true, Ok(tid)) = (name.starts_with(prefix), tid) {
            set_thread_fifo(tid, priority)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Whether the calling thread is in the real-time FIFO class.
pub fn this_thread_is_fifo() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: no arguments beyond pid 0, the calling thread.
        unsafe { libc::sched_getscheduler(0) == libc::SCHED_FIFO }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_class_is_set_or_refused_with_a_reason() {
        // A thread of its own: the class must not leak into the test harness.
        std::thread::spawn(|| {
            assert!(!this_thread_is_fifo());
            match set_this_thread_fifo(1) {
                Ok(()) => assert!(this_thread_is_fifo()),
                Err(why) => {
                    assert!(
                        why.contains("refused") || why.contains("not supported"),
                        "{why}"
                    );
                    assert!(!this_thread_is_fifo());
                }
            }
        })
        .join()
        .unwrap();
    }
}
