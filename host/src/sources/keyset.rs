//! Paging through a table in the order of some of its columns (a snapshot
//! by primary key, a polled table by timestamp and id), each page starting
//! after the last row of the one before.
//!
//! The cursor is not the row's decoded values: those do not always compare
//! back as the server orders them. An ENUM orders by member number but
//! compares with text as text; a FLOAT widened and written as a decimal is
//! no longer the stored float; text the server converts to `?` on its way
//! to the client names no row at all. So each ordering column is also
//! selected in a form that compares back exactly (its number, its exact
//! double, its bytes read back in its own character set and collation),
//! and only that form is kept and sent back.
use mysql_async::Value as Wire;

use crate::mysql::catalog::{ColumnInfo, quote};
use crate::mysql::query_rows::param;
use crate::record::Value;

/// How one ordering column is selected for the cursor and compared back.
#[derive(Debug, Clone)]
enum Exact {
    /// Compared as selected: integers, DECIMAL, DOUBLE, binary strings,
    /// MariaDB's INET and UUID types.
    AsIs,
    /// ENUM, SET and BIT: their number, which orders and compares as they do.
    Number,
    /// FLOAT: its exact double.
    Double,
    /// DATE, TIME, DATETIME, TIMESTAMP: their text in the session's UTC,
    /// fraction and zero dates included.
    Text,
    /// Text columns: their bytes, read back in their character set and
    /// compared in their collation.
    Bytes { charset: String, collation: String },
}

#[derive(Debug, Clone)]
struct Column {
    quoted: String,
    exact: Exact,
}

/// The ordering columns of a table and how each pages exactly.
#[derive(Debug, Clone)]
pub struct Keyset(Vec<Column>);

impl Keyset {
    /// `names` in order, described by the table's catalog.
    pub fn new(names: &[String], catalog: &[ColumnInfo]) -> Self {
        Keyset(
            names
                .iter()
                .map(|name| {
                    let info = catalog.iter().find(|c| c.name == *name);
                    let data_type = info.map_or("", |c| c.data_type.as_str());
                    let exact = match (data_type, info.and_then(|c| c.charset.clone().zip(c.collation.clone()))) {
                        ("enum" | "set" | "bit", _) => Exact::Number,
                        ("float", _) => Exact::Double,
                        ("date" | "time" | "datetime" | "timestamp", _) => Exact::Text,
                        (_, Some((charset, collation))) => Exact::Bytes { charset, collation },
                        _ => Exact::AsIs,
                    };
                    Column {
                        quoted: quote(name),
                        exact,
                    }
                })
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `, <exact form>…`: selected after a row's own columns.
    pub fn select(&self) -> String {
        self.0
            .iter()
            .map(|c| match &c.exact {
                Exact::AsIs => format!(", {}", c.quoted),
                Exact::Number => format!(", ({} + 0)", c.quoted),
                Exact::Double => format!(", CAST({} AS DOUBLE)", c.quoted),
                Exact::Text => format!(", CAST({} AS CHAR)", c.quoted),
                Exact::Bytes { .. } => format!(", CAST({} AS BINARY)", c.quoted),
            })
            .collect()
    }

    /// `k1, k2, …`
    pub fn order_by(&self) -> String {
        self.0.iter().map(|c| c.quoted.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// The selected exact forms (the last `len()` values of a row): the
    /// cursor of that row.
    pub fn cursor(selected: Vec<Wire>) -> Vec<Value> {
        selected
            .into_iter()
            .map(|wire| match wire {
                Wire::Int(i) => Value::Int(i),
                Wire::UInt(u) => Value::Uint(u),
                Wire::Double(d) => Value::Float(d),
                Wire::Float(f) => Value::Float(f64::from(f)),
                Wire::Bytes(b) => Value::Bytes(b),
                other => Value::Bytes(other.as_sql(true).into_bytes()),
            })
            .collect()
    }

    /// `(k1 > ?) OR (k1 = ? AND k2 > ?) OR …` and its parameters: the rows
    /// after `cursor`. Spelled out rather than as a row comparison, which not
    /// every server turns into an index range.
    pub fn after(&self, cursor: &[Value]) -> (String, Vec<Wire>) {
        let operand = |c: &Column| match &c.exact {
            Exact::Bytes { charset, collation } => format!("CAST(? AS CHAR CHARACTER SET {charset}) COLLATE {collation}"),
            _ => "?".to_owned(),
        };
        let mut terms = Vec::new();
        let mut params = Vec::new();
        for i in 0..self.0.len() {
            let mut term = Vec::new();
            for (column, value) in self.0.iter().zip(cursor).take(i) {
                term.push(format!("{} = {}", column.quoted, operand(column)));
                params.push(param(value));
            }
            term.push(format!("{} > {}", self.0[i].quoted, operand(&self.0[i])));
            params.push(param(&cursor[i]));
            terms.push(format!("({})", term.join(" AND ")));
        }
        (terms.join(" OR "), params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, data_type: &str, charset: Option<&str>) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            column_type: data_type.into(),
            data_type: data_type.into(),
            charset: charset.map(Into::into),
            collation: charset.map(|c| format!("{c}_general_ci")),
            datetime_precision: None,
            generated: false,
        }
    }

    #[test]
    fn each_kind_of_column_pages_by_a_form_that_compares_back_exactly() {
        let catalog = [
            column("e", "enum", Some("latin1")),
            column("f", "float", None),
            column("s", "varchar", Some("sjis")),
            column("id", "int", None),
        ];
        let keyset = Keyset::new(&["e".into(), "f".into(), "s".into(), "id".into()], &catalog);
        assert_eq!(keyset.select(), ", (`e` + 0), CAST(`f` AS DOUBLE), CAST(`s` AS BINARY), `id`");
        let cursor = Keyset::cursor(vec![
            Wire::Int(2),
            Wire::Double(0.10000000149011612),
            Wire::Bytes(vec![0x81, 0x60]),
            Wire::Int(7),
        ]);
        let (sql, params) = keyset.after(&cursor);
        assert!(sql.starts_with("(`e` > ?) OR (`e` = ? AND `f` > ?) OR"), "{sql}");
        assert!(
            sql.contains("`s` > CAST(? AS CHAR CHARACTER SET sjis) COLLATE sjis_general_ci"),
            "{sql}"
        );
        assert_eq!(params[0], Wire::Int(2));
        assert_eq!(
            params[2],
            Wire::Double(0.10000000149011612),
            "the float's exact double, not its shortest decimal"
        );
        assert_eq!(params[5], Wire::Bytes(vec![0x81, 0x60]), "the text's own bytes");
    }
}
