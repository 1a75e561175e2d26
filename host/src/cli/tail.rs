use std::io::Write;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};

use super::TailArgs;

/// `sluice tail`: print messages of topics from the beginning, one JSON
/// object per line (topic, partition, offset, key, headers, value), to look
/// at what a pipeline wrote or at its dead-letter queue.
pub fn run(args: &TailArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("group.id", format!("sluice-tail-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create()?;
    let topics: Vec<&str> = args.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
    let mut printed = 0;
    while printed < args.max && Instant::now() < deadline {
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
