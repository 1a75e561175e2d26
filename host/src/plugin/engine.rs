use std::thread;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, OptLevel, StoreContextMut};
use wasmtime_wasi::clocks::WasiClocksView;

use super::PluginError;
use super::bindings::Plugin;
use super::state::HostState;

/// How often the epoch advances; a batch budget is counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The compiler and the set of imports every plugin links against, shared
/// by all plugins of a process. Compiled code depends on this configuration.
pub struct PluginEngine {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
}

impl PluginEngine {
    pub fn new() -> Result<Self, PluginError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.cranelift_opt_level(OptLevel::Speed);
        let engine = Engine::new(&config).map_err(PluginError::Engine)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(PluginError::Engine)?;
        refuse_sleeping(&mut linker).map_err(PluginError::Engine)?;
        Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state).map_err(PluginError::Engine)?;

        spawn_epoch_ticker(&engine);
        Ok(PluginEngine { engine, linker })
    }
}

/// A plugin that waits on a clock: the epoch cannot interrupt a host call,
/// so a sleep would hold its pipeline for as long as it asked. Its clocks
/// stand still anyway; a wait of zero is still allowed.
#[derive(Debug, thiserror::Error)]
#[error("tried to sleep for {0} ms; a plugin may not wait (its clocks stand still)")]
pub struct SleepRefused(pub u64);

/// The WASI version wasmtime-wasi links; guests of any 0.2 version resolve to it.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

fn refuse_sleeping(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::p2::bindings::sync::clocks::monotonic_clock::Host as _;
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |mut store: StoreContextMut<'_, HostState>, (nanos,): (u64,)| {
            if nanos > 0 {
                return Err(SleepRefused(nanos.div_ceil(1_000_000)).into());
            }
            Ok((store.data_mut().clocks().subscribe_duration(0)?,))
        },
    )?;
    // The clock reads 0, so any later instant is a wait of that long.
    clock.func_wrap("subscribe-instant", |mut store: StoreContextMut<'_, HostState>, (when,): (u64,)| {
        if when > 0 {
            return Err(SleepRefused(when.div_ceil(1_000_000)).into());
        }
        Ok((store.data_mut().clocks().subscribe_instant(0)?,))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Advances the epoch until the engine is dropped; the ticker holds only a
/// weak reference so it never keeps an engine alive.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    thread::Builder::new()
        .name("sluice-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn epoch ticker thread");
}
