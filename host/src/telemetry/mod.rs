//! What an operator watches: Prometheus metrics, each pipeline's status
//! (state, position, lag, snapshot progress, plugin versions), and the
//! HTTP endpoint that serves them. Pipelines report through a
//! [`PipelineTelemetry`]; with the endpoint off they keep their status
//! (for the snapshot's progress display) and record no metrics.
mod http;
mod metrics;
mod status;

pub use http::{HttpEndpoint, HttpError, get, serve};
pub use status::{PipelineReport, PipelineStatus, PluginStatus, SnapshotReport, State, TableProgress, Ticket};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::plugin::{Counters, ReloadEvent};
use crate::rejected::Rejected;
use metrics::{Families, PipelineMetrics, PluginMetrics};

/// The process's telemetry: every pipeline's status, and the metrics when
/// they are served.
pub struct Telemetry {
    families: Option<Arc<Families>>,
    pipelines: Mutex<Vec<PipelineTelemetry>>,
    started: Instant,
}

/// What `/status` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    pub uptime_s: f64,
    pub ready: bool,
    pub pipelines: Vec<PipelineReport>,
}

impl Telemetry {
    /// With `metrics` false, pipelines keep their status only.
    pub fn new(metrics: bool) -> Arc<Self> {
        Arc::new(Telemetry {
            families: metrics.then(|| Arc::new(Families::new())),
            pipelines: Mutex::new(Vec::new()),
            started: Instant::now(),
        })
    }

    /// The telemetry of a pipeline `source` → `sink` (their kinds, as the file names them).
    pub fn pipeline(&self, name: &str, source: &'static str, sink: &'static str) -> PipelineTelemetry {
        let telemetry = PipelineTelemetry {
            status: Arc::new(PipelineStatus::new(name, source, sink)),
            metrics: self
                .families
                .as_ref()
                .map(|f| Arc::new(PipelineMetrics::new(f.clone(), name, source, sink))),
        };
        self.pipelines.lock().expect("pipelines lock").push(telemetry.clone());
        telemetry
    }

    pub fn pipelines(&self) -> Vec<PipelineTelemetry> {
        self.pipelines.lock().expect("pipelines lock").clone()
    }

    /// The OpenMetrics exposition, gauges read at this moment; None when
    /// metrics are off.
    pub fn metrics_text(&self) -> Option<String> {
        let families = self.families.as_ref()?;
        let mut open = 0;
        for pipeline in self.pipelines() {
            let (status, metrics) = (&pipeline.status, pipeline.metrics.as_ref().expect("metrics are on"));
            metrics.lag.set(status.lag_seconds());
            metrics.ready.set(i64::from(status.not_ready().is_none()));
            for table in status.snapshot_tables() {
                metrics.snapshot_table(&table.table, table.rows(), table.estimated());
            }
            if !matches!(status.state(), State::Stopped | State::Failed | State::Finished) {
                open += 1;
            }
        }
        families.pipelines_open.set(open);
        families.uptime.set(self.started.elapsed().as_secs_f64());
        if let Some(memory) = memory_stats::memory_stats() {
            families.resident.set(memory.physical_mem as i64);
        }
        Some(families.encode())
    }

    /// A plugin file changed: a refused one shows, in the status of every
    /// pipeline running the plugin, until a good file is loaded or the
    /// serving version's file is back.
    pub fn plugin_file(&self, event: &ReloadEvent) {
        let (name, refused) = match event {
            ReloadEvent::Refused { name, reason, .. } => (name, Some(format!("a new file: {reason}"))),
            ReloadEvent::Loaded { name, .. } | ReloadEvent::Unchanged { name } => (name, None),
            ReloadEvent::Removed { .. } => return,
        };
        for pipeline in self.pipelines().iter().filter(|p| p.status.runs_plugin(name)) {
            if let (Some(metrics), true) = (&pipeline.metrics, refused.is_some()) {
                metrics.plugin_refused(name);
            }
            pipeline.status.plugin_refused(name, refused.clone());
        }
    }

    pub fn report(&self) -> StatusReport {
        let pipelines: Vec<PipelineReport> = self.pipelines().iter().map(|p| p.status.report()).collect();
        StatusReport {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_s: self.started.elapsed().as_secs_f64(),
            ready: pipelines.iter().all(|p| p.ready),
            pipelines,
        }
    }
}

