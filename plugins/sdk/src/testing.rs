//! Native unit tests for plugin logic, without a host or wasm build.
use std::cell::RefCell;
use std::rc::Rc;

use crate::arena::{NONE32, NONE64, Reader, Writer};
use crate::bindings::sluice::plugin::types::{Batch, Column, Op, Schema};
use crate::record::Input;
use crate::{Config, Position, Record, Schemas, Transform, Value};

/// A one-table batch of inserts: `batch("db", "users", &["id", "email"], vec![vec![...]])`.
pub fn batch(database: &str, table: &str, columns: &[&str], rows: Vec<Vec<Value>>) -> Batch {
    rows.into_iter()
        .fold(Changes::default(), |changes, row| changes.insert(database, table, columns, row))
        .build()
}

/// A batch of changes to any number of tables, in order:
/// `Changes::default().insert("shop", "users", &["id"], vec![..]).delete("shop", "orders", &["id"], vec![..]).build()`.
/// Each table's first column is its key.
#[derive(Default)]
pub struct Changes {
    writer: Writer,
    /// Schema ids by database, table and columns.
    schemas: Vec<(String, String, Vec<String>)>,
    records: usize,
}

impl Changes {
    pub fn insert(self, database: &str, table: &str, columns: &[&str], after: Vec<Value>) -> Self {
        self.change(Op::Insert, database, table, columns, None, Some(after))
    }

    pub fn update(self, database: &str, table: &str, columns: &[&str], before: Vec<Value>, after: Vec<Value>) -> Self {
        self.change(Op::Update, database, table, columns, Some(before), Some(after))
    }

    pub fn delete(self, database: &str, table: &str, columns: &[&str], before: Vec<Value>) -> Self {
        self.change(Op::Delete, database, table, columns, Some(before), None)
    }

    pub fn build(self) -> Batch {
        self.writer.into_batch()
    }

    fn change(
        mut self,
        op: Op,
        database: &str,
        table: &str,
        columns: &[&str],
        before: Option<Vec<Value>>,
        after: Option<Vec<Value>>,
    ) -> Self {
        for image in [&before, &after].into_iter().flatten() {
            assert_eq!(
                image.len(),
                columns.len(),
                "{database}.{table}: {} values for {} columns {columns:?}",
                image.len(),
                columns.len()
            );
        }
        let schema = self.schema(database, table, columns);
        let position = Position::Other(self.records.to_string());
        self.records += 1;
        self.writer.push(sluice_layout::RecordRef {
            op: op as u8,
            position: position.as_position_ref(),
            ts_ms: 0,
            schema: Some(schema),
            before: before.as_deref(),
            after: after.as_deref(),
            key: None,
            payload: None,
            headers: &[],
            destination: None,
        });
        self
    }

    fn schema(&mut self, database: &str, table: &str, columns: &[&str]) -> u32 {
        let columns: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
        if let Some(id) = self
            .schemas
            .iter()
            .position(|(d, t, c)| d == database && t == table && *c == columns)
        {
            return id as u32;
        }
        let id = self.schemas.len() as u32;
        self.writer.schemas.push(Schema {
            id,
            database: database.into(),
            table: table.into(),
            columns: columns
                .iter()
                .map(|c| Column {
                    name: c.clone(),
                    sql_type: String::new(),
                })
                .collect(),
            key: vec![0],
        });
        self.schemas.push((database.to_owned(), table.to_owned(), columns));
        id
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, Out};

    struct Identity;

    impl Transform for Identity {
        fn init(_: &Config) -> Result<Self, Error> {
            Ok(Identity)
        }
        fn transform(&mut self, record: Record) -> Result<Out, Error> {
            Ok(record.into())
        }
    }

    fn every_kind() -> Vec<Value> {
        vec![
            Value::Null,
            Value::Int(i64::MIN),
            Value::Uint(u64::MAX),
            Value::Float(-1.5e300),
            Value::Decimal("-12345678901234567890.000001".into()),
            Value::Str("tab\t \"quoted\" ünïcode 😀".into()),
            Value::Bytes(vec![0, 255, 7, 0]),
            Value::Date("0000-00-00".into()),
            Value::Time("-838:59:59.000000".into()),
            Value::Datetime("2026-11-30 12:34:56.000001".into()),
            Value::Timestamp(-1),
            Value::Json("{\"a\":[1,null]}".into()),
        ]
    }

    const KINDS: [&str; 12] = [
        "null", "int", "uint", "float", "decimal", "str", "bytes", "date", "time", "datetime", "ts", "json",
    ];

    #[test]
    fn every_value_kind_crosses_the_batch_layout_unchanged() {
        let out = run::<Identity>(&[], batch("db", "t", &KINDS, vec![every_kind()]));
        assert_eq!(out.outputs[0].as_ref().unwrap()[0].after(), Some(every_kind()));
    }

    #[test]
    fn a_batch_of_changes_to_several_tables_reads_back_in_order() {
        let changes = Changes::default()
            .insert("shop", "users", &["id", "name"], vec![Value::Int(1), Value::Str("ann".into())])
            .update(
                "shop",
                "orders",
                &["id", "total"],
                vec![Value::Int(7), Value::Decimal("1.00".into())],
                vec![Value::Int(7), Value::Decimal("2.00".into())],
            )
            .delete("shop", "users", &["id", "name"], vec![Value::Int(2), Value::Str("bob".into())])
            .insert("crm", "notes", &["id"], vec![Value::Int(3)])
            .build();
        assert_eq!(changes.schemas.len(), 3, "one schema per table and column list");
        let out = run::<Identity>(&[], changes);
        let records: Vec<Record> = out.outputs.into_iter().map(|o| o.unwrap().remove(0)).collect();
        let seen: Vec<(Op, Option<&str>, Option<&str>)> = records.iter().map(|r| (r.op(), r.database(), r.table())).collect();
        assert_eq!(
            seen,
            [
                (Op::Insert, Some("shop"), Some("users")),
                (Op::Update, Some("shop"), Some("orders")),
                (Op::Delete, Some("shop"), Some("users")),
                (Op::Insert, Some("crm"), Some("notes")),
            ]
        );
        assert_eq!(records[1].before().unwrap()[1], Value::Decimal("1.00".into()));
        assert_eq!(records[1].after().unwrap()[1], Value::Decimal("2.00".into()));
        assert_eq!(records[2].after(), None, "a delete has only its before image");
        assert_eq!(records[2].before().unwrap()[1], Value::Str("bob".into()));
    }
}
