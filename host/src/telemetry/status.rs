//! What each pipeline is doing: its state, position, lag, counts, snapshot
//! progress and plugin versions. Kept whether or not metrics are served:
//! `/ready`, `/status`, the status page and the snapshot's progress display
//! read it.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Where a pipeline is in its life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Connecting,
    Snapshot,
    Running,
    /// A failure that trying again may cure; the next attempt is under way
    /// or waiting.
    Retrying,
    /// A snapshot-only pipeline that read everything.
    Finished,
    /// Asked to stop; delivering what it holds.
    Stopping,
    Stopped,
    /// Stopped for good by a failure retrying cannot cure.
    Failed,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Connecting => "connecting",
            State::Snapshot => "snapshot",
            State::Running => "running",
            State::Retrying => "retrying",
            State::Finished => "finished",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Failed => "failed",
        })
    }
}

/// One table of a running or finished snapshot.
pub struct TableProgress {
    pub table: String,
    rows: AtomicU64,
    estimated: AtomicU64,
    started: Instant,
    finished: Mutex<Option<Instant>>,
}

impl TableProgress {
    /// Rows read so far, and the estimate: the server's, refined by the
    /// share of the key range read, and exact once the table is done.
    pub fn update(&self, rows: u64, estimated: u64) {
        self.rows.store(rows, Ordering::Relaxed);
        self.estimated.store(estimated.max(rows), Ordering::Relaxed);
    }

    pub fn finish(&self, rows: u64) {
        self.update(rows, rows);
        *self.finished.lock().expect("progress lock") = Some(Instant::now());
    }

    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    pub fn estimated(&self) -> u64 {
        self.estimated.load(Ordering::Relaxed)
    }

    pub fn is_finished(&self) -> bool {
        self.finished.lock().expect("progress lock").is_some()
    }

    /// Rows per second over the table's read so far.
    pub fn rate(&self) -> f64 {
        let end = self.finished.lock().expect("progress lock").unwrap_or_else(Instant::now);
        self.rows() as f64 / end.duration_since(self.started).as_secs_f64().max(0.001)
    }

    /// The time the rest of the table should take at the rate so far.
    pub fn eta(&self) -> Option<Duration> {
        let (rows, rate) = (self.rows(), self.rate());
        (rows > 0 && !self.is_finished()).then(|| Duration::from_secs_f64(self.estimated().saturating_sub(rows) as f64 / rate))
    }
}

/// A batch read from the source, to be handed back once the sink has
/// acknowledged it: the lag is measured from the oldest batch not yet back.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    seq: u64,
    pub(super) read_at: Instant,
    /// Records the batch held as read (none: a batch that only moves the position).
    pub(super) records: usize,
}

