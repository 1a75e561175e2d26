//! The JSON-lines form of a record, used by `sluice plugin test`:
//!
//! ```json
//! {"op":"insert","database":"shop","table":"users","primary_key":["id"],
//!  "before":null,"after":{"id":1,"email":" Ann@Example.com ","price":{"$decimal":"9.90"}},
//!  "position":{"binlog":{"file":"binlog.000001","pos":4,"gtid":"0-1-7","row":0}},
//!  "ts_ms":1700000000000,"headers":{"trace":"abc"},"destination":null}
//! ```
//!
//! - `op`: `read` | `insert` | `update` | `delete` | `message`.
//! - Rows are objects in column order. Plain JSON maps to the natural value:
//!   null, integer (`int`, or `uint` above i64), float, string (`str`),
//!   boolean (`int` 0/1), arrays and objects (`json` text). Other types are
//!   tagged: `{"$decimal":"1.20"}`, `{"$uint":7}`, `{"$bytes":"<base64>"}`,
//!   `{"$date":"2024-01-31"}`, `{"$time":"12:00:00"}`,
//!   `{"$datetime":"2024-01-31 12:00:00.5"}`, `{"$timestamp":<µs since epoch>}`,
//!   `{"$json":"[1,2]"}`. Output uses the same form.
//! - `position`: `{"binlog":{…}}`, `{"kafka":{"topic":"t","partition":0,"offset":5}}`
//!   or any string. Optional, as are `ts_ms`, `headers`, `destination`,
//!   `primary_key`, and raw message `key` / `payload` (string or `{"$bytes":…}`).
use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value as Json, json};

use super::{Column, Header, Op, Position, Record, Schema, Value};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JsonRecordError(String);

fn err<T>(message: impl Into<String>) -> Result<T, JsonRecordError> {
    Err(JsonRecordError(message.into()))
}

/// Reads JSON-line records, sharing one schema between records of the same
/// table shape.
#[derive(Default)]
pub struct JsonRecordReader {
    schemas: HashMap<SchemaShape, Arc<Schema>>,
}

/// Database, table, column names and key: what makes two records' schemas one.
type SchemaShape = (String, String, Vec<String>, Vec<u32>);

impl JsonRecordReader {
    pub fn read_line(&mut self, line: &str) -> Result<Record, JsonRecordError> {
        let json: Json = serde_json::from_str(line).or_else(|e| err(format!("not JSON: {e}")))?;
        let Json::Object(obj) = json else {
            return err("a record is a JSON object");
        };
        self.record(&obj)
    }

    fn record(&mut self, obj: &Map<String, Json>) -> Result<Record, JsonRecordError> {
        let op = match obj.get("op").and_then(Json::as_str) {
            Some("read") => Op::Read,
            Some("insert") => Op::Insert,
            Some("update") => Op::Update,
            Some("delete") => Op::Delete,
            Some("message") | None => Op::Message,
            Some(other) => return err(format!("unknown op {other:?}: use read, insert, update, delete or message")),
        };
        let before = row_object(obj, "before")?;
        let after = row_object(obj, "after")?;
        let (schema, before, after) = match after.or(before) {
            None => (None, None, None),
            Some(shape) => {
                let columns: Vec<String> = shape.keys().cloned().collect();
                let schema = self.schema(obj, &columns)?;
                let row = |r: Option<&Map<String, Json>>| r.map(|r| ordered_row(r, &columns)).transpose();
                (Some(schema), row(before)?, row(after)?)
            }
        };
        Ok(Record {
            op,
            position: position(obj.get("position"))?,
            ts_ms: obj.get("ts_ms").and_then(Json::as_i64).unwrap_or(0),
            schema,
            before,
            after,
            key: obj.get("key").map(|v| bytes_field(v, "key")).transpose()?,
            payload: obj.get("payload").map(|v| bytes_field(v, "payload")).transpose()?,
            headers: headers(obj.get("headers"))?,
            destination: obj.get("destination").and_then(Json::as_str).map(str::to_owned),
        })
    }

    fn schema(&mut self, obj: &Map<String, Json>, columns: &[String]) -> Result<Arc<Schema>, JsonRecordError> {
        let text = |k: &str| obj.get(k).and_then(Json::as_str).unwrap_or_default().to_owned();
        let (database, table) = (text("database"), text("table"));
        let mut key = Vec::new();
        for name in obj.get("primary_key").and_then(Json::as_array).into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            match columns.iter().position(|c| c == name) {
                Some(i) => key.push(i as u32),
                None => return err(format!("primary_key column {name:?} is not in the row")),
            }
        }
        let shape = (database, table, columns.to_vec(), key);
        let schema = self.schemas.entry(shape).or_insert_with_key(|(database, table, names, key)| {
            Arc::new(Schema {
                database: database.clone(),
                table: table.clone(),
                columns: names
                    .iter()
                    .map(|name| Column {
                        name: name.clone(),
                        sql_type: String::new(),
                    })
                    .collect(),
                key: key.clone(),
            })
        });
        Ok(schema.clone())
    }
}

