//! Runs batches through one plugin for one pipeline: a long-lived instance
//! (plugin state survives between batches), replaced after any failure, and
//! moved to a new version only between batches.
use std::sync::Arc;

use wasmtime::{Store, Trap};

use super::PluginError;
use super::bindings::Plugin;
use super::codec::{Decoded, Outputs, decode, encode};
use super::directory::PluginSlot;
use super::engine::{EPOCH_TICK, PluginEngine};
use super::failure::{Failed, FailureKind, RecordFailure};
use super::limits::PluginLimits;
use super::state::{Counters, HostState};
use super::version::PluginVersion;
use crate::record::Record;

/// Failed calls allowed while isolating the bad records of one batch; past
/// that, the records still unresolved share the last failure (so a plugin
/// that always times out cannot stall a pipeline for minutes).
const ISOLATION_FAILURES: usize = 12;

/// The plugin's answer for a batch, produced entirely by `version`.
#[derive(Debug)]
pub struct BatchOutput {
    pub version: Arc<PluginVersion>,
    /// One entry per input record, in order: its outputs, or the record
    /// itself with the reason it failed.
    pub outputs: Vec<Result<Outputs, Failed>>,
}

pub struct PluginRunner {
    engine: Arc<PluginEngine>,
    slot: Arc<PluginSlot>,
    config: Vec<(String, String)>,
    limits: PluginLimits,
    counters: Counters,
    live: Option<Live>,
    /// The last version whose instance could not start, so it is not retried per batch.
    refused: Option<String>,
}

impl std::fmt::Debug for PluginRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let version = self.live.as_ref().map(|l| l.version.hash.as_str());
        f.debug_struct("PluginRunner").field("plugin", &self.slot.name()).field("version", &version).finish()
    }
}

struct Live {
    version: Arc<PluginVersion>,
    store: Store<HostState>,
    plugin: Plugin,
}

impl PluginRunner {
    pub(crate) fn new(
        engine: Arc<PluginEngine>,
        slot: Arc<PluginSlot>,
        config: Vec<(String, String)>,
        limits: PluginLimits,
    ) -> Result<Self, PluginError> {
        let mut runner = PluginRunner { engine, slot, config, limits, counters: Counters::default(), live: None, refused: None };
        let version = runner.slot.current();
        runner.live = Some(runner.instantiate(&version).map_err(|reason| PluginError::Refused {
            name: version.name.to_string(),
            reason,
        })?);
        Ok(runner)
    }

    pub fn name(&self) -> &str {
        self.slot.name()
    }

    pub fn counters(&self) -> Counters {
        self.counters.clone()
    }

    /// The version the next batch will run on.
    pub fn version(&mut self) -> Arc<PluginVersion> {
        self.ensure_live();
        self.live.as_ref().map(|l| l.version.clone()).unwrap_or_else(|| self.slot.current())
    }

    /// Transforms a batch; never fails as a whole. Every input record gets its
    /// outputs or its own failure, all from one plugin version.
    pub fn transform(&mut self, records: Vec<Record>) -> BatchOutput {
        let version = self.version();
        let mut failures_left = ISOLATION_FAILURES;
        let mut outputs = Vec::with_capacity(records.len());
        self.run_isolating(&version, records, &mut failures_left, &mut outputs);
        BatchOutput { version, outputs }
    }

    /// Runs `batch`; when the call fails as a whole, splits it in halves to
    /// find the records that cause it, so good records still get through.
    fn run_isolating(
        &mut self,
        version: &Arc<PluginVersion>,
        mut records: Vec<Record>,
        failures_left: &mut usize,
        outputs: &mut Decoded,
    ) {
        let n = records.len();
        if n == 0 {
            return;
        }
        let failure = match self.call(version, records) {
            Ok(decoded) => return outputs.extend(decoded),
            Err((failure, back)) => {
                records = back;
                failure
            }
        };
        *failures_left = failures_left.saturating_sub(1);
        if n == 1 || *failures_left == 0 {
            tracing::warn!(plugin = %version.name, version = %version.hash, records = n, "{failure}");
            return outputs.extend(records.into_iter().map(|record| Err(Failed { record, failure: failure.clone() })));
        }
        let right = records.split_off(n / 2);
        self.run_isolating(version, records, failures_left, outputs);
        self.run_isolating(version, right, failures_left, outputs);
    }

