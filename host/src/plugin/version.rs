use std::fmt;
use std::path::Path;
use std::sync::Arc;

use wasmtime::component::Component;

use super::PluginError;
use super::bindings::{PluginPre, WORLD};
use super::engine::PluginEngine;

const COMPONENT_MAGIC: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
const CORE_MODULE_MAGIC: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

/// One compiled, validated build of a plugin, ready to instantiate.
pub struct PluginVersion {
    pub name: Arc<str>,
    /// First 16 hex digits of the BLAKE3 hash of the `.wasm` bytes.
    pub hash: String,
    pub size: usize,
    pub(crate) pre: PluginPre<super::state::HostState>,
}

impl fmt::Debug for PluginVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginVersion")
            .field("name", &self.name)
            .field("hash", &self.hash)
            .finish()
    }
}

impl PluginVersion {
    pub fn load(engine: &PluginEngine, path: &Path) -> Result<Self, PluginError> {
        let name = plugin_name(path)?;
        let bytes = std::fs::read(path).map_err(|e| PluginError::Read {
            path: path.to_owned(),
            source: e,
        })?;
        Self::compile(engine, name, &bytes)
    }

    /// Compiles and checks against the world: wrong format, missing exports
    /// or imports Sluice does not provide are refused here, never at run time.
    pub fn compile(engine: &PluginEngine, name: &str, bytes: &[u8]) -> Result<Self, PluginError> {
        let refuse = |reason: String| PluginError::Refused {
            name: name.to_owned(),
            reason,
        };
        match bytes.get(..8) {
            None if bytes.is_empty() => return Err(refuse("the file is empty (still being written?)".into())),
            Some(magic) if magic == COMPONENT_MAGIC => {}
            Some(magic) if magic == CORE_MODULE_MAGIC => {
                return Err(refuse(
                    "this is a core wasm module, not a component: build it with \
                     `cargo build --target wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
                        .into(),
                ));
            }
            _ => {
                return Err(refuse(
                    "not a WebAssembly component (bad magic bytes; truncated or not wasm?)".into(),
                ));
            }
        }
        let component = Component::from_binary(&engine.engine, bytes).map_err(|e| refuse(format!("does not compile: {e:#}")))?;
        let instance_pre = engine.linker.instantiate_pre(&component).map_err(|e| {
            let e = format!("{e:#}");
            // A plugin built against another version of our own WIT package.
            let hint = if e.contains("sluice:plugin/") {
                format!(" (it was built for another version of the WIT package; rebuild it with the SDK for {WORLD})")
            } else {
                String::new()
            };
            refuse(format!("imports something Sluice does not provide: {e}{hint}"))
        })?;
        let pre = PluginPre::new(instance_pre).map_err(|e| refuse(format!("does not implement the world {WORLD}: {e:#}")))?;
        Ok(PluginVersion {
            name: name.into(),
            hash: content_hash(bytes),
            size: bytes.len(),
            pre,
        })
    }
}

pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..16].to_owned()
}

/// `dir/clean.wasm` is the plugin `clean`.
pub fn plugin_name(path: &Path) -> Result<&str, PluginError> {
    path.file_stem()
        .and_then(|s| s.to_str())
        .filter(|_| path.extension().is_some_and(|e| e == "wasm"))
        .ok_or_else(|| PluginError::NotAPlugin(path.to_owned()))
}
