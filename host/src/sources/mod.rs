//! Where records come from: MySQL change data capture (a consistent snapshot
//! handing over to the binlog) and MySQL polling for servers without binlog
//! access.
pub mod binlog;
pub mod capture;
pub(crate) mod catalog;
mod charset;
mod connection;
mod decode;
mod flavor;
mod gtid;
pub mod kafka;
mod keyset;
pub mod polling;
pub(crate) mod query_rows;
pub mod snapshot;

use serde::{Deserialize, Serialize};

pub use self::binlog::BinlogCheckpoint;
pub use self::capture::MysqlCapture;
pub use self::connection::MysqlTls;
pub(crate) use self::connection::connect;
pub use self::polling::{PollingMarks, PollingSource};
pub use self::snapshot::SnapshotProgress;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot connect to MySQL at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error("MySQL at {url}: {message}")]
    TlsSettings { url: String, message: String },
    #[error(
        "TLS with MySQL at {url} failed: {message} (the source's or sink's `tls.ca` must name the CA that signed the \
         server's certificate, and the URL's host must be one the certificate names, or add `verify_identity=false` to the URL)"
    )]
    TlsHandshake { url: String, message: String },
    #[error("MySQL server is not set up for change data capture: {0}")]
    ServerSetup(String),
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
    #[error("MySQL: {0}")]
    Mysql(#[from] mysql_async::Error),
    #[error("binlog: cannot decode {what}: {message}")]
    Decode { what: String, message: String },
    #[error("Kafka source: {0} (check `brokers`, `topics` and the client properties)")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("no Kafka broker answers at {brokers}: {source} (check `brokers`, the network and the client properties)")]
    KafkaUnreachable {
        brokers: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

impl SourceError {
    /// Whether trying again later may succeed (see `PipelineError::is_transient`).
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Connect { source, .. } | SourceError::Mysql(source) => mysql_is_transient(source),
            SourceError::StreamEnded | SourceError::Kafka(_) | SourceError::KafkaUnreachable { .. } => true,
            SourceError::TlsSettings { .. }
            | SourceError::TlsHandshake { .. }
            | SourceError::ServerSetup(_)
            | SourceError::PositionLost { .. }
            | SourceError::Decode { .. } => false,
        }
    }
}

/// A connection lost or refused, a server shutting down or restarting,
/// a deadlock or lock wait: what trying again can cure.
pub(crate) fn mysql_is_transient(error: &mysql_async::Error) -> bool {
    match error {
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => true,
        // Too many connections, shutdown in progress, lock wait timeout,
        // deadlock, a table altered under a snapshot's read, connection killed.
        mysql_async::Error::Server(server) => matches!(server.code, 1040 | 1053 | 1205 | 1213 | 1412 | 1927),
        _ => false,
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

/// Records, and the position to store once they (and all before) are delivered.
pub struct SourceBatch {
    pub records: Vec<crate::record::Record>,
    /// Rows that could not be decoded, with why: for the dead-letter queue.
    pub undecodable: Vec<(crate::record::Record, String)>,
    pub checkpoint: Option<SourcePosition>,
    /// The source has nothing more to give (a snapshot-only run is complete).
    pub finished: bool,
}

impl SourceBatch {
    fn empty() -> Self {
        SourceBatch {
            records: Vec::new(),
            undecodable: Vec::new(),
            checkpoint: None,
            finished: false,
        }
    }
}

/// `database.table` and `database.*` include and exclude lists.
#[derive(Debug, Clone)]
pub struct TableFilter {
    include: Vec<(String, String)>,
    exclude: Vec<(String, String)>,
}

impl TableFilter {
    pub fn new(include: &[String], exclude: &[String]) -> Self {
        let split = |names: &[String]| {
            names
                .iter()
                .map(|n| n.split_once('.').map_or((n.clone(), "*".into()), |(d, t)| (d.into(), t.into())))
                .collect()
        };
        TableFilter {
            include: split(include),
            exclude: split(exclude),
        }
    }

    pub fn captures(&self, database: &str, table: &str) -> bool {
        let hit = |list: &[(String, String)]| list.iter().any(|(d, t)| d == database && (t == "*" || t == table));
        hit(&self.include) && !hit(&self.exclude)
    }

    /// Databases named in the include list, for catalog look-ups.
    fn databases(&self) -> impl Iterator<Item = &str> {
        self.include.iter().map(|(d, _)| d.as_str())
    }
}
