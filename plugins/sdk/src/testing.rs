//! Native unit tests for plugin logic, without a host or wasm build.
use crate::bindings::sluice::plugin::types::{Batch, Column, Op, Output, Position, Record as RawRecord, Schema};
use crate::{Config, Transform, Value};

/// A one-table batch builder: `rows(&["id", "email"], vec![vec![...]])`.
pub fn batch(database: &str, table: &str, columns: &[&str], rows: Vec<Vec<Value>>) -> Batch {
    let schema = Schema {
        id: 0,
        database: database.into(),
        table: table.into(),
        columns: columns.iter().map(|c| Column { name: (*c).into(), sql_type: String::new() }).collect(),
        key: vec![0],
    };
    let records = rows
        .into_iter()
        .enumerate()
        .map(|(i, after)| RawRecord {
            op: Op::Insert,
            position: Position::Other(i.to_string()),
            ts_ms: 0,
            schema: Some(0),
            before: None,
            after: Some(after),
            key: None,
            payload: None,
            headers: vec![],
            destination: None,
        })
        .collect();
    Batch { schemas: vec![schema], records }
}

/// What a plugin made of a batch, with `keep` outputs resolved to records.
#[derive(Debug)]
pub struct Outcome {
    pub schemas: Vec<Schema>,
    pub outputs: Vec<Result<Vec<RawRecord>, String>>,
}

/// Initialises `T` with `config` pairs and runs it over `batch`.
pub fn run<T: Transform>(config: &[(&str, &str)], batch: Batch) -> Outcome {
    let config = Config::new(config.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let mut plugin = T::init(&config).unwrap_or_else(|e| panic!("init failed: {e}"));
    let inputs = batch.records.clone();
    let result = crate::rt::run(&mut plugin, batch);
    let outputs = result
        .outputs
        .into_iter()
        .zip(inputs)
        .map(|(output, input)| match output {
            Err(e) => Err(e.message),
            Ok(outs) => Ok(outs
                .into_iter()
                .map(|o| match o {
                    Output::Keep => input.clone(),
                    Output::KeepTo(destination) => RawRecord { destination: Some(destination), ..input.clone() },
                    Output::Emit(record) => record,
                })
                .collect()),
        })
        .collect();
    Outcome { schemas: result.schemas, outputs }
}
