//! Watches the plugin directory and reloads changed `.wasm` files.
//!
//! Writers produce several events per change (truncate, writes, close,
//! rename), the first while the file is empty or half written. A path is
//! reloaded only after it has been quiet for [`QUIET`]; a file still half
//! written then fails validation and is refused, and its completion brings a
//! later event that loads it.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::PluginError;
use super::directory::PluginHost;

const QUIET: Duration = Duration::from_millis(50);

/// Keeps the watch running; dropping it stops reloading.
pub struct PluginWatcher {
    _watcher: RecommendedWatcher,
}

impl PluginWatcher {
    pub fn start(host: Arc<PluginHost>) -> Result<Self, PluginError> {
        let dir = host.dir().expect("a watched host is opened on a directory").to_owned();
        let (tx, rx) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(tx).map_err(|e| PluginError::Watch {
            path: dir.clone(),
            source: e,
        })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive).map_err(|e| PluginError::Watch {
            path: dir.clone(),
            source: e,
        })?;
        tracing::info!(dir = %dir.display(), "watching plugins for changes");
        thread::Builder::new()
            .name("sluice-plugin-watch".into())
            .spawn(move || debounce(&host, &dir, &rx))
            .expect("spawn plugin watch thread");
        Ok(PluginWatcher { _watcher: watcher })
    }
}

fn debounce(host: &PluginHost, dir: &Path, rx: &mpsc::Receiver<notify::Result<notify::Event>>) {
    let mut due: HashMap<PathBuf, Instant> = HashMap::new();
    loop {
        let wait = due.values().min().map(|d| d.saturating_duration_since(Instant::now()));
        let received = match wait {
            Some(wait) => rx.recv_timeout(wait),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(Ok(event)) => {
                // Our own reads of a file raise access events: reacting to them would loop.
                if matches!(event.kind, EventKind::Access(_)) {
                    continue;
                }
                for path in event.paths {
                    let relevant = path.parent() == Some(dir) && path.extension().is_some_and(|e| e == "wasm");
                    if relevant {
                        due.insert(path, Instant::now() + QUIET);
                    }
                }
            }
            Ok(Err(e)) => tracing::warn!("plugin watch error: {e}"),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        let ready: Vec<PathBuf> = due.iter().filter(|(_, d)| **d <= now).map(|(p, _)| p.clone()).collect();
        for path in ready {
            due.remove(&path);
            host.reload(&path);
        }
    }
}
