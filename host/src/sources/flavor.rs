//! The one place where MariaDB and MySQL differ for capture: how a consistent
//! snapshot learns its binlog position, and how GTIDs are spoken.
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use super::SourceError;
use super::binlog::{BinlogCheckpoint, current_position};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerFlavor {
    MariaDb,
    Mysql,
}

impl ServerFlavor {
    pub async fn detect(conn: &mut Conn) -> Result<Self, SourceError> {
        let version: Option<String> = conn.query_first("SELECT VERSION()").await?;
        Ok(if version.unwrap_or_default().contains("MariaDB") { ServerFlavor::MariaDb } else { ServerFlavor::Mysql })
    }

    /// Opens a read-only repeatable-read transaction on `conn` and returns the
    /// binlog position its view corresponds to: every change before it is in
    /// the view, every change after it is in the binlog after it.
    pub async fn begin_snapshot(self, conn: &mut Conn) -> Result<BinlogCheckpoint, SourceError> {
        conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ").await?;
        match self {
            // MariaDB reports the binlog position of the snapshot itself, with no lock.
            ServerFlavor::MariaDb => {
                conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY").await?;
                let status: Vec<(String, String)> = conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'").await?;
                let get = |name: &str| status.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
                match (get("binlog_snapshot_file"), get("binlog_snapshot_position").and_then(|p| p.parse().ok())) {
                    (Some(file), Some(pos)) if !file.is_empty() => Ok(BinlogCheckpoint { file, pos, gtid: None }),
                    _ => Err(SourceError::ServerSetup("the server reports no binlog_snapshot_file: is log_bin on?".into())),
                }
            }
            // MySQL has no such status: hold a global read lock for the instant
            // between opening the view and reading the position.
            ServerFlavor::Mysql => {
                conn.query_drop("FLUSH TABLES WITH READ LOCK").await.map_err(|e| {
                    SourceError::ServerSetup(format!("{e} — a consistent snapshot on MySQL needs the RELOAD privilege"))
                })?;
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

/// MariaDB's GTID event (type 162), which mysql_common does not parse:
/// sequence u64, domain u32, flags u8; the server id is the header's.
const MARIADB_GTID_EVENT: u8 = 162;
/// The GTID's group has no BEGIN/COMMIT (DDL, non-transactional statements).
const FL_STANDALONE: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MariaGtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
    pub standalone: bool,
}

impl MariaGtid {
    pub fn from_event(event: &mysql_async::binlog::events::Event) -> Option<Self> {
        if event.header().event_type_raw() != MARIADB_GTID_EVENT {
            return None;
        }
        let body = event.data();
        let seq = u64::from_le_bytes(body.get(0..8)?.try_into().ok()?);
        let domain = u32::from_le_bytes(body.get(8..12)?.try_into().ok()?);
        let flags = *body.get(12)?;
        Some(MariaGtid { domain, server: event.header().server_id(), seq, standalone: flags & FL_STANDALONE != 0 })
    }
}

impl std::fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

/// MariaDB's replication state: the last GTID of each domain, as
/// `@@gtid_binlog_pos` and `@slave_connect_state` spell it (`0-1-42,1-2-7`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidState(std::collections::BTreeMap<u32, (u32, u64)>);

impl GtidState {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut state = GtidState::default();
        for gtid in text.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            let parts: Vec<&str> = gtid.split('-').collect();
            let [domain, server, seq] = parts[..] else { return Err(format!("`{gtid}` is not a MariaDB GTID (domain-server-seq)")) };
            let bad = |e: std::num::ParseIntError| format!("`{gtid}`: {e}");
            state.0.insert(domain.parse().map_err(bad)?, (server.parse().map_err(bad)?, seq.parse().map_err(bad)?));
        }
        Ok(state)
    }

    pub fn apply(&mut self, gtid: MariaGtid) {
        self.0.insert(gtid.domain, (gtid.server, gtid.seq));
    }
}

impl std::fmt::Display for GtidState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(d, (s, n))| format!("{d}-{s}-{n}")).collect();
        f.write_str(&parts.join(","))
    }
}

impl ServerFlavor {
    /// The GTID state at a binlog position (MariaDB); MySQL's GTID sets are
    /// not tracked, so file:pos is its only resume point.
    pub async fn gtid_at(self, conn: &mut Conn, at: &BinlogCheckpoint) -> Result<Option<GtidState>, SourceError> {
        match (self, &at.gtid) {
            (ServerFlavor::Mysql, _) => Ok(None),
            (ServerFlavor::MariaDb, Some(text)) => GtidState::parse(text).map(Some).map_err(SourceError::ServerSetup),
            (ServerFlavor::MariaDb, None) => {
                let text: Option<Option<String>> =
                    conn.exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&at.file, at.pos)).await?;
                GtidState::parse(&text.flatten().unwrap_or_default()).map(Some).map_err(SourceError::ServerSetup)
            }
        }
    }

    /// Readies `conn` for the binlog dump. MariaDB sends its GTID events only
    /// to a replica that declares it understands them; with `resume_at`, the
    /// server itself finds where that GTID state is, on whichever server
    /// (after a fail-over) file names and offsets differ.
    pub async fn prepare_stream(self, conn: &mut Conn, gtid_wanted: bool, resume_at: Option<&GtidState>) -> Result<(), SourceError> {
        match (self, gtid_wanted) {
            (ServerFlavor::MariaDb, _) => {
                let state = resume_at;
                conn.query_drop("SET @mariadb_slave_capability = 4").await?;
                if let Some(state) = state {
                    conn.exec_drop("SET @slave_connect_state = ?", (state.to_string(),)).await?;
                    conn.query_drop("SET @slave_gtid_strict_mode = 1").await?;
                }
                Ok(())
            }
            (ServerFlavor::Mysql, true) => Err(SourceError::ServerSetup(
                "resuming by GTID is supported on MariaDB only; on MySQL set `gtid = false` to resume by file and position".into(),
            )),
            (ServerFlavor::Mysql, false) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_state_round_trips_and_advances_per_domain() {
        let mut state = GtidState::parse("0-1-42, 1-2-7").unwrap();
        state.apply(MariaGtid { domain: 0, server: 3, seq: 43, standalone: false });
        assert_eq!(state.to_string(), "0-3-43,1-2-7");
        assert_eq!(GtidState::parse("").unwrap().to_string(), "");
        assert!(GtidState::parse("0-1").unwrap_err().contains("0-1"));
    }
}
