//! What `information_schema` says about captured tables: which tables a
//! pattern names, their primary keys, row estimates, and the JSON columns
//! MariaDB stores as checked LONGTEXT.
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use super::MysqlError;
use super::decode::SpecialType;

#[derive(Debug, Clone)]
pub struct TableInfo {
    pub database: String,
    pub table: String,
    /// Primary key column names, in key order; empty for a table without one.
    pub key: Vec<String>,
    /// Columns declared JSON (MariaDB: a `json_valid()` check on a text column).
    pub json_columns: Vec<String>,
    /// MariaDB's INET4, INET6 and UUID columns, which the binlog carries as bytes.
    pub special_columns: Vec<(String, SpecialType)>,
    /// Every column in table order, invisible ones too.
    pub columns: Vec<ColumnInfo>,
    /// The server's estimate, for progress display.
    pub estimated_rows: u64,
}

impl TableInfo {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }

    /// `db`.`table`, quoted for SQL.
    pub fn sql_name(&self) -> String {
        format!("{}.{}", quote(&self.database), quote(&self.table))
    }
}

pub fn quote(identifier: &str) -> String {
    format!("`{}`", identifier.replace('`', "``"))
}

/// `` `a` = ? AND `b` = ? ``: one row of `key` by its values, as parameters.
pub fn key_equals(key: &[String]) -> String {
    key.iter().map(|k| format!("{} = ?", quote(k))).collect::<Vec<_>>().join(" AND ")
}

/// The base tables the filter captures, sorted by name.
pub async fn captured_tables(conn: &mut Conn, filter: &TableFilter) -> Result<Vec<TableInfo>, MysqlError> {
    let mut tables = Vec::new();
    let mut databases: Vec<&str> = filter.databases().collect();
    databases.sort_unstable();
    databases.dedup();
    for database in databases {
        let names: Vec<(String, Option<u64>)> = conn
            .exec(
                "SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES
                 WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
                (database,),
            )
            .await?;
        for (table, estimated) in names {
            if filter.captures(database, &table) {
                let mut info = table_info(conn, database, &table).await?;
                info.estimated_rows = estimated.unwrap_or(0);
                tables.push(info);
            }
        }
    }
    Ok(tables)
}

pub async fn table_info(conn: &mut Conn, database: &str, table: &str) -> Result<TableInfo, MysqlError> {
    let columns = columns(conn, database, table).await?;
    let special_columns = columns
        .iter()
        .filter_map(|c| SpecialType::of(&c.data_type).map(|special| (c.name.clone(), special)))
        .collect();
    Ok(TableInfo {
        database: database.to_owned(),
        table: table.to_owned(),
        key: primary_key(conn, database, table).await?,
        json_columns: json_columns(conn, database, table).await,
        special_columns,
        columns,
        estimated_rows: 0,
    })
}

/// Primary key column names, in key order; empty without one.
pub async fn primary_key(conn: &mut impl Queryable, database: &str, table: &str) -> Result<Vec<String>, mysql_async::Error> {
    conn.exec(
        "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
        (database, table),
    )
    .await
}

/// One column as information_schema describes it.
#[derive(Debug, Clone)]
pub struct ColumnInfo {
    pub name: String,
    /// As declared: `int(10) unsigned`, `enum('a','b')`.
    pub column_type: String,
    /// The bare type: `int`, `enum`, `datetime`, `inet6`.
    pub data_type: String,
    /// The character set and collation of a text column; None for others.
    pub charset: Option<String>,
    pub collation: Option<String>,
    /// Fractional-second digits of a temporal column.
    pub datetime_precision: Option<u32>,
    /// A generated column, which no statement may write.
    pub generated: bool,
}

/// The table's columns in table order; empty when it does not exist (or
/// this user cannot see it).
pub async fn columns(conn: &mut impl Queryable, database: &str, table: &str) -> Result<Vec<ColumnInfo>, mysql_async::Error> {
    type Row = (String, String, String, Option<String>, Option<String>, Option<u32>, String);
    let rows: Vec<Row> = conn
        .exec(
            "SELECT COLUMN_NAME, COLUMN_TYPE, DATA_TYPE, CHARACTER_SET_NAME, COLLATION_NAME, DATETIME_PRECISION, EXTRA
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (database, table),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(name, column_type, data_type, charset, collation, datetime_precision, extra)| ColumnInfo {
                name,
                column_type,
                data_type,
                charset,
                collation,
                datetime_precision,
                generated: extra.to_ascii_uppercase().contains("GENERATED"),
            },
        )
        .collect())
}

