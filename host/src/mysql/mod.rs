//! The MySQL and MariaDB backend, shared by the sources that read a server
//! and the sink that writes one: connections and TLS, the catalog and
//! identifier quoting, the column decoder, query rows, binlog positions,
//! the server flavor and GTID sets.
pub(crate) mod catalog;
pub(crate) mod charset;
mod connection;
pub(crate) mod decode;
pub(crate) mod flavor;
pub(crate) mod gtid;
mod position;
pub(crate) mod query_rows;

pub use self::catalog::TableFilter;
pub use self::connection::MysqlTls;
pub(crate) use self::connection::{check_settings, connect};
pub use self::position::BinlogCheckpoint;
pub use self::position::current_position;

/// What talking to a MySQL server can fail with, whichever side talks.
#[derive(Debug, thiserror::Error)]
pub enum MysqlError {
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
    #[error("MySQL: {0}")]
    Query(#[from] mysql_async::Error),
    /// The URL or TLS settings, found wrong before connecting.
    #[error("{0}")]
    Settings(String),
}

impl MysqlError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            MysqlError::Connect { source, .. } | MysqlError::Query(source) => is_transient(source),
            MysqlError::TlsSettings { .. } | MysqlError::TlsHandshake { .. } | MysqlError::ServerSetup(_) | MysqlError::Settings(_) => {
                false
            }
        }
    }
}

/// A connection lost or refused, a server shutting down or restarting,
/// a deadlock or lock wait: what trying again can cure.
pub(crate) fn is_transient(error: &mysql_async::Error) -> bool {
    match error {
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => true,
        // Too many connections, shutdown in progress, lock wait timeout,
        // deadlock, a table altered under a snapshot's read, connection killed.
        mysql_async::Error::Server(server) => matches!(server.code, 1040 | 1053 | 1205 | 1213 | 1412 | 1927),
        _ => false,
    }
}
