//! Change data capture from the MySQL/MariaDB binlog: row events of the
//! captured tables become records; a transaction's records are handed on
//! only once its commit is read, with the position to resume after it.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use mysql_async::binlog::events::{EventData, RowsEventData};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, Conn};
use serde::Deserialize;

mod distance;
mod image;
mod shape;
mod xa;

pub use self::distance::BinlogDistance;
use self::image::Unreadable;
use self::shape::TableShape;
use super::{SourceBatch, SourceError, SourcePosition};
use crate::formats::debezium::KeyWriter;
use crate::mysql::catalog::{CatalogColumns, catalog_columns};
use crate::mysql::charset::Charsets;
use crate::mysql::flavor::ServerFlavor;
use crate::mysql::gtid::{Gtid, GtidState, MariaGtid, MysqlGtid};
use crate::mysql::{BinlogCheckpoint, MysqlError, MysqlTls, TableFilter, current_position};
use crate::origin::{MARKER_TABLE, set_origin};
use crate::record::{Header, Op, Position, Record, Value};
use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinlogSourceConfig {
    /// `mysql://user:password@host:port/`; use `${ENV}` for the password.
    pub url: Secret,
    /// TLS files (a private CA, a client certificate); giving them turns TLS on.
    #[serde(default)]
    pub tls: Option<MysqlTls>,
    /// `database.table` or `database.*` to capture.
    pub tables: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Replica server id; unique among the server's replicas.
    pub server_id: u32,
    /// `initial` (snapshot, then the binlog), `never` (the binlog from now)
    /// or `snapshot-only`.
    #[serde(default)]
    pub snapshot: SnapshotMode,
    /// Resume by the stored GTID state rather than file and position, so a
    /// restart against another server of the topology (after a fail-over)
    /// finds its place. MySQL needs gtid_mode = ON.
    #[serde(default)]
    pub gtid: bool,
    /// With a `site`: the other sites whose changes, applied here by a
    /// Sluice MySQL sink, are published on (a chain A → B → C); changes of
    /// every other site are dropped, as their own site published them.
    #[serde(default)]
    pub forward_origins: Vec<String>,
    /// Database of the `sluice_origin` marker table that MySQL sinks write
    /// (a sink's `offsets_database`).
    #[serde(default = "default_marker_database")]
    pub marker_database: String,
}

