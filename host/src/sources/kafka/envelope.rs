//! Kafka messages into records: a Debezium-style envelope (as our own
//! MySQL → Kafka sink and Debezium write it), a flat JSON row, or raw bytes
//! for a plugin to decode. Keys are decoded likewise.
use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::record::{Column, Op, Position, Record, Schema, Value};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageFormat {
    /// `{"before","after","source","op"}`; a null value is a delete of its key.
    #[default]
    Debezium,
    /// The row itself; a null value is a delete of its key.
    Flat,
    /// Bytes handed on as they are (a plugin decodes them).
    Raw,
}

/// One partition message as the consumer saw it.
pub struct Message<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
}

/// Remembers one schema per (database, table, column list), so records of a
/// table share it as binlog records do.
#[derive(Default)]
pub struct EnvelopeDecoder {
    schemas: HashMap<SchemaKey, Arc<Schema>>,
}

/// Database, table, column names, key column names.
type SchemaKey = (String, String, Vec<String>, Vec<String>);

impl EnvelopeDecoder {
    /// The record, or why the message cannot be one (it then goes to the
    /// dead-letter queue as raw bytes with that reason).
    pub fn decode(&mut self, format: MessageFormat, m: &Message<'_>) -> Result<Record, (Record, String)> {
        if format == MessageFormat::Raw {
            return Ok(raw_record(m));
        }
        self.decode_row(format, m).map_err(|reason| (raw_record(m), reason))
    }

    fn decode_row(&mut self, format: MessageFormat, m: &Message<'_>) -> Result<Record, String> {
        let key = match m.key {
            Some(bytes) => Some(json_object(bytes, "key")?),
            None => None,
        };
        let (database, table) = m.topic.split_once('.').map_or(("", m.topic), |(d, t)| (d, t));
        let (mut database, mut table) = (database.to_owned(), table.to_owned());
        let (op, before, after) = match m.payload {
            // A tombstone: delete whatever the key names.
            None => (Op::Delete, None, None),
            Some(bytes) => {
                let value = json_object(bytes, "value")?;
                match format {
                    MessageFormat::Flat => (Op::Update, None, Some(value)),
                    _ => {
                        let op = match value.get("op").and_then(Json::as_str) {
                            Some("c") => Op::Insert,
                            Some("u") => Op::Update,
                            Some("r") => Op::Read,
                            Some("d") => Op::Delete,
                            other => return Err(format!("envelope `op` is {other:?}; expected c, u, r or d")),
                        };
                        if let Some(source) = value.get("source") {
                            if let Some(db) = source.get("db").and_then(Json::as_str) {
                                database = db.to_owned();
                            }
                            if let Some(t) = source.get("table").and_then(Json::as_str) {
                                table = t.to_owned();
                            }
                        }
                        let image = |name: &str| match value.get(name) {
                            Some(Json::Object(row)) => Ok(Some(row.clone())),
                            None | Some(Json::Null) => Ok(None),
                            Some(_) => Err(format!("envelope `{name}` is not an object")),
                        };
                        let (before, after) = (image("before")?, image("after")?);
                        if op == Op::Delete && before.is_none() && key.is_none() {
                            return Err("a delete with neither `before` nor a key".into());
                        }
                        if op != Op::Delete && after.is_none() {
                            return Err("an insert or update without `after`".into());
                        }
                        (op, before, after)
                    }
                }
            }
        };
        if op == Op::Delete && before.is_none() && key.is_none() {
            return Err("a tombstone without a key".into());
        }
        // Columns: the newest image's, else the key's (a tombstone).
        let shape = after.as_ref().or(before.as_ref()).or(key.as_ref()).expect("an image or a key");
        let columns: Vec<String> = shape.keys().cloned().collect();
        let key_columns: Vec<String> = key.as_ref().map(|k| k.keys().cloned().collect()).unwrap_or_default();
        let schema = self
            .schemas
            .entry((database.clone(), table.clone(), columns.clone(), key_columns.clone()))
            .or_insert_with(|| {
                Arc::new(Schema {
                    database,
                    table,
                    key: key_columns.iter().filter_map(|k| columns.iter().position(|c| c == k)).map(|i| i as u32).collect(),
                    columns: columns.iter().map(|name| Column { name: name.clone(), sql_type: String::new() }).collect(),
                })
            })
            .clone();
        let row = |image: &Map<String, Json>| schema.columns.iter().map(|c| json_value(image.get(&c.name))).collect::<Vec<_>>();
        let before = match (&before, op) {
            (Some(b), _) => Some(row(b)),
            // A delete known only by its key: the key's columns, the rest null.
            (None, Op::Delete) => key.as_ref().map(row),
            _ => None,
        };
        Ok(Record {
            op,
            position: position(m),
            ts_ms: m.timestamp_ms,
            schema: Some(schema.clone()),
            before,
            after: after.as_ref().map(row),
            key: m.key.map(<[u8]>::to_vec),
            payload: None,
            headers: Vec::new(),
            destination: None,
        })
    }
}

