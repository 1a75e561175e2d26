use std::io::{BufRead, Write};
use std::sync::Arc;

use anyhow::Context;

use super::PluginTestArgs;
use crate::plugin::{BatchOutput, PluginEngine, PluginHost, PluginRunner};
use crate::record::{JsonRecordReader, Record, record_to_json};

/// `sluice plugin test`: exit 0 when every record succeeded, 1 otherwise.
pub fn run(args: &PluginTestArgs, input: &mut dyn BufRead, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let host = PluginHost::new(Arc::new(PluginEngine::new()?));
    let version = host.load_file(&args.plugin)?;
    let mut runner = host.runner(&version.name, args.run.config.clone(), args.run.limits())?;
    writeln!(err, "plugin {} version {} ({} bytes)", version.name, version.hash, version.size)?;

    let mut reader = JsonRecordReader::default();
    let mut batch: Vec<Record> = Vec::new();
    let mut lines = Vec::new();
    let (mut records, mut failed, mut outputs) = (0usize, 0usize, 0usize);
    let flush = |batch: &mut Vec<Record>, lines: &mut Vec<usize>, runner: &mut PluginRunner, out: &mut dyn Write, err: &mut dyn Write| {
        let result = runner.transform(std::mem::take(batch));
        let counts = report(result, lines, out, err);
        batch.clear();
        lines.clear();
        counts
    };
    for (n, line) in input.lines().enumerate() {
        let line = line.context("reading stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        records += 1;
        match reader.read_line(&line) {
            Ok(record) => {
                batch.push(record);
                lines.push(n + 1);
            }
            Err(e) => {
                failed += 1;
                writeln!(err, "line {}: invalid record: {e}", n + 1)?;
            }
        }
        if batch.len() >= args.batch_size.max(1) {
            let (o, f) = flush(&mut batch, &mut lines, &mut runner, out, err)?;
            (outputs, failed) = (outputs + o, failed + f);
        }
    }
    if !batch.is_empty() {
        let (o, f) = flush(&mut batch, &mut lines, &mut runner, out, err)?;
        (outputs, failed) = (outputs + o, failed + f);
    }
    for (name, value) in runner.counters().lock().expect("counters lock").iter() {
        writeln!(err, "counter {name} = {value}")?;
    }
    writeln!(err, "{records} records in, {outputs} out, {failed} failed")?;
    Ok(if failed == 0 { 0 } else { 1 })
}

fn report(result: BatchOutput, lines: &[usize], out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<(usize, usize)> {
    let (mut outputs, mut failed) = (0, 0);
    for (i, output) in result.outputs.into_iter().enumerate() {
        match output {
            Ok(records) => {
                for record in &records {
                    writeln!(out, "{}", record_to_json(record))?;
                }
                outputs += records.len();
            }
            Err(failed_record) => {
                failed += 1;
                writeln!(err, "line {}: {}", lines[i], failed_record.failure)?;
            }
        }
    }
    Ok((outputs, failed))
}