    /// One call into the plugin and the checked reading of its answer. A
    /// trap, or an answer that breaks the contract as a whole, fails the call.
    fn call(&mut self, version: &Arc<PluginVersion>, records: Vec<Record>) -> Result<Decoded, (RecordFailure, Vec<Record>)> {
        let mut live = match self.live.take() {
            Some(live) => live,
            None => match self.instantiate(version) {
                Ok(live) => live,
                Err(reason) => return Err((RecordFailure::new(FailureKind::Trap, reason), records)),
            },
        };
        live.store.data_mut().memory.hit = None;
        live.store.set_epoch_deadline(self.budget_ticks());
        let encoded = encode(&records);
        match live.plugin.sluice_plugin_transform().call_transform(&mut live.store, &encoded.batch) {
            Ok(result) => {
                let decoded = decode(result, records, &encoded.schemas)
                    .map_err(|(message, records)| (RecordFailure::new(FailureKind::BadOutput, message), records))?;
                self.live = Some(live);
                Ok(decoded)
            }
            // The instance is poisoned after a trap: drop it; the next call
            // starts a fresh one from the same version.
            Err(e) => Err((self.classify(e, &live.store), records)),
        }
    }

    /// Moves to the slot's current version if it changed and starts cleanly
    /// with this runner's config; otherwise keeps the old one serving.
    fn ensure_live(&mut self) {
        let current = self.slot.current();
        let up_to_date = self.live.as_ref().is_some_and(|l| Arc::ptr_eq(&l.version, &current));
        if up_to_date || self.refused.as_deref() == Some(current.hash.as_str()) {
            return;
        }
        match self.instantiate(&current) {
            Ok(live) => {
                self.live = Some(live);
                self.refused = None;
            }
            Err(reason) => {
                tracing::error!(plugin = %current.name, version = %current.hash,
                    "new plugin version refused, the previous one keeps serving: {reason}");
                self.refused = Some(current.hash.clone());
            }
        }
    }

    fn instantiate(&self, version: &Arc<PluginVersion>) -> Result<Live, String> {
        let state = HostState::new(version.name.clone(), &self.limits, self.counters.clone());
        let mut store = Store::new(&self.engine.engine, state);
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(self.budget_ticks());
        let plugin = version.pre.instantiate(&mut store).map_err(|e| format!("cannot instantiate: {e:#}"))?;
        match plugin.sluice_plugin_transform().call_init(&mut store, &self.config) {
            Ok(Ok(())) => Ok(Live { version: version.clone(), store, plugin }),
            Ok(Err(message)) => Err(format!("init refused its config: {message}")),
            Err(e) => Err(format!("init failed: {}", self.classify(e, &store))),
        }
    }

    fn budget_ticks(&self) -> u64 {
        (self.limits.batch_timeout_ms / EPOCH_TICK.as_millis() as u64).max(1)
    }

    fn classify(&self, error: wasmtime::Error, store: &Store<HostState>) -> RecordFailure {
        if let Some(desired) = store.data().memory.hit {
            return RecordFailure::new(
                FailureKind::OutOfMemory,
                format!(
                    "tried to grow memory to {} MiB, over its cap of {} MiB (limits.memory_mb)",
                    desired.div_ceil(1 << 20),
                    self.limits.memory_mb
                ),
            );
        }
        if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return RecordFailure::new(
                FailureKind::Timeout,
                format!("ran past its budget of {} ms (limits.batch_timeout_ms)", self.limits.batch_timeout_ms),
            );
        }
        let stderr = store.data().stderr.tail();
        let detail = stderr.lines().rev().find(|l| l.contains("panicked")).unwrap_or(&stderr);
        if detail.is_empty() {
            RecordFailure::new(FailureKind::Trap, format!("{error:#}"))
        } else {
            RecordFailure::new(FailureKind::Trap, format!("{detail} ({error})"))
        }
    }
}
