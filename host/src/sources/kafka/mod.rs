//! Records from Kafka topics, read in a consumer group. Where reading
//! starts is only a hint: the MySQL sink keeps the authoritative offsets in
//! the same transaction as the rows and skips anything at or below them, so
//! a rebalance or a restart neither loses nor double-applies a record.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers as _, Message as _, Timestamp};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use serde::Deserialize;

use super::SourceError;
use crate::formats::debezium::{EnvelopeDecoder, Message, MessageFormat};
use crate::kafka::{ClientProperties, Offsets};
use crate::record::{Header, Record};
use crate::telemetry::PipelineTelemetry;

/// The group consumer of a Kafka source.
type GroupConsumer = StreamConsumer<LagReporter>;

/// Hands librdkafka's statistics (once a second, when metrics are
/// recorded) to the pipeline: the consumer's lag per assigned partition.
pub struct LagReporter(PipelineTelemetry);

impl ClientContext for LagReporter {
    fn stats(&self, statistics: Statistics) {
        let lags: Vec<(String, i32, i64)> = statistics
            .topics
            .iter()
            .flat_map(|(topic, t)| {
                // Partition -1 is librdkafka's own; a lag of -1 is one it does not know.
                t.partitions
                    .iter()
                    .filter(|(partition, p)| **partition >= 0 && p.consumer_lag >= 0)
                    .map(|(partition, p)| (topic.clone(), *partition, p.consumer_lag))
            })
            .collect();
        self.0.consumer_lag(&lags);
    }
}

impl ConsumerContext for LagReporter {}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    pub brokers: String,
    /// Topic names, or patterns starting with `^` (regular expressions).
    pub topics: Vec<String>,
    pub group: String,
    /// Where a partition with no stored offset starts.
    #[serde(default)]
    pub start: StartFrom,
    #[serde(default)]
    pub format: MessageFormat,
    /// librdkafka consumer properties, passed through (security, fetch sizes…).
    #[serde(default)]
    pub properties: ClientProperties,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartFrom {
    #[default]
    Earliest,
    Latest,
}

/// Messages decoded into records, those that could not be (with why), and
/// the offsets after them.
#[derive(Default)]
pub struct KafkaBatch {
    pub records: Vec<Record>,
    pub undecodable: Vec<(Record, String)>,
    pub next_offsets: Offsets,
}

pub struct KafkaSource {
    consumer: Arc<GroupConsumer>,
    decoder: EnvelopeDecoder,
    format: MessageFormat,
}

impl KafkaSource {
    /// Joins the group and subscribes. `applied` are the offsets the sink
    /// has stored: they are first committed as the group's own, so reading
    /// resumes there rather than wherever the broker's offsets stood.
    pub fn connect(config: &KafkaSourceConfig, applied: &Offsets, telemetry: &PipelineTelemetry) -> Result<Self, SourceError> {
        let mut client = client_config(config);
        if telemetry.records_metrics() {
            client.set("statistics.interval.ms", "1000");
        }
        let consumer: Arc<GroupConsumer> = Arc::new(client.create_with_context(LagReporter(telemetry.clone()))?);
        // An unreachable cluster fails here, named, instead of stalling later.
        crate::kafka::reach(consumer.client(), &config.brokers, Duration::from_secs(10))?;
        if !applied.is_empty() {
            // Fails while other members of the group are running; they then
            // hold current offsets, and the sink skips anything applied.
            if let Err(e) = consumer.commit(&partition_list(applied)?, CommitMode::Sync) {
                tracing::warn!(error = %e, "Kafka source: could not start the group at the sink's offsets; the sink skips what it applied");
            }
        }
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(KafkaSource {
            consumer,
            decoder: EnvelopeDecoder::default(),
            format: config.format,
        })
    }

