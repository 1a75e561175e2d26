use std::io::Write;

use anyhow::{Context, bail};

use super::PositionsCommand;
use crate::mysql::BinlogCheckpoint;
use crate::pipeline::{PipelineConfig, PipelineFile};
use crate::positions::PositionStore;
use crate::sources::SourceConfig;
use crate::sources::SourcePosition;

/// `sluice positions`: what each pipeline of a file has stored, and the way
/// out when a stored position is lost (a purged binlog): start over, or
/// start from a position the operator names.
pub fn run(command: &PositionsCommand, out: &mut dyn Write) -> anyhow::Result<i32> {
    match command {
        PositionsCommand::Show { config } => {
            let file = PipelineFile::load(config)?;
            for pipeline in &file.pipelines {
                let stored: Option<serde_json::Value> = store(&file, pipeline).load()?;
                let text = match (&pipeline.source, stored) {
                    (SourceConfig::Kafka(_), _) => "offsets are kept in the MySQL sink's sluice_offsets table".to_owned(),
                    (_, None) => "nothing stored: the next run starts as `snapshot` says".to_owned(),
                    (_, Some(position)) => position.to_string(),
                };
                writeln!(out, "{}: {text}", pipeline.name)?;
            }
        }
        PositionsCommand::Reset { config, pipeline } => {
            let file = PipelineFile::load(config)?;
            let store = store(&file, mysql_pipeline(&file, pipeline)?);
            if store.remove()? {
                writeln!(
                    out,
                    "{pipeline}: stored position removed; the next run starts as its `snapshot` setting says"
                )?;
            } else {
                writeln!(out, "{pipeline}: no position was stored")?;
            }
        }
        PositionsCommand::Set {
            config,
            pipeline,
            binlog,
            gtid,
        } => {
            let file = PipelineFile::load(config)?;
            let found = mysql_pipeline(&file, pipeline)?;
            if !matches!(found.source, SourceConfig::MysqlBinlog(_)) {
                bail!("pipeline `{pipeline}` does not read the binlog: only a mysql-binlog source takes --binlog");
            }
            let (name, pos) = binlog.rsplit_once(':').context("--binlog takes FILE:POS, e.g. binlog.000042:4")?;
            let pos: u64 = pos
                .parse()
                .with_context(|| format!("--binlog {binlog}: the position after `:` is a byte offset"))?;
            let checkpoint = BinlogCheckpoint {
                file: name.to_owned(),
                pos,
                gtid: gtid.clone(),
            };
            store(&file, found).save(&SourcePosition::Binlog(checkpoint))?;
            writeln!(
                out,
                "{pipeline}: the next run streams the binlog from {binlog}{}",
                gtid.as_ref().map(|g| format!(" (GTID {g})")).unwrap_or_default()
            )?;
        }
    }
    Ok(0)
}

fn store(file: &PipelineFile, pipeline: &PipelineConfig) -> PositionStore {
    PositionStore::new(&file.state_dir, &pipeline.name)
}

/// The pipeline named `name`, which must keep its position in the state directory.
fn mysql_pipeline<'a>(file: &'a PipelineFile, name: &str) -> anyhow::Result<&'a PipelineConfig> {
    let Some(pipeline) = file.pipelines.iter().find(|p| p.name == name) else {
        let names: Vec<&str> = file.pipelines.iter().map(|p| p.name.as_str()).collect();
        bail!("no pipeline `{name}` in the file; it has {}", names.join(", "));
    };
    if let SourceConfig::Kafka(_) = pipeline.source {
        bail!("pipeline `{name}` reads Kafka: its offsets are kept in the MySQL sink's sluice_offsets table, not in the state directory");
    }
    Ok(pipeline)
}