/// How one pipeline reports. Cheap to clone; with metrics off every call
/// but the status ones does nothing.
#[derive(Clone)]
pub struct PipelineTelemetry {
    status: Arc<PipelineStatus>,
    metrics: Option<Arc<PipelineMetrics>>,
}

impl PipelineTelemetry {
    /// Reports that nothing reads: for a pipeline run outside `sluice run`.
    pub fn detached(name: &str) -> Self {
        PipelineTelemetry {
            status: Arc::new(PipelineStatus::new(name, "", "")),
            metrics: None,
        }
    }

    pub fn status(&self) -> &PipelineStatus {
        &self.status
    }

    pub fn set_state(&self, state: State, reason: Option<String>) {
        self.status.set_state(state, reason);
    }

    /// A run starts from the stored position: batches an earlier run read
    /// and never had acknowledged no longer count towards the lag.
    pub fn new_run(&self) {
        self.status.new_run();
    }

    /// A batch of `records` read; `oldest_commit_ms` is the commit (or
    /// message) time of its oldest change.
    pub fn read(&self, records: usize, oldest_commit_ms: Option<i64>) -> Ticket {
        self.status.read.fetch_add(records as u64, std::sync::atomic::Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            m.read.inc_by(records as u64);
        }
        self.status.ticket(records, oldest_commit_ms)
    }

    /// The sink acknowledged the batch of `ticket`, `written` records of it.
    pub fn acknowledged(&self, ticket: Ticket, written: usize) {
        self.status.written.fetch_add(written as u64, std::sync::atomic::Ordering::Relaxed);
        self.status.acknowledged(ticket);
        if let Some(m) = &self.metrics {
            m.written.inc_by(written as u64);
            // A batch that only moves the position (an idle source's) is no batch of records.
            if ticket.records > 0 {
                m.batches.inc();
                m.latency.observe(ticket.read_at.elapsed().as_secs_f64());
            }
        }
    }

    /// What the echo filter and the plugins took out of a batch.
    pub fn filtered(&self, echoes: usize, dropped: usize) {
        if let Some(m) = &self.metrics {
            m.echoes.inc_by(echoes as u64);
            m.dropped.inc_by(dropped as u64);
        }
    }

    /// Changes of a key that a later change of it in the same batch replaced.
    pub fn superseded(&self, changes: usize) {
        if let Some(m) = self.mysql() {
            m.superseded.inc_by(changes as u64);
        }
    }

    pub fn dead_lettered(&self, rejected: &[Rejected]) {
        self.status
            .dead_lettered
            .fetch_add(rejected.len() as u64, std::sync::atomic::Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            for r in rejected {
                m.dead_lettered(r.failure.kind.as_str(), 1);
            }
        }
    }

    /// The position stored last, as an operator reads it.
    pub fn stored(&self, position: String) {
        self.status.set_position(position);
    }

    pub fn snapshot_table(&self, table: &str, estimated: u64) -> Arc<TableProgress> {
        self.status.snapshot_table(table, estimated)
    }

    pub fn plugin(&self, name: &str, counters: &Counters) -> PluginTelemetry {
        PluginTelemetry {
            status: self.status.clone(),
            name: name.to_owned(),
            metrics: self.metrics.as_ref().map(|m| m.plugin(name, counters)),
            serving: None,
        }
    }

    /// Row-writing statements of the MySQL sink, and the rows they wrote.
    pub fn mysql_statements(&self, statements: usize, rows: usize) {
        if let Some(m) = self.mysql() {
            m.statements.inc_by(statements as u64);
            m.rows.inc_by(rows as u64);
        }
    }

    pub fn mysql_retry(&self, reconnected: bool) {
        if let Some(m) = self.mysql() {
            m.retries.inc();
            if reconnected {
                m.reconnects.inc();
            }
        }
    }

    pub fn kafka_queue(&self, depth: i64) {
        if let Some(m) = self.metrics.as_ref().and_then(|m| m.kafka.as_ref()) {
            m.queue.set(depth);
        }
    }

    pub fn kafka_delivery_errors(&self, n: usize) {
        if let Some(m) = self.metrics.as_ref().and_then(|m| m.kafka.as_ref()) {
            m.delivery_errors.inc_by(n as u64);
        }
    }

