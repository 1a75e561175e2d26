//! Timestamp/incrementing-column polling for servers without binlog access:
//! each interval, the rows of each table past its high-water mark, in
//! (timestamp, tie-breaker) order. The tie-breaker (the id column, else the
//! primary key) makes rows sharing one timestamp page correctly and rows
//! added later at an already-read timestamp still count as new; rows younger
//! than `delay_ms` wait a poll, since a transaction still open may yet
//! commit rows with earlier timestamps. A column coarser than a microsecond
//! widens that wait by one step of its precision: rows written during a
//! second that is still going on all carry that second, and the mark must
//! not pass it.
mod late;

use self::late::LateRows;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::keyset::Keyset;
use super::{SourceBatch, SourceError, SourcePosition};
use crate::mysql::MysqlTls;
use crate::mysql::catalog::{self, TableInfo, quote, table_info};
use crate::mysql::query_rows::{DecodedRow, QueryShape, key_position, param, values};
use crate::record::{Position, Record, Value};
use crate::secret::Secret;

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
    /// A window behind the high-water mark read again each poll: a row
    /// found there that was never delivered (its transaction outlasted
    /// `delay_ms`) is logged as late and delivered. 0 turns it off.
    #[serde(default)]
    pub lookback_ms: u64,
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
    /// Columns the rows are ordered and paged by, and how they page exactly.
    order: Vec<String>,
    keyset: Keyset,
    uses_timestamp: bool,
    /// How long a timestamp waits before the mark may pass it: `delay_ms`
    /// and one step of the column's precision.
    delay_micros: u64,
    late: Option<LateRows>,
    shape: Option<QueryShape>,
}

pub struct PollingSource {
    conn: Conn,
    tables: Vec<PolledShape>,
    marks: PollingMarks,
    interval: Duration,
    next_poll: Instant,
}

