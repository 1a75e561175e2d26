//! Runs batches through one plugin for one pipeline: a long-lived instance
//! (plugin state survives between batches), replaced after any failure, and
//! moved to a new version only between batches.
#![allow(
    clippy::result_large_err,
    reason = "a record that fails comes back whole, by value like one that succeeds: both variants are as large"
)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use super::PluginError;
use super::bindings::Plugin;
use super::codec::{Decoded, Outputs, decode, encode};
use super::engine::{EPOCH_TICK, PluginEngine, SleepRefused};
use super::failure::Failed;
use super::limits::PluginLimits;
use super::slot::PluginSlot;
use super::state::{Counters, HostState};
use super::version::PluginVersion;
use crate::record::Record;
use crate::rejected::{FailureKind, RecordFailure};
use crate::telemetry::PluginTelemetry;

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
    warned_batch: Option<Instant>,
    telemetry: Option<PluginTelemetry>,
}

const BATCH_WARNING_EVERY: Duration = Duration::from_secs(60);

impl std::fmt::Debug for PluginRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let version = self.live.as_ref().map(|l| l.version.hash.as_str());
        f.debug_struct("PluginRunner")
            .field("plugin", &self.slot.name())
            .field("version", &version)
            .finish()
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
        let mut runner = PluginRunner {
            engine,
            slot,
            config,
            limits,
            counters: Counters::default(),
            live: None,
            refused: None,
            warned_batch: None,
            telemetry: None,
        };
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

    /// Reports calls, failures, reloads and the serving version from now on.
    pub fn observe(&mut self, telemetry: PluginTelemetry) {
        let mut telemetry = telemetry;
        if let Some(live) = &self.live {
            telemetry.serving(&live.version.hash);
        }
        self.telemetry = Some(telemetry);
    }

    /// The version the next batch will run on.
    pub fn version(&mut self) -> Arc<PluginVersion> {
        self.ensure_live();
        self.live.as_ref().map(|l| l.version.clone()).unwrap_or_else(|| self.slot.current())
    }

    /// Transforms a batch; never fails as a whole. Every input record gets its
    /// outputs or its own failure, all from one plugin version.
    ///
    /// When the batch's call fails as a whole (a trap, its time budget, an
    /// answer too large), each of its records runs alone under
    /// `record_timeout_ms`, and only a record that fails alone is blamed: a
    /// bad record costs its batch's failed call and its own run, and no good
    /// record of the batch fails with it.
    pub fn transform(&mut self, records: Vec<Record>) -> BatchOutput {
        let version = self.version();
        let alone = records.len() == 1;
        let batch_budget = self.limits.batch_timeout_ms;
        let outputs = match self.call(&version, records, batch_budget) {
            Ok(decoded) => decoded,
            Err((failure, mut records)) if alone => {
                let record = records.pop().expect("the record comes back");
                vec![Err(self.blame(&version, record, failure))]
            }
            Err((failure, records)) => {
                let count = records.len();
                tracing::debug!(plugin = %version.name, version = %version.hash, records = count,
                    "the batch's call failed ({failure}); running its records one by one");
                let outputs: Vec<_> = records.into_iter().map(|record| self.run_alone(&version, record)).collect();
                if outputs.iter().all(Result::is_ok) {
                    self.warn_batch_too_large(&version, count, &failure);
                }
                outputs
            }
        };
        if let Some(telemetry) = &self.telemetry {
            for failed in outputs.iter().filter_map(|o| o.as_ref().err()) {
                telemetry.failed(&version.hash, failed.failure.kind.as_str());
            }
        }
        BatchOutput { version, outputs }
    }

    /// A batch failed as a whole, yet none of its records fails alone: the
    /// batch is too much for the plugin's limits, and every such batch costs
    /// its failed call plus a call per record. Said once a minute at most.
    fn warn_batch_too_large(&mut self, version: &PluginVersion, records: usize, failure: &RecordFailure) {
        if self.warned_batch.is_some_and(|at| at.elapsed() < BATCH_WARNING_EVERY) {
            return;
        }
        self.warned_batch = Some(Instant::now());
        tracing::warn!(
            plugin = %version.name,
            version = %version.hash,
            "a batch of {records} records failed as a whole ({failure}) but each record passed alone: \
             the batch exceeds the plugin's limits (limits.batch_timeout_ms {} ms, limits.memory_mb {} MiB), \
             so each batch is run again record by record; raise those limits or make the source's batches smaller",
            self.limits.batch_timeout_ms,
            self.limits.memory_mb
        );
    }

    fn run_alone(&mut self, version: &Arc<PluginVersion>, record: Record) -> Result<Outputs, Failed> {
        let budget = self.limits.record_timeout_ms.min(self.limits.batch_timeout_ms);
        match self.call(version, vec![record], budget) {
            Ok(mut decoded) => decoded.pop().expect("one answer per record"),
            Err((failure, mut back)) => Err(self.blame(version, back.pop().expect("the record comes back"), failure)),
        }
    }

    /// A record that failed on its own, logged with where it came from.
    fn blame(&self, version: &PluginVersion, record: Record, failure: RecordFailure) -> Failed {
        tracing::warn!(
            plugin = %version.name,
            version = %version.hash,
            position = %record.position,
            key = %record.key_text(),
            "{failure}"
        );
        Failed { record, failure }
    }

    /// One call into the plugin under a budget of `budget_ms`, and the
    /// checked reading of its answer. A trap, or an answer that breaks the
    /// contract or the limits as a whole, fails the call.
    fn call(
        &mut self,
        version: &Arc<PluginVersion>,
        records: Vec<Record>,
        budget_ms: u64,
    ) -> Result<Decoded, (RecordFailure, Vec<Record>)> {
        let mut live = match self.live.take() {
            Some(live) => live,
            None => match self.instantiate(version) {
                Ok(live) => live,
                Err(reason) => return Err((RecordFailure::new(FailureKind::Trap, reason), records)),
            },
        };
        live.store.data_mut().memory.hit = None;
        let dropped = live.store.data().log.restart();
        if dropped > 0 {
            tracing::warn!(plugin = %version.name, dropped_bytes = dropped, "the plugin's log of its last batch was over limits.log_bytes_per_batch; the rest was dropped");
        }
        live.store.set_epoch_deadline(ticks(budget_ms));
        let encoded = encode(&records);
        let started = Instant::now();
        let answer = live
            .plugin
            .sluice_plugin_transform()
            .call_transform(&mut live.store, &encoded.batch);
        if let Some(telemetry) = &mut self.telemetry {
            telemetry.call(&version.hash, records.len(), started.elapsed());
        }
        match answer {
            Ok(result) => {
                let decoded = decode(result, records, &encoded.schemas, &self.limits)
                    .map_err(|(message, records)| (RecordFailure::new(FailureKind::BadOutput, message), records))?;
                self.live = Some(live);
                Ok(decoded)
            }
            // The instance is poisoned after a trap: drop it; the next call
            // starts a fresh one from the same version.
            Err(e) => Err((self.classify(e, &live.store, budget_ms), records)),
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
                if let Some(telemetry) = &mut self.telemetry {
                    telemetry.serving(&current.hash);
                }
            }
            Err(reason) => {
                tracing::error!(plugin = %current.name, version = %current.hash,
                    "new plugin version refused, the previous one keeps serving: {reason}");
                if let Some(telemetry) = &self.telemetry {
                    telemetry.refused(&current.hash, &reason);
                }
                self.refused = Some(current.hash.clone());
            }
        }
    }

    fn instantiate(&self, version: &Arc<PluginVersion>) -> Result<Live, String> {
        let state = HostState::new(version.name.clone(), &self.limits, self.counters.clone());
        let mut store = Store::new(&self.engine.engine, state);
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(ticks(self.limits.batch_timeout_ms));
        let plugin = version
            .pre
            .instantiate(&mut store)
            .map_err(|e| format!("cannot instantiate: {e:#}"))?;
        match plugin.sluice_plugin_transform().call_init(&mut store, &self.config) {
            Ok(Ok(())) => Ok(Live {
                version: version.clone(),
                store,
                plugin,
            }),
            Ok(Err(message)) => Err(format!("init refused its config: {message}")),
            Err(e) => Err(format!("init failed: {}", self.classify(e, &store, self.limits.batch_timeout_ms))),
        }
    }

    /// A short reason a person can act on; the wasm backtrace goes to the
    /// log at debug level, never into a dead letter's header.
    fn classify(&self, error: wasmtime::Error, store: &Store<HostState>, budget_ms: u64) -> RecordFailure {
        tracing::debug!(plugin = %self.slot.name(), "plugin failure: {error:?}");
        if let Some(desired) = store.data().memory.hit {
            return RecordFailure::new(
                FailureKind::OutOfMemory,
                format!(
                    "asked for {} MiB of memory, over its cap of {} MiB (limits.memory_mb)",
                    desired.div_ceil(1 << 20),
                    self.limits.memory_mb
                ),
            );
        }
        if let Some(sleep) = error.downcast_ref::<SleepRefused>() {
            return RecordFailure::new(FailureKind::Trap, sleep.to_string());
        }
        let trap = error.downcast_ref::<Trap>().copied();
        if trap == Some(Trap::Interrupt) {
            let limit = if budget_ms == self.limits.batch_timeout_ms {
                "limits.batch_timeout_ms"
            } else {
                "limits.record_timeout_ms"
            };
            return RecordFailure::new(FailureKind::Timeout, format!("ran past its budget of {budget_ms} ms ({limit})"));
        }
        if let Some(panic) = store.data().stderr.panic_report().as_deref().and_then(panic_message) {
            return RecordFailure::new(FailureKind::Trap, panic);
        }
        if let Some(exit) = error.downcast_ref::<I32Exit>() {
            return RecordFailure::new(FailureKind::Trap, format!("called exit({})", exit.0));
        }
        let message = match trap {
            Some(Trap::StackOverflow) => "stack overflow".to_owned(),
            // A Rust guest's stack lives in its linear memory: running off
            // its end is an access out of bounds, deep in a recursion.
            Some(Trap::MemoryOutOfBounds) if error.downcast_ref::<WasmBacktrace>().is_some_and(recursing) => {
                "stack overflow (out of bounds memory access in a recursion)".to_owned()
            }
            Some(trap) => trap.to_string(),
            // The outer layers of an error from a call are its wasm backtrace.
            None => error.root_cause().to_string(),
        };
        RecordFailure::new(FailureKind::Trap, message)
    }
}

