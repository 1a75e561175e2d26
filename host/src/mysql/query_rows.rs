//! Rows of a `SELECT` (binary protocol) into records' values, decoded as the
//! binlog decodes the same columns, and record values back into statement
//! parameters for keyset paging.
use std::sync::Arc;

use mysql_async::{Column as WireColumn, Value as Wire};

use super::catalog::TableInfo;
use super::decode::ColumnDecoder;
use crate::record::{Position, Schema, Value};

/// A row's values, or (the same, with NULL for what failed) why it cannot
/// be decoded.
pub type DecodedRow = Result<Vec<Value>, (Vec<Value>, String)>;

/// The values of a row, decoded or not.
pub fn values(row: &DecodedRow) -> &[Value] {
    match row {
        Ok(values) | Err((values, _)) => values,
    }
}

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
                if let Some((_, special)) = info.special_columns.iter().find(|(name, _)| *name == column.name_str()) {
                    decoder.treat_as(*special);
                }
                decoder
            })
            .collect();
        let names: Vec<_> = columns.iter().map(|c| c.name_str()).collect();
        let schema = Schema {
            database: info.database.clone(),
            table: info.table.clone(),
            columns: columns
                .iter()
                .zip(&decoders)
                .map(|(col, d)| d.describe(col.name_str().into_owned()))
                .collect(),
            key: info
                .key
                .iter()
                .filter_map(|k| names.iter().position(|n| n == k))
                .map(|i| i as u32)
                .collect(),
        };
        QueryShape {
            schema: Arc::new(schema),
            decoders,
        }
    }

    /// Into a vector of the row's exact size: collecting through `Result`
    /// started at four values and reallocated per row (2% of a snapshot). A
    /// value that cannot be decoded fails the row, which still comes back
    /// whole (that value as NULL) with why, for the dead-letter queue.
    pub fn decode(&self, wire: Vec<Wire>) -> DecodedRow {
        let mut values = Vec::with_capacity(wire.len());
        let mut failed = None;
        for ((value, decoder), column) in wire.into_iter().zip(&self.decoders).zip(&self.schema.columns) {
            values.push(decoder.decode_value(value).unwrap_or_else(|reason| {
                failed.get_or_insert_with(|| {
                    format!(
                        "a row of {}.{}: column `{}`: {reason}",
                        self.schema.database, self.schema.table, column.name
                    )
                });
                Value::Null
            }));
        }
        match failed {
            None => Ok(values),
            Some(reason) => Err((values, reason)),
        }
    }

    /// Where `columns` (by name) are in a row.
    pub fn indexes(&self, columns: &[String]) -> Vec<usize> {
        columns.iter().filter_map(|c| self.schema.index_of(c)).collect()
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

/// `prefix` and then the key values of `row` as text (`7`, `eu,42`): the
/// position and dedup id of a row read by key, written once per row.
pub fn key_position(prefix: &str, row: &[Value], indexes: &[usize]) -> Position {
    let mut text = String::with_capacity(prefix.len() + 12);
    text.push_str(prefix);
    for (n, value) in indexes.iter().filter_map(|&i| row.get(i)).enumerate() {
        if n > 0 {
            text.push(',');
        }
        // A comma or backslash inside a value is escaped, so that
        // ('x,y', 'z') and ('x', 'y,z') name two rows.
        let start = text.len();
        crate::record::push_value_text(&mut text, value);
        if text[start..].contains([',', '\\']) {
            let escaped = text[start..].replace('\\', "\\\\").replace(',', "\\,");
            text.truncate(start);
            text.push_str(&escaped);
        }
    }
    Position::Other(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_positions_name_the_key_values_in_key_order() {
        let row = [Value::Str("eu".into()), Value::Int(-4), Value::Bytes(vec![0, 171]), Value::Uint(9)];
        assert_eq!(
            key_position("poll:a.b:", &row, &[3, 0, 1, 2]),
            Position::Other("poll:a.b:9,eu,-4,00ab".into())
        );
        assert_eq!(key_position("p:", &row, &[1]), Position::Other("p:-4".into()));
        let (a, b) = (
            [Value::Str("x,y".into()), Value::Str("z".into())],
            [Value::Str("x".into()), Value::Str("y,z".into())],
        );
        assert_eq!(key_position("", &a, &[0, 1]), Position::Other("x\\,y,z".into()));
        assert_ne!(
            key_position("", &a, &[0, 1]),
            key_position("", &b, &[0, 1]),
            "commas inside values do not make two rows one"
        );
    }
}
