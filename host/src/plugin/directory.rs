use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::Instant;

use super::PluginError;
use super::engine::PluginEngine;
use super::limits::PluginLimits;
use super::runner::PluginRunner;
use super::slot::PluginSlot;
use super::version::{PluginVersion, content_hash, plugin_name};

/// What a reload did, for logs, tests and the reload-latency benchmark.
#[derive(Debug, Clone)]
pub enum ReloadEvent {
    Loaded {
        name: String,
        hash: String,
        previous: Option<String>,
        at: Instant,
    },
    Refused {
        name: String,
        reason: String,
        at: Instant,
    },
    Removed {
        name: String,
    },
    Unchanged {
        name: String,
    },
}

/// Every plugin of a directory (or loaded one by one), by name.
pub struct PluginHost {
    engine: Arc<PluginEngine>,
    dir: Option<PathBuf>,
    slots: RwLock<BTreeMap<String, Arc<PluginSlot>>>,
    /// Why a file present at start-up was not loaded, to explain `runner` errors.
    refused: RwLock<BTreeMap<String, String>>,
    /// Plugins a new file of which was refused while their version served:
    /// the serving version's file coming back is news to subscribers.
    contested: Mutex<std::collections::BTreeSet<String>>,
    subscribers: Mutex<Vec<mpsc::Sender<ReloadEvent>>>,
    /// The plugins loaded and reloaded, when not every file of the directory.
    only: Option<BTreeSet<String>>,
}

impl PluginHost {
    pub fn new(engine: Arc<PluginEngine>) -> Arc<Self> {
        Arc::new(PluginHost {
            engine,
            dir: None,
            slots: RwLock::default(),
            refused: RwLock::default(),
            contested: Mutex::default(),
            subscribers: Mutex::default(),
            only: None,
        })
    }

    /// Loads every `*.wasm` in `dir`. A file that fails is logged and left out
    /// (a pipeline naming it fails to start with the reason).
    pub fn open(engine: Arc<PluginEngine>, dir: &Path) -> Result<Arc<Self>, PluginError> {
        Self::open_with(engine, dir, None)
    }

    /// Loads, and reloads, only the plugins named: what a pipeline file uses.
    /// Other files of the directory are left alone, whatever they hold.
    pub fn open_only(engine: Arc<PluginEngine>, dir: &Path, names: impl IntoIterator<Item = String>) -> Result<Arc<Self>, PluginError> {
        Self::open_with(engine, dir, Some(names.into_iter().collect()))
    }

    fn open_with(engine: Arc<PluginEngine>, dir: &Path, only: Option<BTreeSet<String>>) -> Result<Arc<Self>, PluginError> {
        let dir = dir.canonicalize().map_err(|e| PluginError::Read {
            path: dir.to_owned(),
            source: e,
        })?;
        let host = Arc::new(PluginHost {
            engine,
            dir: Some(dir.clone()),
            slots: RwLock::default(),
            refused: RwLock::default(),
            contested: Mutex::default(),
            subscribers: Mutex::default(),
            only,
        });
        let entries = std::fs::read_dir(&dir).map_err(|e| PluginError::Read {
            path: dir.clone(),
            source: e,
        })?;
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        let mut unused = Vec::new();
        for path in paths.iter().filter(|p| p.extension().is_some_and(|e| e == "wasm")) {
            if !host.wanted(path) {
                unused.extend(path.file_name().map(|n| n.to_string_lossy().into_owned()));
            } else if let Err(e) = host.load_file(path) {
                tracing::error!("{e}");
            }
        }
        if !unused.is_empty() {
            tracing::debug!(dir = %dir.display(), "not loaded, as no pipeline uses them: {}", unused.join(", "));
        }
        Ok(host)
    }

