//! A repair through the pipeline: the source's current rows of the keys
//! that differ go out again through the pipeline's Kafka sink as `read`
//! records, for the sink that applies the topic to fix the target with. A
//! key the source no longer has goes out as a delete of the row the target
//! holds (its whole row, so that a conflict rule compares its version).
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value as Wire};

use super::{TableReport, VerifyError};
use crate::mysql::catalog::{TableInfo, key_equals, quote, table_info};
use crate::mysql::query_rows::{QueryShape, values};
use crate::pipeline::PipelineConfig;
use crate::record::{Op, Position, Record};
use crate::sinks::SinkConfig;
use crate::sinks::kafka::KafkaSink;

#[derive(Debug, thiserror::Error)]
pub enum ReemitError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Sink(#[from] crate::sinks::SinkError),
    #[error("{0}")]
    Refused(String),
}

impl From<mysql_async::Error> for ReemitError {
    fn from(error: mysql_async::Error) -> Self {
        ReemitError::Verify(error.into())
    }
}

/// Sends the differing rows of `report` through `pipeline`'s sink and
/// waits until the broker has them; returns how many records went out.
pub async fn reemit(source: &mut Conn, target: &mut Conn, pipeline: &PipelineConfig, report: &TableReport) -> Result<usize, ReemitError> {
    let SinkConfig::Kafka(sink_config) = &pipeline.sink else {
        return Err(ReemitError::Refused(format!(
            "pipeline `{}` does not write to Kafka",
            pipeline.name
        )));
    };
    let (database, table) = report.table.split_once('.').expect("db.table");
    let info = table_info(source, database, table).await.map_err(VerifyError::from)?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut records = Vec::new();
    for diff in report.missing.iter().chain(&report.different).chain(&report.extra) {
        // A position of its own per record: each re-emitted row is a change
        // of its own to a consumer that drops duplicates by dedup id.
        let position = Position::Other(format!("repair:{now_ms}:{}", records.len()));
        if let Some((shape, row)) = read_row(source, &info, &diff.key).await? {
            records.push(Record::read(position, now_ms, shape.schema.clone(), row));
        } else if let Some((shape, row)) = read_row(target, &info, &diff.key).await? {
            records.push(Record {
                op: Op::Delete,
                before: Some(row),
                after: None,
                ..Record::read(position, now_ms, shape.schema.clone(), Vec::new())
            });
        }
    }
    if records.is_empty() {
        return Ok(0);
    }
    let mut sink = KafkaSink::new(sink_config, &pipeline.name, pipeline.site.as_deref())?;
    let mut refused = sink.prepare(&records);
    let (acks, too_large) = sink.send(&records).await?;
    refused.extend(too_large);
    if let Some(first) = refused.first() {
        return Err(ReemitError::Refused(format!(
            "{} row(s) could not be sent; the first: {}",
            refused.len(),
            first.failure
        )));
    }
    acks.wait().await?;
    Ok(records.len())
}

/// The row with `key` as the pipeline's source would read it, with the
/// shape of its record; None when there is no such row.
async fn read_row(conn: &mut Conn, info: &TableInfo, key: &[Wire]) -> Result<Option<(QueryShape, Vec<crate::record::Value>)>, ReemitError> {
    let columns = info.columns.iter().map(|c| quote(&c.name)).collect::<Vec<_>>().join(", ");
    let matches = key_equals(&info.key);
    let mut result = conn
        .exec_iter(format!("SELECT {columns} FROM {} WHERE {matches}", info.sql_name()), key.to_vec())
        .await?;
    let Some(columns) = result.columns() else { return Ok(None) };
    let shape = QueryShape::new(info, &columns);
    let row = result.next().await?;
    result.drop_result().await?;
    Ok(row.map(|row| {
        let decoded = shape.decode(row.unwrap());
        let row = values(&decoded).to_vec();
        (shape, row)
    }))
}
