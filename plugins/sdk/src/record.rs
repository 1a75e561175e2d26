use std::cell::RefCell;
use std::rc::Rc;

use crate::arena::{NONE32, NONE64, Reader, Writer};
use crate::bindings::sluice::plugin::types::{self as wit, Op};
use crate::schema::{Schemas, TableSchema};
use crate::{Header, Position, Value};

/// The batch a record arrived in, kept while any of its records lives.
pub(crate) struct Input {
    pub batch: wit::Batch,
    /// Sequence number of the batch within this instance.
    pub seq: u64,
}

impl Input {
    fn reader(&self) -> Reader<'_> {
        Reader { batch: &self.batch }
    }
}

/// One record as a plugin sees it: its operation, where it came from, its
/// rows addressed by column name, headers and an optional destination.
///
/// Reading decodes from the batch; the first change takes an owned copy. A
/// record returned unchanged goes back to the host as `keep`, without being
/// copied out of the plugin.
#[derive(Clone)]
pub struct Record {
    input: Rc<Input>,
    index: u32,
    schema: Option<Rc<TableSchema>>,
    schemas: Rc<RefCell<Schemas>>,
    edit: Option<Box<Edit>>,
    destination: Option<Option<String>>,
}

#[derive(Clone)]
struct Edit {
    before: Option<Vec<Value>>,
    after: Option<Vec<Value>>,
    headers: Vec<Header>,
}

/// A plugin's answer for one record.
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

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("op", &self.op())
            .field("table", &self.table())
            .field("before", &self.before())
            .field("after", &self.after())
            .field("destination", &self.destination())
            .finish()
    }
}

impl Record {
    pub(crate) fn new(input: &Rc<Input>, index: u32, schemas: &Rc<RefCell<Schemas>>) -> Self {
        let schema = input.reader().schema(index).and_then(|id| schemas.borrow().get(id).cloned());
        Record {
            input: input.clone(),
            index,
            schema,
            schemas: schemas.clone(),
            edit: None,
            destination: None,
        }
    }

    fn width(&self) -> usize {
        self.schema.as_ref().map_or(0, |s| s.columns().len())
    }

    /// The output for this record when answering input `index` of batch
    /// `seq`, as the WIT's `outputs` and `destinations` entries.
    pub(crate) fn into_output(self, seq: u64, index: u32, out: &mut Writer) -> (u32, u64) {
        let same_input = self.input.seq == seq && self.index == index;
        if same_input && self.edit.is_none() {
            return match self.destination {
                None => (NONE32, NONE64),
                Some(d) => (NONE32, out.span(d.unwrap_or_default().as_bytes())),
            };
        }
        let (before, after, headers) = (self.before(), self.after(), self.headers());
        let destination = self.destination();
        let (key, payload) = (self.key(), self.payload());
        let position = self.position();
        let emitted = out.push(sluice_layout::RecordRef {
            op: self.op() as u8,
            position: position.as_position_ref(),
            ts_ms: self.ts_ms(),
            schema: self.schema.as_ref().map(|s| s.id()),
            before: before.as_deref(),
            after: after.as_deref(),
            key: key.as_deref(),
            payload: payload.as_deref(),
            headers: &headers,
            destination: destination.as_deref(),
        });
        (emitted, NONE64)
    }

    pub fn op(&self) -> Op {
        self.input.reader().op(self.index)
    }
    pub fn ts_ms(&self) -> i64 {
        self.input.reader().ts_ms(self.index)
    }
    pub fn position(&self) -> Position {
        self.input.reader().position(self.index)
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
    pub fn before(&self) -> Option<Vec<Value>> {
        match &self.edit {
            Some(edit) => edit.before.clone(),
            None => self
                .input
                .reader()
                .before(self.index)
                .map(|start| self.input.reader().row(start, self.width())),
        }
    }
    pub fn after(&self) -> Option<Vec<Value>> {
        match &self.edit {
            Some(edit) => edit.after.clone(),
            None => self
                .input
                .reader()
                .after(self.index)
                .map(|start| self.input.reader().row(start, self.width())),
        }
    }
    /// Raw message key and value, for records that came from Kafka undecoded.
    pub fn key(&self) -> Option<Vec<u8>> {
        self.input.reader().key(self.index)
    }
    pub fn payload(&self) -> Option<Vec<u8>> {
        self.input.reader().payload(self.index)
    }
    pub fn headers(&self) -> Vec<Header> {
        match &self.edit {
            Some(edit) => edit.headers.clone(),
            None => self.input.reader().headers(self.index),
        }
    }
    pub fn destination(&self) -> Option<String> {
        match &self.destination {
            Some(d) => d.clone(),
            None => self.input.reader().destination(self.index),
        }
    }

    /// Sends this record to `topic_or_table` instead of the sink's default.
    pub fn set_destination(&mut self, topic_or_table: impl Into<String>) {
        self.destination = Some(Some(topic_or_table.into()));
    }

    pub fn add_header(&mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.edit().headers.push(Header {
            key: key.into(),
            value: value.into(),
        });
    }

    /// The column's value in the newest row image (after, or before for deletes).
    pub fn get(&self, column: &str) -> Option<Value> {
        let i = self.schema()?.index_of(column)?;
        if let Some(edit) = &self.edit {
            return edit.after.as_ref().or(edit.before.as_ref())?.get(i).cloned();
        }
        let reader = self.input.reader();
        let start = reader.after(self.index).or(reader.before(self.index))?;
        Some(reader.value(start as usize + i))
    }

    /// Mutable access to the column in the newest row image.
    pub fn get_mut(&mut self, column: &str) -> Option<&mut Value> {
        let i = self.schema.as_ref()?.index_of(column)?;
        let edit = self.edit();
        match edit.after.as_mut() {
            Some(after) => after.get_mut(i),
            None => edit.before.as_mut()?.get_mut(i),
        }
    }

    /// Applies `f` to the column in both row images (masking must reach the
    /// `before` of updates and deletes too). False when there is no such column.
    pub fn update(&mut self, column: &str, mut f: impl FnMut(&mut Value)) -> bool {
        let Some(i) = self.schema.as_ref().and_then(|s| s.index_of(column)) else {
            return false;
        };
        let edit = self.edit();
        for row in [edit.before.as_mut(), edit.after.as_mut()].into_iter().flatten() {
            if let Some(v) = row.get_mut(i) {
                f(v);
            }
        }
        true
    }

    /// Applies `f(column name, value)` to every value of both row images.
    pub fn update_all(&mut self, mut f: impl FnMut(&str, &mut Value)) {
        let Some(schema) = self.schema.clone() else { return };
        let edit = self.edit();
        for row in [edit.before.as_mut(), edit.after.as_mut()].into_iter().flatten() {
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
        if self.input.reader().after(self.index).is_none() && self.edit.as_ref().is_none_or(|e| e.after.is_none()) {
            return false;
        }
        if let Some(i) = schema.index_of(column) {
            self.edit().after.as_mut().expect("after row")[i] = value;
            return true;
        }
        let derived = self.schemas.borrow_mut().with_column(&schema, column, sql_type);
        let edit = self.edit();
        edit.after.as_mut().expect("after row").push(value);
        if let Some(before) = edit.before.as_mut() {
            before.push(Value::Null);
        }
        self.schema = Some(derived);
        true
    }

    /// The owned copy to change, taken on first use.
    fn edit(&mut self) -> &mut Edit {
        if self.edit.is_none() {
            let edit = Edit {
                before: self.before(),
                after: self.after(),
                headers: self.headers(),
            };
            self.edit = Some(Box::new(edit));
        }
        self.edit.as_mut().expect("edit taken")
    }
}