/// What the binlog may leave out of a table's columns (names, keys and
/// signedness with binlog_row_metadata below FULL; JSON-ness on MariaDB),
/// in column order.
#[derive(Debug, Clone)]
pub struct CatalogColumns {
    pub names: Vec<String>,
    pub unsigned: Vec<bool>,
    /// ENUM or SET member names per column (empty for other types).
    pub members: Vec<Vec<String>>,
    /// Character set per column (None: not text, or binary).
    pub charsets: Vec<Option<String>>,
    /// information_schema's DATA_TYPE and COLUMN_TYPE per column.
    pub data_types: Vec<String>,
    pub column_types: Vec<String>,
    pub key: Vec<String>,
    pub json: Vec<String>,
}

pub async fn catalog_columns(conn: &mut Conn, database: &str, table: &str) -> Result<CatalogColumns, MysqlError> {
    let rows = columns(conn, database, table).await?;
    let info = table_info(conn, database, table).await?;
    Ok(CatalogColumns {
        unsigned: rows.iter().map(|c| c.column_type.contains("unsigned")).collect(),
        members: rows.iter().map(|c| members(&c.column_type)).collect(),
        charsets: rows.iter().map(|c| c.charset.clone()).collect(),
        data_types: rows.iter().map(|c| c.data_type.clone()).collect(),
        column_types: rows.iter().map(|c| c.column_type.clone()).collect(),
        names: rows.into_iter().map(|c| c.name).collect(),
        key: info.key,
        json: info.json_columns,
    })
}

/// `enum('a','b''c')` → [a, b'c]; nothing for other types.
fn members(column_type: &str) -> Vec<String> {
    let Some(list) = column_type.strip_prefix("enum(").or_else(|| column_type.strip_prefix("set(")) else {
        return Vec::new();
    };
    let list = list.strip_suffix(')').unwrap_or(list);
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = list.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('\'', false) => quoted = true,
            ('\'', true) if chars.peek() == Some(&'\'') => {
                current.push('\'');
                chars.next();
            }
            ('\'', true) => {
                quoted = false;
                out.push(std::mem::take(&mut current));
            }
            (c, true) => current.push(c),
            _ => {}
        }
    }
    out
}

/// MariaDB declares JSON as LONGTEXT with CHECK (json_valid(`col`)). MySQL's
/// CHECK_CONSTRAINTS has no TABLE_NAME (and MySQL has a real JSON type), so a
/// failing query simply means none.
async fn json_columns(conn: &mut Conn, database: &str, table: &str) -> Vec<String> {
    let clauses: Vec<String> = conn
        .exec(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
            (database, table),
        )
        .await
        .unwrap_or_default();
    clauses.iter().filter_map(|clause| json_valid_column(clause)).collect()
}

/// `json_valid(`doc`)` → `doc`.
fn json_valid_column(clause: &str) -> Option<String> {
    let inner = clause.trim().strip_prefix("json_valid(")?.strip_suffix(')')?.trim();
    Some(inner.strip_prefix('`')?.strip_suffix('`')?.replace("``", "`"))
}

/// `database.table` and `database.*` include and exclude lists.
#[derive(Debug, Clone)]
pub struct TableFilter {
    include: Vec<(String, String)>,
    exclude: Vec<(String, String)>,
}

impl TableFilter {
    pub fn new(include: &[String], exclude: &[String]) -> Self {
        let split = |names: &[String]| {
            names
                .iter()
                .map(|n| n.split_once('.').map_or((n.clone(), "*".into()), |(d, t)| (d.into(), t.into())))
                .collect()
        };
        TableFilter {
            include: split(include),
            exclude: split(exclude),
        }
    }

    pub fn captures(&self, database: &str, table: &str) -> bool {
        let hit = |list: &[(String, String)]| list.iter().any(|(d, t)| d == database && (t == "*" || t == table));
        hit(&self.include) && !hit(&self.exclude)
    }

    /// Databases named in the include list, for catalog look-ups.
    pub(crate) fn databases(&self) -> impl Iterator<Item = &str> {
        self.include.iter().map(|(d, _)| d.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_check_clauses_name_their_column() {
        assert_eq!(json_valid_column("json_valid(`doc`)").as_deref(), Some("doc"));
        assert_eq!(json_valid_column("json_valid(`we``ird`)").as_deref(), Some("we`ird"));
        assert_eq!(json_valid_column("`price` > 0"), None);
    }

    #[test]
    fn enum_and_set_members_are_read_from_the_column_type() {
        assert_eq!(members("enum('gold','it''s')"), ["gold", "it's"]);
        assert_eq!(members("set('a','b,c')"), ["a", "b,c"]);
        assert!(members("varchar(10)").is_empty());
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote("a`b"), "`a``b`");
    }
}
