//! Rows of a `SELECT` (binary protocol) into records' values, decoded as the
//! binlog decodes the same columns, and record values back into statement
//! parameters for keyset paging.
use std::sync::Arc;

use mysql_async::{Column as WireColumn, Row, Value as Wire};

use super::SourceError;
use super::catalog::TableInfo;
use super::decode::ColumnDecoder;
use crate::record::{Schema, Value};

pub struct QueryShape {
    pub schema: Arc<Schema>,
    decoders: Vec<ColumnDecoder>,
}

impl QueryShape {
    pub fn new(info: &TableInfo, columns: &[WireColumn]) -> Self {
        let decoders: Vec<ColumnDecoder> = columns
            .iter()
            .map(|column| {
                let mut decoder = ColumnDecoder::for_query(column);
                if info.json_columns.iter().any(|name| *name == column.name_str()) {
                    decoder.treat_as_json();
                }
                decoder
            })
            .collect();
        let names: Vec<_> = columns.iter().map(|c| c.name_str()).collect();
        let schema = Schema {
            database: info.database.clone(),
            table: info.table.clone(),
            columns: columns.iter().zip(&decoders).map(|(col, d)| d.describe(col, col.name_str().into_owned())).collect(),
            key: info.key.iter().filter_map(|k| names.iter().position(|n| n == k)).map(|i| i as u32).collect(),
        };
        QueryShape { schema: Arc::new(schema), decoders }
    }

    pub fn decode(&self, row: Row) -> Result<Vec<Value>, SourceError> {
        let values = row.unwrap();
        values
            .iter()
            .zip(&self.decoders)
            .map(|(value, decoder)| {
                decoder.decode_value(value).map_err(|message| SourceError::Decode {
                    what: format!("a row of {}.{}", self.schema.database, self.schema.table),
                    message,
                })
            })
            .collect()
    }

    /// The values of `columns` (by name) in `row`.
    pub fn pick(&self, row: &[Value], columns: &[String]) -> Vec<Value> {
        columns.iter().filter_map(|c| self.schema.index_of(c).and_then(|i| row.get(i)).cloned()).collect()
    }
}

/// A record value as a statement parameter comparable with its column.
pub fn param(value: &Value) -> Wire {
    match value {
        Value::Null => Wire::NULL,
        Value::Int(i) => Wire::Int(*i),
        Value::Uint(u) => Wire::UInt(*u),
        Value::Float(f) => Wire::Double(*f),
        Value::Decimal(t) | Value::Str(t) | Value::Date(t) | Value::Time(t) | Value::Datetime(t) | Value::Json(t) => {
            Wire::Bytes(t.clone().into_bytes())
        }
        Value::Bytes(b) => Wire::Bytes(b.clone()),
        // Readers run with time_zone = '+00:00'.
        Value::Timestamp(micros) => match chrono::DateTime::from_timestamp_micros(*micros) {
            Some(t) => Wire::Bytes(t.format("%Y-%m-%d %H:%M:%S%.6f").to_string().into_bytes()),
            None => Wire::NULL,
        },
    }
}

/// `(k1 > ?) OR (k1 = ? AND k2 > ?) OR …` and its parameters: the rows after
/// `after` in `columns` order. Spelled out rather than as a row comparison,
/// which not every server turns into an index range.
pub fn keyset_after(columns: &[String], after: &[Value]) -> (String, Vec<Wire>) {
    let mut terms = Vec::new();
    let mut params = Vec::new();
    for i in 0..columns.len() {
        let mut term = Vec::new();
        for (column, value) in columns.iter().zip(after).take(i) {
            term.push(format!("{} = ?", super::catalog::quote(column)));
            params.push(param(value));
        }
        term.push(format!("{} > ?", super::catalog::quote(&columns[i])));
        params.push(param(&after[i]));
        terms.push(format!("({})", term.join(" AND ")));
    }
    (terms.join(" OR "), params)
}

/// The key values as text for positions and dedup ids: `7`, `eu,42`.
pub fn key_text(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| match v {
            Value::Null => "null".to_owned(),
            Value::Int(i) => i.to_string(),
            Value::Uint(u) => u.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Timestamp(us) => us.to_string(),
            Value::Decimal(t) | Value::Str(t) | Value::Date(t) | Value::Time(t) | Value::Datetime(t) | Value::Json(t) => t.clone(),
            Value::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyset_spells_out_composite_keys() {
        let (sql, params) = keyset_after(&["a".into(), "b".into()], &[Value::Int(1), Value::Str("x".into())]);
        assert_eq!(sql, "(`a` > ?) OR (`a` = ? AND `b` > ?)");
        assert_eq!(params, vec![Wire::Int(1), Wire::Int(1), Wire::Bytes(b"x".to_vec())]);
    }
}
