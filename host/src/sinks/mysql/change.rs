//! What one record becomes in MySQL: its row's change (an upsert of the
//! columns the table has, or a delete by key), the key bytes it is compacted
//! by, and the statement text and parameters for a run of such changes.
use mysql_async::Value as Wire;

use super::WriteMode;
use super::target::TargetTable;
use crate::mysql::catalog::{key_equals, quote};
use crate::record::{Op, Record, Value};

/// One row's change after compaction: the last one per key wins.
pub enum Change {
    Upsert(Vec<(usize, Wire)>),
    Delete(Vec<Wire>),
}

impl Change {
    /// Changes of one table with equal shapes share one multi-row statement.
    pub fn shape(&self, table: usize) -> (usize, bool, Vec<usize>) {
        match self {
            Change::Delete(_) => (table, false, Vec::new()),
            Change::Upsert(values) => (table, true, values.iter().map(|(c, _)| *c).collect()),
        }
    }

    /// The row's key (as bytes, for compaction) and its change; or why the
    /// record cannot be written to `target`.
    pub fn of(target: &TargetTable, record: &Record) -> Result<(Vec<u8>, Change), String> {
        let Some(schema) = record.schema.as_deref() else {
            return Err("a raw message: a plugin must decode it into a row first".into());
        };
        let row = match record.op {
            Op::Delete => record.before.as_deref(),
            _ => record.after.as_deref(),
        }
        .ok_or("the record has no row image")?;
        if target.key.is_empty() {
            return Err("the destination table has no primary key".into());
        }
        let mut key = Vec::new();
        let mut key_text = Vec::new();
        for k in &target.key {
            let value = schema.index_of(k).and_then(|i| row.get(i)).filter(|v| **v != Value::Null);
            let Some(value) = value else {
                return Err(format!("missing primary key column `{k}`"));
            };
            let index = target.column(k).expect("key columns are columns");
            key.push(target.convert(index, value));
            key_bytes(value, &mut key_text);
        }
        if record.op == Op::Delete {
            return Ok((key_text, Change::Delete(key)));
        }
        // Columns the table lacks are left out.
        let values: Vec<(usize, Wire)> = schema
            .columns
            .iter()
            .zip(row)
            .filter_map(|(column, value)| target.column(&column.name).map(|i| (i, target.convert(i, value))))
            .collect();
        Ok((key_text, Change::Upsert(values)))
    }

    /// The statement for `rows` changes shaped like this one.
    pub fn statement(&self, target: &TargetTable, mode: WriteMode, accumulate: &[String], rows: usize) -> String {
        match self {
            Change::Delete(_) => {
                let one = key_equals(&target.key);
                format!(
                    "DELETE FROM {} WHERE {}",
                    target.sql_name,
                    vec![format!("({one})"); rows].join(" OR ")
                )
            }
            Change::Upsert(values) if mode == WriteMode::Update => {
                let set: Vec<String> = values
                    .iter()
                    .map(|(c, _)| format!("{} = ?", quote(&target.columns[*c].0)))
                    .collect();
                let key = key_equals(&target.key);
                format!("UPDATE {} SET {} WHERE {key}", target.sql_name, set.join(", "))
            }
            Change::Upsert(values) => {
                let columns: Vec<String> = values.iter().map(|(c, _)| quote(&target.columns[*c].0)).collect();
                let row = format!("({})", vec!["?"; columns.len()].join(", "));
                let mut sql = format!(
                    "INSERT INTO {} ({}) VALUES {}",
                    target.sql_name,
                    columns.join(", "),
                    vec![row; rows].join(", ")
                );
                if mode == WriteMode::Upsert {
                    // Rows of one statement apply in order, a repeated key
                    // updating the row an earlier one inserted: totals add up.
                    let updates: Vec<String> = values
                        .iter()
                        .map(|(c, _)| {
                            let name = &target.columns[*c].0;
                            let column = quote(name);
                            if accumulate.contains(name) {
                                format!("{column} = {column} + VALUES({column})")
                            } else {
                                format!("{column} = VALUES({column})")
                            }
                        })
                        .collect();
                    sql.push_str(&format!(" ON DUPLICATE KEY UPDATE {}", updates.join(", ")));
                }
                sql
            }
        }
    }

    pub fn params(&self, target: &TargetTable, mode: WriteMode) -> Vec<Wire> {
        match self {
            Change::Delete(key) => key.clone(),
            Change::Upsert(values) if mode == WriteMode::Update => {
                let mut params: Vec<Wire> = values.iter().map(|(_, v)| v.clone()).collect();
                params.extend(self.key(target));
                params
            }
            Change::Upsert(values) => values.iter().map(|(_, v)| v.clone()).collect(),
        }
    }

    /// The row's key values, in the table's key order.
    pub fn key(&self, target: &TargetTable) -> Vec<Wire> {
        match self {
            Change::Delete(key) => key.clone(),
            Change::Upsert(values) => target
                .key
                .iter()
                .filter_map(|k| {
                    let index = target.column(k)?;
                    values.iter().find(|(c, _)| *c == index).map(|(_, v)| v.clone())
                })
                .collect(),
        }
    }

    /// About how many bytes its values take in a statement.
    pub fn size(&self) -> usize {
        let wire = |w: &Wire| match w {
            Wire::Bytes(b) => b.len(),
            _ => 8,
        };
        match self {
            Change::Delete(key) => key.iter().map(wire).sum(),
            Change::Upsert(values) => values.iter().map(|(_, v)| wire(v)).sum(),
        }
    }
}

/// A key value's bytes for compaction: tagged, so 1 and "1" differ.
fn key_bytes(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Int(i) => out.extend([b'i'].iter().chain(&i.to_le_bytes())),
        Value::Uint(u) => out.extend([b'u'].iter().chain(&u.to_le_bytes())),
        Value::Float(f) => out.extend([b'f'].iter().chain(&f.to_le_bytes())),
        Value::Timestamp(t) => out.extend([b't'].iter().chain(&t.to_le_bytes())),
        Value::Bytes(b) => out.extend([b'b'].iter().chain(&(b.len() as u64).to_le_bytes()).chain(b)),
        Value::Null => out.push(b'n'),
        Value::Decimal(s) | Value::Str(s) | Value::Date(s) | Value::Time(s) | Value::Datetime(s) | Value::Json(s) => {
            out.extend([b's'].iter().chain(&(s.len() as u64).to_le_bytes()).chain(s.as_bytes()))
        }
    }
}