fn row_object<'a>(obj: &'a Map<String, Json>, field: &str) -> Result<Option<&'a Map<String, Json>>, JsonRecordError> {
    match obj.get(field) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Object(row)) => Ok(Some(row)),
        Some(_) => err(format!("`{field}` must be an object of column: value")),
    }
}

fn ordered_row(row: &Map<String, Json>, columns: &[String]) -> Result<Vec<Value>, JsonRecordError> {
    if row.len() != columns.len() {
        return err("`before` and `after` must have the same columns");
    }
    columns
        .iter()
        .map(|c| match row.get(c) {
            Some(v) => value_from_json(v).map_err(|e| JsonRecordError(format!("column `{c}`: {e}"))),
            None => err(format!(
                "`before` and `after` must have the same columns (`{c}` is missing from one)"
            )),
        })
        .collect()
}

pub fn value_from_json(v: &Json) -> Result<Value, JsonRecordError> {
    Ok(match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Int(*b as i64),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::Int(i),
            (None, Some(u), _) => Value::Uint(u),
            (_, _, Some(f)) => Value::Float(f),
            _ => return err(format!("number {n} does not fit")),
        },
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(_) => Value::Json(v.to_string()),
        Json::Object(obj) => match tagged(obj)? {
            Some(value) => value,
            None => Value::Json(v.to_string()),
        },
    })
}

fn tagged(obj: &Map<String, Json>) -> Result<Option<Value>, JsonRecordError> {
    let Some((tag, inner)) = obj.iter().next().filter(|(k, _)| obj.len() == 1 && k.starts_with('$')) else {
        return Ok(None);
    };
    let text = || {
        inner
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| JsonRecordError(format!("{tag} takes a string")))
    };
    Ok(Some(match tag.as_str() {
        "$decimal" => Value::Decimal(text()?),
        "$date" => Value::Date(text()?),
        "$time" => Value::Time(text()?),
        "$datetime" => Value::Datetime(text()?),
        "$json" => Value::Json(text()?),
        "$bytes" => Value::Bytes(BASE64.decode(text()?).or_else(|e| err(format!("$bytes is not base64: {e}")))?),
        "$uint" => Value::Uint(
            inner
                .as_u64()
                .ok_or_else(|| JsonRecordError("$uint takes an unsigned integer".into()))?,
        ),
        "$timestamp" => Value::Timestamp(
            inner
                .as_i64()
                .ok_or_else(|| JsonRecordError("$timestamp takes microseconds since 1970 as an integer".into()))?,
        ),
        other => return err(format!("unknown type tag {other:?}")),
    }))
}

pub fn value_to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Int(i) => json!(i),
        Value::Uint(u) => json!({ "$uint": u }),
        Value::Float(f) => json!(f),
        Value::Decimal(s) => json!({ "$decimal": s }),
        Value::Str(s) => json!(s),
        Value::Bytes(b) => json!({ "$bytes": BASE64.encode(b) }),
        Value::Date(s) => json!({ "$date": s }),
        Value::Time(s) => json!({ "$time": s }),
        Value::Datetime(s) => json!({ "$datetime": s }),
        Value::Timestamp(t) => json!({ "$timestamp": t }),
        Value::Json(s) => json!({ "$json": s }),
    }
}

fn bytes_field(v: &Json, field: &str) -> Result<Vec<u8>, JsonRecordError> {
    match value_from_json(v)? {
        Value::Str(s) => Ok(s.into_bytes()),
        Value::Bytes(b) => Ok(b),
        _ => err(format!("`{field}` must be a string or {{\"$bytes\": base64}}")),
    }
}

fn bytes_to_json(b: &[u8]) -> Json {
    match std::str::from_utf8(b) {
        Ok(s) => json!(s),
        Err(_) => json!({ "$bytes": BASE64.encode(b) }),
    }
}

fn position(v: Option<&Json>) -> Result<Position, JsonRecordError> {
    let bad =
        || JsonRecordError("`position` must be a string, {\"binlog\":{file,pos,gtid,row}} or {\"kafka\":{topic,partition,offset}}".into());
    Ok(match v {
        None | Some(Json::Null) => Position::Other(String::new()),
        Some(Json::String(s)) => Position::Other(s.clone()),
        Some(Json::Object(o)) => match (o.get("binlog"), o.get("kafka")) {
            (Some(b), _) => Position::Binlog {
                file: b.get("file").and_then(Json::as_str).ok_or_else(bad)?.into(),
                pos: b.get("pos").and_then(Json::as_u64).ok_or_else(bad)?,
                gtid: b.get("gtid").and_then(Json::as_str).map(Into::into),
                row: b.get("row").and_then(Json::as_u64).unwrap_or(0) as u32,
            },
            (_, Some(k)) => Position::Kafka {
                topic: k.get("topic").and_then(Json::as_str).ok_or_else(bad)?.to_owned(),
                partition: k.get("partition").and_then(Json::as_i64).ok_or_else(bad)? as i32,
                offset: k.get("offset").and_then(Json::as_i64).ok_or_else(bad)?,
            },
            _ => return Err(bad()),
        },
        Some(_) => return Err(bad()),
    })
}

