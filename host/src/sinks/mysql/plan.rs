//! Records into the row changes of one batch, ready for the writer: each
//! destination table looked up (or created) on the planner's own
//! connection, values converted to its column types, the batch compacted
//! to the last change per key and grouped into multi-row statements. This
//! runs while the writer applies the batch before.
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::sync::Arc;

use mysql_async::prelude::Queryable;

use super::change::Change;
use super::target::{self, TargetTable};
use super::{ConflictRule, MysqlSinkConfig, MysqlSinkError, SinkConnection, unwritable};
use crate::origin::origin_of;
use crate::record::{Op, Record, Value};
use crate::rejected::Rejected;
use crate::sinks::Destination;

pub struct RowPlanner {
    conn: SinkConnection,
    config: MysqlSinkConfig,
    destination: Destination,
    /// Destination name → index into `targets`, None for a missing table.
    tables: HashMap<String, Option<usize>>,
    targets: Vec<Arc<TargetTable>>,
}

/// A batch's changes in statement groups, in the order they apply, and the
/// records that cannot be written (with why).
#[derive(Default)]
pub struct Plan {
    pub(super) groups: Vec<Group>,
    pub(super) rejected: Vec<Rejected>,
    /// Changes a later change of the same key in the batch replaced.
    pub superseded: usize,
}

/// Changes of one table, kind and column list: one multi-row statement per
/// chunk of them.
pub(super) struct Group {
    pub table: Arc<TargetTable>,
    /// The site its changes were first made at, if they name one.
    pub origin: Option<String>,
    pub rows: Vec<Planned>,
}

pub(super) struct Planned {
    pub change: Change,
    pub record: Record,
}

impl RowPlanner {
    pub async fn connect(config: &MysqlSinkConfig, pipeline: &str) -> Result<Self, MysqlSinkError> {
        Ok(RowPlanner {
            conn: SinkConnection::open(config, pipeline).await?,
            config: config.clone(),
            destination: Destination::new(&config.table, pipeline),
            tables: HashMap::new(),
            targets: Vec::new(),
        })
    }

    /// The plan for `records`, in their order. Except where upserts
    /// accumulate, only the last change of each key is kept: a skipped
    /// earlier change is one the later one supersedes.
    pub async fn plan(&mut self, records: Vec<Record>) -> Result<Plan, MysqlSinkError> {
        let names: Vec<String> = records.iter().map(|r| self.destination.fill(r)).collect();
        let mut attempt = 0;
        while let Err(e) = self.look_up_tables(&records, &names).await {
            attempt += 1;
            self.conn.recover(e, attempt).await?;
        }
        let mut plan = Plan::default();
        let mut changes: Vec<KeyedChange> = Vec::with_capacity(records.len());
        let accumulate = !self.config.accumulate.is_empty();
        for (record, name) in records.into_iter().zip(&names) {
            let Some(table) = self.tables[name] else {
                let reason = format!("table `{name}` does not exist; create it or route the record elsewhere");
                plan.rejected.push(unwritable(&record, reason));
                continue;
            };
            match Change::of(&self.targets[table], &record) {
                Err(reason) => plan.rejected.push(unwritable(&record, reason)),
                // Accumulated changes add up: every one of them is kept.
                Ok((_, change)) if accumulate => changes.push(((table, Vec::new()), (table, Planned { change, record }))),
                Ok((key, change)) => changes.push(((table, key), (table, Planned { change, record }))),
            }
        }
        let planned = changes.len();
        let kept: Vec<(usize, Planned)> = if accumulate {
            changes.into_iter().map(|(_, change)| change).collect()
        } else if self.config.conflict == ConflictRule::TargetWins {
            net_per_key(changes)
        } else {
            last_per_key(changes)
        };
        plan.superseded = planned - kept.len();
        let mut group_of: HashMap<GroupKey, usize> = HashMap::new();
        for (table, planned) in kept {
            let origin = origin_of(&planned.record).map(str::to_owned);
            match group_of.entry((planned.change.shape(table), origin)) {
                Entry::Occupied(g) => plan.groups[*g.get()].rows.push(planned),
                Entry::Vacant(slot) => {
                    plan.groups.push(Group {
                        table: self.targets[table].clone(),
                        origin: slot.key().1.clone(),
                        rows: vec![planned],
                    });
                    slot.insert(plan.groups.len() - 1);
                }
            }
        }
        // One origin marker per origin and transaction: its groups together,
        // those naming no origin (made at this site) before any marker.
        plan.groups.sort_by(|a, b| a.origin.cmp(&b.origin));
        Ok(plan)
    }

