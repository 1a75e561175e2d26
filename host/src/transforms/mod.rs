//! The plugin chain of a pipeline: each plugin's outputs feed the next; a
//! record a plugin fails on leaves the chain with the plugin's name, version
//! and reason, bound for the dead-letter queue.
use std::sync::Arc;

use crate::origin::{origin_of, set_origin};
use crate::pipeline::PluginStep;
use crate::plugin::{PluginError, PluginHost, PluginRunner};
use crate::record::Record;
use crate::rejected::Rejected;
use crate::telemetry::PipelineTelemetry;

pub struct PluginChain {
    steps: Vec<PluginRunner>,
}

#[derive(Debug, Default)]
pub struct ChainOutput {
    pub records: Vec<Record>,
    pub rejected: Vec<Rejected>,
    /// Records a plugin answered with no output (filtered out).
    pub dropped: usize,
}

impl PluginChain {
    /// Starts every plugin with its config and limits: a bad one fails here.
    pub fn build(host: &PluginHost, steps: &[PluginStep]) -> Result<Self, PluginError> {
        let steps = steps
            .iter()
            .map(|step| host.runner(&step.name, step.flat_config(), step.limits))
            .collect::<Result<_, _>>()?;
        Ok(PluginChain { steps })
    }

    /// [`PluginChain::build`] from async code. A plugin's `init` may write to
    /// stdout or stderr, and WASI's blocking streams start a runtime of their
    /// own, which tokio forbids on one of its worker threads.
    /// Each plugin's calls, failures, reloads and serving version are
    /// reported through `telemetry`.
    pub async fn start(host: Arc<PluginHost>, steps: Vec<PluginStep>, telemetry: &PipelineTelemetry) -> Result<Self, PluginError> {
        let mut chain = match tokio::task::spawn_blocking(move || Self::build(&host, &steps)).await {
            Ok(chain) => chain?,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        };
        for step in &mut chain.steps {
            step.observe(telemetry.plugin(step.name(), &step.counters()));
        }
        Ok(chain)
    }

    pub fn run(&mut self, records: Vec<Record>) -> ChainOutput {
        let mut out = ChainOutput {
            records,
            ..ChainOutput::default()
        };
        for step in &mut self.steps {
            // A change's origin stays with what a plugin makes of it, also
            // when the plugin builds new records: without it, a change
            // applied here would be published again as this site's own.
            let origins: Option<Vec<Option<String>>> = out
                .records
                .iter()
                .any(|r| origin_of(r).is_some())
                .then(|| out.records.iter().map(|r| origin_of(r).map(str::to_owned)).collect());
            let result = step.transform(std::mem::take(&mut out.records));
            // Sized for one output per record, the common case, rather than grown by doubling.
            out.records.reserve(result.outputs.len());
            for (input, output) in result.outputs.into_iter().enumerate() {
                match output {
                    Ok(mut records) => {
                        out.dropped += usize::from(records.is_empty());
                        if let Some(Some(origin)) = origins.as_ref().and_then(|o| o.get(input)) {
                            for record in records.iter_mut().filter(|r| origin_of(r).is_none()) {
                                set_origin(record, origin);
                            }
                        }
                        out.records.extend(records)
                    }
                    Err(failed) => out.rejected.push(Rejected {
                        record: failed.record,
                        plugin: step.name().to_owned(),
                        version: result.version.hash.clone(),
                        failure: failed.failure,
                    }),
                }
            }
        }
        out
    }
}