#[derive(Default)]
struct Mutable {
    state: Option<State>,
    reason: Option<String>,
    position: Option<String>,
    plugins: Vec<PluginStatus>,
    /// (when, records written) samples of the last seconds, for the rate.
    samples: VecDeque<(Instant, u64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginStatus {
    pub name: String,
    /// The BLAKE3 prefix of the version serving.
    pub version: String,
    /// A newer version that could not start, and why: the one above serves on.
    pub refused: Option<String>,
}

pub struct PipelineStatus {
    pub name: String,
    pub source: &'static str,
    pub sink: &'static str,
    started: Instant,
    mutable: Mutex<Mutable>,
    pub(super) read: AtomicU64,
    pub(super) written: AtomicU64,
    pub(super) dead_lettered: AtomicU64,
    next_ticket: AtomicU64,
    /// (ticket, commit time in ms) of batches read and not yet acknowledged.
    unacknowledged: Mutex<VecDeque<(u64, i64)>>,
    snapshot: Mutex<Vec<Arc<TableProgress>>>,
}

/// How far back the rate looks.
const RATE_WINDOW: Duration = Duration::from_secs(10);

impl PipelineStatus {
    pub fn new(name: &str, source: &'static str, sink: &'static str) -> Self {
        PipelineStatus {
            name: name.to_owned(),
            source,
            sink,
            started: Instant::now(),
            mutable: Mutex::new(Mutable::default()),
            read: AtomicU64::new(0),
            written: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            next_ticket: AtomicU64::new(0),
            unacknowledged: Mutex::new(VecDeque::new()),
            snapshot: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mutable> {
        self.mutable.lock().expect("status lock")
    }

    pub fn state(&self) -> State {
        self.lock().state.clone().unwrap_or(State::Connecting)
    }

    pub(super) fn set_state(&self, state: State, reason: Option<String>) {
        let mut mutable = self.lock();
        mutable.state = Some(state);
        mutable.reason = reason;
    }

    /// A new run reads again from its stored position: what the last one
    /// held unacknowledged is not waited for any more.
    pub(super) fn new_run(&self) {
        self.unacknowledged.lock().expect("lag lock").clear();
    }

    pub(super) fn set_position(&self, position: String) {
        self.lock().position = Some(position);
    }

    pub(super) fn plugin_serving(&self, name: &str, version: &str) {
        let mut mutable = self.lock();
        let status = PluginStatus {
            name: name.to_owned(),
            version: version.to_owned(),
            refused: None,
        };
        match mutable.plugins.iter_mut().find(|p| p.name == name) {
            Some(known) => *known = status,
            None => mutable.plugins.push(status),
        }
    }

    /// Whether the pipeline runs plugin `name`.
    pub(super) fn runs_plugin(&self, name: &str) -> bool {
        self.lock().plugins.iter().any(|p| p.name == name)
    }

    /// `refused` says what was refused and why; None: nothing is (any more).
    pub(super) fn plugin_refused(&self, name: &str, refused: Option<String>) {
        if let Some(known) = self.lock().plugins.iter_mut().find(|p| p.name == name) {
            known.refused = refused;
        }
    }

    pub(super) fn ticket(&self, records: usize, oldest_commit_ms: Option<i64>) -> Ticket {
        let seq = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        if let Some(ms) = oldest_commit_ms {
            self.unacknowledged.lock().expect("lag lock").push_back((seq, ms));
        }
        Ticket {
            seq,
            read_at: Instant::now(),
            records,
        }
    }

    /// The batch of `ticket` is acknowledged. Batches are answered in any
    /// order (one with nothing to send at once), so each takes out its own.
    pub(super) fn acknowledged(&self, ticket: Ticket) {
        let mut waiting = self.unacknowledged.lock().expect("lag lock");
        if let Some(at) = waiting.iter().position(|&(seq, _)| seq == ticket.seq) {
            waiting.remove(at);
        }
    }

    /// Batches read whose acknowledgement is still awaited.
    pub fn unacknowledged_batches(&self) -> usize {
        self.unacknowledged.lock().expect("lag lock").len()
    }

    /// Seconds between now and the commit time of the oldest change read
    /// and not yet acknowledged; 0 when nothing waits.
    pub fn lag_seconds(&self) -> f64 {
        let oldest = self.unacknowledged.lock().expect("lag lock").iter().map(|&(_, ms)| ms).min();
        oldest.map_or(0.0, |ms| (chrono::Utc::now().timestamp_millis() - ms).max(0) as f64 / 1000.0)
    }

    pub(super) fn snapshot_table(&self, table: &str, estimated: u64) -> Arc<TableProgress> {
        let progress = Arc::new(TableProgress {
            table: table.to_owned(),
            rows: AtomicU64::new(0),
            estimated: AtomicU64::new(estimated),
            started: Instant::now(),
            finished: Mutex::new(None),
        });
        let mut tables = self.snapshot.lock().expect("snapshot lock");
        tables.retain(|t| t.table != table);
        tables.push(progress.clone());
        progress
    }

    pub fn snapshot_tables(&self) -> Vec<Arc<TableProgress>> {
        self.snapshot.lock().expect("snapshot lock").clone()
    }

    /// Why the pipeline is not ready, or None when it is.
    pub fn not_ready(&self) -> Option<String> {
        let mutable = self.lock();
        let state = mutable.state.clone().unwrap_or(State::Connecting);
        let why = |what: &str| Some(mutable.reason.as_ref().map_or_else(|| what.to_owned(), |r| format!("{what}: {r}")));
        match state {
            State::Running | State::Finished => mutable
                .plugins
                .iter()
                .find_map(|p| p.refused.as_ref().map(|r| format!("plugin `{}` refused {r}", p.name))),
            State::Connecting => why("connecting"),
            State::Snapshot => why("snapshot running"),
            State::Retrying => why("retrying"),
            State::Stopping => why("stopping"),
            State::Stopped => why("stopped"),
            State::Failed => why("stopped with an error"),
        }
    }

    pub fn report(&self) -> PipelineReport {
        let written = self.written.load(Ordering::Relaxed);
        let not_ready = self.not_ready();
        let mut mutable = self.lock();
        let now = Instant::now();
        // Records written per second over the last RATE_WINDOW (since the
        // start, before the first look).
        let (since, before) = mutable.samples.front().copied().unwrap_or((self.started, 0));
        let rate = written.saturating_sub(before) as f64 / now.duration_since(since).as_secs_f64().max(0.001);
        mutable.samples.push_back((now, written));
        while mutable.samples.len() > 1 && mutable.samples.front().is_some_and(|&(at, _)| now.duration_since(at) > RATE_WINDOW) {
            mutable.samples.pop_front();
        }
        PipelineReport {
            name: self.name.clone(),
            source: self.source.to_owned(),
            sink: self.sink.to_owned(),
            state: mutable.state.clone().unwrap_or(State::Connecting),
            ready: not_ready.is_none(),
            reason: not_ready,
            position: mutable.position.clone(),
            lag_seconds: self.lag_seconds(),
            records_read: self.read.load(Ordering::Relaxed),
            records_written: written,
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            rate,
            snapshot: self
                .snapshot_tables()
                .iter()
                .map(|t| SnapshotReport {
                    table: t.table.clone(),
                    rows: t.rows(),
                    estimated: t.estimated(),
                    finished: t.is_finished(),
                })
                .collect(),
            plugins: mutable.plugins.clone(),
        }
    }
}

/// A pipeline as `/status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineReport {
    pub name: String,
    pub source: String,
    pub sink: String,
    pub state: State,
    pub ready: bool,
    pub reason: Option<String>,
    pub position: Option<String>,
    pub lag_seconds: f64,
    pub records_read: u64,
    pub records_written: u64,
    pub dead_lettered: u64,
    /// Records written per second over the last seconds.
    pub rate: f64,
    pub snapshot: Vec<SnapshotReport>,
    pub plugins: Vec<PluginStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotReport {
    pub table: String,
    pub rows: u64,
    pub estimated: u64,
    pub finished: bool,
}
