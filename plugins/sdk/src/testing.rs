//! Native unit tests for plugin logic, without a host or wasm build.
use std::cell::RefCell;
use std::rc::Rc;

use crate::arena::{NONE32, NONE64, Reader, Writer};
use crate::bindings::sluice::plugin::types::{Batch, Column, Op, Schema};
use crate::record::Input;
use crate::{Config, Position, Record, Schemas, Transform, Value};

/// A one-table batch of inserts: `batch("db", "users", &["id", "email"], vec![vec![...]])`.
pub fn batch(database: &str, table: &str, columns: &[&str], rows: Vec<Vec<Value>>) -> Batch {
    let mut writer = Writer::default();
    writer.schemas.push(Schema {
        id: 0,
        database: database.into(),
        table: table.into(),
        columns: columns
            .iter()
            .map(|c| Column {
                name: (*c).into(),
                sql_type: String::new(),
            })
            .collect(),
        key: vec![0],
    });
    for (i, after) in rows.iter().enumerate() {
        let position = Position::Other(i.to_string());
        writer.push(sluice_layout::RecordRef {
            op: Op::Insert as u8,
            position: position.as_position_ref(),
            ts_ms: 0,
            schema: Some(0),
            before: None,
            after: Some(after),
            key: None,
            payload: None,
            headers: &[],
            destination: None,
        });
    }
    writer.into_batch()
}

/// What a plugin made of a batch, each output readable as a [`Record`].
#[derive(Debug)]
pub struct Outcome {
    pub outputs: Vec<Result<Vec<Record>, String>>,
}

/// Initialises `T` with `config` pairs and runs it over `batch`.
pub fn run<T: Transform>(config: &[(&str, &str)], batch: Batch) -> Outcome {
    let config = Config::new(config.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let mut plugin = T::init(&config).unwrap_or_else(|e| panic!("init failed: {e}"));
    let input_schemas = batch.schemas.clone();
    let input = Rc::new(Input {
        batch: batch.clone(),
        seq: u64::MAX,
    });
    let result = crate::rt::run(&mut plugin, batch);
    let mut all_schemas = input_schemas.clone();
    all_schemas.extend(result.emitted.schemas.iter().cloned());
    let emitted_schemas = Rc::new(RefCell::new(Schemas::new(all_schemas)));
    let input_schemas = Rc::new(RefCell::new(Schemas::new(input_schemas)));
    let emitted = Rc::new(Input {
        batch: result.emitted,
        seq: u64::MAX,
    });
    let mut errors = result.errors.into_iter();
    let mut next = 0;
    let outputs = result
        .output_counts
        .into_iter()
        .enumerate()
        .map(|(i, count)| {
            if count == NONE32 {
                return Err(errors.next().expect("one error per failed record"));
            }
            let range = next..next + count as usize;
            next = range.end;
            Ok(range
                .map(|o| match (result.outputs[o], result.destinations[o]) {
                    (NONE32, NONE64) => Record::new(&input, i as u32, &input_schemas),
                    (NONE32, destination) => {
                        let mut r = Record::new(&input, i as u32, &input_schemas);
                        r.set_destination(Reader { batch: &emitted.batch }.str(destination));
                        r
                    }
                    (at, _) => Record::new(&emitted, at, &emitted_schemas),
                })
                .collect())
        })
        .collect();
    Outcome { outputs }
}