    /// Per (topic, partition): messages between the consumer and the end.
    pub fn consumer_lag(&self, lags: &[(String, i32, i64)]) {
        if let Some(m) = &self.metrics {
            m.consumer_lag(lags);
        }
    }

    pub fn binlog_bytes_behind(&self, bytes: u64) {
        if let Some(behind) = self.metrics.as_ref().and_then(|m| m.binlog_behind.as_ref()) {
            behind.set(bytes as i64);
        }
    }

    fn mysql(&self) -> Option<&metrics::MysqlSinkMetrics> {
        self.metrics.as_ref().and_then(|m| m.mysql.as_ref())
    }

    /// Whether metrics are recorded: work done only for them is skipped otherwise.
    pub fn records_metrics(&self) -> bool {
        self.metrics.is_some()
    }
}

/// How one plugin of a pipeline reports.
pub struct PluginTelemetry {
    status: Arc<PipelineStatus>,
    name: String,
    metrics: Option<PluginMetrics>,
    serving: Option<String>,
}

impl PluginTelemetry {
    /// `version` serves (again, after a failed instance was replaced, or
    /// newly: a reload).
    pub fn serving(&mut self, version: &str) {
        self.status.plugin_serving(&self.name, version);
        let reloaded = self.serving.as_deref().is_some_and(|before| before != version);
        if let (Some(m), true) = (&self.metrics, reloaded) {
            m.reloaded();
        }
        self.serving = Some(version.to_owned());
    }

    /// The serving version stays: `version` could not start.
    pub fn refused(&self, version: &str, reason: &str) {
        self.status.plugin_refused(&self.name, Some(format!("version {version}: {reason}")));
        if let Some(m) = &self.metrics {
            m.refused();
        }
    }

    pub fn call(&mut self, version: &str, records: usize, took: Duration) {
        if let Some(m) = &mut self.metrics {
            m.call(version, records, took);
        }
    }

