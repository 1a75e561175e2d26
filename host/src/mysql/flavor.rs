//! The one place where MariaDB and MySQL differ for capture: how a consistent
//! snapshot learns its binlog position, and how a stream is asked to resume.
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStreamRequest, Conn};

use super::MysqlError;
use super::gtid::GtidState;
use super::position::{BinlogCheckpoint, current_position};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerFlavor {
    MariaDb,
    Mysql,
}

impl ServerFlavor {
    pub async fn detect(conn: &mut Conn) -> Result<Self, MysqlError> {
        let version: Option<String> = conn.query_first("SELECT VERSION()").await?;
        Ok(if version.unwrap_or_default().contains("MariaDB") {
            ServerFlavor::MariaDb
        } else {
            ServerFlavor::Mysql
        })
    }

    /// Opens a read-only repeatable-read transaction on `conn` and returns the
    /// binlog position its view corresponds to: every change before it is in
    /// the view, every change after it is in the binlog after it.
    pub async fn begin_snapshot(self, conn: &mut Conn) -> Result<BinlogCheckpoint, MysqlError> {
        conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ").await?;
        match self {
            // MariaDB reports the binlog position of the snapshot itself, with no lock.
            ServerFlavor::MariaDb => {
                conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY").await?;
                let status: Vec<(String, String)> = conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'").await?;
                let get = |name: &str| status.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
                let (file, pos) = match (
                    get("binlog_snapshot_file"),
                    get("binlog_snapshot_position").and_then(|p| p.parse().ok()),
                ) {
                    (Some(file), Some(pos)) if !file.is_empty() => (file, pos),
                    _ => {
                        return Err(MysqlError::ServerSetup(
                            "the server reports no binlog_snapshot_file: is log_bin on?".into(),
                        ));
                    }
                };
                // The GTID state at that position, so that a hand-over stored
                // before any transaction is streamed still resumes by GTID.
                let gtid: Option<Option<String>> = conn.exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&file, pos)).await?;
                Ok(BinlogCheckpoint {
                    file,
                    pos,
                    gtid: gtid.flatten().filter(|g| !g.is_empty()),
                })
            }
            // MySQL has no such status: hold a global read lock for the instant
            // between opening the view and reading the position.
            ServerFlavor::Mysql => {
                conn.query_drop("FLUSH TABLES WITH READ LOCK")
                    .await
                    .map_err(|e| MysqlError::ServerSetup(format!("{e} — a consistent snapshot on MySQL needs the RELOAD privilege")))?;
                let opened = async {
                    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY").await?;
                    current_position(conn).await
                }
                .await;
                conn.query_drop("UNLOCK TABLES").await?;
                opened
            }
        }
    }
}

impl ServerFlavor {
    /// The GTID state at a checkpoint: the one stored with it, else (MariaDB)
    /// the server's own answer for that file and position. MySQL cannot map
    /// a position to a GTID set, but every checkpoint it starts from (the
    /// snapshot's, the current position's) carries `Executed_Gtid_Set`.
    pub async fn gtid_at(self, conn: &mut Conn, at: &BinlogCheckpoint) -> Result<Option<GtidState>, MysqlError> {
        let text = match (self, &at.gtid) {
            (_, Some(text)) => text.clone(),
            (ServerFlavor::Mysql, None) => return Ok(None),
            (ServerFlavor::MariaDb, None) => {
                let text: Option<Option<String>> = conn.exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&at.file, at.pos)).await?;
                text.flatten().unwrap_or_default()
            }
        };
        let state = match self {
            ServerFlavor::MariaDb => GtidState::parse_maria(&text),
            ServerFlavor::Mysql => GtidState::parse_mysql(&text),
        };
        state
            .map(Some)
            .map_err(|e| MysqlError::ServerSetup(format!("the stored GTID position: {e}")))
    }

    /// Readies `conn` for the binlog dump and says where it starts: by
    /// `resume_at` if given, which the server itself locates on whichever
    /// server (after a fail-over) file names and offsets differ; else at
    /// `file` and `pos`.
    pub async fn stream_request<'a>(
        self,
        conn: &mut Conn,
        server_id: u32,
        gtid_wanted: bool,
        resume_at: Option<&GtidState>,
        file: &'a str,
        pos: u64,
    ) -> Result<BinlogStreamRequest<'a>, MysqlError> {
        let request = BinlogStreamRequest::new(server_id);
        match self {
            ServerFlavor::MariaDb => {
                // MariaDB sends its GTID events only to a replica that declares it
                // understands them.
                conn.query_drop("SET @mariadb_slave_capability = 4").await?;
                if let Some(state) = resume_at {
                    conn.exec_drop("SET @slave_connect_state = ?", (state.to_string(),)).await?;
                    conn.query_drop("SET @slave_gtid_strict_mode = 1").await?;
                    return Ok(request);
                }
            }
            ServerFlavor::Mysql => {
                if gtid_wanted {
                    let mode: Option<String> = conn.query_first("SELECT @@GLOBAL.gtid_mode").await?;
                    if !mode.is_some_and(|m| m.eq_ignore_ascii_case("ON")) {
                        return Err(MysqlError::ServerSetup(
                            "`gtid = true` needs gtid_mode = ON on MySQL (with enforce_gtid_consistency = ON); \
                             turn it on or set `gtid = false` to resume by file and position"
                                .into(),
                        ));
                    }
                }
                if let Some(set) = resume_at {
                    return Ok(request.with_gtid().with_gtid_set(set.sids()));
                }
            }
        }
        Ok(request.with_filename(file.as_bytes()).with_pos(pos))
    }
}
