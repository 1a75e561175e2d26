use std::thread;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, OptLevel};

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
        Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(PluginError::Engine)?;

        spawn_epoch_ticker(&engine);
        Ok(PluginEngine { engine, linker })
    }
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
