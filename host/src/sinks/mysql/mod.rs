//! The MySQL sink: records become multi-row upserts, inserts, updates and
//! deletes, applied in one transaction per batch together with the Kafka
//! offsets they came from (exactly-once effect). A record that cannot be
//! written (no such table, no primary key, a value that does not fit) is
//! handed back for the dead-letter queue; the rest of the batch goes on.
mod change;
mod conflict;
mod marker;
mod offsets;
mod plan;
mod target;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, IsolationLevel, Transaction, TxOpts, Value as Wire};
use serde::Deserialize;

use self::conflict::Judge;
use self::marker::MarkerTable;
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
use crate::telemetry::{PipelineTelemetry, State};

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
    /// Database of the `sluice_offsets` table, and of the `sluice_origin`
    /// marker table.
    #[serde(default = "default_offsets_database")]
    pub offsets_database: String,
    /// Which change wins when the target row was changed too (bidirectional
    /// sync): `source-wins`, `last-writer-wins` or `target-wins`.
    #[serde(default)]
    pub conflict: ConflictRule,
    /// The column `last-writer-wins` and `target-wins` compare: a DATETIME(6)
    /// or TIMESTAMP(6) the writers set, or a counter they raise.
    #[serde(default)]
    pub version_column: Option<String>,
    /// Send the changes that lose a conflict to the dead-letter queue (kind
    /// `conflict`); they are counted either way.
    #[serde(default)]
    pub dead_letter_conflicts: bool,
}

impl MysqlSinkConfig {
    /// The conflict settings agree with each other.
    pub fn check_conflict(&self) -> Result<(), String> {
        match (self.conflict, &self.version_column) {
            (ConflictRule::SourceWins, Some(column)) => Err(format!(
                "version_column = \"{column}\" is only compared by conflict = \"last-writer-wins\" or \"target-wins\": set one, or remove version_column"
            )),
            (ConflictRule::SourceWins, None) if self.dead_letter_conflicts => Err(
                "dead_letter_conflicts: with conflict = \"source-wins\" no change loses; set conflict, or remove dead_letter_conflicts"
                    .into(),
            ),
            (ConflictRule::LastWriterWins | ConflictRule::TargetWins, None) => Err(
                "conflict = \"last-writer-wins\" and \"target-wins\" compare a version column: set version_column (e.g. \"updated_at\")"
                    .into(),
            ),
            (_, Some(column)) if column.trim().is_empty() => Err("version_column is empty: name a column".into()),
            (ConflictRule::LastWriterWins | ConflictRule::TargetWins, Some(_)) if !self.accumulate.is_empty() => {
                Err("accumulate adds up every change of a key, and a conflict rule keeps one of them: use one or the other".into())
            }
            _ => Ok(()),
        }
    }
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictRule {
    /// Every change is applied as it comes.
    #[default]
    SourceWins,
    /// A change applies when its `version_column` is newer than the target
    /// row's (a delete: when the row is not newer than the one it deleted);
    /// on equal versions the site whose id sorts last wins.
    LastWriterWins,
    /// A change applies only to a row that is as the change found it at
    /// its source (same `version_column`); an insert only where the key is
    /// free.
    TargetWins,
}

impl ConflictRule {
    fn name(self) -> &'static str {
        match self {
            ConflictRule::SourceWins => "source-wins",
            ConflictRule::LastWriterWins => "last-writer-wins",
            ConflictRule::TargetWins => "target-wins",
        }
    }
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
    /// The transaction was chosen as a deadlock's victim (and rolled back).
    fn is_deadlock(&self) -> bool {
        matches!(self, MysqlSinkError::Mysql(mysql_async::Error::Server(e)) if e.code == 1213)
    }

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
    markers: MarkerTable,
    site: Option<String>,
}

/// What one batch did besides writing rows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Records the server or the plan refused, sent to the dead-letter queue.
    pub unwritable: usize,
    /// Changes that lost to the target's row under the conflict rule.
    pub conflicts: usize,
    /// Rows written.
    pub written: usize,
}