    pub fn failed(&self, version: &str, kind: &str) {
        if let Some(m) = &self.metrics {
            m.error(version, kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_runs_from_the_oldest_change_not_yet_acknowledged() {
        let telemetry = Telemetry::new(true);
        let p = telemetry.pipeline("p", "mysql-binlog", "kafka");
        let now = chrono::Utc::now().timestamp_millis();
        let first = p.read(10, Some(now - 30_000));
        let second = p.read(5, Some(now - 10_000));
        let empty = p.read(0, None);
        assert!((p.status().lag_seconds() - 30.0).abs() < 1.0);
        p.acknowledged(first, 10);
        assert!((p.status().lag_seconds() - 10.0).abs() < 1.0, "the second batch is now the oldest");
        p.acknowledged(empty, 0);
        assert!(
            (p.status().lag_seconds() - 10.0).abs() < 1.0,
            "a later batch answered first leaves the earlier one waiting"
        );
        p.acknowledged(second, 5);
        assert_eq!(p.status().lag_seconds(), 0.0);
        let text = telemetry.metrics_text().unwrap();
        assert!(text.contains("sluice_records_read_total{pipeline=\"p\"} 15\n"), "{text}");
        assert!(text.contains("sluice_records_written_total{pipeline=\"p\"} 15\n"), "{text}");
        assert!(
            text.contains("sluice_batches_total{pipeline=\"p\"} 2\n"),
            "an empty batch is none: {text}"
        );
        assert!(text.contains("sluice_source_lag_seconds{pipeline=\"p\"} 0.0\n"), "{text}");
    }

    #[test]
    fn a_new_run_does_not_wait_for_what_the_last_one_read() {
        let telemetry = Telemetry::new(false);
        let p = telemetry.pipeline("p", "mysql-binlog", "kafka");
        p.read(10, Some(chrono::Utc::now().timestamp_millis() - 60_000));
        assert!(p.status().lag_seconds() > 59.0);
        assert_eq!(telemetry.metrics_text(), None, "metrics off: nothing served");
        p.new_run();
        assert_eq!(p.status().lag_seconds(), 0.0);
    }

    #[test]
    fn readiness_names_what_holds_each_pipeline_back() {
        let telemetry = Telemetry::new(false);
        let p = telemetry.pipeline("p", "kafka", "mysql");
        assert_eq!(p.status().not_ready().as_deref(), Some("connecting"));
        p.set_state(State::Retrying, Some("MySQL sink: connection refused (attempt 2)".into()));
        assert_eq!(
            p.status().not_ready().as_deref(),
            Some("retrying: MySQL sink: connection refused (attempt 2)")
        );
        p.set_state(State::Running, None);
        assert_eq!(p.status().not_ready(), None);
        let counters = Counters::default();
        let mut plugin = p.plugin("clean", &counters);
        plugin.serving("aaaa");
        plugin.refused("bbbb", "init refused its config: no");
        assert_eq!(
            p.status().not_ready().as_deref(),
            Some("plugin `clean` refused version bbbb: init refused its config: no")
        );
        plugin.serving("cccc");
        assert_eq!(p.status().not_ready(), None, "a good version serves again");
        assert!(!telemetry.report().pipelines[0].plugins[0].version.is_empty());
    }

    #[test]
    fn plugin_counters_and_reloads_reach_the_exposition() {
        let telemetry = Telemetry::new(true);
        let p = telemetry.pipeline("p", "mysql-binlog", "kafka");
        let counters = Counters::default();
        let mut plugin = p.plugin("clean", &counters);
        plugin.serving("aaaa");
        counters.lock().unwrap().insert("clean.invalid".into(), 3);
        plugin.call("aaaa", 10, Duration::from_millis(2));
        plugin.failed("aaaa", "trap");
        plugin.serving("bbbb");
        let text = telemetry.metrics_text().unwrap();
        for line in [
            "sluice_plugin_count_total{pipeline=\"p\",plugin=\"clean\",counter=\"clean.invalid\"} 3",
            "sluice_plugin_calls_total{pipeline=\"p\",plugin=\"clean\",version=\"aaaa\"} 1",
            "sluice_plugin_records_total{pipeline=\"p\",plugin=\"clean\",version=\"aaaa\"} 10",
            "sluice_plugin_errors_total{pipeline=\"p\",plugin=\"clean\",version=\"aaaa\",kind=\"trap\"} 1",
            "sluice_plugin_reloads_total{pipeline=\"p\",plugin=\"clean\"} 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        // Counted further: the exposition adds what is new, once.
        counters.lock().unwrap().insert("clean.invalid".into(), 5);
        let text = telemetry.metrics_text().unwrap();
        assert!(text.contains("counter=\"clean.invalid\"} 5\n"), "{text}");
    }

    #[test]
    fn every_series_the_dashboard_charts_exists() {
        // A family is declared once it has a series: each gets one.
        let telemetry = Telemetry::new(true);
        let p = telemetry.pipeline("p", "mysql-binlog", "kafka");
        telemetry.pipeline("q", "kafka", "mysql");
        p.snapshot_table("db.t", 10).update(1, 10);
        p.consumer_lag(&[("t".into(), 0, 5)]);
        let record = crate::record::Record {
            op: crate::record::Op::Insert,
            position: crate::record::Position::Other("x".into()),
            ts_ms: 0,
            schema: None,
            before: None,
            after: None,
            key: None,
            payload: None,
            headers: Vec::new(),
            destination: None,
        };
        p.dead_lettered(&[Rejected::undecodable(record, "source:kafka", "bad".into())]);
        let counters = Counters::default();
        counters.lock().unwrap().insert("n".into(), 1);
        let mut plugin = p.plugin("clean", &counters);
        plugin.call("aaaa", 1, Duration::from_millis(1));
        plugin.failed("aaaa", "trap");
        let text = telemetry.metrics_text().unwrap();
        let declared: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        let dashboard = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/grafana/sluice.json")).unwrap();
        let charted = regex::Regex::new(r"sluice_[a-z_]+").unwrap();
        let mut names: Vec<&str> = charted.find_iter(&dashboard).map(|m| m.as_str()).collect();
        names.sort();
        names.dedup();
        assert!(names.len() > 20, "{names:?}");
        for name in names {
            let family = ["_bucket", "_total", "_info"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            assert!(
                declared.contains(&family),
                "the dashboard charts {name}, which Sluice does not export"
            );
        }
    }
}