fn position(m: &Message<'_>) -> Position {
    Position::Kafka { topic: m.topic.to_owned(), partition: m.partition, offset: m.offset }
}

fn raw_record(m: &Message<'_>) -> Record {
    Record {
        op: Op::Message,
        position: position(m),
        ts_ms: m.timestamp_ms,
        schema: None,
        before: None,
        after: None,
        key: m.key.map(<[u8]>::to_vec),
        payload: m.payload.map(<[u8]>::to_vec),
        headers: Vec::new(),
        destination: None,
    }
}

fn json_object(bytes: &[u8], what: &str) -> Result<Map<String, Json>, String> {
    match serde_json::from_slice(bytes) {
        Ok(Json::Object(map)) => Ok(map),
        Ok(_) => Err(format!("the message {what} is JSON but not an object")),
        Err(e) => Err(format!("the message {what} is not valid JSON: {e}")),
    }
}

/// JSON into a record value: numbers stay exact (integers as integers),
/// nested values are kept as JSON text.
fn json_value(value: Option<&Json>) -> Value {
    match value {
        None | Some(Json::Null) => Value::Null,
        Some(Json::Bool(b)) => Value::Int(i64::from(*b)),
        Some(Json::Number(n)) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::Uint(u),
            _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Some(Json::String(s)) => Value::Str(s.clone()),
        Some(nested) => Value::Json(nested.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<'a>(key: Option<&'a str>, payload: Option<&'a str>) -> Message<'a> {
        Message {
            topic: "shop.users",
            partition: 1,
            offset: 7,
            timestamp_ms: 0,
            key: key.map(str::as_bytes),
            payload: payload.map(str::as_bytes),
        }
    }

    #[test]
    fn envelopes_tombstones_and_flat_rows_decode() {
        let mut d = EnvelopeDecoder::default();
        let r = d
            .decode(MessageFormat::Debezium, &message(Some(r#"{"id":1}"#), Some(r#"{"op":"u","before":null,"after":{"id":1,"n":"x","big":18446744073709551615},"source":{"db":"a","table":"b"}}"#)))
            .unwrap();
        assert_eq!((r.op, r.schema.as_ref().unwrap().table.as_str(), r.schema.as_ref().unwrap().key.clone()), (Op::Update, "b", vec![0]));
        assert_eq!(r.after.unwrap(), [Value::Int(1), Value::Str("x".into()), Value::Uint(u64::MAX)]);
        let t = d.decode(MessageFormat::Debezium, &message(Some(r#"{"id":1}"#), None)).unwrap();
        assert_eq!((t.op, t.before.unwrap()), (Op::Delete, vec![Value::Int(1)]));
        let f = d.decode(MessageFormat::Flat, &message(None, Some(r#"{"id":2}"#))).unwrap();
        assert_eq!(f.schema.unwrap().table, "users");
    }

    #[test]
    fn bad_messages_say_why() {
        let mut d = EnvelopeDecoder::default();
        let e = d.decode(MessageFormat::Debezium, &message(None, Some("{not json"))).unwrap_err();
        assert!(e.1.contains("not valid JSON"), "{}", e.1);
        assert_eq!(e.0.payload.as_deref(), Some(&b"{not json"[..]));
        let e = d.decode(MessageFormat::Debezium, &message(None, None)).unwrap_err();
        assert!(e.1.contains("tombstone without a key"));
        let e = d.decode(MessageFormat::Debezium, &message(None, Some(r#"{"op":"x"}"#))).unwrap_err();
        assert!(e.1.contains("expected c, u, r or d"));
    }
}
