//! The MySQL sink: records become multi-row upserts, inserts, updates and
//! deletes, applied in one transaction per batch together with the Kafka
//! offsets they came from (exactly-once effect). A record that cannot be
//! written (no such table, no primary key, a value that does not fit) is
//! handed back for the dead-letter queue; the rest of the batch goes on.
mod change;
mod offsets;
mod target;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Transaction, TxOpts, Value as Wire};
use serde::Deserialize;

use self::change::{Change, Pending};
use self::offsets::OffsetsTable;
use self::target::TargetTable;
use crate::pipeline::Secret;
use crate::plugin::{FailureKind, RecordFailure};
use crate::record::{Position, Record};
use crate::sources::kafka::Offsets;
use crate::sinks::Destination;
use crate::sinks::dead_letter::DeadLetterQueue;
use crate::transforms::Rejected;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlSinkConfig {
    pub url: Secret,
    /// `database.table` per record from `{database}`, `{table}` (of the
    /// envelope, else the topic split at its first dot), `{topic}` and
    /// `{pipeline}`; a routing plugin's destination wins.
    #[serde(default = "default_table")]
    pub table: String,
    #[serde(default)]
    pub mode: WriteMode,
    /// Rows per multi-row statement.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// Approximate bytes of values per statement (below max_allowed_packet).
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: usize,
    /// Create a missing destination table from its first record: columns
    /// typed from the values, the record's key as primary key.
    #[serde(default)]
    pub create_tables: bool,
    /// Upsert columns added to the stored value instead of replacing it
    /// (running totals, per-minute counts). Every record then counts: rows
    /// of one key are not compacted within a batch, and a batch's deletes
    /// apply after its upserts.
    #[serde(default)]
    pub accumulate: Vec<String>,
    /// Database of the `sluice_offsets` table.
    #[serde(default = "default_offsets_database")]
    pub offsets_database: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMode {
    /// INSERT … ON DUPLICATE KEY UPDATE.
    #[default]
    Upsert,
    /// Plain INSERT: an existing key is an error for that record.
    Insert,
    /// UPDATE only: a missing row is left missing.
    Update,
}

fn default_table() -> String {
    "{database}.{table}".into()
}
fn default_batch_rows() -> usize {
    500
}
fn default_batch_bytes() -> usize {
    1 << 20
}
fn default_offsets_database() -> String {
    "sluice".into()
}

#[derive(Debug, thiserror::Error)]
pub enum MysqlSinkError {
    #[error("MySQL sink: {0}")]
    Connect(crate::sources::SourceError),
    #[error("MySQL sink: {0}")]
    Mysql(#[from] mysql_async::Error),
    #[error("MySQL sink: the dead letters of a batch were not accepted: {0}")]
    DeadLetters(#[from] super::SinkError),
}

pub struct MysqlSink {
    conn: Conn,
    writer: Writer,
}

/// Everything but the connection, so a transaction can borrow that alone.
struct Writer {
    config: MysqlSinkConfig,
    offsets: OffsetsTable,
    destination: Destination,
    /// Destination name → index into `targets`, None for a missing table.
    tables: HashMap<String, Option<usize>>,
    targets: Vec<TargetTable>,
    pipeline: String,
}

impl MysqlSink {
    pub async fn connect(config: &MysqlSinkConfig, pipeline: &str) -> Result<Self, MysqlSinkError> {
        let mut conn = open(config).await?;
        let offsets = OffsetsTable::new(&config.offsets_database, pipeline);
        offsets.create(&mut conn, &config.offsets_database).await?;
        let destination = Destination::new(&config.table, pipeline);
        let writer = Writer { config: config.clone(), offsets, destination, tables: HashMap::new(), targets: Vec::new(), pipeline: pipeline.to_owned() };
        Ok(MysqlSink { conn, writer })
    }

    /// The offsets of everything this pipeline has applied.
    pub async fn applied_offsets(&mut self) -> Result<Offsets, MysqlSinkError> {
        Ok(self.writer.offsets.read(&mut self.conn).await?)
    }

    /// Applies the records of one batch and stores `next_offsets`, in one
    /// transaction; retried on a lost connection (the stored offsets make a
    /// retry skip what a committed attempt applied). Before the commit, the
    /// batch's dead letters (`dead` plus the records that could not be
    /// written) go to the dead-letter queue and must be acknowledged: once
    /// the offsets are stored, the batch is never read again.
    pub async fn apply(
        &mut self,
        records: Vec<Record>,
        next_offsets: &Offsets,
        dead: &[Rejected],
        dead_letters: &DeadLetterQueue,
    ) -> Result<usize, MysqlSinkError> {
        let mut attempt = 0;
        loop {
            match self.writer.apply(&mut self.conn, &records, next_offsets, dead, dead_letters).await {
                Ok(unwritable) => return Ok(unwritable),
                Err(e) if retryable(&e) && attempt < 60 => {
                    attempt += 1;
                    tracing::warn!(pipeline = %self.writer.pipeline, error = %e, attempt, "MySQL sink: reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if let Ok(conn) = open(&self.writer.config).await {
                        self.conn = conn;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Writer {
    async fn apply(
        &mut self,
        conn: &mut Conn,
        records: &[Record],
        next_offsets: &Offsets,
        dead: &[Rejected],
        dead_letters: &DeadLetterQueue,
    ) -> Result<usize, MysqlSinkError> {
        let mut rejected = Vec::new();
        let names: Vec<String> = records.iter().map(|r| self.destination.fill(r)).collect();
        // Resolve tables outside the transaction (catalog look-ups).
        for (record, name) in records.iter().zip(&names) {
            if !self.tables.contains_key(name) {
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
                    self.targets.push(t);
                    self.targets.len() - 1
                });
                self.tables.insert(name.clone(), index);
            }
        }
        let mut tx = conn.start_transaction(TxOpts::default()).await?;
        let applied = self.offsets.lock(&mut tx).await?;
        let mut pending: Vec<Pending> = Vec::new();
        let mut by_key: HashMap<(usize, Vec<u8>), usize> = HashMap::new();
        for (record, name) in records.iter().zip(&names) {
            if let Position::Kafka { topic, partition, offset } = &record.position
                && applied.get(&(topic.clone(), *partition)).is_some_and(|next| offset < next)
            {
                continue; // applied by an earlier transaction
            }
            let Some(table) = self.tables[name] else {
                rejected.push(unwritable(record, format!("table `{name}` does not exist; create it or route the record elsewhere")));
                continue;
            };
            match Change::of(&self.targets[table], record) {
                Err(reason) => rejected.push(unwritable(record, reason)),
                Ok((_, change)) if !self.config.accumulate.is_empty() => pending.push(Pending { table, change, record }),
                Ok((key, change)) => {
                    let p = Pending { table, change, record };
                    match by_key.entry((table, key)) {
                        Entry::Occupied(i) => pending[*i.get()] = p,
                        Entry::Vacant(slot) => {
                            slot.insert(pending.len());
                            pending.push(p);
                        }
                    }
                }
            }
        }
        self.write(&mut tx, pending, &mut rejected).await?;
        self.offsets.store(&mut tx, next_offsets).await?;
        let unwritable = rejected.len();
        rejected.extend(dead.iter().cloned());
        if !rejected.is_empty() {
            dead_letters.send(&rejected).await?;
        }
        tx.commit().await?;
        Ok(unwritable)
    }

    /// Groups changes into multi-row statements (same table, kind and
    /// columns), each chunk under a savepoint: a chunk the server refuses is
    /// retried row by row, and the rows it still refuses are rejected.
    async fn write(&self, tx: &mut Transaction<'_>, pending: Vec<Pending<'_>>, rejected: &mut Vec<Rejected>) -> Result<(), mysql_async::Error> {
        let mut groups: Vec<Vec<Pending>> = Vec::new();
        let mut group_of: HashMap<(usize, bool, Vec<usize>), usize> = HashMap::new();
        for p in pending {
            match group_of.entry(p.shape()) {
                Entry::Occupied(g) => groups[*g.get()].push(p),
                Entry::Vacant(slot) => {
                    slot.insert(groups.len());
                    groups.push(vec![p]);
                }
            }
        }
        for rows in groups {
            let mut chunk: Vec<Pending> = Vec::new();
            let mut bytes = 0;
            for p in rows {
                bytes += p.change.size();
                chunk.push(p);
                if chunk.len() >= self.config.batch_rows || bytes >= self.config.batch_bytes {
                    self.write_chunk(tx, std::mem::take(&mut chunk), rejected).await?;
                    bytes = 0;
                }
            }
            if !chunk.is_empty() {
                self.write_chunk(tx, chunk, rejected).await?;
            }
        }
        Ok(())
    }

    async fn write_chunk(&self, tx: &mut Transaction<'_>, chunk: Vec<Pending<'_>>, rejected: &mut Vec<Rejected>) -> Result<(), mysql_async::Error> {
        match self.run_savepoint(tx, &chunk).await? {
            None => Ok(()),
            Some(_) if chunk.len() > 1 => {
                for p in chunk {
                    if let Some(reason) = self.run_savepoint(tx, std::slice::from_ref(&p)).await? {
                        rejected.push(unwritable(p.record, reason));
                    }
                }
                Ok(())
            }
            Some(reason) => {
                rejected.push(unwritable(chunk[0].record, reason));
                Ok(())
            }
        }
    }

    /// Runs the chunk's statement; a refusal by the server about the data
    /// rolls back to before it and comes back as the reason.
    async fn run_savepoint(&self, tx: &mut Transaction<'_>, chunk: &[Pending<'_>]) -> Result<Option<String>, mysql_async::Error> {
        tx.query_drop("SAVEPOINT chunk").await?;
        let target = &self.targets[chunk[0].table];
        let sql = chunk[0].change.statement(target, self.config.mode, &self.config.accumulate, chunk.len());
        let params: Vec<Wire> = chunk.iter().flat_map(|p| p.change.params(target, self.config.mode)).collect();
        match tx.exec_drop(sql, params).await {
            Ok(()) => Ok(None),
            Err(mysql_async::Error::Server(e)) if !matches!(e.code, 1205 | 1213) => {
                tx.query_drop("ROLLBACK TO SAVEPOINT chunk").await?;
                Ok(Some(format!("MySQL refused the row: {} (error {})", e.message, e.code)))
            }
            Err(e) => Err(e),
        }
    }

}

async fn open(config: &MysqlSinkConfig) -> Result<Conn, MysqlSinkError> {
    let mut conn = crate::sources::connect(&config.url).await.map_err(MysqlSinkError::Connect)?;
    // Refuse values that do not fit rather than store them altered.
    conn.query_drop("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'").await?;
    Ok(conn)
}

fn unwritable(record: &Record, reason: String) -> Rejected {
    Rejected {
        record: record.clone(),
        plugin: "sink:mysql".into(),
        version: String::new(),
        failure: RecordFailure::new(FailureKind::Unwritable, reason),
    }
}

/// Lost connections and server restarts, deadlocks and lock timeouts: the
/// whole batch is tried again.
fn retryable(e: &MysqlSinkError) -> bool {
    match e {
        MysqlSinkError::Mysql(mysql_async::Error::Server(server)) => matches!(server.code, 1205 | 1213 | 1053 | 1927),
        MysqlSinkError::Mysql(mysql_async::Error::Io(_) | mysql_async::Error::Driver(_)) | MysqlSinkError::Connect(_) => true,
        _ => false,
    }
}
