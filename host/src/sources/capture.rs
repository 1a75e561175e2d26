//! MySQL change data capture as one source: the initial snapshot (as the
//! mode asks), handing over to the binlog stream at the snapshot's position,
//! so the topic holds every row once and then every change after it.
use std::time::Duration;

use super::binlog::{BinlogSource, BinlogSourceConfig, SnapshotMode, check, privilege_hint};
use super::snapshot::SnapshotReader;
use super::{SourceBatch, SourceError, SourcePosition};
use crate::mysql::flavor::ServerFlavor;
use crate::mysql::{TableFilter, current_position};
use crate::telemetry::{PipelineTelemetry, State};

/// Boxed: a phase is replaced at most twice in a run.
enum Phase {
    Snapshot(Box<SnapshotReader>),
    Stream(Box<BinlogSource>),
    Finished,
}

pub struct MysqlCapture {
    config: BinlogSourceConfig,
    pipeline: String,
    flavor: ServerFlavor,
    phase: Phase,
    telemetry: Option<PipelineTelemetry>,
}

impl MysqlCapture {
    /// Checks the server, then resumes from `stored` or starts as the
    /// snapshot mode says.
    pub async fn connect(config: &BinlogSourceConfig, stored: Option<SourcePosition>, pipeline: &str) -> Result<Self, SourceError> {
        let mut conn = check(config).await?;
        let flavor = ServerFlavor::detect(&mut conn).await?;
        let filter = TableFilter::new(&config.tables, &config.exclude);
        let phase = match (stored, config.snapshot) {
            (Some(SourcePosition::Binlog(_)), SnapshotMode::SnapshotOnly) => Phase::Finished,
            (Some(SourcePosition::Binlog(at)), _) => {
                Phase::Stream(Box::new(BinlogSource::start(conn, flavor, config, at, pipeline).await?))
            }
            (Some(SourcePosition::Snapshot(progress)), _) => Phase::Snapshot(Box::new(
                SnapshotReader::open(conn, flavor, &filter, Some(progress), pipeline).await?,
            )),
            (Some(SourcePosition::Polling(_)), _) => {
                return Err(SourceError::setup(
                    "the stored position belongs to a polling source; delete the pipeline's position file to start over",
                ));
            }
            (None, SnapshotMode::Never) => {
                let at = current_position(&mut conn).await.map_err(privilege_hint)?;
                Phase::Stream(Box::new(BinlogSource::start(conn, flavor, config, at, pipeline).await?))
            }
            (None, _) => Phase::Snapshot(Box::new(SnapshotReader::open(conn, flavor, &filter, None, pipeline).await?)),
        };
        Ok(MysqlCapture {
            config: config.clone(),
            pipeline: pipeline.to_owned(),
            flavor,
            phase,
            telemetry: None,
        })
    }

    /// Reports the snapshot's progress per table, and the end of the snapshot.
    pub fn observe(&mut self, telemetry: &PipelineTelemetry) {
        if let Phase::Snapshot(reader) = &mut self.phase {
            reader.observe(telemetry);
        }
        self.telemetry = Some(telemetry.clone());
    }

    pub fn in_snapshot(&self) -> bool {
        matches!(self.phase, Phase::Snapshot(_))
    }

    pub async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<SourceBatch, SourceError> {
        match &mut self.phase {
            Phase::Stream(stream) => stream.next_batch(max, wait).await,
            Phase::Finished => Ok(SourceBatch {
                finished: true,
                ..SourceBatch::empty()
            }),
            Phase::Snapshot(reader) => match reader.next_chunk(max).await? {
                Some(chunk) => Ok(SourceBatch {
                    // A keyless table's position is stored only once it is read whole.
                    open: chunk.progress.is_none(),
                    records: chunk.records,
                    undecodable: chunk.undecodable,
                    checkpoint: chunk.progress.map(SourcePosition::Snapshot),
                    finished: false,
                }),
                None => {
                    // Every table read: the binlog position of the snapshot is
                    // where the stream starts, with no gap and no overlap.
                    let handover = reader.handover().clone();
                    tracing::info!(pipeline = %self.pipeline, file = %handover.file, pos = handover.pos, "snapshot complete");
                    let checkpoint = Some(SourcePosition::Binlog(handover.clone()));
                    self.phase = if self.config.snapshot == SnapshotMode::SnapshotOnly {
                        Phase::Finished
                    } else {
                        Phase::Stream(Box::new(
                            BinlogSource::start(check(&self.config).await?, self.flavor, &self.config, handover, &self.pipeline).await?,
                        ))
                    };
                    if let Some(telemetry) = &self.telemetry {
                        telemetry.set_state(State::Running, None);
                    }
                    Ok(SourceBatch {
                        checkpoint,
                        ..SourceBatch::empty()
                    })
                }
            },
        }
    }
}