fn default_marker_database() -> String {
    "sluice".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotMode {
    #[default]
    Initial,
    Never,
    SnapshotOnly,
}

pub struct BinlogSource {
    stream: BinlogStream,
    filter: TableFilter,
    /// Per table id; a new table map (e.g. after ALTER TABLE) replaces it.
    shapes: HashMap<u64, TableShape>,
    /// Shared by every record read from the file.
    file: Arc<str>,
    /// Records of the transaction being read, not yet handed on.
    open: Vec<Record>,
    /// Between BEGIN and its commit: no checkpoint may fall there.
    in_transaction: bool,
    /// Inside an XA transaction's group, and the records of those prepared
    /// and not yet decided.
    in_xa: bool,
    prepared: HashMap<xa::Xid, Vec<Record>>,
    /// The GTID state after the last commit read, and the GTID of the
    /// group being read (with its text, which every record of it carries).
    gtid_state: Option<GtidState>,
    gtid: Option<(Gtid, Arc<str>)>,
    /// Checksum bytes the opening ROTATE's name carries when the stream
    /// starts from a GTID and the file name is learnt from it.
    checksum_len: usize,
    /// A second connection for catalog look-ups, their results per table
    /// until the next DDL, and whether table maps carry full metadata.
    catalog: Conn,
    catalog_cache: HashMap<(String, String), Arc<CatalogColumns>>,
    /// How each of the server's collations reads as text.
    charsets: Charsets,
    flavor: ServerFlavor,
    /// Writes the keys that a key change's two records name.
    key_json: KeyWriter,
    /// Where the stream was asked to start, and by which pipeline: named
    /// when the server no longer has it.
    start: BinlogCheckpoint,
    pipeline: String,
    marker_database: String,
    /// The origin the open transaction's last marker row named: the site
    /// where the changes a MySQL sink applied in it were first made.
    origin: Option<Arc<str>>,
}

impl BinlogSource {
    /// Streams from `start` on `conn`, a connection that passed `check`.
    pub async fn start(
        mut conn: Conn,
        flavor: ServerFlavor,
        config: &BinlogSourceConfig,
        start: BinlogCheckpoint,
        pipeline: &str,
    ) -> Result<Self, SourceError> {
        let gtid_state = flavor.gtid_at(&mut conn, &start).await?;
        // A stored GTID state exists once a transaction was delivered; before,
        // file and position are all there is.
        let by_gtid = config.gtid && start.gtid.is_some();
        let resume_at = gtid_state.as_ref().filter(|_| by_gtid);
        let request = flavor
            .stream_request(&mut conn, config.server_id, config.gtid, resume_at, &start.file, start.pos)
            .await?;
        let checksum: Option<String> = conn.query_first("SELECT @@global.binlog_checksum").await?;
        let metadata: Option<String> = conn.query_first("SELECT @@global.binlog_row_metadata").await.ok().flatten();
        let full_metadata = metadata.is_some_and(|m| m.eq_ignore_ascii_case("FULL"));
        if !full_metadata {
            tracing::warn!(
                "binlog_row_metadata is not FULL: column names, keys and signedness come from information_schema, \
                 which is right only for events written since the table's last ALTER; SET GLOBAL binlog_row_metadata = 'FULL'"
            );
        }
        let mut catalog = crate::mysql::connect(&config.url, config.tls.as_ref()).await?;
        let charsets = Charsets::load(&mut catalog).await?;
        // A heartbeat each second carries the position while the server is idle.
        conn.query_drop("SET @master_heartbeat_period = 1000000000").await?;
        match resume_at {
            Some(state) => tracing::info!(pipeline, gtid = %state, "binlog stream starting from GTID state"),
            None => tracing::info!(pipeline, file = %start.file, pos = start.pos, "binlog stream starting"),
        }
        let stream = conn.get_binlog_stream(request).await.map_err(privilege_hint)?;
        let file = if by_gtid { "".into() } else { start.file.as_str().into() };
        Ok(BinlogSource {
            stream,
            filter: TableFilter::new(&config.tables, &config.exclude),
            shapes: HashMap::new(),
            file,
            open: Vec::new(),
            in_transaction: false,
            in_xa: false,
            prepared: HashMap::new(),
            gtid_state,
            gtid: None,
            checksum_len: if checksum.is_some_and(|c| c.eq_ignore_ascii_case("NONE")) {
                0
            } else {
                4
            },
            catalog,
            catalog_cache: HashMap::new(),
            charsets,
            flavor,
            key_json: KeyWriter::default(),
            start,
            pipeline: pipeline.to_owned(),
            marker_database: config.marker_database.clone(),
            origin: None,
        })
    }

    /// Up to about `max` records of complete transactions, waiting at most
    /// `wait` for the first; the checkpoint also moves on heartbeats and on
    /// transactions of tables not captured, so an idle pipeline keeps up.
    pub async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<SourceBatch, SourceError> {
        let mut batch = SourceBatch::empty();
        let deadline = tokio::time::Instant::now() + wait;
        while batch.records.len() < max {
            let event = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_elapsed) => break,
                Ok(None) => return Err(SourceError::StreamEnded),
                Ok(Some(event)) => event.map_err(|e| self.stream_error(e))?,
            };
            let end = u64::from(event.header().log_pos());
            let ts_ms = i64::from(event.header().timestamp()) * 1000;
            if let Some(gtid) = MariaGtid::from_event(&event) {
                // With GTIDs declared, MariaDB sends this in place of BEGIN.
                self.in_transaction = !gtid.standalone;
                self.origin = None;
                self.gtid = Some(with_text(Gtid::Maria(gtid)));
                continue;
            }
            let data = event.read_data().map_err(|e| SourceError::Decode {
                what: "event".into(),
                message: e.to_string(),
            })?;
            match data {
                Some(EventData::RotateEvent(rotate)) => {
                    let name = rotate.name();
                    // The artificial ROTATE that opens a stream comes before the format
                    // description, so its name still carries 4 checksum bytes (which
                    // may well be printable): it names the file we asked for.
                    let artificial = end == 0 && name.starts_with(&*self.file);
                    if artificial && self.file.is_empty() {
                        // Started from a GTID: this names the file the server chose.
                        let name = rotate.name_raw();
                        self.file = String::from_utf8_lossy(&name[..name.len().saturating_sub(self.checksum_len)]).into();
                    } else if !artificial {
                        self.file = name.into();
                    }
                }
                // MySQL's GTID comes before the transaction's BEGIN.
                Some(EventData::GtidEvent(gtid)) => {
                    self.gtid = Some(with_text(Gtid::Mysql(MysqlGtid::from(&gtid))));
                    self.origin = None;
                }
                Some(EventData::TableMapEvent(map)) => {
                    self.shapes.remove(&map.table_id());
                }
                Some(EventData::RowsEvent(rows)) => {
                    self.look_up_catalog(rows.table_id()).await?;
                    self.read_rows(&rows, end, ts_ms, &mut batch.undecodable)?;
                    // A large transaction streams through in batches rather than being
                    // held whole; the checkpoint still moves only at its commit, so a
                    // restart repeats its delivered part (same dedup ids), never skips it.
                    // An XA transaction is held whole: it may yet roll back.
                    if !self.in_xa && self.open.len() + batch.records.len() >= max {
                        batch.records.append(&mut self.open);
                        batch.open = true;
                    }
                }
                Some(EventData::XidEvent(_)) => self.commit(&mut batch, end),
                Some(EventData::XaPrepareLogEvent(body)) => match xa::prepared(&body) {
                    Some((xid, false)) => {
                        // Held until its XA COMMIT or XA ROLLBACK.
                        self.in_transaction = false;
                        self.in_xa = false;
                        let records = std::mem::take(&mut self.open);
                        self.prepared.insert(xid, records);
                        self.advance(&mut batch, end);
                    }
                    _ => self.commit(&mut batch, end),
                },
                Some(EventData::QueryEvent(query)) if xa::starts(&query.query()) => {
                    self.in_transaction = true;
                    self.in_xa = true;
                }
                Some(EventData::QueryEvent(query)) if xa::decided(&query.query()).is_some() => {
                    let (commit, xid) = xa::decided(&query.query()).expect("matched");
                    if let Some(mut records) = self.prepared.remove(&xid)
                        && commit
                    {
                        batch.records.append(&mut records);
                    }
                    self.advance(&mut batch, end);
                }
                Some(EventData::QueryEvent(query)) if query.query().eq_ignore_ascii_case("COMMIT") => self.commit(&mut batch, end),
                Some(EventData::QueryEvent(query)) if query.query().eq_ignore_ascii_case("BEGIN") => {
                    self.in_transaction = true;
                    self.origin = None;
                }
                Some(EventData::QueryEvent(_)) if !self.in_transaction => {
                    // DDL outside a transaction: later table maps carry the new shape.
                    self.catalog_cache.clear();
                    self.advance(&mut batch, end);
                }
                Some(EventData::HeartbeatEvent) if !self.in_transaction && end > 0 => self.advance(&mut batch, end),
                _ => {}
            }
        }
        Ok(batch)
    }

    /// A stream error; the server's 1236 says the binlog no longer holds
    /// where the stream was asked to start (purged, or RESET MASTER), which
    /// is named with the way out.
    fn stream_error(&self, error: mysql_async::Error) -> SourceError {
        match error {
            mysql_async::Error::Server(server) if server.code == 1236 => {
                let mut position = format!("{}:{}", self.start.file, self.start.pos);
                if let Some(gtid) = &self.start.gtid {
                    position.push_str(&format!(" (GTID {gtid})"));
                }
                SourceError::PositionLost {
                    pipeline: self.pipeline.clone(),
                    position,
                    message: server.message,
                }
            }
            other => other.into(),
        }
    }

    /// The position just after the event that ends at `end`, which closes
    /// the current GTID group if any.
    fn checkpoint(&mut self, end: u64) -> Option<SourcePosition> {
        if let (Some(state), Some((gtid, _))) = (&mut self.gtid_state, self.gtid.take()) {
            state.apply(&gtid);
        }
        let gtid = self.gtid_state.as_ref().map(|s| s.to_string());
        Some(SourcePosition::Binlog(BinlogCheckpoint {
            file: self.file.to_string(),
            pos: end,
            gtid,
        }))
    }

    fn commit(&mut self, batch: &mut SourceBatch, end: u64) {
        self.in_transaction = false;
        self.in_xa = false;
        self.origin = None;
        batch.records.append(&mut self.open);
        batch.open = false;
        self.advance(batch, end);
    }

    /// Moves the batch's checkpoint to just after the event ending at `end`,
    /// unless an XA transaction is prepared and undecided: a restart must
    /// read its rows again, so no position may pass them.
    fn advance(&mut self, batch: &mut SourceBatch, end: u64) {
        let checkpoint = self.checkpoint(end);
        if self.prepared.is_empty() {
            batch.checkpoint = checkpoint;
        }
    }

    /// Catalog facts for a captured table's first rows since the last DDL.
    async fn look_up_catalog(&mut self, table_id: u64) -> Result<(), SourceError> {
        let Some(map) = self.stream.get_tme(table_id) else { return Ok(()) };
        let name = (map.database_name().into_owned(), map.table_name().into_owned());
        let read = self.filter.captures(&name.0, &name.1) || self.is_marker(&name.0, &name.1);
        if read && !self.catalog_cache.contains_key(&name) {
            let columns = catalog_columns(&mut self.catalog, &name.0, &name.1).await?;
            self.catalog_cache.insert(name.clone(), Arc::new(columns));
            // Shapes built before this look-up lack its facts.
            self.shapes.remove(&table_id);
        }
        if read && !self.shapes.contains_key(&table_id) {
            // The multi-byte sets the table's text is in, mapped before its shape is built.
            let mut charsets: Vec<String> = shape::collation_ids(map)
                .into_iter()
                .filter_map(|id| self.charsets.collation(id).map(|c| c.charset.clone()))
                .collect();
            if let Some(catalog) = self.catalog_cache.get(&name) {
                charsets.extend(catalog.charsets.iter().flatten().cloned());
            }
            self.charsets.ensure(&mut self.catalog, charsets).await?;
        }
        Ok(())
    }

    /// The rows of a captured table's event as records of the open
    /// transaction; rows that cannot be decoded go to `undecodable` with why.
    fn read_rows(
        &mut self,
        rows: &RowsEventData<'_>,
        end: u64,
        ts_ms: i64,
        undecodable: &mut Vec<(Record, String)>,
    ) -> Result<(), SourceError> {
        let table_id = rows.table_id();
        let Some(map) = self.stream.get_tme(table_id) else {
            return Err(SourceError::Decode {
                what: format!("rows of table id {table_id}"),
                message: "no table map".into(),
            });
        };
        let (database, table) = (map.database_name().into_owned(), map.table_name().into_owned());
        let marker = self.is_marker(&database, &table);
        if !marker && !self.filter.captures(&database, &table) {
            return Ok(());
        }
        let op = match rows {
            RowsEventData::WriteRowsEvent(_) | RowsEventData::WriteRowsEventV1(_) => Op::Insert,
            RowsEventData::UpdateRowsEvent(_) | RowsEventData::UpdateRowsEventV1(_) | RowsEventData::PartialUpdateRowsEvent(_) => {
                Op::Update
            }
            RowsEventData::DeleteRowsEvent(_) | RowsEventData::DeleteRowsEventV1(_) => Op::Delete,
        };
        let position = |row: u32| Position::Binlog {
            file: self.file.clone(),
            pos: end,
            gtid: self.gtid.as_ref().map(|(_, text)| text.clone()),
            row,
        };
        if !self.shapes.contains_key(&table_id) {
            let catalog = self.catalog_cache.get(&(database.clone(), table.clone())).map(|c| &**c);
            match TableShape::build(map, catalog, &self.charsets, self.flavor) {
                Ok(shape) => {
                    self.shapes.insert(table_id, shape);
                }
                Err(reason) => {
                    // No row of this event can be read: one dead letter holds them all.
                    let bytes = rows.rows_data().to_vec();
                    undecodable.push((raw_record(op, position(0), ts_ms, bytes), format!("{database}.{table}: {reason}")));
                    return Ok(());
                }
            }
        }
        let shape = &self.shapes[&table_id];
        if marker {
            self.read_marker(rows, table_id);
            return Ok(());
        }
        let first_new = self.open.len();
        // Records are numbered as handed on: an update that changes the key
        // becomes two, and each keeps its own dedup id.
        let mut row = 0;
        let mut next_position = || {
            row += 1;
            position(row - 1)
        };
        for images in image::read_rows(rows, &shape.schema, &shape.decoders) {
            let record = |op, position, before, after| Record {
                op,
                position,
                ts_ms,
                schema: Some(shape.schema.clone()),
                before,
                after,
                key: None,
                payload: None,
                headers: Vec::new(),
                destination: None,
            };
            match images {
                Ok((Some(before), Some(after))) if op == Op::Update && key_changed(shape, &before, &after) => {
                    // As Debezium does: a delete under the old key, then a create
                    // under the new one, each naming the other key, so that a
                    // compacted topic or a keyed sink keeps no row under the old key.
                    let mut delete = record(Op::Delete, next_position(), Some(before), None);
                    let mut create = record(Op::Insert, next_position(), None, Some(after));
                    let (old_key, new_key) = (self.key_json.of(&delete), self.key_json.of(&create));
                    delete.headers = vec![header(KEY_CHANGE_HEADER, b"delete"), header(NEW_KEY_HEADER, &new_key)];
                    create.headers = vec![header(KEY_CHANGE_HEADER, b"create"), header(OLD_KEY_HEADER, &old_key)];
                    self.open.extend([delete, create]);
                }
                Ok((before, after)) => self.open.push(record(op, next_position(), before, after)),
                Err(Unreadable { reason, bytes }) => {
                    let record = Record {
                        schema: Some(shape.schema.clone()),
                        ..raw_record(op, next_position(), ts_ms, bytes)
                    };
                    undecodable.push((record, format!("a row of {database}.{table}: {reason}")));
                }
            }
        }
        if let Some(origin) = &self.origin {
            self.open[first_new..].iter_mut().for_each(|r| set_origin(r, origin));
        }
        Ok(())
    }

    fn is_marker(&self, database: &str, table: &str) -> bool {
        table == MARKER_TABLE && database == self.marker_database
    }

    /// A MySQL sink's marker row: the rows that follow it in the
    /// transaction were first made at the site it names (the rows before it
    /// keep theirs: the sink writes the rows it applies without an origin
    /// first). The row itself is never published.
    fn read_marker(&mut self, rows: &RowsEventData<'_>, table_id: u64) {
        let shape = &self.shapes[&table_id];
        let Some(column) = shape.schema.index_of("origin") else { return };
        for images in image::read_rows(rows, &shape.schema, &shape.decoders) {
            let Ok((_, Some(after))) = images else { continue };
            let Some(Value::Str(origin)) = after.get(column) else { continue };
            match crate::origin::check_site(origin) {
                Ok(()) => self.origin = Some(origin.as_str().into()),
                Err(why) => tracing::warn!(pipeline = %self.pipeline, "a {MARKER_TABLE} row names no site, ignored: {why}"),
            }
        }
    }
}

