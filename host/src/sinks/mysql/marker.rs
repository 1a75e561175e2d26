//! The origin marker: before the rows of each origin in its transaction,
//! the sink writes this table's row, so that a binlog source reading this
//! server sees which site the rows that follow were first made at (the
//! binlog keeps a transaction's row events in the order they ran, and
//! streams a large one out before its commit is read: the marker comes
//! first). Each sink connection has its own row, so members of one
//! consumer group do not wait on each other's marker.
use mysql_async::Transaction;
use mysql_async::prelude::Queryable;

use crate::mysql::catalog::quote;
use crate::origin::MARKER_TABLE;

pub struct MarkerTable {
    name: String,
    pipeline: String,
}

impl MarkerTable {
    pub fn new(database: &str, pipeline: &str) -> Self {
        MarkerTable {
            name: format!("{}.{}", quote(database), quote(MARKER_TABLE)),
            pipeline: pipeline.to_owned(),
        }
    }

    /// Creates the table in `database`, which already exists (it holds the
    /// offsets), and forgets the rows of this pipeline's connections that
    /// are gone.
    pub async fn create(&self, conn: &mut impl Queryable) -> Result<(), mysql_async::Error> {
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {} (pipeline VARCHAR(200) NOT NULL, connection BIGINT UNSIGNED NOT NULL, \
             origin VARCHAR({}) NOT NULL, seq BIGINT UNSIGNED NOT NULL, PRIMARY KEY (pipeline, connection))",
            self.name,
            crate::origin::MAX_SITE_LEN
        ))
        .await?;
        conn.exec_drop(
            format!(
                "DELETE FROM {} WHERE pipeline = ? AND connection NOT IN (SELECT ID FROM information_schema.PROCESSLIST)",
                self.name
            ),
            (&self.pipeline,),
        )
        .await
    }

    /// Names `origin` for the rows this transaction writes next. `seq`
    /// changes on every write: an update that changes nothing logs no row.
    pub async fn mark(&self, tx: &mut Transaction<'_>, origin: &str) -> Result<(), mysql_async::Error> {
        tx.exec_drop(
            format!(
                "INSERT INTO {} (pipeline, connection, origin, seq) VALUES (?, CONNECTION_ID(), ?, 1) \
                 ON DUPLICATE KEY UPDATE origin = VALUES(origin), seq = seq + 1",
                self.name
            ),
            (&self.pipeline, origin),
        )
        .await
    }
}
