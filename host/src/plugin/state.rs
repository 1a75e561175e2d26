//! What a plugin instance's store holds: an empty WASI context (no files,
//! env, network; frozen clocks), the memory cap, and the host imports.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::bindings::{HostImports, Level, sluice};
use super::guest_output::GuestOutput;
use super::limits::{MemoryCap, PluginLimits};
use super::log_budget::LogBudget;

/// Named counters a plugin adds to through the `count` import.
pub type Counters = Arc<Mutex<BTreeMap<String, u64>>>;

pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) memory: MemoryCap,
    pub(crate) stderr: GuestOutput,
    pub(crate) log: LogBudget,
    plugin: Arc<str>,
    counters: Counters,
    limits: PluginLimits,
}

/// The counter that counts what `max_counters` turned away.
const DROPPED_COUNTS: &str = "sluice.dropped-counts";

impl HostState {
    pub fn new(plugin: Arc<str>, limits: &PluginLimits, counters: Counters) -> Self {
        let log = LogBudget::new(limits.log_bytes_per_batch);
        let stderr = GuestOutput::stderr(plugin.clone(), log.clone());
        // WASI is linked only because Rust's std imports it; the context grants
        // nothing: no preopens, env, args or sockets, and clocks stand still.
        let wasi = WasiCtx::builder()
            .stdout(GuestOutput::stdout(plugin.clone(), log.clone()))
            .stderr(stderr.clone())
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap::new(limits),
            stderr,
            log,
            plugin,
            counters,
            limits: *limits,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HostImports for HostState {
    fn log(&mut self, level: Level, message: String) {
        let plugin = &*self.plugin;
        let Some(message) = self.log.take(&message) else { return };
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    /// Counts under at most `max_counters` names of at most
    /// `max_counter_name_bytes` each: the host keeps every name for good.
    fn count(&mut self, mut name: String, delta: u64) {
        let max = self.limits.max_counter_name_bytes;
        if name.len() > max {
            let mut end = max;
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            name.truncate(end);
        }
        let mut counters = self.counters.lock().expect("counters lock");
        if !counters.contains_key(&name) && counters.len() >= self.limits.max_counters {
            if !counters.contains_key(DROPPED_COUNTS) {
                tracing::warn!(
                    plugin = %self.plugin,
                    "the plugin counts under more than limits.max_counters ({}) names: counts to new names are dropped and counted as {DROPPED_COUNTS}",
                    self.limits.max_counters
                );
            }
            name = DROPPED_COUNTS.to_owned();
        }
        let count = counters.entry(name).or_default();
        *count = count.saturating_add(delta);
    }
}

impl sluice::plugin::types::Host for HostState {}

/// Time is a capability: without a grant a plugin sees the epoch, always.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}
