use std::cell::RefCell;
use std::rc::Rc;

use crate::bindings::sluice::plugin::types::{Header, Op, Output, Position, Record as RawRecord, Value};
use crate::schema::{Schemas, TableSchema};

/// One record as a plugin sees it: its operation, where it came from, its
/// rows addressed by column name, headers and an optional destination.
#[derive(Debug, Clone)]
pub struct Record {
    raw: RawRecord,
    schema: Option<Rc<TableSchema>>,
    schemas: Rc<RefCell<Schemas>>,
    /// Which input this is, so an unchanged record goes back as `keep`
    /// (the host reuses its copy) instead of being copied out whole.
    origin: Origin,
    changed: bool,
    destination_changed: bool,
}

/// (batch sequence number, index in that batch)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin(pub u64, pub u32);

/// A plugin's answer for one record.
#[derive(Debug)]
pub enum Out {
    /// Filter the record out.
    Drop,
    One(Record),
    /// Fan out: every record is delivered, in this order.
    Many(Vec<Record>),
}

impl From<Record> for Out {
    fn from(record: Record) -> Self {
        Out::One(record)
    }
}

impl Record {
    pub(crate) fn new(raw: RawRecord, schemas: &Rc<RefCell<Schemas>>, origin: Origin) -> Self {
        let schema = raw.schema.and_then(|id| schemas.borrow().get(id).cloned());
        Record { raw, schema, schemas: schemas.clone(), origin, changed: false, destination_changed: false }
    }

    /// The output for this record when answering input `here`.
    pub(crate) fn into_output(self, here: Origin) -> Output {
        match (self.changed || self.origin != here, self.destination_changed) {
            (false, false) => Output::Keep,
            (false, true) => Output::KeepTo(self.raw.destination.unwrap_or_default()),
            (true, _) => Output::Emit(self.raw),
        }
    }

    pub fn op(&self) -> Op {
        self.raw.op
    }
    pub fn position(&self) -> &Position {
        &self.raw.position
    }
    pub fn ts_ms(&self) -> i64 {
        self.raw.ts_ms
    }
    /// The table schema of the rows, absent for raw messages.
    pub fn schema(&self) -> Option<&TableSchema> {
        self.schema.as_deref()
    }
    pub fn database(&self) -> Option<&str> {
        self.schema().map(TableSchema::database)
    }
    pub fn table(&self) -> Option<&str> {
        self.schema().map(TableSchema::table)
    }
    pub fn before(&self) -> Option<&[Value]> {
        self.raw.before.as_deref()
    }
    pub fn after(&self) -> Option<&[Value]> {
        self.raw.after.as_deref()
    }
    /// Raw message key and value, for records that came from Kafka undecoded.
    pub fn key(&self) -> Option<&[u8]> {
        self.raw.key.as_deref()
    }
    pub fn payload(&self) -> Option<&[u8]> {
        self.raw.payload.as_deref()
    }
    pub fn headers(&self) -> &[Header] {
        &self.raw.headers
    }
    pub fn destination(&self) -> Option<&str> {
        self.raw.destination.as_deref()
    }

    /// Sends this record to `topic_or_table` instead of the sink's default.
    pub fn set_destination(&mut self, topic_or_table: impl Into<String>) {
        self.raw.destination = Some(topic_or_table.into());
        self.destination_changed = true;
    }

    pub fn add_header(&mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.changed = true;
        self.raw.headers.push(Header { key: key.into(), value: value.into() });
    }

    /// The column's value in the newest row image (after, or before for deletes).
    pub fn get(&self, column: &str) -> Option<&Value> {
        let i = self.schema()?.index_of(column)?;
        self.raw.after.as_ref().or(self.raw.before.as_ref())?.get(i)
    }

    /// Mutable access to the column in the newest row image.
    pub fn get_mut(&mut self, column: &str) -> Option<&mut Value> {
        let i = self.schema.as_ref()?.index_of(column)?;
        self.changed = true;
        let raw = &mut self.raw;
        match raw.after.as_mut() {
            Some(after) => after.get_mut(i),
            None => raw.before.as_mut()?.get_mut(i),
        }
    }

    /// Applies `f` to the column in both row images (masking must reach the
    /// `before` of updates and deletes too). False when there is no such column.
    pub fn update(&mut self, column: &str, mut f: impl FnMut(&mut Value)) -> bool {
        let Some(i) = self.schema.as_ref().and_then(|s| s.index_of(column)) else {
            return false;
        };
        self.changed = true;
        for row in [self.raw.before.as_mut(), self.raw.after.as_mut()].into_iter().flatten() {
            if let Some(v) = row.get_mut(i) {
                f(v);
            }
        }
        true
    }

    /// Applies `f(column name, value)` to every value of both row images.
    pub fn update_all(&mut self, mut f: impl FnMut(&str, &mut Value)) {
        let Some(schema) = self.schema.as_ref() else { return };
        self.changed = true;
        for row in [self.raw.before.as_mut(), self.raw.after.as_mut()].into_iter().flatten() {
            for (column, v) in schema.columns().iter().zip(row.iter_mut()) {
                f(&column.name, v);
            }
        }
    }

    /// Sets the column in the `after` image, adding the column (declared as
    /// `sql_type`) when the table does not have it; a `before` image gets NULL
    /// there. Records without a schema or an `after` row are left unchanged
    /// and false is returned.
    pub fn set(&mut self, column: &str, sql_type: &str, value: Value) -> bool {
        let Some(schema) = self.schema.clone() else { return false };
        let Some(after) = self.raw.after.as_mut() else { return false };
        self.changed = true;
        if let Some(i) = schema.index_of(column) {
            after[i] = value;
            return true;
        }
        let derived = self.schemas.borrow_mut().with_column(&schema, column, sql_type);
        after.push(value);
        if let Some(before) = self.raw.before.as_mut() {
            before.push(Value::Null);
        }
        self.raw.schema = Some(derived.id());
        self.schema = Some(derived);
        true
    }
}

impl Value {
    /// The text of string-like values (str, decimal, date, time, datetime, json).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Decimal(s) | Value::Date(s) | Value::Time(s) | Value::Datetime(s) | Value::Json(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(v) => Some(v),
            Value::Uint(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}
