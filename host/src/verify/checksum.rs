//! The SQL that has each server checksum its own rows: a row's hash from
//! every compared column in a form both servers print alike, a chunk's as
//! the count and the XOR of its rows' hashes, so that no row crosses the
//! network until a chunk differs.
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};

use crate::mysql::MysqlError;
use crate::mysql::catalog::{self, ColumnInfo, quote};

/// One table as both servers hold it: its key and the columns compared.
pub(super) struct TableSql {
    pub name: String,
    /// `db`.`table`
    sql_name: String,
    pub key: Vec<String>,
    /// How each key column is selected: a BIT as its number, which a
    /// parameter can match again.
    key_select: Vec<String>,
    /// The compared columns a statement may write (not generated ones).
    writable: Vec<String>,
    /// `MD5(CONCAT_WS('#', …))` over the compared columns.
    row_hash: String,
    /// The key as the table's collations compare it, so that keys equal
    /// there ('abc' and 'ABC' under a `_ci` collation) are one row.
    match_key: String,
}

/// A row as the comparison sees it.
pub(super) struct HashedRow {
    pub key: Vec<Value>,
    /// The key as the table's collations compare it.
    pub matched: String,
    pub hash: String,
}

/// A key range: above `after` (or from the start), up to `through` (or to the end).
pub(super) struct Range<'a> {
    pub after: Option<&'a [Value]>,
    pub through: Option<&'a [Value]>,
}

impl TableSql {
    pub(super) fn new(database: &str, table: &str, key: Vec<String>, columns: &[ColumnInfo]) -> Self {
        let parts: Vec<String> = columns.iter().map(comparable).collect();
        let key_select = key
            .iter()
            .map(|k| match columns.iter().find(|c| &c.name == k) {
                Some(c) if c.data_type.eq_ignore_ascii_case("bit") => format!("CAST({} AS UNSIGNED)", quote(k)),
                _ => quote(k),
            })
            .collect();
        let match_key = format!(
            "CONCAT_WS(',', {})",
            key.iter()
                .map(
                    |k| match columns.iter().find(|c| &c.name == k).and_then(|c| c.collation.as_deref()) {
                        // A PAD SPACE collation ignores trailing spaces in comparisons,
                        // but WEIGHT_STRING keeps them.
                        Some(collation) if !collation.contains("nopad") && !collation.contains("_0900_") => {
                            format!("HEX(WEIGHT_STRING(TRIM(TRAILING ' ' FROM {})))", quote(k))
                        }
                        Some(_) => format!("HEX(WEIGHT_STRING({}))", quote(k)),
                        None => format!("HEX(CAST({} AS BINARY))", quote(k)),
                    }
                )
                .collect::<Vec<_>>()
                .join(", ")
        );
        TableSql {
            name: format!("{database}.{table}"),
            sql_name: format!("{}.{}", quote(database), quote(table)),
            key,
            key_select,
            writable: columns.iter().filter(|c| !c.generated).map(|c| c.name.clone()).collect(),
            row_hash: format!("MD5(CONCAT_WS('#', {}))", parts.join(", ")),
            match_key,
        }
    }

    fn key_list(&self) -> String {
        self.key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ")
    }

    /// Keys above `after` and up to `through`, spelled out column by column
    /// (`a > ? OR (a = ? AND b > ?)`): a row comparison `(a, b) > (?, ?)`
    /// makes MariaDB scan the whole index for every chunk.
    fn range_filter(&self, range: &Range<'_>) -> (String, Vec<Value>) {
        let mut conditions = Vec::new();
        let mut params = Vec::new();
        for (bound, strict, inclusive) in [(range.after, ">", false), (range.through, "<", true)] {
            let Some(values) = bound else { continue };
            let mut alternatives = Vec::new();
            for depth in 0..self.key.len() {
                let mut parts: Vec<String> = (0..depth).map(|i| format!("{} = ?", quote(&self.key[i]))).collect();
                params.extend(values[..depth].iter().cloned());
                let op = if inclusive && depth == self.key.len() - 1 {
                    format!("{strict}=")
                } else {
                    strict.to_owned()
                };
                parts.push(format!("{} {op} ?", quote(&self.key[depth])));
                params.push(values[depth].clone());
                alternatives.push(format!("({})", parts.join(" AND ")));
            }
            conditions.push(format!("({})", alternatives.join(" OR ")));
        }
        let filter = if conditions.is_empty() {
            "TRUE".to_owned()
        } else {
            conditions.join(" AND ")
        };
        (filter, params)
    }

