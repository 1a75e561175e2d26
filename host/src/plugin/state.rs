//! What a plugin instance's store holds: an empty WASI context (no files,
//! env, network; frozen clocks), the memory cap, and the host imports.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::bindings::{HostImports, Level, sluice};
use super::limits::{MemoryCap, PluginLimits};
use super::stderr::GuestStderr;

/// Named counters a plugin adds to through the `count` import.
pub type Counters = Arc<Mutex<BTreeMap<String, u64>>>;

pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) memory: MemoryCap,
    pub(crate) stderr: GuestStderr,
    plugin: Arc<str>,
    counters: Counters,
}

impl HostState {
    pub fn new(plugin: Arc<str>, limits: &PluginLimits, counters: Counters) -> Self {
        let stderr = GuestStderr::new(plugin.clone());
        // WASI is linked only because Rust's std imports it; the context grants
        // nothing: no preopens, env, args or sockets, and clocks stand still.
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        HostState { wasi, table: ResourceTable::new(), memory: MemoryCap::new(limits), stderr, plugin, counters }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl HostImports for HostState {
    fn log(&mut self, level: Level, message: String) {
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn count(&mut self, name: String, delta: u64) {
        *self.counters.lock().expect("counters lock").entry(name).or_default() += delta;
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
