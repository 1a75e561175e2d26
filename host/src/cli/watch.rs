use std::io::{BufRead, Write};
use std::sync::Arc;

use anyhow::Context;

use super::PluginWatchArgs;
use crate::plugin::{PluginEngine, PluginHost, PluginWatcher, Schema};
use crate::record::{JsonBatchBuilder, record_to_json};

/// `sluice plugin watch`: each stdin line is run through whatever version of
/// the plugin is serving when it arrives; replacing the .wasm takes effect
/// for the next line.
pub fn run(args: &PluginWatchArgs, input: &mut dyn BufRead, out: &mut dyn Write) -> anyhow::Result<i32> {
    let host = PluginHost::open(Arc::new(PluginEngine::new()?), &args.dir)?;
    let _watcher = PluginWatcher::start(host.clone())?;
    let mut runner = host.runner(&args.name, args.run.config.clone(), args.run.limits())?;
    let mut serving = String::new();
    let mut failed = 0;
    for line in input.lines() {
        let line = line.context("reading stdin")?;
        let mut builder = JsonBatchBuilder::default();
        if let Err(e) = builder.push_line(&line) {
            tracing::error!("invalid record: {e}");
            failed += 1;
            continue;
        }
        let batch = builder.finish();
        let result = runner.transform(&batch);
        if result.version.hash != serving {
            serving = result.version.hash.clone();
            tracing::info!(plugin = %args.name, version = %serving, "serving");
        }
        let schemas: Vec<&Schema> = batch.schemas.iter().chain(&result.schemas).collect();
        for output in result.outputs {
            match output {
                Ok(records) => {
                    for record in &records {
                        writeln!(out, "{}", record_to_json(record, &schemas))?;
                    }
                }
                Err(failure) => {
                    failed += 1;
                    tracing::error!(plugin = %args.name, version = %serving, "{failure}");
                }
            }
        }
        out.flush()?;
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