/// Headers of the two records an update of a row's primary key becomes.
pub const KEY_CHANGE_HEADER: &str = "sluice.key-change";
pub const OLD_KEY_HEADER: &str = "sluice.old-key";
pub const NEW_KEY_HEADER: &str = "sluice.new-key";

fn header(key: &str, value: &[u8]) -> Header {
    Header {
        key: key.into(),
        value: value.to_vec(),
    }
}

/// Whether an update moves the row to another primary key, as the table's
/// collations compare: `'a'` to `'A'` under a case-insensitive collation,
/// or `'p'` to `'p '` under PAD SPACE, is the same row to the server, and
/// split in two its delete could overtake its create on another partition.
fn key_changed(shape: &TableShape, before: &[Value], after: &[Value]) -> bool {
    shape
        .schema
        .key
        .iter()
        .map(|&k| k as usize)
        .any(|k| match (before.get(k), after.get(k), shape.folds.get(k).copied().flatten()) {
            (Some(Value::Str(a)), Some(Value::Str(b)), Some(fold)) => {
                let norm = |s: &str| {
                    let s = if fold.trailing_spaces { s.trim_end_matches(' ') } else { s };
                    if fold.case { s.to_lowercase() } else { s.to_owned() }
                };
                norm(a) != norm(b)
            }
            (a, b, _) => a != b,
        })
}

