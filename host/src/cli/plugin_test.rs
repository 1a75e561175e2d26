use std::io::{BufRead, Write};
use std::sync::Arc;

use anyhow::Context;

use super::PluginTestArgs;
use crate::plugin::{BatchOutput, PluginEngine, PluginHost};
use crate::record::{Batch, JsonBatchBuilder, Schema, record_to_json};

/// `sluice plugin test`: exit 0 when every record succeeded, 1 otherwise.
pub fn run(args: &PluginTestArgs, input: &mut dyn BufRead, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let host = PluginHost::new(Arc::new(PluginEngine::new()?));
    let version = host.load_file(&args.plugin)?;
    let mut runner = host.runner(&version.name, args.run.config.clone(), args.run.limits())?;
    writeln!(err, "plugin {} version {} ({} bytes)", version.name, version.hash, version.size)?;

    let mut builder = JsonBatchBuilder::default();
    let mut lines = Vec::new();
    let (mut records, mut failed, mut outputs) = (0usize, 0usize, 0usize);
    for (n, line) in input.lines().enumerate() {
        let line = line.context("reading stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        records += 1;
        match builder.push_line(&line) {
            Ok(()) => lines.push(n + 1),
            Err(e) => {
                failed += 1;
                writeln!(err, "line {}: invalid record: {e}", n + 1)?;
            }
        }
        if builder.len() >= args.batch_size.max(1) {
            let batch = builder.finish();
            let result = runner.transform(&batch);
            let (o, f) = report(&batch, result, &lines, out, err)?;
            (outputs, failed) = (outputs + o, failed + f);
            lines.clear();
        }
    }
    if !builder.is_empty() {
        let batch = builder.finish();
        let result = runner.transform(&batch);
        let (o, f) = report(&batch, result, &lines, out, err)?;
        (outputs, failed) = (outputs + o, failed + f);
    }
    for (name, value) in runner.counters().lock().expect("counters lock").iter() {
        writeln!(err, "counter {name} = {value}")?;
    }
    writeln!(err, "{records} records in, {outputs} out, {failed} failed")?;
    Ok(if failed == 0 { 0 } else { 1 })
}

fn report(batch: &Batch, result: BatchOutput, lines: &[usize], out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<(usize, usize)> {
    let schemas: Vec<&Schema> = batch.schemas.iter().chain(&result.schemas).collect();
    let (mut outputs, mut failed) = (0, 0);
    for (i, output) in result.outputs.into_iter().enumerate() {
        match output {
            Ok(records) => {
                for record in &records {
                    writeln!(out, "{}", record_to_json(record, &schemas))?;
                }
                outputs += records.len();
            }
            Err(failure) => {
                failed += 1;
                writeln!(err, "line {}: {failure}", lines[i])?;
            }
        }
    }
    Ok((outputs, failed))
}
