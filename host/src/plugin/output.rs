//! Checks what a plugin returned against the WIT contract and assembles the
//! answers of one or more calls (after fault isolation) into one batch answer.
use std::collections::HashMap;

use super::bindings::{Batch, BatchResult, Output, Record, Schema};
use super::failure::{FailureKind, RecordFailure};

/// The answer of one call covering consecutive input records.
pub enum Part {
    /// The call's result and the index of its first record in the whole batch.
    Done(BatchResult, usize),
    /// The call failed as a whole for this many records.
    Failed(RecordFailure, usize),
}

/// A contract breach that voids the whole answer of a call.
pub fn whole_batch_error(batch: &Batch, result: &BatchResult) -> Option<String> {
    if result.outputs.len() != batch.records.len() {
        return Some(format!(
            "returned {} results for {} records (exactly one per record is required)",
            result.outputs.len(),
            batch.records.len()
        ));
    }
    let clash = result.schemas.iter().find(|s| batch.schemas.iter().any(|b| b.id == s.id))?;
    Some(format!("added schema id {} clashes with an input schema", clash.id))
}

/// Joins the parts in input order. Schemas added by different calls get
/// fresh ids so they cannot collide; each output record is checked on its own.
pub fn assemble(batch: &Batch, parts: Vec<Part>) -> (Vec<Schema>, Vec<Result<Vec<Record>, RecordFailure>>) {
    let mut next_id = batch.schemas.iter().map(|s| s.id + 1).max().unwrap_or(0);
    let mut columns: HashMap<u32, usize> = batch.schemas.iter().map(|s| (s.id, s.columns.len())).collect();
    let mut added = Vec::new();
    let mut outputs = Vec::with_capacity(batch.records.len());
    for part in parts {
        match part {
            Part::Failed(failure, n) => outputs.extend((0..n).map(|_| Err(failure.clone()))),
            Part::Done(result, offset) => {
                let mut renumber = HashMap::new();
                for mut schema in result.schemas {
                    renumber.insert(schema.id, next_id);
                    schema.id = next_id;
                    columns.insert(next_id, schema.columns.len());
                    next_id += 1;
                    added.push(schema);
                }
                for (i, output) in result.outputs.into_iter().enumerate() {
                    let input = &batch.records[offset + i];
                    outputs.push(match output {
                        Err(e) => Err(RecordFailure::new(FailureKind::Rejected, e.message)),
                        Ok(outs) => outs.into_iter().map(|o| resolve(o, input, &renumber, &columns)).collect(),
                    });
                }
            }
        }
    }
    (added, outputs)
}

/// `keep` reuses the host's copy of the input; an emitted record is checked.
fn resolve(output: Output, input: &Record, renumber: &HashMap<u32, u32>, columns: &HashMap<u32, usize>) -> Result<Record, RecordFailure> {
    match output {
        Output::Keep => Ok(input.clone()),
        Output::KeepTo(destination) => Ok(Record { destination: Some(destination), ..input.clone() }),
        Output::Emit(mut record) => check_record(&mut record, renumber, columns).map(|()| record),
    }
}

fn check_record(record: &mut Record, renumber: &HashMap<u32, u32>, columns: &HashMap<u32, usize>) -> Result<(), RecordFailure> {
    let bad = |m: String| Err(RecordFailure::new(FailureKind::BadOutput, m));
    let Some(id) = record.schema else {
        if record.before.is_some() || record.after.is_some() {
            return bad("output record has rows but no schema".into());
        }
        return Ok(());
    };
    let id = *renumber.get(&id).unwrap_or(&id);
    record.schema = Some(id);
    let Some(&width) = columns.get(&id) else {
        return bad(format!("output record refers to schema {id}, which neither the batch nor the plugin defined"));
    };
    for (image, row) in [("before", &record.before), ("after", &record.after)] {
        if let Some(row) = row {
            if row.len() != width {
                return bad(format!("output {image} row has {} values for {width} columns", row.len()));
            }
        }
    }
    Ok(())
}
