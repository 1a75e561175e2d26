//! The benchmark's 5-column rows: as pipeline records (for the wasm path)
//! and as an SDK batch (for the same plugin code run natively).
use std::sync::Arc;

use sluice::record::{Column, Op, Position, Record, Schema, Value};

pub const COLUMNS: [(&str, &str); 5] = [
    ("id", "bigint"),
    ("email", "varchar(255)"),
    ("name", "varchar(100)"),
    ("amount", "decimal(12,2)"),
    ("created_at", "datetime(6)"),
];

fn row(i: usize) -> Vec<Value> {
    vec![
        Value::Int(i as i64),
        Value::Str(format!("  User{i}@Example.COM ")),
        Value::Str(format!("user  number {i}")),
        Value::Decimal(format!("{}.{:02}", i % 10_000, i % 100)),
        Value::Datetime("2026-11-26 12:34:56.000001".into()),
    ]
}

pub fn host_batches(rows: usize, batch: usize) -> Vec<Vec<Record>> {
    let schema = host_schema();
    (0..rows)
        .step_by(batch.max(1))
        .map(|start| host_records(&schema, start..rows.min(start + batch)))
        .collect()
}

/// The benchmark table's schema; its records share one, as the rows of one
/// table map do.
pub fn host_schema() -> Arc<Schema> {
    Arc::new(Schema {
        database: "bench".into(),
        table: "users".into(),
        columns: COLUMNS
            .iter()
            .map(|(n, t)| Column {
                name: (*n).into(),
                sql_type: (*t).into(),
            })
            .collect(),
        key: vec![0],
    })
}

/// The rows numbered `ids`, as a binlog source would hand them over.
pub fn host_records(schema: &Arc<Schema>, ids: std::ops::Range<usize>) -> Vec<Record> {
    ids.map(|i| Record {
        op: Op::Insert,
        position: Position::Binlog {
            file: "binlog.000001".into(),
            pos: 4 + i as u64,
            gtid: None,
            row: 0,
        },
        ts_ms: 1_764_000_000_000,
        schema: Some(schema.clone()),
        before: None,
        after: Some(row(i)),
        key: None,
        payload: None,
        headers: vec![],
        destination: None,
    })
    .collect()
}

/// The same rows as SDK batches, for running plugin code natively.
pub fn guest_batches(batches: &[Vec<Record>]) -> Vec<sluice_plugin::bindings::sluice::plugin::types::Batch> {
    let names: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
    batches
        .iter()
        .map(|records| {
            let rows = records
                .iter()
                .map(|r| r.after.iter().flatten().map(to_sdk_value).collect())
                .collect();
            sluice_plugin::testing::batch("bench", "users", &names, rows)
        })
        .collect()
}

fn to_sdk_value(v: &Value) -> sluice_plugin::Value {
    use sluice_plugin::Value as V;
    match v {
        Value::Int(i) => V::Int(*i),
        Value::Str(s) => V::Str(s.clone()),
        Value::Decimal(s) => V::Decimal(s.clone()),
        Value::Datetime(s) => V::Datetime(s.clone()),
        _ => unreachable!("the benchmark rows use only int, str, decimal and datetime"),
    }
}
