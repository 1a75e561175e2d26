//! `sluice verify`: whether two MySQL servers hold the same rows. Each table
//! is compared in key chunks by checksums each server computes (as
//! pt-table-checksum does), a differing chunk is narrowed to its keys, and
//! every differing key is looked at again after a pause, so a change still
//! on its way is not reported as a difference.
mod checksum;
mod pairing;
mod reemit;
mod report;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};

use self::checksum::{HashedRow, Range, TableSql};
pub use self::pairing::{PairingError, PipelineSource, TablePair};
pub use self::reemit::{ReemitError, reemit};
pub use self::report::{KeyDiff, TableReport, human};
use crate::mysql::MysqlError;
use crate::mysql::catalog::{ColumnInfo, table_info};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Mysql(#[from] MysqlError),
    #[error("{table}: {message}")]
    Table { table: String, message: String },
}

impl From<mysql_async::Error> for VerifyError {
    fn from(error: mysql_async::Error) -> Self {
        VerifyError::Mysql(MysqlError::Query(error))
    }
}

/// How a comparison runs.
#[derive(Debug, Clone, Copy)]
pub struct VerifySettings {
    /// Rows per checksum chunk.
    pub chunk_rows: usize,
    /// How long a differing key is given before it is looked at again.
    pub recheck: Duration,
}

