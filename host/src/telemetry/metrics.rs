//! The Prometheus series of one process. Every pipeline's series carry its
//! name as `pipeline`; the process's own (memory, uptime, build) do not.
//! Labels stay bounded: tables and plugin counters come from the pipeline
//! file and the plugin (at most `limits.max_counters` names), topics and
//! partitions from Kafka; no series is labelled by a record's key.
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::plugin::Counters;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PipelineLabel {
    pipeline: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    pipeline: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    pipeline: String,
    table: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    pipeline: String,
    topic: String,
    partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    pipeline: String,
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    pipeline: String,
    plugin: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionKindLabels {
    pipeline: String,
    plugin: String,
    version: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CountLabels {
    pipeline: String,
    plugin: String,
    counter: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// Seconds from a batch's read to its acknowledgement: 1 ms to about 65 s.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Seconds of one call into a plugin: 50 µs to about 3 s.
fn call_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

/// Every family, registered once per process.
pub(super) struct Families {
    registry: Registry,
    records_read: Family<PipelineLabel, Counter>,
    records_written: Family<PipelineLabel, Counter>,
    records_dropped: Family<PipelineLabel, Counter>,
    records_echo: Family<PipelineLabel, Counter>,
    records_superseded: Family<PipelineLabel, Counter>,
    dead_lettered: Family<KindLabels, Counter>,
    batches: Family<PipelineLabel, Counter>,
    batch_latency: Histograms<PipelineLabel>,
    lag_seconds: Family<PipelineLabel, FloatGauge>,
    binlog_behind: Family<PipelineLabel, Gauge>,
    consumer_lag: Family<PartitionLabels, Gauge>,
    ready: Family<PipelineLabel, Gauge>,
    snapshot_rows: Family<TableLabels, Gauge>,
    snapshot_estimated: Family<TableLabels, Gauge>,
    plugin_calls: Family<VersionLabels, Counter>,
    plugin_records: Family<VersionLabels, Counter>,
    plugin_errors: Family<VersionKindLabels, Counter>,
    plugin_call_seconds: Histograms<VersionLabels>,
    plugin_reloads: Family<PluginLabels, Counter>,
    plugin_refused: Family<PluginLabels, Counter>,
    plugin_count: Family<CountLabels, Counter>,
    mysql_statements: Family<PipelineLabel, Counter>,
    mysql_rows: Family<PipelineLabel, Counter>,
    mysql_retries: Family<PipelineLabel, Counter>,
    mysql_reconnects: Family<PipelineLabel, Counter>,
    kafka_queue: Family<PipelineLabel, Gauge>,
    kafka_errors: Family<PipelineLabel, Counter>,
    pub(super) resident: Gauge,
    pub(super) pipelines_open: Gauge,
    pub(super) uptime: FloatGauge,
    /// Plugin counters, copied into `plugin_count` at each scrape: the
    /// `count` import adds to a plain map, which a guest may call per record.
    plugin_counters: Mutex<Vec<PluginCounters>>,
}

struct PluginCounters {
    pipeline: String,
    plugin: String,
    counters: Weak<Mutex<std::collections::BTreeMap<String, u64>>>,
    /// What was copied so far, by name.
    copied: std::collections::BTreeMap<String, u64>,
}

impl Families {
    pub(super) fn new() -> Self {
        let mut registry = Registry::with_prefix("sluice");
        macro_rules! family {
            ($name:literal, $help:literal) => {{
                let family = Family::default();
                registry.register($name, $help, family.clone());
                family
            }};
            ($name:literal, $help:literal, $unit:expr, $make:expr) => {{
                let family: Histograms<_> = Family::new_with_constructor($make);
                registry.register_with_unit($name, $help, $unit, family.clone());
                family
            }};
        }
        let families = Families {
            records_read: family!("records_read", "Records the source read"),
            records_written: family!("records_written", "Records the sink acknowledged"),
            records_dropped: family!("records_dropped", "Records a plugin answered with no output"),
            records_echo: family!(
                "records_echo_filtered",
                "Changes dropped before the plugins as echoes of a site's own changes"
            ),
            records_superseded: family!(
                "records_superseded",
                "Changes of a key a later change of it in the same batch replaced (one write applies both)"
            ),
            dead_lettered: family!("records_dead_lettered", "Records handed to the dead-letter queue, by kind"),
            batches: family!("batches", "Batches acknowledged by the sink"),
            batch_latency: family!(
                "batch_latency",
                "Time from a batch's read at the source to its acknowledgement by the sink",
                Unit::Seconds,
                latency_buckets
            ),
            lag_seconds: family!(
                "source_lag_seconds",
                "Now minus the commit time of the oldest change read and not yet acknowledged (0 when none waits)"
            ),
            binlog_behind: family!(
                "binlog_bytes_behind",
                "Binlog bytes between the stored position and the server's current one"
            ),
            consumer_lag: family!(
                "kafka_consumer_lag",
                "Messages between the consumer's position and the partition's end"
            ),
            ready: family!("pipeline_ready", "1 while the pipeline is connected and running, else 0"),
            snapshot_rows: family!("snapshot_rows", "Rows of a table the snapshot has read"),
            snapshot_estimated: family!("snapshot_rows_estimated", "The snapshot's estimate of a table's rows"),
            plugin_calls: family!("plugin_calls", "Calls into a plugin version"),
            plugin_records: family!("plugin_records", "Records given to a plugin version"),
            plugin_errors: family!("plugin_errors", "Records a plugin version failed on, by kind"),
            plugin_call_seconds: family!("plugin_call", "Time of one call into a plugin", Unit::Seconds, call_buckets),
            plugin_reloads: family!("plugin_reloads", "New plugin versions taken into service"),
            plugin_refused: family!(
                "plugin_reloads_refused",
                "New plugin versions refused (the previous one kept serving)"
            ),
            plugin_count: family!("plugin_count", "What a plugin counted through its `count` import"),
            mysql_statements: family!("mysql_statements", "Row-writing statements the MySQL sink ran"),
            mysql_rows: family!("mysql_rows", "Rows the MySQL sink wrote"),
            mysql_retries: family!("mysql_retries", "Transactions the MySQL sink tried again"),
            mysql_reconnects: family!("mysql_reconnects", "Connections the MySQL sink opened again"),
            kafka_queue: family!("kafka_queue_depth", "Messages in the Kafka producer's queue, not yet acknowledged"),
            kafka_errors: family!("kafka_delivery_errors", "Messages Kafka refused or failed to acknowledge"),
            resident: Gauge::default(),
            pipelines_open: Gauge::default(),
            uptime: FloatGauge::default(),
            plugin_counters: Mutex::new(Vec::new()),
            registry: Registry::default(),
        };
        registry.register_with_unit(
            "process_resident_memory",
            "Resident memory of the process",
            Unit::Bytes,
            families.resident.clone(),
        );
        registry.register("pipelines_open", "Pipelines running or retrying", families.pipelines_open.clone());
        registry.register_with_unit("uptime", "Time since the process started", Unit::Seconds, families.uptime.clone());
        // A gauge of 1, as Prometheus's own `*_build_info` series are.
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        registry.register("build_info", "The running build", build);
        Families { registry, ..families }
    }

    /// The OpenMetrics text of every series, plugin counters brought up to date.
    pub(super) fn encode(&self) -> String {
        self.copy_plugin_counters();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }

    fn copy_plugin_counters(&self) {
        let mut all = self.plugin_counters.lock().expect("plugin counters lock");
        all.retain_mut(|entry| {
            let Some(counters) = entry.counters.upgrade() else { return false };
            for (name, &value) in counters.lock().expect("counters lock").iter() {
                let copied = entry.copied.entry(name.clone()).or_default();
                if value > *copied {
                    let labels = CountLabels {
                        pipeline: entry.pipeline.clone(),
                        plugin: entry.plugin.clone(),
                        counter: name.clone(),
                    };
                    self.plugin_count.get_or_create(&labels).inc_by(value - *copied);
                    *copied = value;
                }
            }
            true
        });
    }
}

/// One pipeline's series, bound to its label once; those of a source or
/// sink the pipeline has not, absent.
pub(super) struct PipelineMetrics {
    families: Arc<Families>,
    pipeline: String,
    pub(super) read: Counter,
    pub(super) written: Counter,
    pub(super) dropped: Counter,
    pub(super) echoes: Counter,
    pub(super) batches: Counter,
    pub(super) latency: Histogram,
    pub(super) lag: FloatGauge,
    pub(super) ready: Gauge,
    pub(super) binlog_behind: Option<Gauge>,
    pub(super) mysql: Option<MysqlSinkMetrics>,
    pub(super) kafka: Option<KafkaSinkMetrics>,
    /// The partitions whose consumer lag was last reported.
    partitions: Mutex<Vec<PartitionLabels>>,
}

pub(super) struct MysqlSinkMetrics {
    pub(super) statements: Counter,
    pub(super) rows: Counter,
    pub(super) retries: Counter,
    pub(super) reconnects: Counter,
    pub(super) superseded: Counter,
}

pub(super) struct KafkaSinkMetrics {
    pub(super) queue: Gauge,
    pub(super) delivery_errors: Counter,
}

impl PipelineMetrics {
    /// `source` and `sink` are the kinds the pipeline file names.
    pub(super) fn new(families: Arc<Families>, pipeline: &str, source: &str, sink: &str) -> Self {
        let label = PipelineLabel {
            pipeline: pipeline.to_owned(),
        };
        let f = &families;
        PipelineMetrics {
            read: f.records_read.get_or_create_owned(&label),
            written: f.records_written.get_or_create_owned(&label),
            dropped: f.records_dropped.get_or_create_owned(&label),
            echoes: f.records_echo.get_or_create_owned(&label),
            batches: f.batches.get_or_create_owned(&label),
            latency: f.batch_latency.get_or_create_owned(&label),
            lag: f.lag_seconds.get_or_create_owned(&label),
            ready: f.ready.get_or_create_owned(&label),
            binlog_behind: (source == "mysql-binlog").then(|| f.binlog_behind.get_or_create_owned(&label)),
            mysql: (sink == "mysql").then(|| MysqlSinkMetrics {
                statements: f.mysql_statements.get_or_create_owned(&label),
                rows: f.mysql_rows.get_or_create_owned(&label),
                retries: f.mysql_retries.get_or_create_owned(&label),
                reconnects: f.mysql_reconnects.get_or_create_owned(&label),
                superseded: f.records_superseded.get_or_create_owned(&label),
            }),
            kafka: (sink == "kafka").then(|| KafkaSinkMetrics {
                queue: f.kafka_queue.get_or_create_owned(&label),
                delivery_errors: f.kafka_errors.get_or_create_owned(&label),
            }),
            partitions: Mutex::new(Vec::new()),
            pipeline: pipeline.to_owned(),
            families,
        }
    }

    pub(super) fn dead_lettered(&self, kind: &str, n: u64) {
        let labels = KindLabels {
            pipeline: self.pipeline.clone(),
            kind: kind.to_owned(),
        };
        self.families.dead_lettered.get_or_create(&labels).inc_by(n);
    }

    pub(super) fn snapshot_table(&self, table: &str, rows: u64, estimated: u64) {
        let labels = TableLabels {
            pipeline: self.pipeline.clone(),
            table: table.to_owned(),
        };
        self.families.snapshot_rows.get_or_create(&labels).set(rows as i64);
        self.families.snapshot_estimated.get_or_create(&labels).set(estimated as i64);
    }

    /// The consumer's lag per partition as librdkafka last reported it;
    /// partitions it no longer reports (revoked) lose their series.
    pub(super) fn consumer_lag(&self, lags: &[(String, i32, i64)]) {
        let family = &self.families.consumer_lag;
        let reported: Vec<PartitionLabels> = lags
            .iter()
            .map(|(topic, partition, lag)| {
                let labels = PartitionLabels {
                    pipeline: self.pipeline.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                };
                family.get_or_create(&labels).set(*lag);
                labels
            })
            .collect();
        let mut before = self.partitions.lock().expect("partitions lock");
        for gone in before.iter().filter(|labels| !reported.contains(labels)) {
            family.remove(gone);
        }
        *before = reported;
    }

    /// A new file of `plugin` was refused.
    pub(super) fn plugin_refused(&self, plugin: &str) {
        let labels = PluginLabels {
            pipeline: self.pipeline.clone(),
            plugin: plugin.to_owned(),
        };
        self.families.plugin_refused.get_or_create(&labels).inc();
    }

    pub(super) fn plugin(&self, plugin: &str, counters: &Counters) -> PluginMetrics {
        self.families
            .plugin_counters
            .lock()
            .expect("plugin counters lock")
            .push(PluginCounters {
                pipeline: self.pipeline.clone(),
                plugin: plugin.to_owned(),
                counters: Arc::downgrade(counters),
                copied: Default::default(),
            });
        let labels = PluginLabels {
            pipeline: self.pipeline.clone(),
            plugin: plugin.to_owned(),
        };
        PluginMetrics {
            reloads: self.families.plugin_reloads.get_or_create_owned(&labels),
            refused: self.families.plugin_refused.get_or_create_owned(&labels),
            families: self.families.clone(),
            labels,
            version: None,
        }
    }
}

/// One plugin of one pipeline; its call series are bound to the version
/// that serves.
pub(super) struct PluginMetrics {
    families: Arc<Families>,
    labels: PluginLabels,
    reloads: Counter,
    refused: Counter,
    version: Option<(String, Counter, Counter, Histogram)>,
}

impl PluginMetrics {
    fn version_labels(&self, version: &str) -> VersionLabels {
        VersionLabels {
            pipeline: self.labels.pipeline.clone(),
            plugin: self.labels.plugin.clone(),
            version: version.to_owned(),
        }
    }

    pub(super) fn call(&mut self, version: &str, records: usize, took: Duration) {
        if self.version.as_ref().is_none_or(|(v, ..)| v != version) {
            let labels = self.version_labels(version);
            let f = &self.families;
            self.version = Some((
                version.to_owned(),
                f.plugin_calls.get_or_create_owned(&labels),
                f.plugin_records.get_or_create_owned(&labels),
                f.plugin_call_seconds.get_or_create_owned(&labels),
            ));
        }
        let (_, calls, counted, time) = self.version.as_ref().expect("bound above");
        calls.inc();
        counted.inc_by(records as u64);
        time.observe(took.as_secs_f64());
    }

    pub(super) fn error(&self, version: &str, kind: &str) {
        let labels = self.version_labels(version);
        let labels = VersionKindLabels {
            pipeline: labels.pipeline,
            plugin: labels.plugin,
            version: labels.version,
            kind: kind.to_owned(),
        };
        self.families.plugin_errors.get_or_create(&labels).inc();
    }

    pub(super) fn reloaded(&self) {
        self.reloads.inc();
    }

    pub(super) fn refused(&self) {
        self.refused.inc();
    }
}
