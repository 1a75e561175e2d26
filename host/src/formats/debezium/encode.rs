//! Kafka message form of a record: key = primary key, value = a
//! Debezium-compatible envelope (or the flat row), headers = source position
//! and a dedup id.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

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

/// Writes records' keys and values. Message values are per-record work on
/// the hot path, so they are written straight from the record (no JSON
/// tree), and what never changes for a table (its column names as object
/// keys, its database and table) is escaped once per table instead of once
/// per record: serde escaping every key was half of the encoding time.
pub struct MessageEncoder {
    format: ValueFormat,
    /// `"source":{"version":…,"connector":"mysql","name":"<pipeline>"`
    source_head: Vec<u8>,
    /// The site a record without an origin of its own was made at.
    site: Option<Box<str>>,
    /// By schema address; each entry holds the Arc that keeps its schema,
    /// and so that address, taken.
    tables: HashMap<usize, (Arc<Schema>, TableJson)>,
}

/// Schemas remembered at most; a long run with many ALTERs starts over.
const TABLES_KEPT: usize = 1024;

struct TableJson {
    /// `"column":` per column.
    keys: Vec<Box<[u8]>>,
    /// `"db":"…","table":"…"`
    names: Box<[u8]>,
}

impl TableJson {
    fn new(schema: &Schema) -> Self {
        let keys = schema
            .columns
            .iter()
            .map(|c| {
                let mut key = Vec::with_capacity(c.name.len() + 3);
                write_str(&mut key, &c.name);
                key.push(b':');
                key.into_boxed_slice()
            })
            .collect();
        let mut names = b"\"db\":".to_vec();
        write_str(&mut names, &schema.database);
        names.extend_from_slice(b",\"table\":");
        write_str(&mut names, &schema.table);
        TableJson {
            keys,
            names: names.into_boxed_slice(),
        }
    }
}

impl MessageEncoder {
    pub fn new(format: ValueFormat, pipeline: &str) -> Self {
        let mut source_head = concat!(
            "\"source\":{\"version\":\"sluice-",
            env!("CARGO_PKG_VERSION"),
            "\",\"connector\":\"mysql\",\"name\":"
        )
        .as_bytes()
        .to_vec();
        write_str(&mut source_head, pipeline);
        MessageEncoder {
            format,
            source_head,
            site: None,
            tables: HashMap::new(),
        }
    }

    /// Names `site` as the origin of the records that name none.
    pub fn with_site(mut self, site: Option<&str>) -> Self {
        self.site = site.map(Into::into);
        self
    }