/// Whether the frames wasmtime kept (the innermost 20 by default) are
/// mostly one function: a recursion, not a single bad access.
fn recursing(backtrace: &WasmBacktrace) -> bool {
    let frames = backtrace.frames();
    let mut calls: HashMap<u32, usize> = HashMap::new();
    for frame in frames {
        *calls.entry(frame.func_index()).or_default() += 1;
    }
    frames.len() >= 16 && calls.values().any(|&n| n * 2 >= frames.len())
}

fn ticks(budget_ms: u64) -> u64 {
    (budget_ms / EPOCH_TICK.as_millis() as u64).max(1)
}

/// The message of a Rust panic in what the guest wrote to stderr:
/// `thread '…' panicked at src/lib.rs:7:9:` and the lines after it, up to
/// the `note:` that follows, become `panicked: <message> (src/lib.rs:7:9)`.
fn panic_message(stderr: &str) -> Option<String> {
    let at = stderr.rfind(" panicked at ")?;
    let rest = &stderr[at + " panicked at ".len()..];
    let (location, message) = rest.split_once('\n').unwrap_or((rest, ""));
    let message: Vec<&str> = message.lines().take_while(|l| !l.starts_with("note:")).collect();
    let message = message.join(" ");
    let location = location.trim_end_matches(':');
    Some(if message.trim().is_empty() {
        format!("panicked ({location})")
    } else {
        format!("panicked: {} ({location})", message.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::panic_message;

    #[test]
    fn a_panic_reads_as_its_own_message_and_place() {
        let stderr =
            "earlier output\nthread '<unnamed>' panicked at src/lib.rs:52:27:\nthe price is negative\nnote: run with `RUST_BACKTRACE=1`";
        assert_eq!(
            panic_message(stderr).as_deref(),
            Some("panicked: the price is negative (src/lib.rs:52:27)")
        );
        assert_eq!(
            panic_message("thread 'main' panicked at src/a.rs:1:1:\n").as_deref(),
            Some("panicked (src/a.rs:1:1)")
        );
        assert_eq!(panic_message("no panic here"), None);
    }
}