fn position_to_json(p: &Position) -> Json {
    match p {
        Position::Binlog { file, pos, gtid, row } => {
            json!({ "binlog": { "file": &**file, "pos": pos, "gtid": gtid.as_deref(), "row": row } })
        }
        Position::Kafka { topic, partition, offset } => json!({ "kafka": { "topic": topic, "partition": partition, "offset": offset } }),
        Position::Other(s) => json!(s),
    }
}

fn headers(v: Option<&Json>) -> Result<Vec<Header>, JsonRecordError> {
    match v {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Object(o)) => o
            .iter()
            .map(|(k, v)| {
                Ok(Header {
                    key: k.clone(),
                    value: bytes_field(v, "headers")?,
                })
            })
            .collect(),
        Some(_) => err("`headers` must be an object of name: value"),
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Read => "read",
        Op::Insert => "insert",
        Op::Update => "update",
        Op::Delete => "delete",
        Op::Message => "message",
    }
}

/// The JSON form of `record`.
pub fn record_to_json(record: &Record) -> Json {
    let schema = record.schema.as_deref();
    let row = |r: &Option<Vec<Value>>| match (r, schema) {
        (Some(values), Some(schema)) => {
            let obj: Map<String, Json> = schema
                .columns
                .iter()
                .zip(values)
                .map(|(c, v)| (c.name.clone(), value_to_json(v)))
                .collect();
            Json::Object(obj)
        }
        _ => Json::Null,
    };
    let mut obj = Map::new();
    obj.insert("op".into(), json!(op_name(record.op)));
    if let Some(schema) = schema {
        obj.insert("database".into(), json!(schema.database));
        obj.insert("table".into(), json!(schema.table));
        let key: Vec<&str> = schema
            .key
            .iter()
            .filter_map(|&i| schema.columns.get(i as usize))
            .map(|c| c.name.as_str())
            .collect();
        obj.insert("primary_key".into(), json!(key));
    }
    obj.insert("before".into(), row(&record.before));
    obj.insert("after".into(), row(&record.after));
    if let Some(key) = &record.key {
        obj.insert("key".into(), bytes_to_json(key));
    }
    if let Some(payload) = &record.payload {
        obj.insert("payload".into(), bytes_to_json(payload));
    }
    obj.insert("position".into(), position_to_json(&record.position));
    obj.insert("ts_ms".into(), json!(record.ts_ms));
    let headers: Map<String, Json> = record.headers.iter().map(|h| (h.key.clone(), bytes_to_json(&h.value))).collect();
    obj.insert("headers".into(), Json::Object(headers));
    obj.insert("destination".into(), json!(record.destination));
    Json::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_round_trip() {
        let line = r#"{"op":"update","database":"d","table":"t","primary_key":["id"],
            "before":{"id":1,"big":{"$uint":18446744073709551615},"price":{"$decimal":"1.10"},"at":{"$datetime":"2024-01-31 12:00:00.000001"},"raw":{"$bytes":"AP8="},"doc":{"$json":"{\"a\":1}"}},
            "after":{"id":1,"big":{"$uint":1},"price":{"$decimal":"2.00"},"at":null,"raw":{"$bytes":""},"doc":[1,2]},
            "position":{"binlog":{"file":"b.000001","pos":99,"gtid":"0-1-2","row":3}},"headers":{"h":"v"}}"#;
        let record = &JsonRecordReader::default().read_line(&line.replace('\n', "")).unwrap();
        let before = record.before.as_ref().unwrap();
        assert_eq!(before[1], Value::Uint(u64::MAX));
        assert_eq!(before[2], Value::Decimal("1.10".into()));
        assert_eq!(before[4], Value::Bytes(vec![0, 255]));
        assert_eq!(record.after.as_ref().unwrap()[5], Value::Json("[1,2]".into()));
        let back = record_to_json(record);
        assert_eq!(back["before"]["big"], json!({"$uint": u64::MAX}));
        assert_eq!(back["before"]["price"], json!({"$decimal": "1.10"}));
        assert_eq!(back["position"]["binlog"]["row"], json!(3));
        assert_eq!(back["primary_key"], json!(["id"]));
    }

    #[test]
    fn mismatched_images_are_refused() {
        let e = JsonRecordReader::default()
            .read_line(r#"{"op":"update","before":{"a":1},"after":{"b":1}}"#)
            .unwrap_err();
        assert!(e.to_string().contains("same columns"), "{e}");
    }
}
