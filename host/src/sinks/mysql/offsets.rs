//! Consumed Kafka offsets kept in MySQL, written in the same transaction as
//! the rows they produced: the table is the authority on what was applied.
use mysql_async::prelude::Queryable;
use mysql_async::{Transaction, Value as Wire};

use crate::kafka::Offsets;
use crate::mysql::catalog::quote;

pub struct OffsetsTable {
    name: String,
    pipeline: String,
}

impl OffsetsTable {
    pub fn new(database: &str, pipeline: &str) -> Self {
        OffsetsTable {
            name: format!("{}.sluice_offsets", quote(database)),
            pipeline: pipeline.to_owned(),
        }
    }

    pub async fn create(&self, conn: &mut impl Queryable, database: &str) -> Result<(), mysql_async::Error> {
        conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS {}", quote(database)))
            .await?;
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {} (pipeline VARCHAR(200) NOT NULL, topic VARCHAR(249) NOT NULL, \
             kafka_partition INT NOT NULL, next_offset BIGINT NOT NULL, updated_at TIMESTAMP(6) NOT NULL \
             DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6), PRIMARY KEY (pipeline, topic, kafka_partition))",
            self.name
        ))
        .await
    }

    /// This pipeline's offsets, locked until the transaction ends, so two
    /// members briefly owning one partition (during a rebalance) apply it
    /// one after the other, the second skipping what the first applied.
    pub async fn lock(&self, tx: &mut Transaction<'_>) -> Result<Offsets, mysql_async::Error> {
        let rows: Vec<(String, i32, i64)> = tx
            .exec(
                format!(
                    "SELECT topic, kafka_partition, next_offset FROM {} WHERE pipeline = ? FOR UPDATE",
                    self.name
                ),
                (&self.pipeline,),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(topic, partition, next)| ((topic, partition), next))
            .collect())
    }

    /// This pipeline's offsets as last committed.
    pub async fn read(&self, conn: &mut impl Queryable) -> Result<Offsets, mysql_async::Error> {
        let rows: Vec<(String, i32, i64)> = conn
            .exec(
                format!("SELECT topic, kafka_partition, next_offset FROM {} WHERE pipeline = ?", self.name),
                (&self.pipeline,),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(topic, partition, next)| ((topic, partition), next))
            .collect())
    }

    pub async fn store(&self, tx: &mut Transaction<'_>, offsets: &Offsets) -> Result<(), mysql_async::Error> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut params: Vec<Wire> = Vec::new();
        for ((topic, partition), next) in offsets {
            params.extend([
                self.pipeline.as_str().into(),
                topic.as_str().into(),
                (*partition).into(),
                (*next).into(),
            ]);
        }
        let rows = vec!["(?, ?, ?, ?)"; offsets.len()].join(", ");
        tx.exec_drop(
            format!(
                "INSERT INTO {} (pipeline, topic, kafka_partition, next_offset) VALUES {rows} \
                 ON DUPLICATE KEY UPDATE next_offset = GREATEST(next_offset, VALUES(next_offset))",
                self.name
            ),
            params,
        )
        .await
    }
}
