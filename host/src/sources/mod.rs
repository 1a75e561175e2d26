//! Where records come from: MySQL change data capture (a consistent snapshot
//! handing over to the binlog) and MySQL polling for servers without binlog
//! access.
pub mod binlog;
mod capture;
pub mod kafka;
mod keyset;
pub mod polling;
mod snapshot;

use serde::{Deserialize, Serialize};

use self::binlog::BinlogSourceConfig;
use self::kafka::{KafkaSource, KafkaSourceConfig};
use self::polling::PollingSourceConfig;
use crate::kafka::ClientProperties;

pub use self::binlog::BinlogDistance;
pub use self::capture::MysqlCapture;
pub use self::polling::{PollingMarks, PollingSource};
pub use self::snapshot::SnapshotProgress;
use crate::mysql::{BinlogCheckpoint, MysqlError};

/// Where records come from.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceConfig {
    /// MySQL/MariaDB change data capture: a snapshot, then the binlog.
    MysqlBinlog(BinlogSourceConfig),
    /// MySQL/MariaDB tables polled by timestamp and/or id column.
    MysqlPoll(PollingSourceConfig),
    /// Kafka topics read in a consumer group.
    Kafka(KafkaSourceConfig),
}

impl SourceConfig {
    /// Checks offline what the source will read as it starts: its URL and
    /// TLS files, or its Kafka client's properties and the files they name.
    pub fn check(&self) -> Result<(), SourceError> {
        match self {
            SourceConfig::MysqlBinlog(c) => {
                check_tables(&c.tables)?;
                if c.server_id == 0 {
                    return Err(SourceError::Settings(
                        "server_id 0 is the server's own: give a number no other replica of the server uses".into(),
                    ));
                }
                crate::mysql::check_settings(&c.url, c.tls.as_ref())?;
            }
            SourceConfig::MysqlPoll(c) => {
                check_tables(&c.tables.iter().map(|t| t.table.clone()).collect::<Vec<_>>())?;
                crate::mysql::check_settings(&c.url, c.tls.as_ref())?;
            }
            SourceConfig::Kafka(c) => KafkaSource::check(c)?,
        }
        Ok(())
    }

    /// Makes the files it names relative to `base`, the pipeline file's directory.
    pub(crate) fn rebase(&mut self, base: &std::path::Path) {
        let tls = match self {
            SourceConfig::MysqlBinlog(c) => c.tls.as_mut(),
            SourceConfig::MysqlPoll(c) => c.tls.as_mut(),
            SourceConfig::Kafka(_) => None,
        };
        if let Some(tls) = tls {
            tls.rebase(base);
        }
    }

    /// The name the pipeline file gives this kind of source.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::MysqlBinlog(_) => "mysql-binlog",
            SourceConfig::MysqlPoll(_) => "mysql-poll",
            SourceConfig::Kafka(_) => "kafka",
        }
    }

    /// The Kafka cluster this source reads, if it reads one.
    pub fn kafka(&self) -> Option<(&str, &ClientProperties)> {
        match self {
            SourceConfig::Kafka(c) => Some((&c.brokers, &c.properties)),
            SourceConfig::MysqlBinlog(_) | SourceConfig::MysqlPoll(_) => None,
        }
    }
}

/// `tables` names at least one `database.table` (or `database.*`).
fn check_tables(tables: &[String]) -> Result<(), SourceError> {
    if tables.is_empty() {
        return Err(SourceError::Settings(
            "tables is empty: name at least one database.table (or database.*)".into(),
        ));
    }
    match tables
        .iter()
        .find(|t| !t.split_once('.').is_some_and(|(db, table)| !db.is_empty() && !table.is_empty()))
    {
        Some(bad) => Err(SourceError::Settings(format!(
            "tables: `{bad}` is not database.table (or database.*)"
        ))),
        None => Ok(()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Mysql(#[from] MysqlError),
    #[error("the MySQL server ended the binlog stream (a restart or shutdown)")]
    StreamEnded,
    #[error(
        "the binlog no longer holds the stored position {position}: {message}. The binlog was purged or reset \
         (RESET MASTER) while the pipeline was stopped or behind. To start over, with a new snapshot as \
         `snapshot` says: `sluice positions reset FILE {pipeline}`; to start from another position: \
         `sluice positions set FILE {pipeline} --binlog FILE:POS` (or --gtid STATE)"
    )]
    PositionLost {
        pipeline: String,
        position: String,
        message: String,
    },
    #[error("binlog: cannot decode {what}: {message}")]
    Decode { what: String, message: String },
    #[error("Kafka source: {0} (check `brokers`, `topics` and the client properties)")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Broker(#[from] crate::kafka::BrokerError),
    /// A setting found wrong before anything connects.
    #[error("{0}")]
    Settings(String),
}

impl From<mysql_async::Error> for SourceError {
    fn from(error: mysql_async::Error) -> Self {
        SourceError::Mysql(MysqlError::Query(error))
    }
}

impl SourceError {
    /// The server lacks what the source needs (a setting, a privilege, a table).
    pub(crate) fn setup(message: impl Into<String>) -> Self {
        SourceError::Mysql(MysqlError::ServerSetup(message.into()))
    }

    /// Whether trying again later may succeed (see `PipelineError::is_transient`).
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Mysql(e) => e.is_transient(),
            SourceError::StreamEnded | SourceError::Kafka(_) => true,
            SourceError::Broker(e) => e.is_transient(),
            SourceError::PositionLost { .. } | SourceError::Decode { .. } | SourceError::Settings(_) => false,
        }
    }
}

/// What a source stores to resume exactly where delivery stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourcePosition {
    Snapshot(SnapshotProgress),
    Binlog(BinlogCheckpoint),
    Polling(PollingMarks),
}

/// As an operator reads it: where the binlog stream is, or how far the
/// snapshot or the polling got.
impl std::fmt::Display for SourcePosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourcePosition::Binlog(at) => {
                write!(f, "binlog {}:{}", at.file, at.pos)?;
                match &at.gtid {
                    Some(gtid) => write!(f, " gtid {gtid}"),
                    None => Ok(()),
                }
            }
            SourcePosition::Snapshot(progress) => {
                write!(f, "snapshot: {} tables done", progress.completed.len())?;
                match &progress.cursor {
                    Some(cursor) => write!(f, ", reading {}", cursor.table),
                    None => Ok(()),
                }
            }
            SourcePosition::Polling(marks) => write!(f, "polling {} tables", marks.tables.len()),
        }
    }
}

/// Records, and the position to store once they (and all before) are delivered.
pub struct SourceBatch {
    pub records: Vec<crate::record::Record>,
    /// Rows that could not be decoded, with why: for the dead-letter queue.
    pub undecodable: Vec<(crate::record::Record, String)>,
    pub checkpoint: Option<SourcePosition>,
    /// The source has nothing more to give (a snapshot-only run is complete).
    pub finished: bool,
    /// The last records belong to a transaction (or a table read without a
    /// key) whose position comes with a later batch: a stop right after
    /// this batch would have a restart send them again.
    pub open: bool,
}

impl SourceBatch {
    fn empty() -> Self {
        SourceBatch {
            records: Vec::new(),
            undecodable: Vec::new(),
            checkpoint: None,
            finished: false,
            open: false,
        }
    }
}
