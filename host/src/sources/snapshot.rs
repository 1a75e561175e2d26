//! The initial snapshot: every captured table read inside one consistent
//! read-only transaction, in primary-key chunks (no locks held, bounded
//! memory), with its hand-over binlog position. Progress is stored per chunk,
//! so a restart resumes after the last delivered key of the table it was in.
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};

use super::SourceError;
use super::keyset::Keyset;
use crate::mysql::catalog::{TableInfo, captured_tables, quote};
use crate::mysql::flavor::ServerFlavor;
use crate::mysql::query_rows::{DecodedRow, QueryShape, key_position, values};
use crate::mysql::{BinlogCheckpoint, TableFilter};
use crate::record::{Position, Record, Value};
use crate::telemetry::{PipelineTelemetry, TableProgress};

/// How often progress is logged while a table is read.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// Batches read by one chunk query: MariaDB spent about as much CPU per
/// 500-row query as per 1,000 rows of a bigger one.
const QUERY_BATCHES: usize = 4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotProgress {
    /// Where the binlog stream takes over once every table is read.
    pub handover: BinlogCheckpoint,
    /// Tables (`db.table`) fully delivered.
    pub completed: Vec<String>,
    /// The table being read and the last key delivered from it.
    pub cursor: Option<TableCursor>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableCursor {
    pub table: String,
    /// The last delivered row's key, in the exact forms the keyset cursor
    /// compares (see `sources::keyset`).
    pub after: Vec<Value>,
    /// False for a cursor of decoded values, as earlier versions stored it,
    /// which does not compare back exactly: its table is read again whole.
    #[serde(default)]
    pub exact: bool,
}

/// Rows of a table read, those that could not be decoded (with why), and
/// the progress to store once they are delivered.
pub struct SnapshotChunk {
    pub records: Vec<Record>,
    pub undecodable: Vec<(Record, String)>,
    pub progress: Option<SnapshotProgress>,
}

struct TableScan {
    info: TableInfo,
    shape: Option<QueryShape>,
    /// How the table pages by its primary key (empty without one).
    keyset: Keyset,
    /// Cursor of the last row read (tables with a primary key) …
    after: Option<Vec<Value>>,
    /// … or rows read so far (tables without one, paged by offset).
    read: u64,
    /// Rows read and not yet handed out, each with its cursor, and whether
    /// the table has no more.
    buffered: VecDeque<(DecodedRow, Vec<Value>)>,
    exhausted: bool,
    started: Instant,
    logged: Instant,
    progress: Option<Arc<TableProgress>>,
    /// The smallest and largest key of a table keyed by one integer column,
    /// to refine the server's row estimate by the share of keys read.
    key_range: Option<(f64, f64)>,
}

impl TableScan {
    /// Rows handed out so far.
    fn delivered(&self) -> u64 {
        self.read - self.buffered.len() as u64
    }

    /// The table's rows as best known now: the server's estimate, until a
    /// tenth of an integer key's range is read; then the rows read so far
    /// over the share of the range they cover.
    fn estimated_rows(&self) -> u64 {
        let delivered = self.delivered();
        let server = self.info.estimated_rows.max(delivered);
        let (Some((min, max)), Some(after)) = (self.key_range, self.after.as_ref()) else {
            return server;
        };
        let last = match after.first() {
            Some(Value::Int(i)) => *i as f64,
            Some(Value::Uint(u)) => *u as f64,
            _ => return server,
        };
        let share = if max > min { (last - min + 1.0) / (max - min + 1.0) } else { 1.0 };
        if share < 0.1 || self.read == 0 {
            return server;
        }
        // Rows read but still buffered are part of the share.
        ((self.read as f64 / share.min(1.0)) as u64).max(delivered)
    }
}

pub struct SnapshotReader {
    conn: Conn,
    /// The binlog position of this read's own view: a resumed snapshot reads
    /// a newer view than the one it resumes, and its rows' dedup ids say so.
    view: BinlogCheckpoint,
    progress: SnapshotProgress,
    pending: VecDeque<TableInfo>,
    scan: Option<TableScan>,
    ts_ms: i64,
    telemetry: Option<PipelineTelemetry>,
}

impl SnapshotReader {
    /// Opens the snapshot transaction on `conn`. With `resume`, tables already
    /// delivered are skipped, and the hand-over position stays the original
    /// one: changes since then replay from the binlog, so a row read again at
    /// a newer state converges to the same final state.
    pub async fn open(
        mut conn: Conn,
        flavor: ServerFlavor,
        filter: &TableFilter,
        resume: Option<SnapshotProgress>,
        pipeline: &str,
    ) -> Result<Self, SourceError> {
        conn.query_drop("SET SESSION time_zone = '+00:00'").await?;
        let view = flavor.begin_snapshot(&mut conn).await?;
        let progress = resume.unwrap_or_else(|| SnapshotProgress {
            handover: view.clone(),
            completed: Vec::new(),
            cursor: None,
        });
        let tables = captured_tables(&mut conn, filter).await?;
        let total: u64 = tables.iter().map(|t| t.estimated_rows).sum();
        let pending: VecDeque<TableInfo> = tables
            .into_iter()
            .filter(|t| !progress.completed.contains(&t.qualified()))
            .collect();
        tracing::info!(
            pipeline,
            tables = pending.len(),
            estimated_rows = total,
            handover = %format!("{}:{}", progress.handover.file, progress.handover.pos),
            "snapshot started"
        );
        Ok(SnapshotReader {
            conn,
            view,
            progress,
            pending,
            scan: None,
            ts_ms: chrono::Utc::now().timestamp_millis(),
            telemetry: None,
        })
    }

    /// Reports each table's progress (rows read, estimated rows) from the
    /// next table on; progress lines are then left to the one displaying it.
    pub fn observe(&mut self, telemetry: &PipelineTelemetry) {
        self.telemetry = Some(telemetry.clone());
    }

    pub fn handover(&self) -> &BinlogCheckpoint {
        &self.progress.handover
    }

    /// Up to `max` rows of the current table and the progress once they are
    /// delivered; None when every table has been read.
    ///
    /// A row's dedup id is `snapshot:<view>:<key>`, the view being the binlog
    /// position of the read that returned it: one id names one content. A
    /// resumed snapshot reads a newer view, so a row it reads again (the
    /// rows after the last stored cursor) gets a new id; of two ids for one
    /// key, the one with the later view holds the newer content.
    pub async fn next_chunk(&mut self, max: usize) -> Result<Option<SnapshotChunk>, SourceError> {
        loop {
            if self.scan.is_none() {
                let Some(info) = self.pending.pop_front() else { return Ok(None) };
                let mut scan = self.start_table(info);
                if self.telemetry.is_some() {
                    scan.key_range = integer_key_range(&mut self.conn, &scan.info).await?;
                }
                self.scan = Some(scan);
            }
            let scan = self.scan.as_mut().expect("a table scan");
            if scan.buffered.is_empty() && !scan.exhausted {
                read_chunk(&mut self.conn, scan, max * QUERY_BATCHES).await?;
            }
            let take = max.min(scan.buffered.len());
            let first = scan.delivered();
            let (rows, cursors): (Vec<_>, Vec<_>) = scan.buffered.drain(..take).unzip();
            let mut chunk = SnapshotChunk {
                records: Vec::with_capacity(rows.len()),
                undecodable: Vec::new(),
                progress: None,
            };
            let mut last_key = None;
            if let Some(shape) = &scan.shape {
                let prefix = format!("snapshot:{}:{}:", self.view.file, self.view.pos);
                let key = shape.indexes(&scan.info.key);
                if !scan.keyset.is_empty() {
                    last_key = cursors.last().cloned();
                }
                for (n, row) in rows.into_iter().enumerate() {
                    let position = if key.is_empty() {
                        Position::Other(format!("{prefix}#{}", first + n as u64))
                    } else {
                        key_position(&prefix, values(&row), &key)
                    };
                    match row {
                        Ok(values) => chunk.records.push(Record::read(position, self.ts_ms, shape.schema.clone(), values)),
                        Err((values, reason)) => {
                            chunk
                                .undecodable
                                .push((Record::read(position, self.ts_ms, shape.schema.clone(), values), reason));
                        }
                    }
                }
            }
            let done = scan.exhausted && scan.buffered.is_empty();
            match &scan.progress {
                Some(progress) if done => progress.finish(scan.delivered()),
                Some(progress) => progress.update(scan.delivered(), scan.estimated_rows()),
                None if done || scan.logged.elapsed() >= PROGRESS_EVERY => log_progress(scan, done),
                None => {}
            }
            chunk.progress = if done {
                self.progress.completed.push(scan.info.qualified());
                self.progress.cursor = None;
                self.scan = None;
                Some(self.progress.clone())
            } else if let Some(after) = last_key {
                self.progress.cursor = Some(TableCursor {
                    table: scan.info.qualified(),
                    after,
                    exact: true,
                });
                Some(self.progress.clone())
            } else {
                // Offsets mean nothing in another snapshot: a keyless table
                // is stored only once complete.
                None
            };
            if !chunk.records.is_empty() || !chunk.undecodable.is_empty() || chunk.progress.is_some() {
                return Ok(Some(chunk));
            }
        }
    }

    fn start_table(&self, info: TableInfo) -> TableScan {
        let after = match &self.progress.cursor {
            Some(cursor) if cursor.table == info.qualified() && !info.key.is_empty() && cursor.exact => Some(cursor.after.clone()),
            Some(cursor) if cursor.table == info.qualified() => {
                tracing::info!(table = %cursor.table, "the stored snapshot cursor is of an older form: the table is read again from its first row");
                None
            }
            _ => None,
        };
        if info.key.is_empty() {
            tracing::warn!(table = %info.qualified(), "no primary key: read by offset, and restarted from its first row after a crash");
        }
        let now = Instant::now();
        let progress = self
            .telemetry
            .as_ref()
            .map(|t| t.snapshot_table(&info.qualified(), info.estimated_rows));
        TableScan {
            progress,
            key_range: None,
            keyset: Keyset::new(&info.key, &info.columns),
            info,
            shape: None,
            after,
            read: 0,
            buffered: VecDeque::new(),
            exhausted: false,
            started: now,
            logged: now,
        }
    }
}

/// Reads the next `max` rows of the table into the scan's buffer: every
/// column, invisible ones too, then the key's exact forms for the cursor.
async fn read_chunk(conn: &mut Conn, scan: &mut TableScan, max: usize) -> Result<(), SourceError> {
    let table = scan.info.sql_name();
    let columns = scan.info.columns.iter().map(|c| quote(&c.name)).collect::<Vec<_>>().join(", ");
    let select = format!("SELECT {columns}{} FROM {table}", scan.keyset.select());
    let order = scan.keyset.order_by();
    let (sql, params) = match (&scan.after, scan.keyset.is_empty()) {
        (_, true) => (format!("{select} LIMIT {max} OFFSET {}", scan.read), Vec::new()),
        (None, false) => (format!("{select} ORDER BY {order} LIMIT {max}"), Vec::new()),
        (Some(after), false) => {
            let (condition, params) = scan.keyset.after(after);
            (format!("{select} WHERE {condition} ORDER BY {order} LIMIT {max}"), params)
        }
    };
    let mut result = conn.exec_iter(sql, params).await?;
    let width = scan.info.columns.len();
    if scan.shape.is_none() {
        scan.shape = result.columns().map(|columns| QueryShape::new(&scan.info, &columns[..width]));
    }
    let shape = scan.shape.as_ref();
    let before = scan.buffered.len();
    while let Some(row) = result.next().await? {
        let mut values = row.unwrap();
        let cursor = Keyset::cursor(values.split_off(width));
        scan.buffered
            .push_back((shape.expect("columns come before rows").decode(values), cursor));
    }
    let read = scan.buffered.len() - before;
    scan.read += read as u64;
    scan.exhausted = read < max;
    if let Some((_, cursor)) = scan.buffered.back().filter(|_| !scan.keyset.is_empty()) {
        scan.after = Some(cursor.clone());
    }
    Ok(())
}

/// The smallest and largest key, as seen by the snapshot's own view, of a
/// table keyed by one integer column.
async fn integer_key_range(conn: &mut Conn, info: &TableInfo) -> Result<Option<(f64, f64)>, SourceError> {
    const INTEGERS: [&str; 5] = ["tinyint", "smallint", "mediumint", "int", "bigint"];
    let [key] = info.key.as_slice() else { return Ok(None) };
    let integer = info
        .columns
        .iter()
        .any(|c| &c.name == key && INTEGERS.contains(&c.data_type.as_str()));
    if !integer {
        return Ok(None);
    }
    let sql = format!("SELECT MIN({k}), MAX({k}) FROM {}", info.sql_name(), k = quote(key));
    let range: Option<(Option<String>, Option<String>)> = conn.query_first(sql).await?;
    Ok(match range {
        Some((Some(min), Some(max))) => min.parse().ok().zip(max.parse().ok()),
        _ => None,
    })
}

fn log_progress(scan: &mut TableScan, done: bool) {
    let secs = scan.started.elapsed().as_secs_f64().max(0.001);
    let delivered = scan.delivered();
    let estimated = scan.info.estimated_rows.max(delivered);
    tracing::info!(
        table = %scan.info.qualified(),
        rows = delivered,
        estimated,
        percent = %format!("{:.0}", 100.0 * delivered as f64 / estimated.max(1) as f64),
        rows_per_sec = %format!("{:.0}", delivered as f64 / secs),
        "{}",
        if done { "snapshot table done" } else { "snapshot progress" }
    );
    scan.logged = Instant::now();
}
