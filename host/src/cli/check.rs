use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::pipeline::PipelineFile;
use crate::plugin::{PluginEngine, PluginHost};

/// `sluice check`: parse the file, create every Kafka client and read every
/// TLS file, then start every plugin with its config and limits exactly as
/// `run` would, so a bad key, property, file or plugin fails here. No server
/// is reached, unless `--connect` asks to reach them all.
pub fn run(path: &Path, connect: bool, out: &mut dyn Write) -> anyhow::Result<i32> {
    let file = PipelineFile::load(path)?;
    let host = PluginHost::open_only(Arc::new(PluginEngine::new()?), &file.plugin_dir, file.plugin_names())
        .with_context(|| format!("plugin_dir {}", file.plugin_dir.display()))?;
    for line in check_pipelines(&file, &host)? {
        writeln!(out, "{line}")?;
    }
    if connect && !super::connect::check_servers(&file, out)? {
        writeln!(out, "{}: a server did not answer as it should (see above)", path.display())?;
        return Ok(1);
    }
    writeln!(out, "{}: {} pipeline(s) ok", path.display(), file.pipelines.len())?;
    Ok(0)
}

/// What `sluice check` and `sluice run` both do before anything connects:
/// every pipeline's offline checks, and every plugin started with its config
/// and limits. A line per plugin started.
pub(super) fn check_pipelines(file: &PipelineFile, host: &PluginHost) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    for pipeline in &file.pipelines {
        pipeline.check().with_context(|| format!("pipeline `{}`", pipeline.name))?;
        for step in &pipeline.plugins {
            let mut runner = host
                .runner(&step.name, step.flat_config(), step.limits)
                .with_context(|| format!("pipeline `{}`, plugin `{}`", pipeline.name, step.name))?;
            let version = runner.version().hash.clone();
            lines.push(format!("pipeline {}: plugin {} version {} ok", pipeline.name, step.name, version));
        }
    }
    Ok(lines)
}
