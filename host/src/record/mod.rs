//! Records as the pipeline carries them, and their JSON-lines form.
//!
//! A record's schema is shared (`Arc`) by every record of its table, so
//! column names travel once per table, in the pipeline as across the plugin
//! boundary.
mod json;

use std::sync::Arc;

pub use json::{JsonRecordError, JsonRecordReader, record_to_json};

/// Column values and headers are the plugin boundary's own types: one
/// definition for the host and the SDK.
pub use sluice_layout::{Header, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// As declared at the source, e.g. "decimal(10,2)".
    pub sql_type: String,
}

/// The shape of one table's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    pub database: String,
    pub table: String,
    pub columns: Vec<Column>,
    /// Positions in `columns` of the primary key, in key order.
    pub key: Vec<u32>,
}

impl Schema {
    pub fn index_of(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == column)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Insert,
    Update,
    Delete,
    Message,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// File name and GTID are shared by the records of one file and transaction.
    Binlog { file: Arc<str>, pos: u64, gtid: Option<Arc<str>>, row: u32 },
    Kafka { topic: String, partition: i32, offset: i64 },
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub op: Op,
    pub position: Position,
    /// Commit or message time, ms since 1970-01-01 UTC.
    pub ts_ms: i64,
    /// Absent for raw messages.
    pub schema: Option<Arc<Schema>>,
    pub before: Option<Vec<Value>>,
    pub after: Option<Vec<Value>>,
    /// Raw message key and value (records from Kafka not decoded into rows).
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    /// Topic or table chosen by a routing plugin.
    pub destination: Option<String>,
}

impl Record {
    /// A row as read from a table (snapshot, poll), not as changed.
    pub fn read(position: Position, ts_ms: i64, schema: Arc<Schema>, row: Vec<Value>) -> Self {
        Record {
            op: Op::Read,
            position,
            ts_ms,
            schema: Some(schema),
            before: None,
            after: Some(row),
            key: None,
            payload: None,
            headers: Vec::new(),
            destination: None,
        }
    }

    /// The column's value in the newest row image (after, or before for deletes).
    pub fn get(&self, column: &str) -> Option<&Value> {
        let i = self.schema.as_ref()?.index_of(column)?;
        self.after.as_ref().or(self.before.as_ref())?.get(i)
    }
}
