//! The serving version of one named plugin: what the directory swaps on a
//! reload and runners read between batches.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::version::PluginVersion;

/// Swapped atomically on reload; runners read it between batches, so a
/// batch never sees two versions.
pub struct PluginSlot {
    name: Arc<str>,
    current: ArcSwap<PluginVersion>,
    /// New files refused while this version served, and the last one's
    /// version (when it could be read) and reason, for the pipelines' status.
    refusals: AtomicU64,
    refusal: Mutex<Option<(String, String)>>,
}

impl PluginSlot {
    pub(super) fn new(version: Arc<PluginVersion>) -> Self {
        PluginSlot {
            name: version.name.clone(),
            current: ArcSwap::new(version),
            refusals: AtomicU64::new(0),
            refusal: Mutex::new(None),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn current(&self) -> Arc<PluginVersion> {
        self.current.load_full()
    }

    pub(super) fn serve(&self, version: Arc<PluginVersion>) {
        self.current.store(version);
    }

    pub(super) fn refuse(&self, version: String, reason: String) {
        *self.refusal.lock().expect("refusal lock") = Some((version, reason));
        self.refusals.fetch_add(1, Ordering::Release);
    }

    /// How many new files were refused so far.
    pub(super) fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Acquire)
    }

    /// The last refused file's version and reason.
    pub(super) fn last_refusal(&self) -> Option<(String, String)> {
        self.refusal.lock().expect("refusal lock").clone()
    }
}