    /// The key that ends the chunk of `rows` rows after `after`; None when
    /// fewer rows remain (the last chunk runs to the end).
    pub(super) async fn chunk_end(&self, conn: &mut Conn, after: Option<&[Value]>, rows: usize) -> Result<Option<Vec<Value>>, MysqlError> {
        let (filter, params) = self.range_filter(&Range { after, through: None });
        let sql = format!(
            "SELECT {} FROM {} WHERE {filter} ORDER BY {} LIMIT 1 OFFSET {}",
            self.key_select.join(", "),
            self.sql_name,
            self.key_list(),
            rows.saturating_sub(1)
        );
        let row: Option<mysql_async::Row> = conn.exec_first(sql, params).await?;
        Ok(row.map(mysql_async::Row::unwrap))
    }

    /// The statement that checksums the whole table in one scan, as the
    /// chunks do together: what comparing in chunks is measured against.
    pub(super) fn one_scan_sql(&self) -> String {
        format!(
            "SELECT COUNT(*), COALESCE(BIT_XOR(CAST(CONV(LEFT({}, 16), 16, 10) AS UNSIGNED)), 0) FROM {}",
            self.row_hash, self.sql_name
        )
    }

    /// The range's row count and the XOR of its rows' hashes.
    pub(super) async fn chunk_checksum(&self, conn: &mut Conn, range: &Range<'_>) -> Result<(u64, u64), MysqlError> {
        let (filter, params) = self.range_filter(range);
        let sql = format!(
            "SELECT COUNT(*), COALESCE(BIT_XOR(CAST(CONV(LEFT({}, 16), 16, 10) AS UNSIGNED)), 0) FROM {} WHERE {filter}",
            self.row_hash, self.sql_name
        );
        let row: Option<(u64, u64)> = conn.exec_first(sql, params).await?;
        Ok(row.unwrap_or((0, 0)))
    }

    /// The table's row count and the sum of its rows' hashes (a sum, not an
    /// XOR: without a key, a row may be there twice).
    pub(super) async fn table_checksum(&self, conn: &mut Conn) -> Result<(u64, String), MysqlError> {
        let sql = format!(
            "SELECT COUNT(*), CAST(COALESCE(SUM(CAST(CONV(LEFT({}, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR) FROM {}",
            self.row_hash, self.sql_name
        );
        let row: Option<(u64, String)> = conn.query_first(sql).await?;
        Ok(row.unwrap_or_default())
    }

    /// Each row of the range in key order: its key, the key as its
    /// collations compare it, and the row's hash.
    pub(super) async fn row_hashes(&self, conn: &mut Conn, range: &Range<'_>) -> Result<Vec<HashedRow>, MysqlError> {
        let (filter, params) = self.range_filter(range);
        self.hashed(conn, &filter, params).await
    }

    /// The rows of `keys` the server holds, hashed as [`Self::row_hashes`] does.
    pub(super) async fn rows_of(&self, conn: &mut Conn, keys: &[&[Value]]) -> Result<Vec<HashedRow>, MysqlError> {
        let filter = vec![format!("({})", self.key_equals()); keys.len()].join(" OR ");
        let params = keys.iter().flat_map(|k| k.iter().cloned()).collect();
        self.hashed(conn, &filter, params).await
    }

