//! Where the shared texture corpus is, for tests, benches and tools.
//!
//! The corpus (`../shared/corpus/ktx2/` beside the repository, real files from
//! public projects) is never copied into the repository. A fresh clone may not
//! have it: tests then print that they skipped and why, unless
//! `FORGEFLOW_REQUIRE_CORPUS=1` (set by `.ci/run`) makes its absence a failure.

use std::path::{Path, PathBuf};

/// The corpus's `ktx2/` folder: under `FORGEFLOW_CORPUS` when set, else under
/// `../shared/corpus` relative to the repository root.
///
/// Returns `None`, after printing `SKIPPED: ...` to stderr, when the folder
/// is missing.
///
/// # Panics
///
/// When the folder is missing and `FORGEFLOW_REQUIRE_CORPUS=1`: in CI a test
/// must not pass by skipping its real data.
pub fn ktx2_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FORGEFLOW_CORPUS")
        .map(PathBuf::from)
        // This crate lives one level under the repository root.
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"))
        .join("ktx2");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("FORGEFLOW_REQUIRE_CORPUS").is_ok_and(|v| v == "1") {
        panic!(
            "FORGEFLOW_REQUIRE_CORPUS=1 but no corpus at {} (set FORGEFLOW_CORPUS)",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED: no texture corpus at {} (set FORGEFLOW_CORPUS)",
        dir.display()
    );
    None
}
