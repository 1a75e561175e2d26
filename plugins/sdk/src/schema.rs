use std::cell::OnceCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::Column;
use crate::bindings::sluice::plugin::types::Schema;

/// One table's columns with a name index, shared by every record of that
/// table in a batch.
#[derive(Debug)]
pub struct TableSchema {
    schema: Schema,
    /// Built on the first lookup by name: a pass-through plugin never pays for it.
    index: OnceCell<HashMap<String, usize>>,
}

impl TableSchema {
    fn new(schema: Schema) -> Self {
        TableSchema {
            schema,
            index: OnceCell::new(),
        }
    }

    pub fn id(&self) -> u32 {
        self.schema.id
    }
    pub fn database(&self) -> &str {
        &self.schema.database
    }
    pub fn table(&self) -> &str {
        &self.schema.table
    }
    pub fn columns(&self) -> &[Column] {
        &self.schema.columns
    }
    /// Positions of the primary-key columns.
    pub fn key(&self) -> &[u32] {
        &self.schema.key
    }
    pub fn index_of(&self, column: &str) -> Option<usize> {
        let index = self
            .index
            .get_or_init(|| self.schema.columns.iter().enumerate().map(|(i, c)| (c.name.clone(), i)).collect());
        index.get(column).copied()
    }
}

/// The table schemas of one batch: those the host sent plus those this
/// plugin derived (a schema with an added column gets a new id).
#[derive(Debug, Default)]
pub struct Schemas {
    entries: HashMap<u32, Rc<TableSchema>>,
    /// (base schema id, added column) -> derived schema, so every record of a
    /// table that gains the same column shares one new schema.
    derived: HashMap<(u32, String), Rc<TableSchema>>,
    added: Vec<u32>,
    next_id: u32,
}

impl Schemas {
    pub fn new(schemas: Vec<Schema>) -> Self {
        let next_id = schemas.iter().map(|s| s.id + 1).max().unwrap_or(0);
        let entries = schemas.into_iter().map(|s| (s.id, Rc::new(TableSchema::new(s)))).collect();
        Schemas {
            entries,
            derived: HashMap::new(),
            added: Vec::new(),
            next_id,
        }
    }

    pub fn get(&self, id: u32) -> Option<&Rc<TableSchema>> {
        self.entries.get(&id)
    }

    /// `base` plus one trailing `column`, created once per batch.
    pub fn with_column(&mut self, base: &TableSchema, column: &str, sql_type: &str) -> Rc<TableSchema> {
        let key = (base.id(), column.to_owned());
        if let Some(derived) = self.derived.get(&key) {
            return derived.clone();
        }
        let mut schema = base.schema.clone();
        schema.id = self.next_id;
        schema.columns.push(Column {
            name: column.to_owned(),
            sql_type: sql_type.to_owned(),
        });
        self.next_id += 1;
        let derived = Rc::new(TableSchema::new(schema));
        self.entries.insert(derived.id(), derived.clone());
        self.added.push(derived.id());
        self.derived.insert(key, derived.clone());
        derived
    }

    /// Schemas this plugin created, to return to the host.
    pub(crate) fn take_added(&mut self) -> Vec<Schema> {
        self.added.drain(..).map(|id| self.entries[&id].schema.clone()).collect()
    }
}