    /// Looks up every destination not seen before, creating it from its
    /// first record if so configured.
    async fn look_up_tables(&mut self, records: &[Record], names: &[String]) -> Result<(), MysqlSinkError> {
        for (record, name) in records.iter().zip(names) {
            if self.tables.contains_key(name) {
                continue;
            }
            let conn = self.conn.get();
            let target = match name.split_once('.') {
                Some((db, t)) => match TargetTable::look_up(conn, db, t).await? {
                    None if self.config.create_tables => match target::create_sql(db, t, record) {
                        Ok(sql) => {
                            tracing::info!(table = %name, "creating the table from the first record's shape");
                            conn.query_drop(sql).await?;
                            TargetTable::look_up(conn, db, t).await?
                        }
                        Err(reason) => {
                            tracing::warn!(table = %name, "cannot create the table: {reason}");
                            None
                        }
                    },
                    found => found,
                },
                None => None,
            };
            let index = target.map(|t| {
                self.targets.push(Arc::new(t));
                self.targets.len() - 1
            });
            self.tables.insert(name.clone(), index);
        }
        Ok(())
    }
}

/// What changes share a statement group: table, kind and columns (see
/// `Change::shape`), and origin.
type GroupKey = ((usize, bool, Vec<usize>), Option<String>);

/// A change by its table and key, with its table.
type KeyedChange = ((usize, Vec<u8>), (usize, Planned));

/// Each key's last change, in the order of each key's first change: an
/// earlier change of a key is one the later one supersedes.
fn last_per_key<K: Hash + Eq, T>(changes: Vec<(K, T)>) -> Vec<T> {
    let mut kept: Vec<T> = Vec::with_capacity(changes.len());
    let mut by_key: HashMap<K, usize> = HashMap::new();
    for (key, change) in changes {
        match by_key.entry(key) {
            Entry::Occupied(at) => kept[*at.get()] = change,
            Entry::Vacant(slot) => {
                slot.insert(kept.len());
                kept.push(change);
            }
        }
    }
    kept
}

/// Each key's changes as one, for a rule that checks the row a change
/// found: the last change's row, made from the row the first one found (an
/// update 11 → 12 → 13 found 11). After an insert the key was expected free.
fn net_per_key(changes: Vec<KeyedChange>) -> Vec<(usize, Planned)> {
    // Per table and key: the first change's op and before image.
    let mut firsts: HashMap<(usize, Vec<u8>), FirstChange> = HashMap::new();
    let mut keyed = Vec::with_capacity(changes.len());
    for (key, (table, planned)) in changes {
        let record = &planned.record;
        firsts.entry(key.clone()).or_insert_with(|| (record.op, record.before.clone()));
        keyed.push((key.clone(), (key, table, planned)));
    }
    last_per_key(keyed)
        .into_iter()
        .map(|(key, table, mut planned)| {
            let (first_op, first_before) = firsts.remove(&key).expect("every key has a first change");
            net_change(&mut planned.record, first_op, first_before);
            (table, planned)
        })
        .collect()
}

type FirstChange = (Op, Option<Vec<Value>>);

/// Makes `last` the net change of its key since the first change, whose
/// op and before image are given.
fn net_change(last: &mut Record, first_op: Op, first_before: Option<Vec<Value>>) {
    match (first_op, last.op) {
        (Op::Insert | Op::Read, Op::Delete) => {}
        (Op::Insert | Op::Read, _) => {
            last.op = first_op;
            last.before = None;
        }
        (_, Op::Delete) => last.before = first_before,
        _ => {
            last.op = Op::Update;
            last.before = first_before;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_keeps_its_last_change_in_the_place_of_its_first() {
        let changes = vec![("a", "a1"), ("b", "b1"), ("a", "a2"), ("c", "c1"), ("b", "b2"), ("a", "a3")];
        assert_eq!(last_per_key(changes), ["a3", "b2", "c1"]);
        assert_eq!(last_per_key(Vec::<(u8, u8)>::new()), Vec::<u8>::new());
    }

    #[test]
    fn a_keys_changes_net_out_from_the_row_the_first_found() {
        let record = |op: Op, before: Option<i64>| Record {
            op,
            before: before.map(|v| vec![Value::Int(v)]),
            ..Record::read(crate::record::Position::Other("p".into()), 0, std::sync::Arc::new(schema()), vec![])
        };
        let net = |first: (Op, Option<i64>), last: (Op, Option<i64>)| {
            let mut last = record(last.0, last.1);
            net_change(&mut last, first.0, first.1.map(|v| vec![Value::Int(v)]));
            (last.op, last.before.map(|b| b[0].clone()))
        };
        let int = |v| Some(Value::Int(v));
        assert_eq!(net((Op::Update, Some(11)), (Op::Update, Some(13))), (Op::Update, int(11)));
        assert_eq!(
            net((Op::Insert, None), (Op::Update, Some(5))),
            (Op::Insert, None),
            "expects a free key"
        );
        assert_eq!(net((Op::Insert, None), (Op::Delete, Some(5))), (Op::Delete, int(5)));
        assert_eq!(net((Op::Update, Some(1)), (Op::Delete, Some(2))), (Op::Delete, int(1)));
        assert_eq!(
            net((Op::Delete, Some(1)), (Op::Insert, None)),
            (Op::Update, int(1)),
            "replaces the row found"
        );
    }

    fn schema() -> crate::record::Schema {
        crate::record::Schema {
            database: "d".into(),
            table: "t".into(),
            columns: Vec::new(),
            key: Vec::new(),
        }
    }
}
