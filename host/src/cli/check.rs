use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::pipeline::PipelineFile;
use crate::plugin::{PluginEngine, PluginHost};

/// `sluice check`: parse the file, then start every plugin with its config and
/// limits exactly as `run` would, so a bad key or plugin fails here.
pub fn run(path: &Path, out: &mut dyn Write) -> anyhow::Result<i32> {
    let file = PipelineFile::load(path)?;
    let host = PluginHost::open(Arc::new(PluginEngine::new()?), &file.plugin_dir)
        .with_context(|| format!("plugin_dir {}", file.plugin_dir.display()))?;
    for pipeline in &file.pipelines {
        for step in &pipeline.plugins {
            let mut runner = host
                .runner(&step.name, step.flat_config(), step.limits)
                .with_context(|| format!("pipeline `{}`, plugin `{}`", pipeline.name, step.name))?;
            let version = runner.version().hash.clone();
            writeln!(out, "pipeline {}: plugin {} version {} ok", pipeline.name, step.name, version)?;
        }
    }
    writeln!(out, "{}: {} pipeline(s) ok", path.display(), file.pipelines.len())?;
    Ok(0)
}