impl MysqlSink {
    /// A sink at `site` (the site it breaks ties for under last-writer-wins).
    pub async fn connect(config: &MysqlSinkConfig, pipeline: &str, site: Option<&str>) -> Result<Self, MysqlSinkError> {
        let mut conn = SinkConnection::open(config, pipeline).await?;
        let offsets = OffsetsTable::new(&config.offsets_database, pipeline);
        offsets.create(conn.get(), &config.offsets_database).await?;
        let markers = MarkerTable::new(&config.offsets_database, pipeline);
        markers.create(conn.get()).await?;
        Ok(MysqlSink {
            conn,
            config: config.clone(),
            offsets,
            markers,
            site: site.map(str::to_owned),
        })
    }

    /// Reports statements, rows, retries and reconnects, and dead letters
    /// through `telemetry`; while the sink retries, the pipeline's state
    /// says so.
    pub fn observed(mut self, telemetry: &PipelineTelemetry) -> Self {
        self.conn.telemetry = telemetry.clone();
        self
    }

    /// Whether the server still answers on the sink's connection.
    pub async fn ping(&mut self) -> Result<(), MysqlSinkError> {
        Ok(self.conn.get().ping().await?)
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
    /// again.
    pub async fn apply(
        &mut self,
        plan: &Plan,
        next_offsets: &Offsets,
        dead: &[Rejected],
        dead_letters: &DeadLetterQueue,
    ) -> Result<Applied, MysqlSinkError> {
        let mut attempt = 0;
        loop {
            match self.try_apply(plan, next_offsets, dead, dead_letters).await {
                Ok(applied) => {
                    if attempt > 0 {
                        self.conn.telemetry.set_state(State::Running, None);
                    }
                    return Ok(applied);
                }
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
    ) -> Result<Applied, MysqlSinkError> {
        let mut options = TxOpts::default();
        if self.config.conflict != ConflictRule::SourceWins {
            // The rows a conflict rule judges are locked; under REPEATABLE READ
            // the keys not there yet would lock the gaps around them too, and
            // an application inserting beside them would deadlock with the sink.
            options.with_isolation_level(IsolationLevel::ReadCommitted);
        }
        let mut tx = self.conn.conn.start_transaction(options).await?;
        let applied = self.offsets.lock(&mut tx).await?;
        let fresh = |record: &Record| !already_applied(&applied, &record.position);
        let mut rejected: Vec<Rejected> = plan.rejected.iter().filter(|r| fresh(&r.record)).cloned().collect();
        let mut conflicts = Vec::new();
        let mut written = 0;
        let mut marked: Option<&str> = None;
        for group in &plan.groups {
            let judge = self
                .config
                .version_column
                .as_deref()
                .filter(|_| self.config.conflict != ConflictRule::SourceWins);
            let judge = judge.map(|version| Judge {
                rule: self.config.conflict,
                version,
                site: self.site.as_deref(),
                origin: group.origin.as_deref(),
            });
            for chunk in chunks(group.rows.iter().filter(|p| fresh(&p.record)), &self.config) {
                let chunk = match &judge {
                    Some(judge) => {
                        let verdict = judge.judge(&mut tx, &group.table, chunk).await?;
                        rejected.extend(verdict.unwritable);
                        conflicts.extend(verdict.losers);
                        verdict.winners
                    }
                    None => chunk,
                };
                if chunk.is_empty() {
                    continue;
                }
                // The rows that follow were made at this origin (see marker.rs).
                if let Some(origin) = group.origin.as_deref()
                    && marked != Some(origin)
                {
                    self.markers.mark(&mut tx, origin).await?;
                    marked = Some(origin);
                }
                let refused = rejected.len();
                let statements = write_chunk(&mut tx, &self.config, &group.table, &chunk, &mut rejected).await?;
                let rows = chunk.len() - (rejected.len() - refused);
                written += rows;
                self.conn.telemetry.mysql_statements(statements, rows);
            }
        }
        self.offsets.store(&mut tx, next_offsets).await?;
        let outcome = Applied {
            unwritable: rejected.len(),
            conflicts: conflicts.len(),
            written,
        };
        if self.config.dead_letter_conflicts {
            rejected.extend(conflicts);
        }
        rejected.extend(dead.iter().filter(|r| fresh(&r.record)).cloned());
        if !rejected.is_empty() {
            dead_letters.send(&rejected).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }
}

/// A group's changes in runs of at most `batch_rows` rows and about
/// `batch_bytes` of values: one multi-row statement each.
fn chunks<'p>(rows: impl Iterator<Item = &'p Planned>, config: &MysqlSinkConfig) -> Vec<Vec<&'p Planned>> {
    let mut chunks = Vec::new();
    let mut chunk: Vec<&Planned> = Vec::new();
    let mut bytes = 0;
    for p in rows {
        bytes += p.change.size();
        chunk.push(p);
        if chunk.len() >= config.batch_rows || bytes >= config.batch_bytes {
            chunks.push(std::mem::take(&mut chunk));
            bytes = 0;
        }
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

/// One multi-row statement. One the server refuses has changed nothing
/// (InnoDB rolls back the failed statement alone, so no savepoint is
/// needed); its rows are retried one by one, and those still refused
/// are rejected. Returns the statements run.
async fn write_chunk(
    tx: &mut Transaction<'_>,
    config: &MysqlSinkConfig,
    target: &TargetTable,
    chunk: &[&Planned],
    rejected: &mut Vec<Rejected>,
) -> Result<usize, mysql_async::Error> {
    let (mode, accumulate) = (config.mode, &config.accumulate);
    let sql = chunk[0].change.statement(target, mode, accumulate, chunk.len());
    let params: Vec<Wire> = chunk.iter().flat_map(|p| p.change.params(target, mode)).collect();
    let Some(reason) = run(tx, sql, params).await? else { return Ok(1) };
    if let [one] = chunk {
        rejected.push(unwritable(&one.record, reason));
        return Ok(1);
    }
    for p in chunk {
        let sql = p.change.statement(target, mode, accumulate, 1);
        if let Some(reason) = run(tx, sql, p.change.params(target, mode)).await? {
            rejected.push(unwritable(&p.record, reason));
        }
    }
    Ok(1 + chunk.len())
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
    telemetry: PipelineTelemetry,
}

impl SinkConnection {
    async fn open(config: &MysqlSinkConfig, pipeline: &str) -> Result<Self, MysqlSinkError> {
        Ok(SinkConnection {
            conn: open(config).await?,
            config: config.clone(),
            pipeline: pipeline.to_owned(),
            telemetry: PipelineTelemetry::detached(pipeline),
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
        if error.is_deadlock() && attempt <= 3 {
            // The server rolled the transaction back; the connection is fine.
            tracing::debug!(pipeline = %self.pipeline, %error, attempt, "MySQL sink: trying again");
            self.telemetry.mysql_retry(false);
            return Ok(());
        }
        tracing::warn!(pipeline = %self.pipeline, %error, attempt, "MySQL sink: reconnecting");
        self.telemetry
            .set_state(State::Retrying, Some(format!("MySQL sink: {error} (attempt {attempt})")));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let reopened = open(&self.config).await;
        self.telemetry.mysql_retry(reopened.is_ok());
        if let Ok(conn) = reopened {
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
    fn conflict_settings_that_contradict_each_other_are_refused() {
        let config = |extra: &str| -> MysqlSinkConfig { toml::from_str(&format!("url = \"mysql://u@h/\"\n{extra}")).unwrap() };
        let refused = [
            ("conflict = \"last-writer-wins\"", "set version_column"),
            ("conflict = \"target-wins\"", "set version_column"),
            ("version_column = \"v\"", "only compared by"),
            ("dead_letter_conflicts = true", "no change loses"),
            ("conflict = \"last-writer-wins\"\nversion_column = \" \"", "version_column is empty"),
            (
                "conflict = \"target-wins\"\nversion_column = \"v\"\naccumulate = [\"n\"]",
                "use one or the other",
            ),
        ];
        for (extra, expected) in refused {
            let e = config(extra).check_conflict().expect_err(extra);
            assert!(e.contains(expected), "{extra}: {e}");
        }
        assert!(config("").check_conflict().is_ok());
        assert!(
            config("conflict = \"last-writer-wins\"\nversion_column = \"updated_at\"")
                .check_conflict()
                .is_ok()
        );
        assert!(toml::from_str::<MysqlSinkConfig>("url = \"u\"\nconflict = \"newest\"").is_err());
    }

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