    async fn hashed(&self, conn: &mut Conn, filter: &str, params: Vec<Value>) -> Result<Vec<HashedRow>, MysqlError> {
        let sql = format!(
            "SELECT {}, {}, {} FROM {} WHERE {filter} ORDER BY {}",
            self.key_select.join(", "),
            self.match_key,
            self.row_hash,
            self.sql_name,
            self.key_list()
        );
        let rows: Vec<mysql_async::Row> = conn.exec(sql, params).await?;
        let text = |value: Option<Value>| match value {
            Some(Value::Bytes(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            other => format!("{other:?}"),
        };
        Ok(rows
            .into_iter()
            .map(|row| {
                let mut values = row.unwrap();
                let hash = text(values.pop());
                let matched = text(values.pop());
                HashedRow {
                    key: values,
                    matched,
                    hash,
                }
            })
            .collect())
    }

    /// The writable compared columns of one row, for a repair.
    pub(super) async fn row(&self, conn: &mut Conn, key: &[Value]) -> Result<Option<Vec<Value>>, MysqlError> {
        let columns: Vec<String> = self.writable.iter().map(|c| quote(c)).collect();
        let sql = format!("SELECT {} FROM {} WHERE {}", columns.join(", "), self.sql_name, self.key_equals());
        let row: Option<mysql_async::Row> = conn.exec_first(sql, key.to_vec()).await?;
        Ok(row.map(mysql_async::Row::unwrap))
    }

    /// Writes `row` (the writable compared columns) as the target's row of
    /// its key: inserted, or updated in place. Not REPLACE, whose delete
    /// would cascade to child rows and reset columns only the target has.
    pub(super) async fn upsert(&self, conn: &mut Conn, row: Vec<Value>) -> Result<(), MysqlError> {
        let columns: Vec<String> = self.writable.iter().map(|c| quote(c)).collect();
        let marks = vec!["?"; columns.len()].join(", ");
        let updates: Vec<String> = columns.iter().map(|c| format!("{c} = VALUES({c})")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({marks}) ON DUPLICATE KEY UPDATE {}",
            self.sql_name,
            columns.join(", "),
            updates.join(", ")
        );
        conn.exec_drop(sql, row).await?;
        Ok(())
    }

    pub(super) async fn delete(&self, conn: &mut Conn, key: &[Value]) -> Result<(), MysqlError> {
        let sql = format!("DELETE FROM {} WHERE {}", self.sql_name, self.key_equals());
        conn.exec_drop(sql, key.to_vec()).await?;
        Ok(())
    }

    fn key_equals(&self) -> String {
        catalog::key_equals(&self.key)
    }
}

/// A column as text both servers print alike: text as the MD5 of its
/// utf8mb4 bytes and bytes as their MD5 (so a charset cannot hide or fake a
/// difference, and a value of any size hashes: a copy larger than
/// max_allowed_packet would be NULL), FLOAT at double precision, other
/// values as the server prints them; NULL apart from every value.
fn comparable(column: &ColumnInfo) -> String {
    let name = quote(&column.name);
    let text = match column.data_type.to_ascii_lowercase().as_str() {
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" | "json" => match &column.charset {
            Some(charset) if charset.eq_ignore_ascii_case("utf8mb4") => format!("MD5({name})"),
            _ => format!("MD5(CONVERT({name} USING utf8mb4))"),
        },
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "bit" | "geometry" | "point" | "linestring"
        | "polygon" | "multipoint" | "multilinestring" | "multipolygon" | "geometrycollection" => format!("MD5({name})"),
        // CAST(FLOAT AS CHAR) keeps 6 digits: 1.0000001 and 1.0000002 would look alike.
        "float" => format!("CONCAT({name} + 0e0)"),
        _ => format!("CAST({name} AS CHAR)"),
    };
    format!("IF({name} IS NULL, 'NULL', COALESCE({text}, CONCAT('unhashable:', LENGTH({name}))))")
}
