//! Kafka message form of a record: key = primary key, value = a
//! Debezium-compatible envelope (or the flat row), headers = source position
//! and a dedup id.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::record::{Op, Position, Record, Schema, Value};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValueFormat {
    /// `{"before","after","source","op","ts_ms"}` as Debezium writes it.
    #[default]
    Debezium,
    /// The `after` row alone; a delete becomes a tombstone.
    Flat,
}

pub const POSITION_HEADER: &str = "sluice.position";
pub const DEDUP_HEADER: &str = "sluice.dedup-id";

/// The primary key as a JSON object (`{"id":7}`), or the raw key of a message.
pub fn key(record: &Record) -> Option<Vec<u8>> {
    let Some(schema) = record.schema.as_deref() else { return record.key.clone() };
    let row = record.after.as_ref().or(record.before.as_ref())?;
    if schema.key.is_empty() {
        return None;
    }
    to_json(&RowJson { schema, row, only: Some(&schema.key) }, 32)
}

/// The message value; None for a tombstone. Written straight from the record
/// (no intermediate JSON tree): this is per-record work on the hot path.
pub fn value(record: &Record, format: ValueFormat, pipeline: &str) -> Option<Vec<u8>> {
    let Some(schema) = record.schema.as_deref() else { return record.payload.clone() };
    match format {
        ValueFormat::Flat => record.after.as_deref().and_then(|row| to_json(&RowJson { schema, row, only: None }, 256)),
        ValueFormat::Debezium => {
            let (file, pos, row_index, gtid) = match &record.position {
                Position::Binlog { file, pos, gtid, row } => (Some(file.as_str()), Some(*pos), Some(*row), gtid.as_deref()),
                _ => (None, None, None, None),
            };
            let envelope = Envelope {
                before: record.before.as_deref().map(|row| RowJson { schema, row, only: None }),
                after: record.after.as_deref().map(|row| RowJson { schema, row, only: None }),
                source: Source {
                    version: concat!("sluice-", env!("CARGO_PKG_VERSION")),
                    connector: "mysql",
                    name: pipeline,
                    ts_ms: record.ts_ms,
                    db: &schema.database,
                    table: &schema.table,
                    snapshot: matches!(&record.position, Position::Other(p) if p.starts_with("snapshot:")),
                    file,
                    pos,
                    row: row_index,
                    gtid,
                },
                op: match record.op {
                    Op::Read => "r",
                    Op::Insert => "c",
                    Op::Update => "u",
                    Op::Delete => "d",
                    Op::Message => "m",
                },
                ts_ms: chrono::Utc::now().timestamp_millis(),
            };
            to_json(&envelope, 512)
        }
    }
}

/// Sized for a typical message up front: growing the buffer step by step
/// showed up as copying in profiles.
fn to_json(value: &impl Serialize, capacity: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut out, value).ok()?;
    Some(out)
}

#[derive(Serialize)]
struct Envelope<'a> {
    before: Option<RowJson<'a>>,
    after: Option<RowJson<'a>>,
    source: Source<'a>,
    op: &'static str,
    ts_ms: i64,
}

#[derive(Serialize)]
struct Source<'a> {
    version: &'static str,
    connector: &'static str,
    name: &'a str,
    ts_ms: i64,
    db: &'a str,
    table: &'a str,
    snapshot: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pos: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    row: Option<u32>,
    gtid: Option<&'a str>,
}

/// A row as a JSON object of column: value (or only the listed columns).
struct RowJson<'a> {
    schema: &'a Schema,
    row: &'a [Value],
    only: Option<&'a [u32]>,
}

impl Serialize for RowJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let columns: Box<dyn Iterator<Item = usize>> = match self.only {
            Some(only) => Box::new(only.iter().map(|&i| i as usize)),
            None => Box::new(0..self.schema.columns.len()),
        };
        let mut map = serializer.serialize_map(None)?;
        for i in columns {
            if let (Some(column), Some(value)) = (self.schema.columns.get(i), self.row.get(i)) {
                map.serialize_entry(&column.name, &ValueJson(value))?;
            }
        }
        map.end()
    }
}

/// Column values as Debezium renders them with string-friendly settings:
/// DECIMAL and temporal types as exact strings, TIMESTAMP as ISO-8601 UTC,
/// bytes as base64, JSON as its text.
struct ValueJson<'a>(&'a Value);

impl Serialize for ValueJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_none(),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Uint(u) => s.serialize_u64(*u),
            Value::Float(f) if f.is_finite() => s.serialize_f64(*f),
            Value::Float(_) => s.serialize_none(),
            Value::Decimal(t) | Value::Str(t) | Value::Date(t) | Value::Time(t) | Value::Datetime(t) | Value::Json(t) => s.serialize_str(t),
            Value::Bytes(b) => s.serialize_str(&BASE64.encode(b)),
            Value::Timestamp(micros) => match chrono::DateTime::from_timestamp_micros(*micros) {
                Some(t) => s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
                None => s.serialize_i64(*micros),
            },
        }
    }
}

/// Where the record came from, as text: `binlog.000003:1234:0`, `topic/2/99`, …
pub fn position_text(position: &Position) -> String {
    let mut text = String::with_capacity(48);
    write_position(&mut text, position);
    text
}

fn write_position(out: &mut String, position: &Position) {
    use std::fmt::Write as _;
    let _ = match position {
        Position::Binlog { file, pos, row, .. } => write!(out, "{file}:{pos}:{row}"),
        Position::Kafka { topic, partition, offset } => write!(out, "{topic}/{partition}/{offset}"),
        Position::Other(text) => out.write_str(text),
    };
}

pub fn headers(record: &Record) -> OwnedHeaders {
    // The dedup id is stable across re-deliveries of the same source change,
    // so a consumer can drop duplicates after a restart: table plus source
    // position, which is its tail.
    let mut dedup = String::with_capacity(96);
    if let Some(s) = record.schema.as_deref() {
        dedup.push_str(&s.database);
        dedup.push('.');
        dedup.push_str(&s.table);
        dedup.push('@');
    }
    let at = dedup.len();
    write_position(&mut dedup, &record.position);
    let mut headers = OwnedHeaders::new_with_capacity(record.headers.len() + 2)
        .insert(KafkaHeader { key: POSITION_HEADER, value: Some(&dedup.as_bytes()[at..]) })
        .insert(KafkaHeader { key: DEDUP_HEADER, value: Some(dedup.as_bytes()) });
    for h in &record.headers {
        headers = headers.insert(KafkaHeader { key: &h.key, value: Some(&h.value) });
    }
    headers
}
