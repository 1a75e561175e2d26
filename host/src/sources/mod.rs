//! Where records come from.
pub mod binlog;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot connect to MySQL at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error("MySQL server is not set up for change data capture: {0}")]
    ServerSetup(String),
    #[error("MySQL: {0}")]
    Mysql(#[from] mysql_async::Error),
    #[error("binlog: cannot decode {what}: {message}")]
    Decode { what: String, message: String },
}
