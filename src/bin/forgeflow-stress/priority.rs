//! The render thread's scheduling priority. On the 2-core VM, lavapipe's
//! threads (the stand-in GPU) keep both cores busy, and a render thread of
//! the same priority waits out their time slices: over an hour, frames of
//! 8 ms of which 8 were spent runnable without a CPU (see `runqueue`). A
//! renderer raises its render thread's priority for the same reason; so
//! does this binary, where the system allows it, and says so in its report.

/// Sets the calling thread's nice value (lower runs first; -20..=19).
/// Returns the value now in effect, or the reason it could not be set
/// (raising a priority needs `CAP_SYS_NICE` or a large enough `RLIMIT_NICE`).
pub fn set_this_thread_nice(nice: i32) -> Result<i32, String> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: gettid and setpriority take plain integers; with
        // PRIO_PROCESS and a thread id, Linux sets that thread's nice alone.
        let tid = unsafe { libc::gettid() } as libc::id_t;
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) } != 0 {
            return Err(format!(
                "nice {nice} refused ({}): the render thread keeps its priority",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: as above; errno is not consulted (-1 is a valid nice,
        // and the thread exists: it is this one).
        Ok(unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        Err(format!("nice {nice}: not supported on this platform"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowering_the_priority_is_always_allowed() {
        // A thread of its own: the test's nice must not leak into others.
        let got = std::thread::spawn(|| set_this_thread_nice(5))
            .join()
            .unwrap();
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert_eq!(got, Ok(5));
        } else {
            assert!(got.is_err());
        }
    }
}
