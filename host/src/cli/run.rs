use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::pipeline::PipelineFile;
use crate::plugin::{PluginEngine, PluginHost, PluginWatcher};
use crate::topology::supervise;

/// `sluice run`: every pipeline of the file, plugins hot-reloaded, until
/// Ctrl-C or SIGTERM (positions are stored as batches complete, so a stop loses
/// nothing). A pipeline that fails for good is logged at once; the process
/// then stops the others and exits 1, unless the file says `keep_running`.
pub fn run(path: &Path, out: &mut dyn Write) -> anyhow::Result<i32> {
    let file = PipelineFile::load(path)?;
    let host = PluginHost::open_only(Arc::new(PluginEngine::new()?), &file.plugin_dir, file.plugin_names())
        .with_context(|| format!("plugin_dir {}", file.plugin_dir.display()))?;
    super::check::check_pipelines(&file, &host)?;
    let _watcher = PluginWatcher::start(host.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let failures = runtime.block_on(async {
        let (stop_tx, stop) = watch::channel(false);
        let stop_tx = Arc::new(stop_tx);
        let on_signal = stop_tx.clone();
        // Ctrl-C, or SIGTERM as a service manager stops a process: both
        // finish what was handed over, store the positions and log the counts.
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::spawn(async move {
            let signal = tokio::select! {
                r = tokio::signal::ctrl_c() => r.is_ok().then_some("SIGINT"),
                r = terminate.recv() => r.map(|()| "SIGTERM"),
            };
            if let Some(signal) = signal {
                tracing::info!("{signal}: stopping");
                let _ = on_signal.send(true);
            }
        });
        let mut tasks = JoinSet::new();
        for pipeline in file.pipelines {
            let (host, state_dir, stop) = (host.clone(), file.state_dir.clone(), stop.clone());
            tasks.spawn(async move {
                let result = supervise(&pipeline, host, &state_dir, stop).await;
                (pipeline.name, result)
            });
        }
        let mut failures = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let failure = match joined {
                Ok((_, Ok(()))) => continue,
                Ok((name, Err(e))) => format!("pipeline `{name}` stopped: {e}"),
                Err(e) => format!("pipeline task: {e}"),
            };
            tracing::error!("{failure}");
            if !file.keep_running && !*stop_tx.borrow() {
                tracing::error!("stopping the other pipelines (set `keep_running = true` to keep them running)");
                let _ = stop_tx.send(true);
            }
            failures.push(failure);
        }
        anyhow::Ok(failures)
    })?;
    for failure in &failures {
        writeln!(out, "error: {failure}")?;
    }
    Ok(if failures.is_empty() { 0 } else { 1 })
}
