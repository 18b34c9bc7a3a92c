//! Tracy's own headless tools (`tracy-capture`, `tracy-csvexport`, protocol
//! 82): a real profiler session recorded and read back, for the tests that
//! check what a profiler receives from a program built with `--features
//! tracy`.
//!
//! The tools are looked for in `FORGEFLOW_TRACY_TOOLS`, else in
//! `../shared/tools/tracy` beside the repository. Where they are absent a test
//! is skipped with a message, unless `FORGEFLOW_REQUIRE_TRACY=1` (CI sets
//! it): then it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The folder holding `tracy-capture` and `tracy-csvexport`, or `None`
/// (after saying why) when `test` should be skipped.
///
/// # Panics
/// When the tools are absent and `FORGEFLOW_REQUIRE_TRACY=1`.
pub fn for_test(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("FORGEFLOW_TRACY_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/tracy"));
    if dir.join("tracy-capture").is_file() && dir.join("tracy-csvexport").is_file() {
        return Some(dir);
    }
    if std::env::var("FORGEFLOW_REQUIRE_TRACY").is_ok_and(|v| v == "1") {
        panic!(
            "{test}: FORGEFLOW_REQUIRE_TRACY=1 but no tracy-capture/tracy-csvexport in {} (set FORGEFLOW_TRACY_TOOLS)",
            dir.display()
        );
    }
    eprintln!(
        "{test}: SKIPPED, no Tracy tools in {} (set FORGEFLOW_TRACY_TOOLS, or FORGEFLOW_REQUIRE_TRACY=1 to fail instead)",
        dir.display()
    );
    None
}

/// A `tracy-capture` waiting for the client on `port`, recording `seconds`
/// from the connection into `out`.
pub struct Recording {
    child: Child,
    out: PathBuf,
    tools: PathBuf,
    log: PathBuf,
}

impl Recording {
    /// Starts the capture tool (it waits for the client to listen).
    pub fn start(tools: &Path, out: &Path, port: u16, seconds: u32) -> std::io::Result<Self> {
        let log = out.with_extension("log");
        let child = Command::new(tools.join("tracy-capture"))
            .args(["-o", &out.to_string_lossy(), "-a", "127.0.0.1", "-f"])
            .args(["-p", &port.to_string(), "-s", &seconds.to_string()])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(Stdio::inherit())
            .spawn()?;
        Ok(Recording {
            child,
            out: out.to_owned(),
            tools: tools.to_owned(),
            log,
        })
    }

    /// Whether the capture has ended (its seconds are up).
    pub fn finished(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits (at most `timeout`) for the capture to end and save its file;
    /// returns what it printed.
    pub fn wait(&mut self, timeout: Duration) -> Result<String, String> {
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => break,
                Ok(Some(status)) => return Err(format!("tracy-capture exited with {status}")),
                Ok(None) if start.elapsed() > timeout => {
                    let _ = self.child.kill();
                    return Err(format!("tracy-capture still running after {timeout:?}"));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(e.to_string()),
            }
        }
        std::fs::read_to_string(&self.log).map_err(|e| e.to_string())
    }

    /// `tracy-csvexport ARGS FILE`'s rows (the header first), split on commas.
    pub fn export(&self, args: &[&str]) -> Result<Vec<Vec<String>>, String> {
        let out = Command::new(self.tools.join("tracy-csvexport"))
            .args(args)
            .arg(&self.out)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split(',').map(str::to_owned).collect())
            .collect())
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
