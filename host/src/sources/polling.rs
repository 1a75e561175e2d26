//! Timestamp/incrementing-column polling for servers without binlog access:
//! each interval, the rows of each table past its high-water mark, in
//! (timestamp, tie-breaker) order. The tie-breaker (the id column, else the
//! primary key) makes rows sharing one timestamp page correctly and rows
//! added later at an already-read timestamp still count as new; rows younger
//! than `delay_ms` wait a poll, since a transaction still open may yet
//! commit rows with earlier timestamps.
use std::collections::BTreeMap;
use std::time::Duration;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::catalog::{self, TableInfo, quote, table_info};
use super::query_rows::{QueryShape, key_position, keyset_after, pick};
use super::{MysqlTls, SourceBatch, SourceError, SourcePosition};
use crate::pipeline::Secret;
use crate::record::{Record, Value};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollingSourceConfig {
    pub url: Secret,
    /// TLS files (a private CA, a client certificate); giving them turns TLS on.
    #[serde(default)]
    pub tls: Option<MysqlTls>,
    pub tables: Vec<PolledTable>,
    /// Pause between polls once every table is caught up.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Rows whose timestamp is younger than this are left for a later poll.
    #[serde(default = "default_delay_ms")]
    pub delay_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolledTable {
    /// `database.table`.
    pub table: String,
    /// A column set on insert and update (TIMESTAMP or DATETIME, UTC).
    pub timestamp: Option<String>,
    /// A strictly increasing column (AUTO_INCREMENT); alone it sees inserts only.
    pub id: Option<String>,
}

fn default_interval_ms() -> u64 {
    1000
}

fn default_delay_ms() -> u64 {
    1000
}

/// The last delivered row of each table, as its ordering key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PollingMarks {
    pub tables: BTreeMap<String, Vec<Value>>,
}

struct PolledShape {
    info: TableInfo,
    /// Columns the rows are ordered and paged by.
    order: Vec<String>,
    uses_timestamp: bool,
    shape: Option<QueryShape>,
}

pub struct PollingSource {
    conn: Conn,
    tables: Vec<PolledShape>,
    marks: PollingMarks,
    interval: Duration,
    delay_micros: u64,
    next_poll: Instant,
}

impl PollingSource {
    pub async fn connect(config: &PollingSourceConfig, stored: Option<SourcePosition>) -> Result<Self, SourceError> {
        let marks = match stored {
            None => PollingMarks::default(),
            Some(SourcePosition::Polling(marks)) => marks,
            Some(_) => {
                return Err(SourceError::ServerSetup(
                    "the stored position belongs to a binlog source; delete the pipeline's position file to start over".into(),
                ));
            }
        };
        let mut conn = super::connect(&config.url, config.tls.as_ref()).await?;
        conn.query_drop("SET SESSION time_zone = '+00:00'").await?;
        let mut tables = Vec::new();
        for polled in &config.tables {
            tables.push(check_table(&mut conn, polled).await?);
        }
        Ok(PollingSource {
            conn,
            tables,
            marks,
            interval: Duration::from_millis(config.interval_ms),
            delay_micros: config.delay_ms * 1000,
            next_poll: Instant::now(),
        })
    }

    /// Rows past the marks, up to about `max`; between polls, waits at most
    /// `wait` and returns nothing.
    pub async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<SourceBatch, SourceError> {
        let now = Instant::now();
        if now < self.next_poll {
            tokio::time::sleep_until(self.next_poll.min(now + wait)).await;
            return Ok(SourceBatch::empty());
        }
        let mut records = Vec::new();
        let mut behind = false;
        for table in &mut self.tables {
            let room = max.saturating_sub(records.len());
            if room == 0 {
                behind = true;
                break;
            }
            let mark = self.marks.tables.get(&table.info.qualified());
            let rows = poll_table(&mut self.conn, table, mark, room, self.delay_micros).await?;
            behind |= rows.len() == room;
            let ts_ms = chrono::Utc::now().timestamp_millis();
            let Some(shape) = &table.shape else { continue };
            let name = table.info.qualified();
            let (prefix, order) = (format!("poll:{name}:"), shape.indexes(&table.order));
            if let Some(last) = rows.last() {
                self.marks.tables.insert(name, pick(last, &order));
            }
            for row in rows {
                records.push(Record::read(key_position(&prefix, &row, &order), ts_ms, shape.schema.clone(), row));
            }
        }
        // Caught up: rest until the next interval; behind: go straight on.
        self.next_poll = if behind { Instant::now() } else { Instant::now() + self.interval };
        let checkpoint = (!records.is_empty()).then(|| SourcePosition::Polling(self.marks.clone()));
        Ok(SourceBatch { records, checkpoint, finished: false })
    }
}

async fn check_table(conn: &mut Conn, polled: &PolledTable) -> Result<PolledShape, SourceError> {
    let setup = |message: String| SourceError::ServerSetup(format!("source.tables `{}`: {message}", polled.table));
    let Some((database, table)) = polled.table.split_once('.') else {
        return Err(setup("name the table as database.table".into()));
    };
    let info = table_info(conn, database, table).await?;
    let columns: Vec<String> = catalog::columns(conn, database, table).await?.into_iter().map(|c| c.name).collect();
    if columns.is_empty() {
        return Err(setup("no such table on the server (or this user cannot see it); fix the name or create it".into()));
    }
    for (role, column) in [("timestamp", &polled.timestamp), ("id", &polled.id)] {
        if let Some(column) = column
            && !columns.contains(column)
        {
            return Err(setup(format!("{role} column `{column}` does not exist; the table has {}", columns.join(", "))));
        }
    }
    let order = match (&polled.timestamp, &polled.id) {
        (Some(ts), Some(id)) => vec![ts.clone(), id.clone()],
        (Some(ts), None) if !info.key.is_empty() => std::iter::once(ts.clone()).chain(info.key.iter().cloned()).collect(),
        (Some(_), None) => return Err(setup("a timestamp column needs an `id` column or a primary key to break ties".into())),
        (None, Some(id)) => vec![id.clone()],
        (None, None) => return Err(setup("set `timestamp`, `id` or both".into())),
    };
    Ok(PolledShape { info, order, uses_timestamp: polled.timestamp.is_some(), shape: None })
}

async fn poll_table(
    conn: &mut Conn,
    table: &mut PolledShape,
    mark: Option<&Vec<Value>>,
    max: usize,
    delay_micros: u64,
) -> Result<Vec<Vec<Value>>, SourceError> {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    if let Some(mark) = mark {
        let (condition, values) = keyset_after(&table.order, mark);
        conditions.push(format!("({condition})"));
        params.extend(values);
    }
    if table.uses_timestamp {
        conditions.push(format!("{} < NOW(6) - INTERVAL {delay_micros} MICROSECOND", quote(&table.order[0])));
    }
    let filter = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
    let order: Vec<String> = table.order.iter().map(|c| quote(c)).collect();
    let sql = format!("SELECT * FROM {} {filter} ORDER BY {} LIMIT {max}", table.info.sql_name(), order.join(", "));
    let mut result = conn.exec_iter(sql, params).await?;
    if table.shape.is_none() {
        table.shape = result.columns().map(|columns| QueryShape::new(&table.info, &columns));
    }
    let mut rows = Vec::new();
    while let Some(row) = result.next().await? {
        rows.push(table.shape.as_ref().expect("columns come before rows").decode(row)?);
    }
    Ok(rows)
}
