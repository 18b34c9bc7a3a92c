//! Tests only: see tests/transcode.rs.
