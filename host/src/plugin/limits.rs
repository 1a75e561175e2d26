use serde::Deserialize;
use wasmtime::ResourceLimiter;

/// Per-plugin sandbox limits, set in the pipeline file next to the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginLimits {
    /// Linear memory cap of one instance, in MiB.
    pub memory_mb: u32,
    /// Wall-time budget for one batch, in milliseconds.
    pub batch_timeout_ms: u64,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits { memory_mb: 64, batch_timeout_ms: 1000 }
    }
}

/// Enforces the memory cap and remembers that it did, so a failed `memory.grow`
/// (which a Rust guest turns into an abort) is reported as out-of-memory.
#[derive(Debug)]
pub struct MemoryCap {
    cap_bytes: usize,
    pub(crate) hit: Option<usize>,
}

impl MemoryCap {
    pub fn new(limits: &PluginLimits) -> Self {
        MemoryCap { cap_bytes: limits.memory_mb as usize * 1024 * 1024, hit: None }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.cap_bytes {
            self.hit = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}
