//! Tracy integration (feature `tracy`): one zone per job, named after the job;
//! a secondary frame mark named "forgeflow" per frame (the main frame mark
//! is the application's); plots of the frame statistics.
//!
//! Zones use one static source location per job name, created once when a
//! graph is planned (and leaked: there are as many as there are distinct job
//! names), so emitting a zone allocates nothing. How the client behaves
//! (where it listens, whether it records with no profiler connected) is the
//! application's choice of tracy-client features: forgeflow asks only for
//! `enable`. Its tools and tests choose `only-localhost` and `ondemand`.

use std::collections::HashMap;
use std::ffi::CString;

use tracy_client::sys;

use crate::stats::FrameStats;

/// Source locations, one per job-name group of the topology being run.
#[derive(Default)]
pub(crate) struct ZoneLocations {
    by_name: HashMap<&'static str, &'static sys::___tracy_source_location_data>,
    current: Vec<&'static sys::___tracy_source_location_data>,
}

// SAFETY: the source-location data is immutable after creation and leaked
// ('static); Tracy only reads it.
unsafe impl Send for ZoneLocations {}
// SAFETY: as above.
unsafe impl Sync for ZoneLocations {}

impl ZoneLocations {
    /// Makes `current[g]` the location of `group_names[g]`.
    pub(crate) fn select(&mut self, group_names: &[&'static str]) {
        self.current.clear();
        for &name in group_names {
            let loc = *self.by_name.entry(name).or_insert_with(|| location(name));
            self.current.push(loc);
        }
    }

    /// Opens a zone for a job of name group `group`; it closes when dropped.
    pub(crate) fn begin(&self, group: usize) -> Option<Zone> {
        let loc = self.current.get(group)?;
        tracy_client::Client::running()?;
        // SAFETY: `loc` is 'static and immutable; the client is running.
        let ctx = unsafe { sys::___tracy_emit_zone_begin(*loc, 1) };
        Some(Zone(ctx))
    }
}

/// An open Tracy zone.
pub(crate) struct Zone(sys::___tracy_c_zone_context);

impl Drop for Zone {
    fn drop(&mut self) {
        // SAFETY: the context came from `___tracy_emit_zone_begin` on this thread.
        unsafe { sys::___tracy_emit_zone_end(self.0) }
    }
}

/// A source location named `name`, leaked: one per distinct name.
fn location(name: &'static str) -> &'static sys::___tracy_source_location_data {
    let leak = |s: &str| -> *const std::os::raw::c_char {
        let c = CString::new(s.replace('\0', " ")).unwrap_or_default();
        Box::leak(c.into_boxed_c_str()).as_ptr()
    };
    Box::leak(Box::new(sys::___tracy_source_location_data {
        name: leak(name),
        function: leak("forgeflow job"),
        file: leak(file!()),
        line: line!(),
        color: 0,
    }))
}

/// Source locations of background tasks, by name.
struct TaskLocations(HashMap<&'static str, &'static sys::___tracy_source_location_data>);

// SAFETY: as for `ZoneLocations`: the data is 'static and immutable.
unsafe impl Send for TaskLocations {}

static TASK_LOCATIONS: std::sync::Mutex<Option<TaskLocations>> = std::sync::Mutex::new(None);

/// Opens a zone named `name` on this thread (a background task); it closes
/// when dropped.
pub(crate) fn named_zone(name: &'static str) -> Option<Zone> {
    tracy_client::Client::running()?;
    let loc = {
        let mut guard = TASK_LOCATIONS.lock().unwrap_or_else(|p| p.into_inner());
        let map = &mut guard.get_or_insert_with(|| TaskLocations(HashMap::new())).0;
        *map.entry(name).or_insert_with(|| location(name))
    };
    // SAFETY: `loc` is 'static and immutable; the client is running.
    let ctx = unsafe { sys::___tracy_emit_zone_begin(loc, 1) };
    Some(Zone(ctx))
}

/// Starts the Tracy client, which forgeflow's zones need (idempotent: an
/// application that started it already keeps its client as it is).
pub(crate) fn start() {
    let _ = tracy_client::Client::start();
}

/// A frame mark of forgeflow's own frame set ("forgeflow": secondary frames
/// in Tracy, beside the application's main frames) and the frame's statistics as plots.
pub(crate) fn frame_end(stats: &FrameStats) {
    let Some(client) = tracy_client::Client::running() else {
        return;
    };
    client.plot(
        tracy_client::plot_name!("forgeflow jobs completed"),
        stats.jobs_completed as f64,
    );
    client.plot(
        tracy_client::plot_name!("forgeflow jobs failed"),
        stats.jobs_failed as f64,
    );
    client.plot(
        tracy_client::plot_name!("forgeflow jobs skipped"),
        stats.jobs_skipped as f64,
    );
    client.plot(
        tracy_client::plot_name!("forgeflow jobs cancelled"),
        stats.jobs_cancelled as f64,
    );
    client.plot(
        tracy_client::plot_name!("forgeflow fence wait ms"),
        stats.fence_wait.as_secs_f64() * 1e3,
    );
    client.plot(
        tracy_client::plot_name!("forgeflow graph ms"),
        stats.run_time.as_secs_f64() * 1e3,
    );
    client.secondary_frame_mark(tracy_client::frame_name!("forgeflow"));
}
