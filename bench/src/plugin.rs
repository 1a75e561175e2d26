//! `sluice bench plugin`: rows/s through the plugin host beside the same
//! plugin code compiled natively, and file-change-to-serving reload latency.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;

use crate::rows::{COLUMNS, guest_batches, host_batches};
use sluice::plugin::{PluginEngine, PluginHost, PluginLimits, PluginWatcher};
use sluice_testkit::with_custom_section;

#[derive(Debug, Args)]
pub struct PluginBenchArgs {
    /// Directory holding passthrough.wasm and clean.wasm (built by `cargo build --release --target wasm32-wasip2` in plugins/).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/target/wasm32-wasip2/release"))]
    pub plugins: PathBuf,
    /// Rows per measurement.
    #[arg(long, default_value_t = 200_000)]
    pub rows: usize,
    /// Reloads to time.
    #[arg(long, default_value_t = 10)]
    pub reloads: usize,
}

const CLEAN_CONFIG: [(&str, &str); 2] = [("mask", "name"), ("lowercase", "email")];

pub fn run(args: &PluginBenchArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let engine = Arc::new(PluginEngine::new()?);
    let host = PluginHost::new(engine.clone());
    for name in ["passthrough", "clean"] {
        let path = args.plugins.join(format!("{name}.wasm"));
        if !path.exists() {
            bail!(
                "{} not found: build the plugins first (cd plugins && cargo build --release --target wasm32-wasip2)",
                path.display()
            );
        }
        host.load_file(&path)?;
    }
    writeln!(
        out,
        "plugin host throughput: {} rows of {} columns per run, one thread",
        args.rows,
        COLUMNS.len()
    )?;
    writeln!(
        out,
        "{:<12} {:>6} {:>14} {:>16} {:>12} {:>12}",
        "plugin", "batch", "host rows/s", "native rows/s", "host/native", "host µs/row"
    )?;
    for name in ["passthrough", "clean"] {
        let config: Vec<(String, String)> = match name {
            "clean" => CLEAN_CONFIG.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
            _ => vec![],
        };
        for batch_size in [1, 100, 1000] {
            let batches = host_batches(args.rows, batch_size);
            let mut runner = host.runner(name, config.clone(), PluginLimits::default())?;
            // One warm-up pass so allocator growth inside the guest is not measured.
            runner.transform(batches[0].clone());
            let native_rate = native_rate(name, &config, &batches, args.rows);
            let started = Instant::now();
            let mut failed = 0;
            for batch in batches {
                failed += runner.transform(batch).outputs.iter().filter(|o| o.is_err()).count();
            }
            let host_rate = rate(args.rows, started.elapsed());
            if failed > 0 {
                bail!("{failed} records failed in the {name} benchmark");
            }
            writeln!(
                out,
                "{name:<12} {batch_size:>6} {host_rate:>14.0} {native_rate:>16.0} {:>12.2} {:>12.3}",
                host_rate / native_rate,
                1e6 / host_rate
            )?;
        }
    }
    reload_latency(&engine, &args.plugins.join("passthrough.wasm"), args.reloads, out)?;
    Ok(0)
}

fn rate(rows: usize, took: Duration) -> f64 {
    rows as f64 / took.as_secs_f64()
}

/// The same plugin source compiled for this machine, over the same rows.
fn native_rate(name: &str, config: &[(String, String)], batches: &[Vec<sluice::record::Record>], rows: usize) -> f64 {
    let guest = guest_batches(batches);
    let config = sluice_plugin::Config::new(config.iter().cloned());
    let started = Instant::now();
    match name {
        "clean" => {
            let mut plugin = <clean::Clean as sluice_plugin::Transform>::init(&config).expect("clean init");
            for batch in &guest {
                std::hint::black_box(sluice_plugin::rt::run(&mut plugin, batch.clone()));
            }
        }
        _ => {
            let mut plugin = passthrough::Passthrough;
            for batch in &guest {
                std::hint::black_box(sluice_plugin::rt::run(&mut plugin, batch.clone()));
            }
        }
    }
    rate(rows, started.elapsed())
}

/// Time from writing a new build into the watched directory to a runner
/// serving it (what a pipeline would see at its next batch).
fn reload_latency(engine: &Arc<PluginEngine>, passthrough: &Path, reloads: usize, out: &mut dyn Write) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let original = std::fs::read(passthrough).with_context(|| passthrough.display().to_string())?;
    let target = dir.path().join("live.wasm");
    std::fs::write(&target, &original)?;
    let host = PluginHost::open(engine.clone(), dir.path())?;
    let _watcher = PluginWatcher::start(host.clone())?;
    let mut runner = host.runner("live", vec![], PluginLimits::default())?;
    let mut latencies = Vec::new();
    for i in 0..reloads {
        let bytes = with_custom_section(&original, &format!("bench-{i}"));
        let expected = sluice::plugin::content_hash(&bytes);
        let staged = dir.path().join("live.wasm.tmp");
        std::fs::write(&staged, &bytes)?;
        let started = Instant::now();
        std::fs::rename(&staged, &target)?;
        while runner.version().hash != expected {
            if started.elapsed() > Duration::from_secs(10) {
                bail!("reload {i} not serving after 10 s");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    writeln!(
        out,
        "reload latency (file renamed into place -> new version serving), {reloads} reloads: median {:.0} ms, max {:.0} ms (target < 500 ms; includes the watcher's {} ms quiet period)",
        ms(latencies[latencies.len() / 2]),
        ms(*latencies.last().expect("at least one reload")),
        50
    )?;
    Ok(())
}