impl PollingSource {
    pub async fn connect(config: &PollingSourceConfig, stored: Option<SourcePosition>) -> Result<Self, SourceError> {
        let marks = match stored {
            None => PollingMarks::default(),
            Some(SourcePosition::Polling(marks)) => marks,
            Some(_) => {
                return Err(SourceError::setup(
                    "the stored position belongs to a binlog source; delete the pipeline's position file to start over",
                ));
            }
        };
        let mut conn = crate::mysql::connect(&config.url, config.tls.as_ref()).await?;
        conn.query_drop("SET SESSION time_zone = '+00:00'").await?;
        let mut tables = Vec::new();
        for polled in &config.tables {
            tables.push(check_table(&mut conn, polled, config).await?);
        }
        Ok(PollingSource {
            conn,
            tables,
            marks,
            interval: Duration::from_millis(config.interval_ms),
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
        let mut undecodable = Vec::new();
        let mut behind = false;
        for table in &mut self.tables {
            let room = max.saturating_sub(records.len());
            if room == 0 {
                behind = true;
                break;
            }
            let name = table.info.qualified();
            let mark = self.marks.tables.get(&name).cloned();
            let (mut rows, cursors): (Vec<DecodedRow>, Vec<Vec<Value>>) =
                poll_table(&mut self.conn, table, mark.as_ref(), room).await?.into_iter().unzip();
            behind |= rows.len() == room;
            let Some(order) = table.shape.as_ref().map(|shape| shape.indexes(&table.order)) else {
                continue;
            };
            let prefix = format!("poll:{name}:");
            if let Some(last) = cursors.into_iter().last() {
                self.marks.tables.insert(name, last);
            }
            if let Some(mark) = &mark {
                rows.extend(late_rows(&mut self.conn, table, mark).await?);
            }
            let ts_ms = chrono::Utc::now().timestamp_millis();
            let Some(shape) = &table.shape else { continue };
            for row in rows {
                let position = key_position(&prefix, values(&row), &order);
                if let (Some(late), Position::Other(text)) = (&mut table.late, &position) {
                    late.delivered(text);
                }
                match row {
                    Ok(row) => records.push(Record::read(position, ts_ms, shape.schema.clone(), row)),
                    Err((row, reason)) => undecodable.push((Record::read(position, ts_ms, shape.schema.clone(), row), reason)),
                }
            }
        }
        // Caught up: rest until the next interval; behind: go straight on.
        self.next_poll = if behind { Instant::now() } else { Instant::now() + self.interval };
        let checkpoint = (!records.is_empty() || !undecodable.is_empty()).then(|| SourcePosition::Polling(self.marks.clone()));
        Ok(SourceBatch {
            records,
            undecodable,
            checkpoint,
            finished: false,
            open: false,
        })
    }
}

async fn check_table(conn: &mut Conn, polled: &PolledTable, config: &PollingSourceConfig) -> Result<PolledShape, SourceError> {
    let setup = |message: String| SourceError::setup(format!("source.tables `{}`: {message}", polled.table));
    let Some((database, table)) = polled.table.split_once('.') else {
        return Err(setup("name the table as database.table".into()));
    };
    let info = table_info(conn, database, table).await?;
    let catalog = catalog::columns(conn, database, table).await?;
    let columns: Vec<String> = catalog.iter().map(|c| c.name.clone()).collect();
    if columns.is_empty() {
        return Err(setup(
            "no such table on the server (or this user cannot see it); fix the name or create it".into(),
        ));
    }
    for (role, column) in [("timestamp", &polled.timestamp), ("id", &polled.id)] {
        if let Some(column) = column
            && !columns.contains(column)
        {
            return Err(setup(format!(
                "{role} column `{column}` does not exist; the table has {}",
                columns.join(", ")
            )));
        }
    }
    let order = match (&polled.timestamp, &polled.id) {
        (Some(ts), Some(id)) => vec![ts.clone(), id.clone()],
        (Some(ts), None) if !info.key.is_empty() => std::iter::once(ts.clone()).chain(info.key.iter().cloned()).collect(),
        (Some(_), None) => {
            return Err(setup(
                "a timestamp column needs an `id` column or a primary key to break ties".into(),
            ));
        }
        (None, Some(id)) => vec![id.clone()],
        (None, None) => return Err(setup("set `timestamp`, `id` or both".into())),
    };
    let mut delay_micros = config.delay_ms * 1000;
    let precision = polled
        .timestamp
        .as_ref()
        .and_then(|ts| catalog.iter().find(|c| c.name == *ts))
        .and_then(|c| c.datetime_precision);
    if let Some(digits) = precision {
        let step = 10u64.pow(6 - digits.min(6));
        delay_micros += step;
        if step >= 1000 {
            tracing::info!(
                table = %polled.table,
                "`{}` holds {digits} fractional digits: rows wait delay_ms ({} ms) and one step of that precision ({} ms) \
                 before the mark passes them, so that no row of a time still being written is skipped",
                polled.timestamp.as_deref().unwrap_or_default(),
                config.delay_ms,
                step / 1000
            );
        }
    }
    let late = (config.lookback_ms > 0 && polled.timestamp.is_some()).then(|| LateRows::new(Duration::from_millis(config.lookback_ms)));
    Ok(PolledShape {
        keyset: Keyset::new(&order, &info.columns),
        info,
        order,
        uses_timestamp: polled.timestamp.is_some(),
        delay_micros,
        late,
        shape: None,
    })
}

/// Rows in the window behind the mark never delivered: warned of, to be
/// delivered with this poll's.
async fn late_rows(conn: &mut Conn, table: &mut PolledShape, mark: &[Value]) -> Result<Vec<DecodedRow>, SourceError> {
    if table.late.is_none() || table.shape.is_none() {
        return Ok(Vec::new());
    }
    let window = table.late.as_ref().map_or(Duration::ZERO, LateRows::window).as_micros();
    let (condition, mut params) = table.keyset.after(mark);
    params.insert(0, param(&mark[0]));
    let ts = quote(&table.order[0]);
    let filter = format!("WHERE {ts} >= ? - INTERVAL {window} MICROSECOND AND NOT ({condition})");
    let rows: Vec<DecodedRow> = select_rows(conn, table, &filter, params, None)
        .await?
        .into_iter()
        .map(|(row, _)| row)
        .collect();
    let (Some(late), Some(shape)) = (&mut table.late, &table.shape) else {
        return Ok(Vec::new());
    };
    let name = table.info.qualified();
    let prefix = format!("poll:{name}:");
    let indexes = shape.indexes(&table.order);
    let positions: Vec<String> = rows
        .iter()
        .map(|row| match key_position(&prefix, values(row), &indexes) {
            Position::Other(text) => text,
            other => format!("{other:?}"),
        })
        .collect();
    let late_ones: HashSet<&str> = late.late(positions.iter().map(String::as_str)).into_iter().collect();
    let mut found = Vec::new();
    for (row, position) in rows.into_iter().zip(&positions) {
        if late_ones.contains(position.as_str()) {
            tracing::warn!(
                table = %name,
                row = %position,
                "a row committed behind the high-water mark (its transaction outlasted delay_ms): delivered late"
            );
            found.push(row);
        }
    }
    Ok(found)
}

/// Rows past the mark whose timestamp is old enough, each with its cursor.
async fn poll_table(
    conn: &mut Conn,
    table: &mut PolledShape,
    mark: Option<&Vec<Value>>,
    max: usize,
) -> Result<Vec<(DecodedRow, Vec<Value>)>, SourceError> {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    if let Some(mark) = mark {
        let (condition, values) = table.keyset.after(mark);
        conditions.push(format!("({condition})"));
        params.extend(values);
    }
    if table.uses_timestamp {
        conditions.push(format!(
            "{} < NOW(6) - INTERVAL {} MICROSECOND",
            quote(&table.order[0]),
            table.delay_micros
        ));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    select_rows(conn, table, &filter, params, Some(max)).await
}

/// Every column of the rows `filter` selects, in order, and their cursors.
async fn select_rows(
    conn: &mut Conn,
    table: &mut PolledShape,
    filter: &str,
    params: Vec<mysql_async::Value>,
    limit: Option<usize>,
) -> Result<Vec<(DecodedRow, Vec<Value>)>, SourceError> {
    let columns = table.info.columns.iter().map(|c| quote(&c.name)).collect::<Vec<_>>().join(", ");
    let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    let sql = format!(
        "SELECT {columns}{} FROM {} {filter} ORDER BY {}{limit}",
        table.keyset.select(),
        table.info.sql_name(),
        table.keyset.order_by()
    );
    let mut result = conn.exec_iter(sql, params).await?;
    let width = table.info.columns.len();
    if table.shape.is_none() {
        table.shape = result.columns().map(|columns| QueryShape::new(&table.info, &columns[..width]));
    }
    let mut rows = Vec::new();
    while let Some(row) = result.next().await? {
        let mut values = row.unwrap();
        let cursor = Keyset::cursor(values.split_off(width));
        rows.push((table.shape.as_ref().expect("columns come before rows").decode(values), cursor));
    }
    Ok(rows)
}