    /// Takes the map rather than `self`, so the caller may still read the
    /// encoder's other fields while it holds the table.
    fn table<'a>(tables: &'a mut HashMap<usize, (Arc<Schema>, TableJson)>, schema: &Arc<Schema>) -> &'a TableJson {
        let at = Arc::as_ptr(schema) as usize;
        if tables.len() >= TABLES_KEPT && !tables.contains_key(&at) {
            tables.clear();
        }
        &tables.entry(at).or_insert_with(|| (schema.clone(), TableJson::new(schema))).1
    }

    /// Appends the primary key as a JSON object (`{"id":7}`), or the raw key
    /// of a message; false when the record has none.
    pub fn write_key(&mut self, record: &Record, out: &mut Vec<u8>) -> bool {
        let Some(schema) = &record.schema else {
            return copy(record.key.as_deref(), out);
        };
        let Some(row) = record.after.as_ref().or(record.before.as_ref()) else {
            return false;
        };
        if schema.key.is_empty() {
            return false;
        }
        let table = Self::table(&mut self.tables, schema);
        write_row(out, table, row, schema.key.iter().map(|&i| i as usize));
        true
    }

    /// Appends the message value; false for a tombstone. `now_ms` is the
    /// envelope's processing time.
    pub fn write_value(&mut self, record: &Record, now_ms: i64, out: &mut Vec<u8>) -> bool {
        let Some(schema) = &record.schema else {
            return copy(record.payload.as_deref(), out);
        };
        let table = Self::table(&mut self.tables, schema);
        let width = schema.columns.len();
        if self.format == ValueFormat::Flat {
            let Some(after) = record.after.as_deref() else { return false };
            write_row(out, table, after, 0..width);
            return true;
        }
        for (name, image) in [(&b"{\"before\":"[..], &record.before), (b",\"after\":", &record.after)] {
            out.extend_from_slice(name);
            match image {
                Some(row) => write_row(out, table, row, 0..width),
                None => out.extend_from_slice(b"null"),
            }
        }
        out.push(b',');
        out.extend_from_slice(&self.source_head);
        out.extend_from_slice(b",\"ts_ms\":");
        write_int(out, record.ts_ms);
        out.push(b',');
        out.extend_from_slice(&table.names);
        let snapshot = matches!(&record.position, Position::Other(p) if p.starts_with("snapshot:"));
        out.extend_from_slice(if snapshot { b",\"snapshot\":true" } else { b",\"snapshot\":false" });
        let mut gtid = None;
        if let Position::Binlog { file, pos, gtid: g, row } = &record.position {
            out.extend_from_slice(b",\"file\":");
            write_str(out, file);
            out.extend_from_slice(b",\"pos\":");
            write_int(out, *pos);
            out.extend_from_slice(b",\"row\":");
            write_int(out, *row);
            gtid = g.as_deref();
        }
        out.extend_from_slice(b",\"gtid\":");
        match gtid {
            Some(g) => write_str(out, g),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"origin\":");
        match crate::origin::origin_of(record).or(self.site.as_deref()) {
            Some(origin) => write_str(out, origin),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(match record.op {
            Op::Read => b"},\"op\":\"r\",\"ts_ms\":",
            Op::Insert => b"},\"op\":\"c\",\"ts_ms\":",
            Op::Update => b"},\"op\":\"u\",\"ts_ms\":",
            Op::Delete => b"},\"op\":\"d\",\"ts_ms\":",
            Op::Message => b"},\"op\":\"m\",\"ts_ms\":",
        });
        write_int(out, now_ms);
        out.push(b'}');
        true
    }
}

fn copy(bytes: Option<&[u8]>, out: &mut Vec<u8>) -> bool {
    bytes.inspect(|b| out.extend_from_slice(b)).is_some()
}

/// A row as a JSON object of the given columns.
fn write_row(out: &mut Vec<u8>, table: &TableJson, row: &[Value], columns: impl Iterator<Item = usize>) {
    out.push(b'{');
    let mut first = true;
    for i in columns {
        if let (Some(key), Some(value)) = (table.keys.get(i), row.get(i)) {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(key);
            write_value(out, value);
        }
    }
    out.push(b'}');
}

/// Column values as Debezium renders them with string-friendly settings:
/// DECIMAL and temporal types as exact strings, TIMESTAMP as ISO-8601 UTC,
/// bytes as base64, JSON as its text.
fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Int(i) => write_int(out, *i),
        Value::Uint(u) => write_int(out, *u),
        Value::Float(f) if f.is_finite() => serde_json::to_writer(&mut *out, f).expect("writing to a Vec cannot fail"),
        Value::Float(_) => out.extend_from_slice(b"null"),
        Value::Decimal(t) | Value::Str(t) | Value::Date(t) | Value::Time(t) | Value::Datetime(t) | Value::Json(t) => write_str(out, t),
        Value::Bytes(b) => {
            out.push(b'"');
            let start = out.len();
            out.resize(
                start + base64::encoded_len(b.len(), true).expect("a value's base64 fits in memory"),
                0,
            );
            let written = BASE64.encode_slice(b, &mut out[start..]).expect("sized above");
            out.truncate(start + written);
            out.push(b'"');
        }
        Value::Timestamp(micros) => match chrono::DateTime::from_timestamp_micros(*micros) {
            Some(t) => write_str(out, &t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            None => write_int(out, *micros),
        },
    }
}

/// A record's Kafka key on its own, as the sink writes it: for headers that
/// name another record's key.
pub struct KeyWriter(MessageEncoder);