    /// Whether the plugin of this file is one to load.
    fn wanted(&self, path: &Path) -> bool {
        match (&self.only, plugin_name(path)) {
            (None, _) => true,
            (Some(names), Ok(name)) => names.contains(name),
            (Some(_), Err(_)) => false,
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Loads (or replaces) the plugin named after the file.
    pub fn load_file(&self, path: &Path) -> Result<Arc<PluginVersion>, PluginError> {
        let name = plugin_name(path)?.to_owned();
        match PluginVersion::load(&self.engine, path) {
            Ok(version) => Ok(self.install(version)),
            Err(e) => {
                self.refused.write().expect("refused lock").insert(name, e.to_string());
                Err(e)
            }
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.slots.read().expect("slots lock").keys().cloned().collect()
    }

    pub fn slot(&self, name: &str) -> Option<Arc<PluginSlot>> {
        self.slots.read().expect("slots lock").get(name).cloned()
    }

    /// A runner of plugin `name` with this pipeline's config and limits; its
    /// instance starts (and `init` runs) now, so a bad config fails here.
    pub fn runner(&self, name: &str, config: Vec<(String, String)>, limits: PluginLimits) -> Result<PluginRunner, PluginError> {
        let Some(slot) = self.slot(name) else {
            if let Some(reason) = self.refused.read().expect("refused lock").get(name) {
                return Err(PluginError::Refused {
                    name: name.into(),
                    reason: reason.clone(),
                });
            }
            // Every plugin file of the directory, loaded or not: the name
            // may be a typo of one that no pipeline has used yet.
            let found = match &self.dir {
                Some(dir) => plugin_files(dir),
                None => self.names(),
            };
            return Err(PluginError::Unknown {
                name: name.into(),
                dir: self.dir.as_ref().map_or("(no directory)".into(), |d| d.display().to_string()),
                found: if found.is_empty() {
                    "no .wasm files".into()
                } else {
                    found.join(", ")
                },
            });
        };
        PluginRunner::new(self.engine.clone(), slot, config, limits)
    }

    /// Receives every reload outcome from now on.
    pub fn subscribe(&self) -> mpsc::Receiver<ReloadEvent> {
        let (tx, rx) = mpsc::channel();
        self.subscribers.lock().expect("subscribers lock").push(tx);
        rx
    }

    /// Re-reads `path` after a change: compiles and validates off the hot path,
    /// then swaps; a broken file is refused and the serving version stays.
    pub fn reload(&self, path: &Path) -> Option<ReloadEvent> {
        if !self.wanted(path) {
            return None;
        }
        let name = plugin_name(path).ok()?.to_owned();
        let event = match std::fs::read(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.slots.write().expect("slots lock").remove(&name)?;
                tracing::warn!(plugin = %name, "plugin file removed; running pipelines keep its last version");
                ReloadEvent::Removed { name }
            }
            Err(e) => self.refuse(&name, format!("cannot read {}: {e}", path.display())),
            Ok(bytes) => {
                let previous = self.slot(&name).map(|s| s.current().hash.clone());
                if previous.as_deref() == Some(content_hash(&bytes).as_str()) {
                    let restored = self.contested.lock().expect("contested lock").remove(&name);
                    let event = ReloadEvent::Unchanged { name };
                    if restored {
                        self.publish(&event);
                    }
                    return Some(event);
                }
                let started = Instant::now();
                match PluginVersion::compile(&self.engine, &name, &bytes) {
                    Err(e) => self.refuse(&name, e.to_string()),
                    Ok(version) => {
                        let hash = self.install(version).hash.clone();
                        tracing::info!(plugin = %name, version = %hash, previous = previous.as_deref().unwrap_or("none"),
                            compile_ms = started.elapsed().as_millis() as u64, "plugin loaded");
                        ReloadEvent::Loaded {
                            name,
                            hash,
                            previous,
                            at: Instant::now(),
                        }
                    }
                }
            }
        };
        self.publish(&event);
        Some(event)
    }

    fn refuse(&self, name: &str, reason: String) -> ReloadEvent {
        let serving = self.slot(name).map(|s| s.current().hash.clone());
        match &serving {
            Some(hash) => {
                tracing::error!(plugin = %name, "{reason}; version {hash} keeps serving");
                self.contested.lock().expect("contested lock").insert(name.to_owned());
            }
            None => tracing::error!(plugin = %name, "{reason}"),
        }
        ReloadEvent::Refused {
            name: name.into(),
            reason,
            at: Instant::now(),
        }
    }

    fn install(&self, version: PluginVersion) -> Arc<PluginVersion> {
        let version = Arc::new(version);
        let name = version.name.to_string();
        self.refused.write().expect("refused lock").remove(&name);
        self.contested.lock().expect("contested lock").remove(&name);
        let mut slots = self.slots.write().expect("slots lock");
        match slots.get(&name) {
            Some(slot) => slot.serve(version.clone()),
            None => {
                slots.insert(name, Arc::new(PluginSlot::new(version.clone())));
            }
        }
        version
    }

    fn publish(&self, event: &ReloadEvent) {
        self.subscribers
            .lock()
            .expect("subscribers lock")
            .retain(|tx| tx.send(event.clone()).is_ok());
    }
}

/// The plugin names of the `NAME.wasm` files in `dir`, sorted.
fn plugin_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
                .filter_map(|p| plugin_name(&p).ok().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