/// A row that could not be decoded: its bytes as the binlog holds them.
fn raw_record(op: Op, position: Position, ts_ms: i64, bytes: Vec<u8>) -> Record {
    Record {
        op,
        position,
        ts_ms,
        schema: None,
        before: None,
        after: None,
        key: None,
        payload: Some(bytes),
        headers: Vec::new(),
        destination: None,
    }
}

fn with_text(gtid: Gtid) -> (Gtid, Arc<str>) {
    let text = gtid.to_string().into();
    (gtid, text)
}

/// Connects and checks that the server can be captured from: binlog
/// settings, and every named table.
pub async fn check(config: &BinlogSourceConfig) -> Result<Conn, SourceError> {
    let mut conn = crate::mysql::connect(&config.url, config.tls.as_ref()).await?;
    check_server(&mut conn).await?;
    check_tables(&mut conn, config).await?;
    // Before any snapshot work: the stream will need these grants.
    current_position(&mut conn).await.map_err(privilege_hint)?;
    Ok(conn)
}

async fn check_server(conn: &mut Conn) -> Result<(), SourceError> {
    let (log_bin, format, image): (Option<String>, Option<String>, Option<String>) = conn
        .query_first("SELECT @@log_bin, @@binlog_format, @@binlog_row_image")
        .await?
        .unwrap_or_default();
    let setting = |v: Option<String>| v.unwrap_or_default().to_ascii_uppercase();
    if !matches!(setting(log_bin).as_str(), "1" | "ON") {
        return Err(SourceError::setup("binary logging is off: start the server with --log-bin"));
    }
    if setting(format) != "ROW" {
        return Err(SourceError::setup(
            "binlog_format must be ROW: SET GLOBAL binlog_format = 'ROW' (and in my.cnf)",
        ));
    }
    if setting(image) != "FULL" {
        return Err(SourceError::setup(
            "binlog_row_image must be FULL: SET GLOBAL binlog_row_image = 'FULL'",
        ));
    }
    Ok(())
}

