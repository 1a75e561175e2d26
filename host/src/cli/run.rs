use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;

use crate::pipeline::PipelineFile;
use crate::plugin::{PluginEngine, PluginHost, PluginWatcher};
use crate::topology::run_pipeline;

/// `sluice run`: every pipeline of the file, plugins hot-reloaded, until
/// Ctrl-C (positions are stored as batches complete, so a stop loses nothing).
pub fn run(path: &Path, out: &mut dyn Write) -> anyhow::Result<i32> {
    let file = PipelineFile::load(path)?;
    let host = PluginHost::open(Arc::new(PluginEngine::new()?), &file.plugin_dir)
        .with_context(|| format!("plugin_dir {}", file.plugin_dir.display()))?;
    let _watcher = PluginWatcher::start(host.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let failures = runtime.block_on(async {
        let (stop_tx, stop) = watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("stopping");
                let _ = stop_tx.send(true);
            }
        });
        let tasks: Vec<_> = file
            .pipelines
            .into_iter()
            .map(|pipeline| {
                let (host, state_dir, stop) = (host.clone(), file.state_dir.clone(), stop.clone());
                tokio::spawn(async move { run_pipeline(&pipeline, host, &state_dir, stop).await })
            })
            .collect();
        let mut failures = Vec::new();
        for task in tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(e.to_string()),
                Err(e) => failures.push(format!("pipeline task: {e}")),
            }
        }
        failures
    });
    for failure in &failures {
        writeln!(out, "error: {failure}")?;
    }
    Ok(if failures.is_empty() { 0 } else { 1 })
}
