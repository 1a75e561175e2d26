//! The MySQL sink: records become multi-row upserts, inserts, updates and
//! deletes, applied in one transaction per batch together with the Kafka
//! offsets they came from (exactly-once effect). A record that cannot be
//! written (no such table, no primary key, a value that does not fit) is
//! handed back for the dead-letter queue; the rest of the batch goes on.
mod change;
mod offsets;
mod plan;
mod target;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Transaction, TxOpts, Value as Wire};
use serde::Deserialize;

use self::offsets::OffsetsTable;
use self::plan::Planned;
pub use self::plan::{Plan, RowPlanner};
use self::target::TargetTable;
use crate::kafka::Offsets;
use crate::mysql::MysqlTls;
use crate::record::{Position, Record};
use crate::rejected::Rejected;
use crate::secret::Secret;
use crate::sinks::dead_letter::DeadLetterQueue;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlSinkConfig {
    pub url: Secret,
    /// TLS files (a private CA, a client certificate); giving them turns TLS on.
    #[serde(default)]
    pub tls: Option<MysqlTls>,
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
    Connect(#[from] crate::mysql::MysqlError),
    #[error("MySQL sink: {0}")]
    Mysql(#[from] mysql_async::Error),
    #[error("MySQL sink: {0}")]
    DeadLetters(#[from] super::SinkError),
}

impl MysqlSinkError {
    /// Whether trying again later may succeed: the server down or restarting.
    pub fn is_transient(&self) -> bool {
        match self {
            MysqlSinkError::Connect(e) => e.is_transient(),
            MysqlSinkError::Mysql(e) => crate::mysql::is_transient(e),
            MysqlSinkError::DeadLetters(e) => e.is_transient(),
        }
    }
}

/// Applies planned batches on its own connection.
pub struct MysqlSink {
    conn: SinkConnection,
    config: MysqlSinkConfig,
    offsets: OffsetsTable,
}

impl MysqlSink {
    pub async fn connect(config: &MysqlSinkConfig, pipeline: &str) -> Result<Self, MysqlSinkError> {
        let mut conn = SinkConnection::open(config, pipeline).await?;
        let offsets = OffsetsTable::new(&config.offsets_database, pipeline);
        offsets.create(conn.get(), &config.offsets_database).await?;
        Ok(MysqlSink {
            conn,
            config: config.clone(),
            offsets,
        })
    }

    /// The offsets of everything this pipeline has applied.
    pub async fn applied_offsets(&mut self) -> Result<Offsets, MysqlSinkError> {
        Ok(self.offsets.read(self.conn.get()).await?)
    }

    /// Applies a planned batch and stores `next_offsets`, in one
    /// transaction; retried on a lost connection (the stored offsets make a
    /// retry skip what a committed attempt applied). Before the commit, the
    /// batch's dead letters (`dead`, the records the plan rejected and those
    /// the server refused) go to the dead-letter queue and must be
    /// acknowledged: once the offsets are stored, the batch is never read
    /// again. Returns how many records could not be written.
    pub async fn apply(
        &mut self,
        plan: &Plan,
        next_offsets: &Offsets,
        dead: &[Rejected],
        dead_letters: &DeadLetterQueue,
    ) -> Result<usize, MysqlSinkError> {
        let mut attempt = 0;
        loop {
            match self.try_apply(plan, next_offsets, dead, dead_letters).await {
                Ok(unwritable) => return Ok(unwritable),
                Err(e) => {
                    attempt += 1;
                    self.conn.recover(e, attempt).await?;
                }
            }
        }
    }

    async fn try_apply(
        &mut self,
        plan: &Plan,
        next_offsets: &Offsets,
        dead: &[Rejected],
        dead_letters: &DeadLetterQueue,
    ) -> Result<usize, MysqlSinkError> {
        let mut tx = self.conn.conn.start_transaction(TxOpts::default()).await?;
        let applied = self.offsets.lock(&mut tx).await?;
        let fresh = |record: &Record| !already_applied(&applied, &record.position);
        let mut rejected: Vec<Rejected> = plan.rejected.iter().filter(|r| fresh(&r.record)).cloned().collect();
        for group in &plan.groups {
            let rows = group.rows.iter().filter(|p| fresh(&p.record));
            let mut chunk: Vec<&Planned> = Vec::new();
            let mut bytes = 0;
            for p in rows {
                bytes += p.change.size();
                chunk.push(p);
                if chunk.len() >= self.config.batch_rows || bytes >= self.config.batch_bytes {
                    write_chunk(&mut tx, &self.config, &group.table, &chunk, &mut rejected).await?;
                    chunk.clear();
                    bytes = 0;
                }
            }
            if !chunk.is_empty() {
                write_chunk(&mut tx, &self.config, &group.table, &chunk, &mut rejected).await?;
            }
        }
        self.offsets.store(&mut tx, next_offsets).await?;
        let unwritable = rejected.len();
        rejected.extend(dead.iter().filter(|r| fresh(&r.record)).cloned());
        if !rejected.is_empty() {
            dead_letters.send(&rejected).await?;
        }
        tx.commit().await?;
        Ok(unwritable)
    }
}

/// One multi-row statement. One the server refuses has changed nothing
/// (InnoDB rolls back the failed statement alone, so no savepoint is
/// needed); its rows are retried one by one, and those still refused
/// are rejected.
async fn write_chunk(
    tx: &mut Transaction<'_>,
    config: &MysqlSinkConfig,
    target: &TargetTable,
    chunk: &[&Planned],
    rejected: &mut Vec<Rejected>,
) -> Result<(), mysql_async::Error> {
    let (mode, accumulate) = (config.mode, &config.accumulate);
    let sql = chunk[0].change.statement(target, mode, accumulate, chunk.len());
    let params: Vec<Wire> = chunk.iter().flat_map(|p| p.change.params(target, mode)).collect();
    let Some(reason) = run(tx, sql, params).await? else { return Ok(()) };
    if let [one] = chunk {
        rejected.push(unwritable(&one.record, reason));
        return Ok(());
    }
    for p in chunk {
        let sql = p.change.statement(target, mode, accumulate, 1);
        if let Some(reason) = run(tx, sql, p.change.params(target, mode)).await? {
            rejected.push(unwritable(&p.record, reason));
        }
    }
    Ok(())
}

/// Runs one statement; a refusal by the server about the data comes back
/// as the reason.
async fn run(tx: &mut Transaction<'_>, sql: String, params: Vec<Wire>) -> Result<Option<String>, mysql_async::Error> {
    match tx.exec_drop(sql, params).await {
        Ok(()) => Ok(None),
        Err(mysql_async::Error::Server(e)) if !matches!(e.code, 1205 | 1213) => {
            Ok(Some(format!("MySQL refused the row: {} (error {})", e.message, e.code)))
        }
        Err(e) => Err(e),
    }
}

/// A connection that is reopened after a loss, a server restart, a
/// deadlock or a lock timeout, for the caller to try its work again.
struct SinkConnection {
    conn: Conn,
    config: MysqlSinkConfig,
    pipeline: String,
}

impl SinkConnection {
    async fn open(config: &MysqlSinkConfig, pipeline: &str) -> Result<Self, MysqlSinkError> {
        Ok(SinkConnection {
            conn: open(config).await?,
            config: config.clone(),
            pipeline: pipeline.to_owned(),
        })
    }

    fn get(&mut self) -> &mut Conn {
        &mut self.conn
    }

    /// After `error` on the `attempt`th try: waits and reconnects if trying
    /// again can help, else hands the error back.
    async fn recover(&mut self, error: MysqlSinkError, attempt: u32) -> Result<(), MysqlSinkError> {
        if !error.is_transient() || attempt > 60 {
            return Err(error);
        }
        tracing::warn!(pipeline = %self.pipeline, %error, attempt, "MySQL sink: reconnecting");
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Ok(conn) = open(&self.config).await {
            self.conn = conn;
        }
        Ok(())
    }
}

async fn open(config: &MysqlSinkConfig) -> Result<Conn, MysqlSinkError> {
    let mut conn = crate::mysql::connect(&config.url, config.tls.as_ref())
        .await
        .map_err(MysqlSinkError::Connect)?;
    // Refuse values that do not fit rather than store them altered.
    conn.query_drop("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'")
        .await?;
    Ok(conn)
}

fn unwritable(record: &Record, reason: String) -> Rejected {
    Rejected::unwritable(record.clone(), "sink:mysql", reason)
}

/// Whether an earlier transaction applied the record at `position`, or sent
/// it to the dead-letter queue: after a rebalance or a restart the consumer
/// may hand it over again, and it is skipped.
fn already_applied(applied: &Offsets, position: &Position) -> bool {
    match position {
        Position::Kafka { topic, partition, offset } => applied.get(&(topic.clone(), *partition)).is_some_and(|next| offset < next),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_below_its_partitions_stored_offset_was_applied() {
        let applied: Offsets = [(("t".to_owned(), 0), 10), (("t".to_owned(), 1), 3)].into();
        let at = |topic: &str, partition: i32, offset: i64| Position::Kafka {
            topic: topic.into(),
            partition,
            offset,
        };
        assert!(already_applied(&applied, &at("t", 0, 9)));
        assert!(
            !already_applied(&applied, &at("t", 0, 10)),
            "the stored offset is the next to apply"
        );
        assert!(!already_applied(&applied, &at("t", 1, 5)));
        assert!(
            !already_applied(&applied, &at("other", 0, 1)),
            "another topic's offsets do not count"
        );
        assert!(!already_applied(&applied, &at("t", 2, 0)), "a partition with no offset yet");
        assert!(!already_applied(&applied, &Position::Other("x".into())));
    }
}
