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

/// A value as plain text (`7`, `eu`, bytes in hex, `null`): for positions
/// made of key values and for log lines.
pub fn push_value_text(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
        Value::Uint(u) => out.push_str(itoa::Buffer::new().format(*u)),
        Value::Float(f) => out.push_str(&f.to_string()),
        Value::Timestamp(us) => out.push_str(itoa::Buffer::new().format(*us)),
        Value::Decimal(t) | Value::Str(t) | Value::Date(t) | Value::Time(t) | Value::Datetime(t) | Value::Json(t) => out.push_str(t),
        Value::Bytes(b) => b.iter().for_each(|x| {
            use std::fmt::Write as _;
            let _ = write!(out, "{x:02x}");
        }),
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
    Binlog {
        file: Arc<str>,
        pos: u64,
        gtid: Option<Arc<str>>,
        row: u32,
    },
    Kafka {
        topic: String,
        partition: i32,
        offset: i64,
    },
    Other(String),
}

impl Position {
    /// Where the record came from, as text: `binlog.000003:1234:0`,
    /// `topic/2/99`, …; written per record, so without `format!`.
    pub fn write_text(&self, out: &mut String) {
        let mut number = itoa::Buffer::new();
        match self {
            Position::Binlog { file, pos, row, .. } => {
                out.push_str(file);
                out.push(':');
                out.push_str(number.format(*pos));
                out.push(':');
                out.push_str(number.format(*row));
            }
            Position::Kafka { topic, partition, offset } => {
                out.push_str(topic);
                out.push('/');
                out.push_str(number.format(*partition));
                out.push('/');
                out.push_str(number.format(*offset));
            }
            Position::Other(text) => out.push_str(text),
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = String::new();
        self.write_text(&mut text);
        f.write_str(&text)
    }
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

    /// The record's key for a log line: `id=7, region=eu` from its row, or
    /// a raw message's key; `-` without one. Long values are cut.
    pub fn key_text(&self) -> String {
        const MAX: usize = 200;
        let text = match (&self.schema, self.after.as_ref().or(self.before.as_ref())) {
            (Some(schema), Some(row)) if !schema.key.is_empty() => schema
                .key
                .iter()
                .filter_map(|&k| {
                    let mut pair = format!("{}=", schema.columns.get(k as usize)?.name);
                    push_value_text(&mut pair, row.get(k as usize)?);
                    Some(pair)
                })
                .collect::<Vec<_>>()
                .join(", "),
            _ => match &self.key {
                Some(key) => String::from_utf8_lossy(key).into_owned(),
                None => return "-".into(),
            },
        };
        match text.char_indices().nth(MAX) {
            Some((end, _)) => format!("{}…", &text[..end]),
            None => text,
        }
    }

    /// The column's value in the newest row image (after, or before for deletes).
    pub fn get(&self, column: &str) -> Option<&Value> {
        let i = self.schema.as_ref()?.index_of(column)?;
        self.after.as_ref().or(self.before.as_ref())?.get(i)
    }
}
