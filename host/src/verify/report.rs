//! What a comparison found, for a person (a table) and for a program (JSON).
use std::fmt::Write as _;

use mysql_async::Value;
use serde::Serialize;

/// A row by its key, `{"id": 5}` as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct KeyDiff {
    #[serde(skip)]
    pub key: Vec<Value>,
    #[serde(flatten)]
    pub shown: serde_json::Map<String, serde_json::Value>,
}

impl KeyDiff {
    pub(super) fn new(columns: &[String], key: &[Value]) -> Self {
        let shown = columns.iter().cloned().zip(key.iter().map(json_of)).collect();
        KeyDiff { key: key.to_vec(), shown }
    }

    fn text(&self) -> String {
        self.shown.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    }
}

fn json_of(value: &Value) -> serde_json::Value {
    match value {
        Value::NULL => serde_json::Value::Null,
        Value::Int(i) => (*i).into(),
        Value::UInt(u) => (*u).into(),
        Value::Bytes(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) if !text.chars().any(char::is_control) => text.to_owned().into(),
            // Bytes that are not text are shown so that each key is told apart.
            _ => format!("0x{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()).into(),
        },
        other => other.as_sql(false).trim_matches('\'').to_owned().into(),
    }
}

/// One table's comparison.
#[derive(Debug, Serialize)]
pub struct TableReport {
    pub table: String,
    pub key: Vec<String>,
    /// Rows on the source.
    pub rows: u64,
    pub chunks: u64,
    pub chunks_differing: u64,
    /// On the source, not on the target.
    pub missing: Vec<KeyDiff>,
    /// On the target, not on the source.
    pub extra: Vec<KeyDiff>,
    /// On both, with other values.
    pub different: Vec<KeyDiff>,
    /// Still changing when looked at again: neither equal nor settled.
    pub undecided: Vec<KeyDiff>,
    /// Columns only one server has, which are not compared.
    pub not_compared: Vec<String>,
    /// Columns declared differently on the two servers: their values may
    /// differ in form (a scale, a precision) on every row.
    pub types_differ: Vec<String>,
    /// Why the table could not be compared at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// A table without a primary key is compared whole (its row count and
    /// the sum of its rows' hashes): whether it differs, as no row can be
    /// named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whole_table_differs: Option<bool>,
}

impl TableReport {
    pub(super) fn new(table: &str, key: &[String], not_compared: Vec<String>) -> Self {
        TableReport {
            table: table.to_owned(),
            key: key.to_vec(),
            rows: 0,
            chunks: 0,
            chunks_differing: 0,
            missing: Vec::new(),
            extra: Vec::new(),
            different: Vec::new(),
            undecided: Vec::new(),
            not_compared,
            types_differ: Vec::new(),
            refused: None,
            whole_table_differs: None,
        }
    }

    /// A table that could not be compared, and why.
    pub fn refused(table: &str, reason: String) -> Self {
        TableReport {
            refused: Some(reason),
            ..TableReport::new(table, &[], Vec::new())
        }
    }

    pub fn equal(&self) -> bool {
        self.refused.is_none()
            && self.whole_table_differs != Some(true)
            && self.missing.is_empty()
            && self.extra.is_empty()
            && self.different.is_empty()
            && self.undecided.is_empty()
    }
}

/// The tables as a person reads them: one line per table, then each key that differs.
pub fn human(reports: &[TableReport]) -> String {
    let mut out = format!(
        "{:<32} {:>10} {:>8} {:>8} {:>10} {:>10}\n",
        "table", "rows", "missing", "extra", "different", "undecided"
    );
    for r in reports {
        let _ = writeln!(
            out,
            "{:<32} {:>10} {:>8} {:>8} {:>10} {:>10}",
            r.table,
            r.rows,
            r.missing.len(),
            r.extra.len(),
            r.different.len(),
            r.undecided.len()
        );
    }
    for r in reports {
        for (what, keys) in [
            ("missing", &r.missing),
            ("extra", &r.extra),
            ("different", &r.different),
            ("undecided", &r.undecided),
        ] {
            for key in keys {
                let _ = writeln!(out, "{} {what}: {}", r.table, key.text());
            }
        }
        for column in &r.not_compared {
            let _ = writeln!(out, "{}: column {column} not compared", r.table);
        }
        for column in &r.types_differ {
            let _ = writeln!(out, "{}: column {column}", r.table);
        }
        if let Some(reason) = &r.refused {
            let _ = writeln!(out, "{}: not compared: {reason}", r.table);
        }
        if let Some(differs) = r.whole_table_differs {
            let verdict = if differs { "differs" } else { "is equal" };
            let _ = writeln!(
                out,
                "{}: no primary key, compared whole (row count and row hashes): {verdict}; rows cannot be named",
                r.table
            );
        }
    }
    let verdict = if reports.iter().all(TableReport::equal) {
        "equal"
    } else {
        "DIFFERENT"
    };
    let _ = writeln!(out, "{verdict}");
    out
}
