//! Kafka message form of a record: key = primary key, value = a
//! Debezium-compatible envelope (or the flat row), headers = source position
//! and a dedup id.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

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

/// `{database}`, `{table}`, `{topic}` (of a Kafka source) and `{pipeline}`
/// filled from the record; a routing plugin's destination wins.
pub fn topic_for(template: &str, record: &Record, pipeline: &str) -> String {
    if let Some(destination) = &record.destination {
        return destination.clone();
    }
    let schema = record.schema.as_deref();
    let source_topic = match &record.position {
        Position::Kafka { topic, .. } => topic.as_str(),
        _ => "",
    };
    template
        .replace("{database}", schema.map_or("", |s| s.database.as_str()))
        .replace("{table}", schema.map_or("", |s| s.table.as_str()))
        .replace("{topic}", source_topic)
        .replace("{pipeline}", pipeline)
}

/// The primary key as a JSON object (`{"id":7}`), or the raw key of a message.
pub fn key(record: &Record) -> Option<Vec<u8>> {
    let Some(schema) = record.schema.as_deref() else { return record.key.clone() };
    let row = record.after.as_ref().or(record.before.as_ref())?;
    if schema.key.is_empty() {
        return None;
    }
    let key: Map<String, Json> = schema
        .key
        .iter()
        .filter_map(|&i| Some((schema.columns.get(i as usize)?.name.clone(), json_value(row.get(i as usize)?))))
        .collect();
    Some(Json::Object(key).to_string().into_bytes())
}

/// The message value; None for a tombstone.
pub fn value(record: &Record, format: ValueFormat, pipeline: &str) -> Option<Vec<u8>> {
    let Some(schema) = record.schema.as_deref() else { return record.payload.clone() };
    let row = |r: &Option<Vec<Value>>| r.as_ref().map_or(Json::Null, |r| row_json(schema, r));
    match format {
        ValueFormat::Flat => record.after.as_ref().map(|r| row_json(schema, r).to_string().into_bytes()),
        ValueFormat::Debezium => {
            let envelope = json!({
                "before": row(&record.before),
                "after": row(&record.after),
                "source": source(record, schema, pipeline),
                "op": match record.op {
                    Op::Read => "r",
                    Op::Insert => "c",
                    Op::Update => "u",
                    Op::Delete => "d",
                    Op::Message => "m",
                },
                "ts_ms": chrono::Utc::now().timestamp_millis(),
            });
            Some(envelope.to_string().into_bytes())
        }
    }
}

fn source(record: &Record, schema: &Schema, pipeline: &str) -> Json {
    let mut source = json!({
        "version": concat!("sluice-", env!("CARGO_PKG_VERSION")),
        "connector": "mysql",
        "name": pipeline,
        "ts_ms": record.ts_ms,
        "db": schema.database,
        "table": schema.table,
        "snapshot": record.op == Op::Read,
    });
    if let Position::Binlog { file, pos, gtid, row } = &record.position {
        source["file"] = json!(file);
        source["pos"] = json!(pos);
        source["row"] = json!(row);
        source["gtid"] = json!(gtid);
    }
    source
}

fn row_json(schema: &Schema, row: &[Value]) -> Json {
    Json::Object(schema.columns.iter().zip(row).map(|(c, v)| (c.name.clone(), json_value(v))).collect())
}

/// Column values as Debezium renders them by default-friendly settings:
/// DECIMAL and temporal types as exact strings, TIMESTAMP as ISO-8601 UTC,
/// bytes as base64, JSON as its text.
pub fn json_value(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Int(i) => json!(i),
        Value::Uint(u) => json!(u),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Decimal(s) | Value::Str(s) | Value::Date(s) | Value::Time(s) | Value::Datetime(s) | Value::Json(s) => json!(s),
        Value::Bytes(b) => json!(BASE64.encode(b)),
        Value::Timestamp(micros) => match chrono::DateTime::from_timestamp_micros(*micros) {
            Some(t) => json!(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            None => json!(micros),
        },
    }
}

/// Where the record came from, as text: `binlog.000003:1234:0`, `topic/2/99`, …
pub fn position_text(position: &Position) -> String {
    match position {
        Position::Binlog { file, pos, row, .. } => format!("{file}:{pos}:{row}"),
        Position::Kafka { topic, partition, offset } => format!("{topic}/{partition}/{offset}"),
        Position::Other(text) => text.clone(),
    }
}

/// Stable across re-deliveries of the same source change, so a consumer can
/// drop duplicates after a restart: table plus source position.
pub fn dedup_id(record: &Record) -> String {
    let table = record.schema.as_deref().map_or(String::new(), |s| format!("{}.{}@", s.database, s.table));
    format!("{table}{}", position_text(&record.position))
}

pub fn headers(record: &Record) -> OwnedHeaders {
    let position = position_text(&record.position);
    let dedup = dedup_id(record);
    let mut headers = OwnedHeaders::new_with_capacity(record.headers.len() + 2)
        .insert(KafkaHeader { key: POSITION_HEADER, value: Some(position.as_bytes()) })
        .insert(KafkaHeader { key: DEDUP_HEADER, value: Some(dedup.as_bytes()) });
    for h in &record.headers {
        headers = headers.insert(KafkaHeader { key: &h.key, value: Some(&h.value) });
    }
    headers
}
