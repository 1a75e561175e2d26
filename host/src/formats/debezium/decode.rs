//! Kafka messages into records: a Debezium-style envelope (as our own
//! MySQL → Kafka sink and Debezium write it), a flat JSON row, or raw bytes
//! for a plugin to decode. Keys are decoded likewise.
#![allow(
    clippy::result_large_err,
    reason = "a record that fails comes back whole, by value like one that succeeds: both variants are as large"
)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;

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

/// Remembers the schemas seen per database and table (one per column list
/// and key), so records of a table share one as binlog records do.
#[derive(Default)]
pub struct EnvelopeDecoder {
    schemas: HashMap<String, HashMap<String, Vec<Arc<Schema>>>>,
}

/// A Debezium-style envelope, read without building a JSON tree: rows come
/// straight into record values, names borrowed from the message.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow)]
    before: Option<Row<'a>>,
    #[serde(default, borrow)]
    after: Option<Row<'a>>,
    #[serde(default, borrow)]
    op: Option<Name<'a>>,
    #[serde(default, borrow)]
    source: Option<Source<'a>>,
}

#[derive(Deserialize)]
struct Source<'a> {
    #[serde(default, borrow)]
    db: Option<Name<'a>>,
    #[serde(default, borrow)]
    table: Option<Name<'a>>,
}

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
        let key: Option<Row> = m.key.map(|bytes| parse(bytes, "key", "an object")).transpose()?;
        let (mut database, mut table) = m.topic.split_once('.').unwrap_or(("", m.topic));
        let envelope: Envelope;
        let (op, before, after) = match (m.payload, format) {
            // A tombstone: delete whatever the key names.
            (None, _) => (Op::Delete, None, None),
            (Some(bytes), MessageFormat::Flat) => (Op::Update, None, Some(parse::<Row>(bytes, "value", "an object")?)),
            (Some(bytes), _) => {
                envelope = parse(bytes, "value", "an envelope object")?;
                let op = match envelope.op.as_ref().map(|o| &*o.0) {
                    Some("c") => Op::Insert,
                    Some("u") => Op::Update,
                    Some("r") => Op::Read,
                    Some("d") => Op::Delete,
                    other => return Err(format!("envelope `op` is {other:?}; expected c, u, r or d")),
                };
                if let Some(source) = &envelope.source {
                    database = source.db.as_ref().map_or(database, |d| &d.0);
                    table = source.table.as_ref().map_or(table, |t| &t.0);
                }
                let Envelope { before, after, .. } = envelope;
                if op == Op::Delete && before.is_none() && key.is_none() {
                    return Err("a delete with neither `before` nor a key".into());
                }
                if op != Op::Delete && after.is_none() {
                    return Err("an insert or update without `after`".into());
                }
                (op, before, after)
            }
        };
        if op == Op::Delete && before.is_none() && key.is_none() {
            return Err("a tombstone without a key".into());
        }
        // Columns: the newest image's, else the key's (a tombstone).
        let shape = after.as_ref().or(before.as_ref()).or(key.as_ref()).expect("an image or a key");
        let schema = self.schema(database, table, shape, key.as_ref());
        let before = match (before, op) {
            (Some(b), _) => Some(b.into_values(&schema)),
            // A delete known only by its key: the key's columns, the rest null.
            (None, Op::Delete) => key.map(|k| k.into_values(&schema)),
            _ => None,
        };
        Ok(Record {
            op,
            position: position(m),
            ts_ms: m.timestamp_ms,
            before,
            after: after.map(|a| a.into_values(&schema)),
            schema: Some(schema),
            key: m.key.map(<[u8]>::to_vec),
            payload: None,
            headers: Vec::new(),
            destination: None,
        })
    }

    /// The schema of `shape`'s columns with `key`'s columns as its key.
    fn schema(&mut self, database: &str, table: &str, shape: &Row<'_>, key: Option<&Row<'_>>) -> Arc<Schema> {
        let key: Vec<u32> = key
            .map(|k| {
                k.0.iter()
                    .filter_map(|(name, _)| shape.0.iter().position(|(c, _)| c.0 == name.0))
                    .map(|i| i as u32)
                    .collect()
            })
            .unwrap_or_default();
        if !self.schemas.contains_key(database) {
            self.schemas.insert(database.to_owned(), HashMap::new());
        }
        let tables = self.schemas.get_mut(database).expect("inserted above");
        if !tables.contains_key(table) {
            tables.insert(table.to_owned(), Vec::new());
        }
        let known = tables.get_mut(table).expect("inserted above");
        let same = |s: &Schema| {
            s.key == key && s.columns.len() == shape.0.len() && s.columns.iter().zip(&shape.0).all(|(c, (n, _))| c.name == *n.0)
        };
        if let Some(schema) = known.iter().find(|s| same(s)) {
            return schema.clone();
        }
        let schema = Arc::new(Schema {
            database: database.to_owned(),
            table: table.to_owned(),
            key,
            columns: shape
                .0
                .iter()
                .map(|(name, _)| Column {
                    name: name.0.to_string(),
                    sql_type: String::new(),
                })
                .collect(),
        });
        known.push(schema.clone());
        schema
    }
}

fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str, expected: &str) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() {
            format!("the message {what} is JSON but not {expected}: {e}")
        } else {
            format!("the message {what} is not valid JSON: {e}")
        }
    })
}

fn position(m: &Message<'_>) -> Position {
    Position::Kafka {
        topic: m.topic.to_owned(),
        partition: m.partition,
        offset: m.offset,
    }
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

/// A JSON string, borrowed from the message unless it has escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(Visit)
    }
}

/// A JSON object's members in order, values already record values.
struct Row<'a>(Vec<(Name<'a>, Value)>);

impl Row<'_> {
    /// The values in `schema`'s column order; a column the row lacks is null.
    fn into_values(self, schema: &Schema) -> Vec<Value> {
        let mut members = self.0;
        if members.len() == schema.columns.len() && members.iter().zip(&schema.columns).all(|((n, _), c)| *n.0 == c.name) {
            return members.into_iter().map(|(_, v)| v).collect();
        }
        let mut take = |name: &str| {
            members
                .iter_mut()
                .find(|(n, _)| n.0 == name)
                .map_or(Value::Null, |(_, v)| std::mem::replace(v, Value::Null))
        };
        schema.columns.iter().map(|c| take(&c.name)).collect()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Row<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Row<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row<'de>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(name) = map.next_key::<Name>()? {
                    members.push((name, map.next_value::<Cell>()?.0));
                }
                Ok(Row(members))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// One JSON value as a record value: numbers stay exact (integers as
/// integers), nested values are kept as JSON text.
struct Cell(Value);

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Cell;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Cell, E> {
                Ok(Cell(Value::Null))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Cell, E> {
                Ok(Cell(Value::Int(i64::from(v))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Cell, E> {
                Ok(Cell(Value::Int(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Cell, E> {
                Ok(Cell(i64::try_from(v).map_or(Value::Uint(v), Value::Int)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Cell, E> {
                Ok(Cell(Value::Float(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell, E> {
                Ok(Cell(Value::Str(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Cell, E> {
                Ok(Cell(Value::Str(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Cell, A::Error> {
                let nested = Json::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Cell(Value::Json(nested.to_string())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Cell, A::Error> {
                let nested = Json::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(Cell(Value::Json(nested.to_string())))
            }
        }
        deserializer.deserialize_any(Visit)
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
            .decode(
                MessageFormat::Debezium,
                &message(
                    Some(r#"{"id":1}"#),
                    Some(r#"{"op":"u","before":null,"after":{"id":1,"n":"x","big":18446744073709551615},"source":{"db":"a","table":"b"}}"#),
                ),
            )
            .unwrap();
        assert_eq!(
            (
                r.op,
                r.schema.as_ref().unwrap().table.as_str(),
                r.schema.as_ref().unwrap().key.clone()
            ),
            (Op::Update, "b", vec![0])
        );
        assert_eq!(r.after.unwrap(), [Value::Int(1), Value::Str("x".into()), Value::Uint(u64::MAX)]);
        let t = d.decode(MessageFormat::Debezium, &message(Some(r#"{"id":1}"#), None)).unwrap();
        assert_eq!((t.op, t.before.unwrap()), (Op::Delete, vec![Value::Int(1)]));
        let f = d.decode(MessageFormat::Flat, &message(None, Some(r#"{"id":2}"#))).unwrap();
        assert_eq!(f.schema.unwrap().table, "users");
    }

    #[test]
    fn nested_values_escaped_names_and_differing_images_decode() {
        let mut d = EnvelopeDecoder::default();
        let payload = r#"{"op":"u","before":{"id":1,"gone":true},"after":{"id":1,"tags":["a",{"b":2}],"na\u006de":"\"q\"","x":1.5}}"#;
        let r = d.decode(MessageFormat::Debezium, &message(None, Some(payload))).unwrap();
        let schema = r.schema.clone().unwrap();
        let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "tags", "name", "x"]);
        assert_eq!(
            r.after.unwrap(),
            [
                Value::Int(1),
                Value::Json(r#"["a",{"b":2}]"#.into()),
                Value::Str("\"q\"".into()),
                Value::Float(1.5)
            ]
        );
        // The before image is read by name; what it lacks is null, what the schema lacks is dropped.
        assert_eq!(r.before.unwrap(), [Value::Int(1), Value::Null, Value::Null, Value::Null]);
        let again = d.decode(MessageFormat::Debezium, &message(None, Some(payload))).unwrap();
        assert!(Arc::ptr_eq(&schema, again.schema.as_ref().unwrap()), "one schema per table shape");
    }

    #[test]
    fn bad_messages_say_why() {
        let mut d = EnvelopeDecoder::default();
        let e = d.decode(MessageFormat::Debezium, &message(None, Some("{not json"))).unwrap_err();
        assert!(e.1.contains("not valid JSON"), "{}", e.1);
        assert_eq!(e.0.payload.as_deref(), Some(&b"{not json"[..]));
        let e = d.decode(MessageFormat::Debezium, &message(None, None)).unwrap_err();
        assert!(e.1.contains("tombstone without a key"));
        let e = d
            .decode(MessageFormat::Debezium, &message(None, Some(r#"{"op":"x"}"#)))
            .unwrap_err();
        assert!(e.1.contains("expected c, u, r or d"));
    }
}
