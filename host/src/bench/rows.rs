//! The benchmark's 5-column rows, built identically as host records (for the
//! wasm path) and as guest records (for the native path).
use sluice_plugin::bindings::sluice::plugin::types as guest;

use crate::record::{Batch, BinlogPosition, Column, Op, Position, Record, Schema, Value};

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

pub fn host_batches(rows: usize, batch: usize) -> Vec<Batch> {
    let schema = Schema {
        id: 0,
        database: "bench".into(),
        table: "users".into(),
        columns: COLUMNS.iter().map(|(n, t)| Column { name: (*n).into(), sql_type: (*t).into() }).collect(),
        key: vec![0],
    };
    (0..rows)
        .collect::<Vec<_>>()
        .chunks(batch)
        .map(|ids| Batch {
            schemas: vec![schema.clone()],
            records: ids
                .iter()
                .map(|&i| Record {
                    op: Op::Insert,
                    position: Position::Binlog(BinlogPosition { file: "binlog.000001".into(), pos: 4 + i as u64, gtid: None, row: 0 }),
                    ts_ms: 1_764_000_000_000,
                    schema: Some(0),
                    before: None,
                    after: Some(row(i)),
                    key: None,
                    payload: None,
                    headers: vec![],
                    destination: None,
                })
                .collect(),
        })
        .collect()
}

/// The same batches in the guest SDK's types, for running plugin code natively.
pub fn guest_batches(batches: &[Batch]) -> Vec<guest::Batch> {
    batches.iter().map(to_guest_batch).collect()
}

fn to_guest_batch(b: &Batch) -> guest::Batch {
    guest::Batch {
        schemas: b
            .schemas
            .iter()
            .map(|s| guest::Schema {
                id: s.id,
                database: s.database.clone(),
                table: s.table.clone(),
                columns: s.columns.iter().map(|c| guest::Column { name: c.name.clone(), sql_type: c.sql_type.clone() }).collect(),
                key: s.key.clone(),
            })
            .collect(),
        records: b
            .records
            .iter()
            .map(|r| guest::Record {
                op: guest::Op::Insert,
                position: match &r.position {
                    Position::Binlog(p) => guest::Position::Binlog(guest::BinlogPosition {
                        file: p.file.clone(),
                        pos: p.pos,
                        gtid: p.gtid.clone(),
                        row: p.row,
                    }),
                    _ => guest::Position::Other(String::new()),
                },
                ts_ms: r.ts_ms,
                schema: r.schema,
                before: None,
                after: r.after.as_ref().map(|row| row.iter().map(to_guest_value).collect()),
                key: None,
                payload: None,
                headers: vec![],
                destination: None,
            })
            .collect(),
    }
}

fn to_guest_value(v: &Value) -> guest::Value {
    match v {
        Value::Int(i) => guest::Value::Int(*i),
        Value::Str(s) => guest::Value::Str(s.clone()),
        Value::Decimal(s) => guest::Value::Decimal(s.clone()),
        Value::Datetime(s) => guest::Value::Datetime(s.clone()),
        _ => unreachable!("the benchmark rows use only int, str, decimal and datetime"),
    }
}
