use serde::Deserialize;
use wasmtime::ResourceLimiter;

/// Per-plugin sandbox limits, set in the pipeline file next to the plugin.
/// Every resource a plugin can make the host spend has one: its memory, its
/// time, and what its host calls and its answer make the host keep.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginLimits {
    /// Linear memory cap of one instance, in MiB.
    pub memory_mb: u32,
    /// Wall-time budget for one batch, in milliseconds.
    pub batch_timeout_ms: u64,
    /// Wall-time budget for one record run alone, in milliseconds. When a
    /// batch call fails, each of its records is run alone under this budget,
    /// so only a record that fails alone is blamed.
    pub record_timeout_ms: u64,
    /// Distinct counter names the plugin may create through `count`; counts
    /// to further names are dropped (and counted as `sluice.dropped-counts`).
    pub max_counters: usize,
    /// Bytes of a counter name; longer names are cut.
    pub max_counter_name_bytes: usize,
    /// Bytes of log (the `log` import and stderr) per batch; the rest of the
    /// batch's log is dropped, with a note saying how much.
    pub log_bytes_per_batch: usize,
    /// Outputs one record may fan out to; past it the record fails.
    pub max_outputs_per_record: usize,
    /// Outputs of one batch call; past it the batch's records are run alone.
    pub max_outputs_per_batch: usize,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            memory_mb: 64,
            batch_timeout_ms: 1000,
            record_timeout_ms: 100,
            max_counters: 1000,
            max_counter_name_bytes: 128,
            log_bytes_per_batch: 64 * 1024,
            max_outputs_per_record: 1000,
            max_outputs_per_batch: 100_000,
        }
    }
}

impl PluginLimits {
    /// The limits that must be at least 1, named, if one is not.
    pub fn check(&self) -> Result<(), String> {
        let limits = [
            ("memory_mb", u64::from(self.memory_mb)),
            ("batch_timeout_ms", self.batch_timeout_ms),
            ("record_timeout_ms", self.record_timeout_ms),
            ("max_outputs_per_record", self.max_outputs_per_record as u64),
            ("max_outputs_per_batch", self.max_outputs_per_batch as u64),
        ];
        match limits.iter().find(|(_, v)| *v < 1) {
            Some((name, _)) => Err(format!("{name} must be at least 1")),
            None => Ok(()),
        }
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
        MemoryCap {
            cap_bytes: limits.memory_mb as usize * 1024 * 1024,
            hit: None,
        }
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