/// Compares `database.table` on `source` and `target`.
pub async fn verify_table(
    source: &mut Conn,
    target: &mut Conn,
    database: &str,
    table: &str,
    settings: VerifySettings,
) -> Result<TableReport, VerifyError> {
    let compared = table_sql(source, target, database, table).await?;
    let sql = compared.sql;
    let mut report = TableReport::new(&sql.name, &sql.key, compared.not_compared);
    report.types_differ = compared.types_differ;
    if sql.key.is_empty() {
        let mut sums = tokio::try_join!(sql.table_checksum(source), sql.table_checksum(target))?;
        if sums.0 != sums.1 {
            // Perhaps a change on its way: looked at again once.
            tokio::time::sleep(settings.recheck).await;
            sums = tokio::try_join!(sql.table_checksum(source), sql.table_checksum(target))?;
        }
        report.rows = sums.0.0;
        report.whole_table_differs = Some(sums.0 != sums.1);
        return Ok(report);
    }
    let mut suspects: Vec<Suspect> = Vec::new();
    let mut after: Option<Vec<Value>> = None;
    let mut progress = Progress::new(source, database, table).await?;
    let mut chunk_rows = settings.chunk_rows;
    // Chunk ends are found on a connection of their own: the next chunk's
    // while both servers hash this one.
    let mut ends = Conn::new(source.opts().clone()).await?;
    let zone: Option<String> = source.query_first("SELECT @@session.time_zone").await?;
    ends.exec_drop("SET time_zone = ?", (zone.unwrap_or_else(|| "SYSTEM".into()),))
        .await?;
    let mut through = sql.chunk_end(&mut ends, None, chunk_rows).await?;
    loop {
        let started = Instant::now();
        let range = Range {
            after: after.as_deref(),
            through: through.as_deref(),
        };
        let next_end = async {
            match &through {
                Some(end) => sql.chunk_end(&mut ends, Some(end), chunk_rows).await.map(Some),
                None => Ok(None),
            }
        };
        // Both servers work at once: a chunk takes as long as the slower.
        let hashed = async { tokio::try_join!(sql.chunk_checksum(source, &range), sql.chunk_checksum(target, &range)) };
        let ((on_source, on_target), next_end) = tokio::try_join!(hashed, next_end)?;
        report.rows += on_source.0;
        if on_source != on_target {
            report.chunks_differing += 1;
            let (source_rows, target_rows) = tokio::try_join!(sql.row_hashes(source, &range), sql.row_hashes(target, &range))?;
            suspects.extend(differing_keys(source_rows, target_rows));
        }
        report.chunks += 1;
        progress.chunk_done(&sql.name, report.rows);
        chunk_rows = next_chunk_rows(chunk_rows, settings.chunk_rows, started.elapsed());
        match through.take() {
            Some(end) => {
                after = Some(end);
                through = next_end.flatten();
            }
            None => break,
        }
    }
    let _ = ends.disconnect().await;
    if !suspects.is_empty() {
        tokio::time::sleep(settings.recheck).await;
    }
    // Looked at again in batches of keys, both servers at once.
    let started = Instant::now();
    let mut said = started;
    for (done, batch) in suspects.chunks(RECHECK_KEYS).enumerate() {
        let keys: Vec<&[Value]> = batch.iter().map(|s| s.key.as_slice()).collect();
        let (on_source, on_target) = tokio::try_join!(sql.rows_of(source, &keys), sql.rows_of(target, &keys))?;
        let now = |rows: Vec<HashedRow>| -> BTreeMap<String, String> { rows.into_iter().map(|r| (r.matched, r.hash)).collect() };
        let (mut now_source, mut now_target) = (now(on_source), now(on_target));
        for suspect in batch {
            let (source_hash, target_hash) = (now_source.remove(&suspect.matched), now_target.remove(&suspect.matched));
            if source_hash == target_hash {
                continue; // a change on its way when first seen
            }
            let diff = KeyDiff::new(&sql.key, &suspect.key);
            if (&source_hash, &target_hash) != (&suspect.source, &suspect.target) {
                report.undecided.push(diff);
            } else {
                match (source_hash, target_hash) {
                    (Some(_), None) => report.missing.push(diff),
                    (None, Some(_)) => report.extra.push(diff),
                    _ => report.different.push(diff),
                }
            }
        }
        if said.elapsed() >= PROGRESS_EVERY {
            said = Instant::now();
            let looked = ((done + 1) * RECHECK_KEYS).min(suspects.len());
            tracing::info!(
                "verify: {}: {looked} of {} differing keys looked at again, {:.0} s so far",
                sql.name,
                suspects.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(report)
}

/// The rows of the next chunk: a chunk that was quick to compare doubles,
/// one that was slow halves (never below `first`), so that the time goes
/// to the servers' hashing rather than to a round trip per few rows.
fn next_chunk_rows(rows: usize, first: usize, took: Duration) -> usize {
    const QUICK: Duration = Duration::from_millis(25);
    const SLOW: Duration = Duration::from_millis(400);
    const MOST: usize = 100_000;
    if took < QUICK {
        (rows * 2).min(MOST.max(first))
    } else if took > SLOW {
        (rows / 2).max(first)
    } else {
        rows
    }
}

/// How far the comparison of a large table got, said every few seconds.
struct Progress {
    estimated_rows: u64,
    started: Instant,
    said: Instant,
}

/// How often a long comparison says how far it got.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    async fn new(source: &mut Conn, database: &str, table: &str) -> Result<Self, VerifyError> {
        let estimated: Option<Option<u64>> = source
            .exec_first(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (database, table),
            )
            .await?;
        let now = Instant::now();
        Ok(Progress {
            estimated_rows: estimated.flatten().unwrap_or(0),
            started: now,
            said: now,
        })
    }

    fn chunk_done(&mut self, table: &str, rows: u64) {
        if self.said.elapsed() < PROGRESS_EVERY {
            return;
        }
        self.said = Instant::now();
        let rate = rows as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        match self.estimated_rows.checked_sub(rows).filter(|_| rows > 0) {
            Some(left) => tracing::info!(
                "verify: {table}: {rows} rows compared of about {}, {:.0}%, about {:.0} s to go",
                self.estimated_rows,
                100.0 * rows as f64 / self.estimated_rows as f64,
                left as f64 / rate
            ),
            None => tracing::info!("verify: {table}: {rows} rows compared, {:.0} rows/s", rate),
        }
    }
}

/// The one statement that checksums all of `database.table` as the
/// comparison's chunks do together (each row hashed the same way): the
/// bare scan a comparison's time is measured against.
pub async fn one_scan_checksum_sql(source: &mut Conn, target: &mut Conn, database: &str, table: &str) -> Result<String, VerifyError> {
    Ok(table_sql(source, target, database, table).await?.sql.one_scan_sql())
}

/// Makes the target's rows of `report`'s keys what the source holds:
/// missing and differing rows written from the source, extra ones deleted.
/// Undecided keys are left alone. Returns the rows changed.
pub async fn repair(source: &mut Conn, target: &mut Conn, report: &TableReport) -> Result<usize, VerifyError> {
    let (database, table) = report.table.split_once('.').expect("db.table");
    let sql = table_sql(source, target, database, table).await?.sql;
    let mut changed = 0;
    for diff in report.missing.iter().chain(&report.different).chain(&report.extra) {
        match sql.row(source, &diff.key).await? {
            Some(row) => sql.upsert(target, row).await?,
            None => sql.delete(target, &diff.key).await?,
        }
        changed += 1;
    }
    Ok(changed)
}

/// A table as the two servers declare it.
struct Compared {
    /// Its key (the source's; the target's must be the same) and the
    /// columns both servers have.
    sql: TableSql,
    /// Columns only one server has: not compared, but said.
    not_compared: Vec<String>,
    /// Columns both have, declared differently.
    types_differ: Vec<String>,
}

async fn table_sql(source: &mut Conn, target: &mut Conn, database: &str, table: &str) -> Result<Compared, VerifyError> {
    let problem = |message: String| VerifyError::Table {
        table: format!("{database}.{table}"),
        message,
    };
    let (on_source, on_target) = (
        table_info(source, database, table).await?,
        table_info(target, database, table).await?,
    );
    if on_source.columns.is_empty() || on_target.columns.is_empty() {
        let side = if on_source.columns.is_empty() { "source" } else { "target" };
        return Err(problem(format!("no such table on the {side}")));
    }
    if on_source.key != on_target.key {
        return Err(problem(format!(
            "the primary keys differ: ({}) on the source, ({}) on the target",
            on_source.key.join(", "),
            on_target.key.join(", ")
        )));
    }
    let only_on = |side: &str, columns: &[ColumnInfo], other: &[ColumnInfo]| -> Vec<String> {
        columns
            .iter()
            .filter(|c| !other.iter().any(|o| o.name == c.name))
            .map(|c| format!("{} (only on the {side})", c.name))
            .collect()
    };
    let mut not_compared = only_on("source", &on_source.columns, &on_target.columns);
    not_compared.extend(only_on("target", &on_target.columns, &on_source.columns));
    let mut types_differ = Vec::new();
    let mut common = Vec::new();
    for column in on_source.columns {
        if let Some(theirs) = on_target.columns.iter().find(|t| t.name == column.name) {
            if !theirs.column_type.eq_ignore_ascii_case(&column.column_type) {
                types_differ.push(format!(
                    "{} is {} on the source, {} on the target",
                    column.name, column.column_type, theirs.column_type
                ));
            }
            common.push(column);
        }
    }
    Ok(Compared {
        sql: TableSql::new(database, table, on_source.key, &common),
        not_compared,
        types_differ,
    })
}

/// Keys looked at again per statement.
const RECHECK_KEYS: usize = 500;

/// A key whose rows differ: as its collations compare it, as its values,
/// and the source's and the target's row hash (None: no row there).
struct Suspect {
    matched: String,
    key: Vec<Value>,
    source: Option<String>,
    target: Option<String>,
}

/// The keys whose rows differ between two key-ordered lists of rows,
/// matched as the key's collations compare them.
fn differing_keys(source: Vec<HashedRow>, target: Vec<HashedRow>) -> Vec<Suspect> {
    let mut by_key: BTreeMap<String, Suspect> = BTreeMap::new();
    for row in source.into_iter().map(|r| (r, true)).chain(target.into_iter().map(|r| (r, false))) {
        let (row, on_source) = row;
        let suspect = by_key.entry(row.matched.clone()).or_insert_with(|| Suspect {
            matched: row.matched,
            key: row.key,
            source: None,
            target: None,
        });
        *(if on_source { &mut suspect.source } else { &mut suspect.target }) = Some(row.hash);
    }
    by_key.into_values().filter(|s| s.source != s.target).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_grow_while_quick_and_shrink_when_slow_within_bounds() {
        let ms = Duration::from_millis;
        assert_eq!(next_chunk_rows(1000, 1000, ms(5)), 2000);
        assert_eq!(next_chunk_rows(1000, 1000, ms(100)), 1000);
        assert_eq!(next_chunk_rows(8000, 1000, ms(900)), 4000);
        assert_eq!(next_chunk_rows(1000, 1000, ms(900)), 1000, "never below the first size");
        assert_eq!(next_chunk_rows(80_000, 1000, ms(1)), 100_000, "at most 100,000 rows");
        assert_eq!(next_chunk_rows(200_000, 200_000, ms(1)), 200_000, "unless asked for more");
    }

    #[test]
    fn keys_differ_when_missing_extra_or_changed_and_not_otherwise() {
        let row = |k: i64, h: &str| HashedRow {
            key: vec![Value::Int(k)],
            matched: k.to_string(),
            hash: h.to_owned(),
        };
        let source = vec![row(1, "a"), row(2, "b"), row(3, "c")];
        let target = vec![row(1, "a"), row(3, "x"), row(4, "d")];
        let found: Vec<(i64, Option<String>, Option<String>)> = differing_keys(source, target)
            .into_iter()
            .map(|s| (mysql_async::from_value(s.key[0].clone()), s.source, s.target))
            .collect();
        assert_eq!(
            found,
            [
                (2, Some("b".into()), None),
                (3, Some("c".into()), Some("x".into())),
                (4, None, Some("d".into()))
            ]
        );
    }
}