impl Default for KeyWriter {
    fn default() -> Self {
        KeyWriter(MessageEncoder::new(ValueFormat::Debezium, ""))
    }
}

impl KeyWriter {
    /// The key's bytes; empty for a record without one.
    pub fn of(&mut self, record: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        self.0.write_key(record, &mut out);
        out
    }
}

fn write_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A JSON string. Most values need no escaping, and finding that out with a
/// branch-free pass over the bytes (which the compiler vectorises) is much
/// cheaper than serde_json's byte-by-byte escaper, which does the rest.
fn write_str(out: &mut Vec<u8>, s: &str) {
    let needs_escape = s
        .as_bytes()
        .iter()
        .fold(false, |any, &b| any | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if needs_escape {
        serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Where the record came from, as text: `binlog.000003:1234:0`, `topic/2/99`, …
pub fn position_text(position: &Position) -> String {
    let mut text = String::with_capacity(48);
    write_position(&mut text, position);
    text
}

fn write_position(out: &mut String, position: &Position) {
    position.write_text(out);
}

/// The record's headers, with `site` as its origin when it names none;
/// `dedup` is scratch space, reused from message to message.
pub fn headers(record: &Record, site: Option<&str>, dedup: &mut String) -> OwnedHeaders {
    // The dedup id is stable across re-deliveries of the same source change,
    // so a consumer can drop duplicates after a restart: table plus source
    // position, which is its tail.
    dedup.clear();
    if let Some(s) = record.schema.as_deref() {
        dedup.push_str(&s.database);
        dedup.push('.');
        dedup.push_str(&s.table);
        dedup.push('@');
    }
    let at = dedup.len();
    write_position(dedup, &record.position);
    let mut headers = OwnedHeaders::new_with_capacity(record.headers.len() + 3)
        .insert(KafkaHeader {
            key: POSITION_HEADER,
            value: Some(&dedup.as_bytes()[at..]),
        })
        .insert(KafkaHeader {
            key: DEDUP_HEADER,
            value: Some(dedup.as_bytes()),
        });
    for h in &record.headers {
        headers = headers.insert(KafkaHeader {
            key: &h.key,
            value: Some(&h.value),
        });
    }
    match site {
        Some(site) if crate::origin::origin_of(record).is_none() => headers.insert(KafkaHeader {
            key: crate::origin::ORIGIN_HEADER,
            value: Some(site.as_bytes()),
        }),
        _ => headers,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::record::Column;

    fn schema() -> Arc<Schema> {
        let column = |name: &str| Column {
            name: name.into(),
            sql_type: "x".into(),
        };
        Arc::new(Schema {
            database: "shop\"db".into(),
            table: "line\nitems".into(),
            columns: [
                "id",
                "n",
                "big",
                "f",
                "nan",
                "price",
                "say \"hi\"",
                "raw",
                "d",
                "t",
                "dt",
                "ts",
                "doc",
                "gone",
            ]
            .map(column)
            .into(),
            key: vec![1, 0],
        })
    }

    fn row() -> Vec<Value> {
        vec![
            Value::Int(-7),
            Value::Uint(3),
            Value::Uint(u64::MAX),
            Value::Float(1.5),
            Value::Float(f64::NAN),
            Value::Decimal("-12.3400".into()),
            Value::Str("tab\there \"quoted\" \\ ünïcode \u{1}".into()),
            Value::Bytes(vec![0, 255, 7]),
            Value::Date("0000-00-00".into()),
            Value::Time("-838:59:59.000000".into()),
            Value::Datetime("2026-11-26 12:34:56.000001".into()),
            Value::Timestamp(1_700_000_000_123_456),
            Value::Json("{\"a\":[1,2]}".into()),
            Value::Null,
        ]
    }

    fn row_json() -> serde_json::Value {
        json!({
            "id": -7, "n": 3, "big": u64::MAX, "f": 1.5, "nan": null, "price": "-12.3400",
            "say \"hi\"": "tab\there \"quoted\" \\ ünïcode \u{1}", "raw": "AP8H", "d": "0000-00-00",
            "t": "-838:59:59.000000", "dt": "2026-11-26 12:34:56.000001", "ts": "2023-11-14T22:13:20.123456Z",
            "doc": "{\"a\":[1,2]}", "gone": null
        })
    }

    /// Written after other bytes, as in a batch's buffer: only the record's own part is returned.
    fn written(write: impl FnOnce(&mut Vec<u8>) -> bool) -> Option<Vec<u8>> {
        let mut out = b"earlier".to_vec();
        let wrote = write(&mut out);
        assert_eq!(&out[..7], b"earlier");
        wrote.then(|| out.split_off(7))
    }

    fn key(encoder: &mut MessageEncoder, record: &Record) -> Option<Vec<u8>> {
        written(|out| encoder.write_key(record, out))
    }

    fn value(encoder: &mut MessageEncoder, record: &Record, now_ms: i64) -> Option<Vec<u8>> {
        written(|out| encoder.write_value(record, now_ms, out))
    }

    fn parse(bytes: Option<Vec<u8>>) -> serde_json::Value {
        serde_json::from_slice(&bytes.expect("a message")).expect("valid JSON")
    }

    #[test]
    fn envelopes_keys_and_flat_rows_are_exact_json_with_escaped_names_and_values() {
        let position = Position::Binlog {
            file: "binlog.000003".into(),
            pos: 1234,
            gtid: Some("0-1-42".into()),
            row: 2,
        };
        let update = Record {
            op: Op::Update,
            before: Some(row()),
            ..Record::read(position, 1_700_000_000_000, schema(), row())
        };
        let mut encoder = MessageEncoder::new(ValueFormat::Debezium, "pipe\"line");
        let expected = json!({
            "before": row_json(),
            "after": row_json(),
            "source": {
                "version": concat!("sluice-", env!("CARGO_PKG_VERSION")), "connector": "mysql", "name": "pipe\"line",
                "ts_ms": 1_700_000_000_000i64, "db": "shop\"db", "table": "line\nitems", "snapshot": false,
                "file": "binlog.000003", "pos": 1234, "row": 2, "gtid": "0-1-42", "origin": null
            },
            "op": "u",
            "ts_ms": 99
        });
        // Twice: the second write uses the table's cached names.
        for _ in 0..2 {
            assert_eq!(parse(value(&mut encoder, &update, 99)), expected);
        }
        assert_eq!(parse(key(&mut encoder, &update)), json!({"n": 3, "id": -7}));
        assert_eq!(key(&mut encoder, &update).unwrap(), br#"{"n":3,"id":-7}"#);

        let snapshot_delete = Record {
            op: Op::Delete,
            before: Some(row()),
            after: None,
            ..Record::read(Position::Other("snapshot:binlog.000001:4:7".into()), 5, schema(), row())
        };
        let envelope = parse(value(&mut encoder, &snapshot_delete, 6));
        assert_eq!(
            (&envelope["after"], &envelope["op"], &envelope["source"]["snapshot"]),
            (&json!(null), &json!("d"), &json!(true))
        );
        assert_eq!(envelope["source"].get("file"), None, "a snapshot row has no binlog file");
        assert_eq!(envelope["source"]["gtid"], json!(null));

        // The origin: the record's own, else the encoder's site.
        let mut at_site = MessageEncoder::new(ValueFormat::Debezium, "p").with_site(Some("eu"));
        assert_eq!(parse(value(&mut at_site, &update, 1))["source"]["origin"], json!("eu"));
        let mut forwarded = update.clone();
        crate::origin::set_origin(&mut forwarded, "us\"1");
        assert_eq!(parse(value(&mut at_site, &forwarded, 1))["source"]["origin"], json!("us\"1"));

        let mut flat = MessageEncoder::new(ValueFormat::Flat, "p");
        assert_eq!(parse(value(&mut flat, &update, 0)), row_json());
        assert_eq!(value(&mut flat, &snapshot_delete, 0), None, "a flat delete is a tombstone");
    }
}
