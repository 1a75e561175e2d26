//! A binlog position: where a stream resumes, and where a server is now.
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};

use super::MysqlError;

/// Where to resume: the end of the last transaction fully delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogCheckpoint {
    pub file: String,
    pub pos: u64,
    /// The server's GTID state at this point, where it keeps one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
}

/// Where the server's binlog ends now, with its GTID set where MySQL tells it.
pub async fn current_position(conn: &mut Conn) -> Result<BinlogCheckpoint, MysqlError> {
    let row: Option<mysql_async::Row> = match conn.query_first("SHOW BINARY LOG STATUS").await {
        Ok(row) => row,
        // MariaDB and MySQL before 8.2 only know the older statement.
        Err(_) => conn.query_first("SHOW MASTER STATUS").await?,
    };
    let empty = || MysqlError::ServerSetup("SHOW MASTER STATUS is empty: is log_bin on?".into());
    let row = row.ok_or_else(empty)?;
    let (file, pos): (Option<String>, Option<u64>) = (row.get(0), row.get(1));
    // MySQL only: the GTID set at this position, which it cannot tell later.
    let executed = row
        .columns_ref()
        .iter()
        .position(|c| c.name_str().eq_ignore_ascii_case("Executed_Gtid_Set"));
    let gtid = executed.and_then(|i| row.get::<Option<String>, _>(i)).flatten();
    Ok(BinlogCheckpoint {
        file: file.ok_or_else(empty)?,
        pos: pos.ok_or_else(empty)?,
        gtid,
    })
}
