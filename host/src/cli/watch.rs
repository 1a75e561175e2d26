use std::io::{BufRead, Write};
use std::sync::Arc;

use anyhow::Context;

use super::PluginWatchArgs;
use crate::plugin::{PluginEngine, PluginHost, PluginWatcher};
use crate::record::{JsonRecordReader, record_to_json};

/// `sluice plugin watch`: each stdin line is run through whatever version of
/// the plugin is serving when it arrives; replacing the .wasm takes effect
/// for the next line.
pub fn run(args: &PluginWatchArgs, input: &mut dyn BufRead, out: &mut dyn Write) -> anyhow::Result<i32> {
    let host = PluginHost::open(Arc::new(PluginEngine::new()?), &args.dir)?;
    let _watcher = PluginWatcher::start(host.clone())?;
    let mut runner = host.runner(&args.name, args.run.config.clone(), args.run.limits())?;
    let mut reader = JsonRecordReader::default();
    let mut serving = String::new();
    let mut failed = 0;
    for line in input.lines() {
        let line = line.context("reading stdin")?;
        let record = match reader.read_line(&line) {
            Ok(record) => record,
            Err(e) => {
                tracing::error!("invalid record: {e}");
                failed += 1;
                continue;
            }
        };
        let result = runner.transform(vec![record]);
        if result.version.hash != serving {
            serving = result.version.hash.clone();
            tracing::info!(plugin = %args.name, version = %serving, "serving");
        }
        for output in result.outputs {
            match output {
                Ok(records) => {
                    for record in &records {
                        writeln!(out, "{}", record_to_json(record))?;
                    }
                }
                Err(failed_record) => {
                    failed += 1;
                    tracing::error!(plugin = %args.name, version = %serving, "{}", failed_record.failure);
                }
            }
        }
        out.flush()?;
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