/// Every named table (and every database of a `db.*`) must exist: a typo
/// would otherwise capture nothing, silently.
async fn check_tables(conn: &mut Conn, config: &BinlogSourceConfig) -> Result<(), SourceError> {
    for entry in &config.tables {
        let (database, table) = entry.split_once('.').unwrap_or((entry.as_str(), "*"));
        let found: Option<u8> = if table == "*" {
            conn.exec_first("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", (database,))
                .await?
        } else {
            conn.exec_first(
                "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (database, table),
            )
            .await?
        };
        if found.is_none() {
            return Err(SourceError::setup(format!(
                "`{entry}` in source.tables does not exist on the server (or this user cannot see it); fix the name or create it"
            )));
        }
    }
    Ok(())
}

/// Access errors on binlog statements name the grant that fixes them.
pub(super) fn privilege_hint(e: impl Into<SourceError>) -> SourceError {
    match e.into() {
        SourceError::Mysql(MysqlError::Query(mysql_async::Error::Server(server))) if matches!(server.code, 1045 | 1142 | 1227 | 1044) => {
            SourceError::setup(format!(
                "{} — grant the capture user: GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '<user>'@'<host>' (MariaDB 10.5+: BINLOG MONITOR, REPLICATION SLAVE)",
                server.message
            ))
        }
        other => other,
    }
}
