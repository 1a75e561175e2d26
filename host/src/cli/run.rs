use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::progress::SnapshotDisplay;
use crate::pipeline::PipelineFile;
use crate::plugin::{PluginEngine, PluginHost, PluginWatcher};
use crate::telemetry::{HttpEndpoint, State, Telemetry};
use crate::topology::supervise;

/// The exit code after a second signal: the shell's for a process ended by SIGINT.
const EXIT_AT_ONCE: i32 = 130;

/// `sluice run`: every pipeline of the file, plugins hot-reloaded, until
/// Ctrl-C or SIGTERM. A stop delivers what was read and stores the
/// positions within `shutdown_timeout_s`, else exits 1 naming what was not
/// delivered (a restart reads it again); a second signal exits at once. A
/// pipeline that fails for good is logged at once; the process then stops
/// the others and exits 1, unless the file says `keep_running`.
/// Failures are logged; with `repeat`, also written to `out` at the end.
pub fn run(path: &Path, http: Option<&HttpEndpoint>, repeat: bool, out: &mut dyn Write) -> anyhow::Result<i32> {
    let file = PipelineFile::load(path)?;
    let http = http.unwrap_or(&file.http).clone();
    let host = PluginHost::open_only(Arc::new(PluginEngine::new()?), &file.plugin_dir, file.plugin_names())
        .with_context(|| format!("plugin_dir {}", file.plugin_dir.display()))?;
    super::check::check_pipelines(&file, &host)?;
    let _watcher = PluginWatcher::start(host.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let telemetry = Telemetry::new(http.address().is_some());
    let files = host.subscribe();
    let reports = telemetry.clone();
    std::thread::Builder::new()
        .name("sluice-plugin-files".into())
        .spawn(move || files.iter().for_each(|event| reports.plugin_file(&event)))?;
    let outcome = runtime.block_on(async {
        if let Some(address) = http.address() {
            let bound = crate::telemetry::serve(address, telemetry.clone()).await.with_context(|| {
                format!(
                    "http {address}: cannot serve metrics and status there; give a free HOST:PORT, or \"off\", \
                     in the file's `http`, --http or SLUICE_HTTP"
                )
            })?;
            tracing::info!(%bound, "serving /metrics, /health, /ready, /status and the status page at http://{bound}/");
        }
        let (stop_tx, stop) = watch::channel(false);
        let stop_tx = Arc::new(stop_tx);
        let shutdown = Duration::from_secs(file.shutdown_timeout_s);
        let (timed_out_tx, mut timed_out) = watch::channel(false);
        tokio::spawn(on_signals(stop_tx.clone(), telemetry.clone(), shutdown, timed_out_tx));
        let display = SnapshotDisplay::start(telemetry.clone());
        let mut tasks = JoinSet::new();
        for pipeline in file.pipelines {
            let (host, state_dir, stop) = (host.clone(), file.state_dir.clone(), stop.clone());
            let reports = telemetry.pipeline(&pipeline.name, pipeline.source.kind(), pipeline.sink.kind());
            tasks.spawn(async move {
                let result = supervise(&pipeline, host, &state_dir, stop, &reports).await;
                (pipeline.name, result)
            });
        }
        let mut failures = Vec::new();
        loop {
            let joined = tokio::select! {
                joined = tasks.join_next() => match joined {
                    Some(joined) => joined,
                    None => break,
                },
                _ = timed_out.changed() => {
                    drop(display);
                    let left = format!("not stopped within shutdown_timeout_s ({} s): {}", shutdown.as_secs(), undelivered(&telemetry));
                    tracing::error!("{left}");
                    return anyhow::Ok(Outcome::TimedOut(left));
                }
            };
            let failure = match joined {
                Ok((_, Ok(()))) => continue,
                Ok((name, Err(e))) => {
                    let failure = format!("pipeline `{name}` stopped: {e}");
                    tracing::error!(pipeline = %name, "{failure}");
                    failure
                }
                Err(e) => {
                    let failure = format!("pipeline task: {e}");
                    tracing::error!("{failure}");
                    failure
                }
            };
            if !file.keep_running && !*stop_tx.borrow() {
                tracing::error!("stopping the other pipelines (set `keep_running = true` to keep them running)");
                let _ = stop_tx.send(true);
            }
            failures.push(failure);
        }
        drop(display);
        anyhow::Ok(Outcome::Ended(failures))
    })?;
    // The runtime may hold a pipeline that did not finish: not waited for.
    runtime.shutdown_background();
    match outcome {
        Outcome::Ended(failures) => {
            for failure in failures.iter().filter(|_| repeat) {
                writeln!(out, "error: {failure}")?;
            }
            Ok(if failures.is_empty() { 0 } else { 1 })
        }
        Outcome::TimedOut(left) => {
            if repeat {
                writeln!(out, "error: {left}")?;
            }
            Ok(1)
        }
    }
}

enum Outcome {
    Ended(Vec<String>),
    TimedOut(String),
}

/// Ctrl-C or SIGTERM (as a service manager stops a process) stops reading;
/// what was read is delivered and its positions stored. A second signal
/// exits at once; `shutdown` after the first, `timed_out` is raised.
async fn on_signals(stop: Arc<watch::Sender<bool>>, telemetry: Arc<Telemetry>, shutdown: Duration, timed_out: watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        tracing::error!("cannot listen for SIGINT and SIGTERM: stop the process with SIGKILL");
        return;
    };
    let first = next_signal(&mut interrupt, &mut terminate).await;
    tracing::info!(
        "{first}: stopping; delivering what was read and storing positions (at most {} s; a second signal exits at once)",
        shutdown.as_secs()
    );
    for pipeline in telemetry.pipelines() {
        if !matches!(pipeline.status().state(), State::Stopped | State::Failed | State::Finished) {
            pipeline.set_state(State::Stopping, None);
        }
    }
    let _ = stop.send(true);
    tokio::select! {
        second = next_signal(&mut interrupt, &mut terminate) => {
            tracing::error!("{second} after {first}: exiting at once; {}", undelivered(&telemetry));
            std::process::exit(EXIT_AT_ONCE);
        }
        _ = tokio::time::sleep(shutdown) => {
            let _ = timed_out.send(true);
        }
    }
}

async fn next_signal(interrupt: &mut tokio::signal::unix::Signal, terminate: &mut tokio::signal::unix::Signal) -> &'static str {
    tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    }
}

/// What a stop cut short: per pipeline still running, the batches read and
/// not acknowledged. Their positions were not stored, so a restart reads
/// them again.
fn undelivered(telemetry: &Telemetry) -> String {
    let left: Vec<String> = telemetry
        .pipelines()
        .iter()
        .map(|p| p.status())
        .filter(|s| !matches!(s.state(), State::Stopped | State::Failed | State::Finished))
        .map(|s| {
            let waiting = s.unacknowledged_batches();
            format!("`{}` ({}, {waiting} batches read and not acknowledged)", s.name, s.state())
        })
        .collect();
    if left.is_empty() {
        return "every pipeline had stopped".to_owned();
    }
    format!(
        "{}; their stored positions are where a restart resumes, so what they had not delivered is read again",
        left.join(", ")
    )
}
