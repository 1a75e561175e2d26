//! How many binlog bytes lie between a pipeline's stored position and the
//! end of the server's binlog: read every few seconds on a connection of its
//! own, for the `binlog_bytes_behind` metric. A failure to read it is
//! logged at debug level and tried again; it never stops the pipeline.
use std::time::Duration;

use mysql_async::prelude::Queryable;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::BinlogSourceConfig;
use crate::mysql::BinlogCheckpoint;
use crate::telemetry::PipelineTelemetry;

const EVERY: Duration = Duration::from_secs(2);

pub struct BinlogDistance {
    stored: watch::Sender<Option<BinlogCheckpoint>>,
    task: JoinHandle<()>,
}

impl BinlogDistance {
    pub fn watch(config: &BinlogSourceConfig, telemetry: PipelineTelemetry) -> Self {
        let (stored, mut position) = watch::channel(None::<BinlogCheckpoint>);
        let (url, tls) = (config.url.clone(), config.tls.clone());
        let task = tokio::spawn(async move {
            let mut conn = None;
            loop {
                tokio::time::sleep(EVERY).await;
                let Some(at) = position.borrow_and_update().clone() else { continue };
                if conn.is_none() {
                    conn = crate::mysql::connect(&url, tls.as_ref())
                        .await
                        .inspect_err(|e| tracing::debug!("binlog distance: {e}"))
                        .ok();
                }
                let Some(c) = conn.as_mut() else { continue };
                // MySQL 8 adds a third column (Encrypted): read by index.
                match c.query::<mysql_async::Row, _>("SHOW BINARY LOGS").await {
                    Ok(rows) => {
                        let files: Vec<(String, u64)> = rows
                            .iter()
                            .filter_map(|row| Some((row.get::<String, _>(0)?, row.get::<u64, _>(1)?)))
                            .collect();
                        telemetry.binlog_bytes_behind(bytes_behind(&files, &at));
                    }
                    Err(e) => {
                        tracing::debug!("binlog distance: {e}");
                        conn = None;
                    }
                }
            }
        });
        BinlogDistance { stored, task }
    }

    pub fn stored(&self, at: &BinlogCheckpoint) {
        self.stored.send_replace(Some(at.clone()));
    }
}

impl Drop for BinlogDistance {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Bytes from `at` to the end of the last file, across the files after it.
/// Binlog file names sort in their order (a fixed-width sequence number).
fn bytes_behind(files: &[(String, u64)], at: &BinlogCheckpoint) -> u64 {
    files
        .iter()
        .filter(|(name, _)| name.as_str() >= at.file.as_str())
        .map(|(name, size)| if *name == at.file { size.saturating_sub(at.pos) } else { *size })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_distance_spans_the_files_after_the_stored_one() {
        let files = [
            ("b.000001".to_owned(), 900),
            ("b.000002".to_owned(), 1000),
            ("b.000003".to_owned(), 300),
        ];
        let at = |file: &str, pos| BinlogCheckpoint {
            file: file.into(),
            pos,
            gtid: None,
        };
        assert_eq!(bytes_behind(&files, &at("b.000002", 400)), 600 + 300);
        assert_eq!(bytes_behind(&files, &at("b.000003", 300)), 0);
        assert_eq!(bytes_behind(&files, &at("b.000001", 4)), 896 + 1000 + 300);
    }
}
