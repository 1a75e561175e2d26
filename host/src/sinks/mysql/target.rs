//! A destination table as the catalog describes it, and record values
//! converted to its column types where JSON cannot say what was meant
//! (ISO-8601 instants into DATETIME/TIMESTAMP, base64 into binary columns).
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mysql_async::Value as Wire;
use mysql_async::prelude::Queryable;

use crate::record::Value;
use crate::sources::catalog::quote;
use crate::sources::query_rows::param;

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
        let columns: Vec<(String, String)> = conn
            .exec(
                "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (database, table),
            )
            .await?;
        if columns.is_empty() {
            return Ok(None);
        }
        let key: Vec<String> = conn
            .exec(
                "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
                (database, table),
            )
            .await?;
        Ok(Some(TargetTable { sql_name: format!("{}.{}", quote(database), quote(table)), columns, key }))
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|(c, _)| c == name)
    }

    /// A record value as a parameter for column `index`.
    pub fn convert(&self, index: usize, value: &Value) -> Wire {
        let data_type = self.columns[index].1.as_str();
        match (value, data_type) {
            (Value::Str(text), "datetime" | "timestamp") => match chrono::DateTime::parse_from_rfc3339(text) {
                Ok(t) => Wire::Bytes(t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string().into_bytes()),
                Err(_) => param(value),
            },
            (Value::Str(text), "blob" | "tinyblob" | "mediumblob" | "longblob" | "binary" | "varbinary" | "bit") => {
                match BASE64.decode(text) {
                    Ok(bytes) => Wire::Bytes(bytes),
                    Err(_) => param(value),
                }
            }
            _ => param(value),
        }
    }
}
