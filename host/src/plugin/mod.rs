//! The plugin host: loads WebAssembly components from a directory, runs them
//! sandboxed under per-plugin limits, and swaps in new builds while running.
mod bindings;
mod codec;
mod directory;
mod engine;
mod failure;
mod guest_output;
mod limits;
mod log_budget;
mod reload;
mod runner;
mod slot;
mod state;
mod version;

use std::path::PathBuf;

pub use crate::rejected::{FailureKind, RecordFailure};
pub use bindings::WORLD;
pub use directory::{PluginHost, ReloadEvent};
pub use engine::PluginEngine;
pub use failure::Failed;
pub use limits::PluginLimits;
pub use reload::PluginWatcher;
pub use runner::{BatchOutput, PluginRunner};
pub use slot::PluginSlot;
pub use state::Counters;
pub use version::{PluginVersion, content_hash};

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin engine: {0:#}")]
    Engine(#[source] wasmtime::Error),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is not a plugin: plugin files are named NAME.wasm")]
    NotAPlugin(PathBuf),
    #[error("plugin `{name}` refused: {reason}")]
    Refused { name: String, reason: String },
    #[error("no plugin `{name}` in {dir}; found: {found}")]
    Unknown { name: String, dir: String, found: String },
    #[error("cannot watch {path} for plugin changes: {source}")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
}