    /// Creates the consumer without reaching the brokers: librdkafka checks
    /// its properties, and the files they name, as it creates a client.
    pub fn check(config: &KafkaSourceConfig) -> Result<(), SourceError> {
        if config.topics.is_empty() || config.topics.iter().any(|t| t.trim().is_empty()) {
            return Err(SourceError::Settings(
                "topics must name at least one topic, none of them empty".into(),
            ));
        }
        if config.group.trim().is_empty() {
            return Err(SourceError::Settings(
                "group is empty: name the consumer group (pipelines that share one split the partitions)".into(),
            ));
        }
        crate::kafka::check_client::<rdkafka::consumer::BaseConsumer>("consumer", &config.brokers, client_config(config))?;
        Ok(())
    }

    /// Up to `max` messages, waiting at most `wait` in all.
    pub async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<KafkaBatch, SourceError> {
        let mut batch = KafkaBatch::default();
        let deadline = tokio::time::Instant::now() + wait;
        let mut taken = 0;
        while taken < max {
            let message = match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Err(_elapsed) => break,
                // Until a subscribed topic exists the broker says so; keep waiting.
                Ok(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition))) => continue,
                // librdkafka reconnects by itself; fatal errors come as their own kind.
                Ok(Err(KafkaError::MessageConsumption(code))) => {
                    tracing::warn!(error = %code, "Kafka source: consumption error, retrying");
                    continue;
                }
                Ok(Err(e)) => return Err(e.into()),
                Ok(Ok(m)) => m,
            };
            taken += 1;
            // Buffered messages come without a pause; let the sink's task,
            // which may wait on this worker, run between them.
            tokio::task::consume_budget().await;
            let timestamp_ms = match message.timestamp() {
                Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => t,
                Timestamp::NotAvailable => 0,
            };
            let m = Message {
                topic: message.topic(),
                partition: message.partition(),
                offset: message.offset(),
                timestamp_ms,
                key: message.key(),
                payload: message.payload(),
            };
            batch.next_offsets.insert((m.topic.to_owned(), m.partition), m.offset + 1);
            let headers = message.headers().map(|headers| {
                headers
                    .iter()
                    .map(|h| Header {
                        key: h.key.to_owned(),
                        value: h.value.unwrap_or_default().to_vec(),
                    })
                    .collect()
            });
            match self.decoder.decode(self.format, &m) {
                // The message's headers come with it: its origin among them.
                Ok(mut record) => {
                    record.headers = headers.unwrap_or_default();
                    match crate::origin::check_origin(&record) {
                        Ok(()) => batch.records.push(record),
                        Err(reason) => batch.undecodable.push((record, reason)),
                    }
                }
                Err(bad) => batch.undecodable.push(bad),
            }
        }
        Ok(batch)
    }

    /// A handle for committing offsets while this source reads on elsewhere.
    pub fn committer(&self) -> OffsetCommitter {
        OffsetCommitter(self.consumer.clone())
    }
}

/// The consumer's settings: Sluice's, then the file's properties over them.
fn client_config(config: &KafkaSourceConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group)
        .set("enable.auto.commit", "false")
        .set(
            "auto.offset.reset",
            match config.start {
                StartFrom::Earliest => "earliest",
                StartFrom::Latest => "latest",
            },
        )
        // A topic created after subscribing is noticed within a second.
        .set("topic.metadata.refresh.interval.ms", "1000")
        // A member that dies without leaving (SIGKILL, a lost host) holds its
        // partitions until its session times out: librdkafka's 45 s default
        // kept a restarted host idle for over a minute.
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .set("fetch.wait.max.ms", "50");
    config.properties.apply(&mut client);
    client
}

pub struct OffsetCommitter(Arc<GroupConsumer>);

impl OffsetCommitter {
    /// Tells the group how far this member got, once the sink has committed:
    /// a hint for where a new owner of a partition starts reading.
    pub fn commit(&self, offsets: &Offsets) -> Result<(), SourceError> {
        if !offsets.is_empty() {
            self.0.commit(&partition_list(offsets)?, CommitMode::Async)?;
        }
        Ok(())
    }
}

fn partition_list(offsets: &Offsets) -> Result<TopicPartitionList, SourceError> {
    let mut list = TopicPartitionList::new();
    for ((topic, partition), next) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
    }
    Ok(list)
}
