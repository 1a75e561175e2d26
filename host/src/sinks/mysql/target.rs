//! A destination table as the catalog describes it, and record values
//! converted to its column types where JSON cannot say what was meant
//! (ISO-8601 instants into DATETIME/TIMESTAMP, base64 into binary columns).
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mysql_async::Value as Wire;
use mysql_async::prelude::Queryable;

use crate::mysql::catalog::{self, quote};
use crate::mysql::query_rows::param;
use crate::record::Value;

pub struct TargetTable {
    /// `db`.`table`, quoted.
    pub sql_name: String,
    /// Column names and their DATA_TYPE, in table order.
    pub columns: Vec<(String, String)>,
    pub key: Vec<String>,
}

impl TargetTable {
    /// None when the table does not exist.
    pub async fn look_up(conn: &mut impl Queryable, database: &str, table: &str) -> Result<Option<Self>, mysql_async::Error> {
        // Generated columns are the server's to fill: no statement writes them.
        let columns: Vec<(String, String)> = catalog::columns(conn, database, table)
            .await?
            .into_iter()
            .filter(|c| !c.generated)
            .map(|c| (c.name, c.data_type))
            .collect();
        if columns.is_empty() {
            return Ok(None);
        }
        let key = catalog::primary_key(conn, database, table).await?;
        Ok(Some(TargetTable {
            sql_name: format!("{}.{}", quote(database), quote(table)),
            columns,
            key,
        }))
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|(c, _)| c == name)
    }

    /// A record value as a parameter for column `index`.
    pub fn convert(&self, index: usize, value: &Value) -> Wire {
        let data_type = self.columns[index].1.as_str();
        match (value, data_type) {
            // The epoch is how the zero TIMESTAMP travels: no TIMESTAMP can
            // otherwise hold it.
            (Value::Str(text), "timestamp") if chrono::DateTime::parse_from_rfc3339(text).is_ok_and(|t| t.timestamp_micros() == 0) => {
                Wire::Bytes(b"0000-00-00 00:00:00".to_vec())
            }
            (Value::Str(text), "datetime" | "timestamp") => match chrono::DateTime::parse_from_rfc3339(text) {
                Ok(t) => Wire::Bytes(t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string().into_bytes()),
                Err(_) => param(value),
            },
            // A FLOAT's value is a single-precision one: sent as such, its
            // maximum is not out of range by a rounding.
            (Value::Float(f), "float") => Wire::Float(*f as f32),
            (
                Value::Str(text),
                "blob" | "tinyblob" | "mediumblob" | "longblob" | "binary" | "varbinary" | "bit" | "geometry" | "point" | "linestring"
                | "polygon" | "multipoint" | "multilinestring" | "multipolygon" | "geometrycollection",
            ) => match BASE64.decode(text) {
                Ok(bytes) => Wire::Bytes(bytes),
                Err(_) => param(value),
            },
            _ => param(value),
        }
    }
}

/// `CREATE TABLE IF NOT EXISTS` for `record`'s row: declared types where
/// the source gave them, else types wide enough for the values; the
/// record's key columns as primary key.
pub fn create_sql(database: &str, table: &str, record: &crate::record::Record) -> Result<String, String> {
    let schema = record.schema.as_deref().ok_or("a raw message has no columns")?;
    if schema.key.is_empty() {
        return Err("the record has no key to make the primary key of".into());
    }
    let row = record
        .after
        .as_deref()
        .or(record.before.as_deref())
        .ok_or("the record has no row")?;
    let columns: Vec<String> = schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let in_key = schema.key.contains(&(i as u32));
            let ty = match (column.sql_type.as_str(), row.get(i)) {
                (declared, _) if !declared.is_empty() && (!in_key || !matches!(declared, "text" | "blob" | "json")) => declared.to_owned(),
                (_, Some(Value::Int(_))) => "BIGINT".into(),
                (_, Some(Value::Uint(_))) => "BIGINT UNSIGNED".into(),
                (_, Some(Value::Float(_))) => "DOUBLE".into(),
                (_, Some(Value::Decimal(_))) => "DECIMAL(65,10)".into(),
                (_, Some(Value::Date(_))) => "DATE".into(),
                (_, Some(Value::Time(_))) => "TIME(6)".into(),
                (_, Some(Value::Datetime(_))) => "DATETIME(6)".into(),
                (_, Some(Value::Timestamp(_))) => "TIMESTAMP(6) NULL".into(),
                (_, Some(Value::Json(_))) if !in_key => "JSON".into(),
                (_, Some(Value::Bytes(_))) if !in_key => "LONGBLOB".into(),
                (_, Some(Value::Bytes(_))) => "VARBINARY(255)".into(),
                _ if in_key => "VARCHAR(255)".into(),
                _ => "TEXT".into(),
            };
            format!("{} {ty}", quote(&column.name))
        })
        .collect();
    let key: Vec<String> = schema.key.iter().map(|&i| quote(&schema.columns[i as usize].name)).collect();
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {}.{} ({}, PRIMARY KEY ({}))",
        quote(database),
        quote(table),
        columns.join(", "),
        key.join(", ")
    ))
}
