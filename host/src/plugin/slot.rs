//! The serving version of one named plugin: what the directory swaps on a
//! reload and runners read between batches.
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::version::PluginVersion;

/// Swapped atomically on reload; runners read it between batches, so a
/// batch never sees two versions.
pub struct PluginSlot {
    name: Arc<str>,
    current: ArcSwap<PluginVersion>,
}

impl PluginSlot {
    pub(super) fn new(version: Arc<PluginVersion>) -> Self {
        PluginSlot {
            name: version.name.clone(),
            current: ArcSwap::new(version),
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
}
