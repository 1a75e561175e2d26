use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::TailArgs;

/// `sluice tail`: print messages of topics from the beginning, one JSON
/// object per line (topic, partition, offset, key, headers, value), to look
/// at what a pipeline wrote or at its dead-letter queue. Partitions are
/// assigned directly, not through a consumer group, whose join can take
/// many seconds; a topic or partition that appears later is picked up.
pub fn run(args: &TailArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        // librdkafka assigns only through a group handle; the group is never joined.
        .set("group.id", format!("sluice-tail-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .create()?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
    let mut assigned = BTreeSet::new();
    let mut looked_at: Option<Instant> = None;
    let mut printed = 0;
    while printed < args.max && Instant::now() < deadline {
        if looked_at.is_none_or(|at| at.elapsed() >= METADATA_EVERY) {
            looked_at = Some(Instant::now());
            assign_new_partitions(&consumer, &args.topics, &mut assigned)?;
        }
        let message = match consumer.poll(Duration::from_millis(200)) {
            None | Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition))) => continue,
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => m,
        };
        let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
        let headers: serde_json::Map<String, serde_json::Value> = message
            .headers()
            .map(|hs| hs.iter().map(|h| (h.key.to_owned(), text(h.value).into())).collect())
            .unwrap_or_default();
        let value = match message.payload().map(serde_json::from_slice::<serde_json::Value>) {
            Some(Ok(json)) => json,
            Some(Err(_)) => text(message.payload()).into(),
            None => serde_json::Value::Null,
        };
        let line = serde_json::json!({
            "topic": message.topic(), "partition": message.partition(), "offset": message.offset(),
            "key": text(message.key()), "headers": headers, "value": value,
        });
        writeln!(out, "{line}")?;
        printed += 1;
    }
    Ok(0)
}

const METADATA_EVERY: Duration = Duration::from_secs(1);

/// Assigns, from their beginning, the partitions of `topics` not yet
/// assigned; those already assigned keep their place. (An assignment is
/// replaced whole: adding to it needs a consumer group.)
fn assign_new_partitions(consumer: &BaseConsumer, topics: &[String], assigned: &mut BTreeSet<(String, i32)>) -> anyhow::Result<()> {
    let mut found = Vec::new();
    for topic in topics {
        let metadata = match consumer.fetch_metadata(Some(topic), Duration::from_secs(2)) {
            Ok(metadata) => metadata,
            Err(KafkaError::MetadataFetch(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        for partition in metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .flat_map(|t| t.partitions())
        {
            if !assigned.contains(&(topic.clone(), partition.id())) {
                found.push((topic.clone(), partition.id()));
            }
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    let mut all = if assigned.is_empty() {
        TopicPartitionList::new()
    } else {
        consumer.position()?
    };
    for (topic, partition) in found {
        all.add_partition_offset(&topic, partition, Offset::Beginning)?;
        assigned.insert((topic, partition));
    }
    // A partition assigned but not yet read has no position: from its beginning.
    let unread: Vec<(String, i32)> = all
        .elements()
        .iter()
        .filter(|e| e.offset() == Offset::Invalid)
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect();
    for (topic, partition) in unread {
        all.set_partition_offset(&topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&all)?;
    Ok(())
}
