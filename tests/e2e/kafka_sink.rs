//! Records through the three example plugins into a real Kafka (Tansu):
//! masked values never reach the broker, enriched columns appear, routed
//! records land in their topics, rejected ones in the dead-letter queue.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use serde_json::Value as Json;
use sluice::pipeline::PluginStep;
use sluice::plugin::{PluginHost, PluginLimits};
use sluice::sinks::dead_letter::{DeadLetterConfig, DeadLetterQueue};
use sluice::sinks::kafka::{KafkaSink, KafkaSinkConfig};
use sluice::transforms::PluginChain;
use sluice_testkit::{Stack, batch, engine, plugins_dir, repo_root};

pub struct Received {
    pub topic: String,
    pub key: Option<String>,
    pub value: Json,
    pub headers: HashMap<String, String>,
}

fn step(name: &str, config: &str) -> PluginStep {
    let config: toml::Table = toml::from_str(config).unwrap();
    PluginStep {
        name: name.into(),
        config,
        limits: PluginLimits::default(),
    }
}

fn consumer(brokers: &str, group: &str, topics: &[&str]) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        // A topic created after subscribing is noticed within a second.
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create()
        .unwrap();
    consumer.subscribe(topics).unwrap();
    consumer
}

/// The next message, if one comes within 200 ms.
fn poll(consumer: &BaseConsumer) -> Option<Received> {
    match consumer.poll(Duration::from_millis(200)) {
        Some(Ok(m)) => Some(Received {
            topic: m.topic().to_owned(),
            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            value: serde_json::from_slice(m.payload().unwrap_or(b"null")).unwrap(),
            headers: m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                        .collect()
                })
                .unwrap_or_default(),
        }),
        // Topics appear with their first message; until then the broker says so.
        None | Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition))) => None,
        Some(Err(e)) => panic!("consume: {e}"),
    }
}

/// Reads `topics` from the start until `expected` messages arrived, then
/// checks for two more seconds that nothing else comes.
pub fn consume(brokers: &str, group: &str, topics: &[&str], expected: usize) -> Vec<Received> {
    let consumer = consumer(brokers, group, topics);
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60 + expected as u64 / 1000);
    while received.len() < expected && Instant::now() < deadline {
        received.extend(poll(&consumer));
    }
    // A little longer, to catch anything that should not be there.
    let settle = Instant::now() + Duration::from_secs(2);
    while Instant::now() < settle {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            panic!(
                "unexpected extra message on {}: {:?}",
                m.topic(),
                m.payload().map(String::from_utf8_lossy)
            );
        }
    }
    received
}

/// Every message of `topic`, read from the start until `expected` came and
/// none came for the next three seconds.
pub fn consume_all(brokers: &str, group: &str, topic: &str, expected: usize) -> Vec<Received> {
    let consumer = consumer(brokers, group, &[topic]);
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60 + expected as u64 / 1000);
    let mut quiet_since = Instant::now();
    while (received.len() < expected || quiet_since.elapsed() < Duration::from_secs(3)) && Instant::now() < deadline {
        if let Some(m) = poll(&consumer) {
            received.push(m);
            quiet_since = Instant::now();
        }
    }
    received
}

/// Every message value of `topic`, read from the start until none came for
/// three seconds (the first may take 30, while the group forms).
pub fn read_all(brokers: &str, group: &str, topic: &str) -> Vec<Json> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut values: Vec<Json> = Vec::new();
    let started = Instant::now();
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(3) || values.is_empty() && started.elapsed() < Duration::from_secs(30) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            values.push(serde_json::from_slice(m.payload().unwrap_or(b"null")).unwrap());
            quiet_since = Instant::now();
        }
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_mask_enrich_route_and_reject_on_the_way_to_kafka() {
    let stack = Stack::start();
    let text = std::fs::read_to_string(repo_root().join("examples/records/users.jsonl")).unwrap();
    let records = batch(&text.lines().collect::<Vec<_>>());

    let host = PluginHost::open(engine(), plugins_dir()).unwrap();
    let steps = [
        step(
            "clean",
            r#"mask = ["phone"]
mask_style = "last4"
on_invalid = "reject""#,
        ),
        step("enrich", r#"domain_from = "email""#),
        step(
            "route",
            r#"column = "country"
routes = { DE = "users.eu", US = "users.us,users.audit" }
drop = ["XX"]"#,
        ),
    ];
    let mut chain = PluginChain::build(&host, &steps).unwrap();
    let out = chain.run(records);
    assert_eq!(out.rejected.len(), 1);
    assert!(
        out.records.iter().all(|r| r.destination.is_some()),
        "every surviving record was routed"
    );

    let sink_config: KafkaSinkConfig = toml::from_str(&format!("brokers = \"{}\"", stack.kafka_brokers())).unwrap();
    let mut sink = KafkaSink::new(&sink_config, "users", None).unwrap();
    assert!(sink.prepare(&out.records).is_empty(), "no record is too large");
    let (acks, refused) = sink.send(&out.records).await.unwrap();
    acks.wait().await.unwrap();
    assert!(refused.is_empty());
    let dlq_config: DeadLetterConfig = toml::from_str("topic = \"sluice.dlq\"").unwrap();
    let dlq = DeadLetterQueue::new(&dlq_config, stack.kafka_brokers(), &Default::default(), "users").unwrap();
    dlq.send(&out.rejected).await.unwrap();

    let got = consume(
        stack.kafka_brokers(),
        "kafka-sink-test",
        &["users.eu", "users.us", "users.audit", "sluice.dlq"],
        7,
    );
    let by_topic = |t: &str| got.iter().filter(|r| r.topic == t).collect::<Vec<_>>();

    for r in &got {
        assert!(
            !r.value.to_string().contains("170 1234567"),
            "an unmasked phone reached Kafka: {}",
            r.value
        );
    }
    let eu = by_topic("users.eu");
    assert_eq!(eu.len(), 2, "the read and the delete of Ann");
    let read = eu.iter().find(|r| r.value["op"] == "r").expect("snapshot read");
    assert_eq!(read.key.as_deref(), Some(r#"{"id":1}"#));
    assert_eq!(read.value["after"]["email"], "ann.lee@example.com");
    assert_eq!(read.value["after"]["email_domain"], "example.com");
    assert_eq!(read.value["after"]["phone"], "****4567");
    assert_eq!(read.value["after"]["balance"], "120.50", "DECIMAL stays exact text");
    assert_eq!(read.value["source"]["table"], "users");
    let delete = eu.iter().find(|r| r.value["op"] == "d").expect("delete");
    assert_eq!(delete.value["before"]["phone"], "****4567");
    assert_eq!(delete.value["after"], Json::Null);
    assert_eq!(delete.headers["sluice.position"], "binlog.000001:2390:0");
    assert_eq!(delete.headers["sluice.dedup-id"], "shop.users@binlog.000001:2390:0");

    for topic in ["users.us", "users.audit"] {
        let ops: Vec<&Json> = by_topic(topic).iter().map(|r| &r.value["op"]).collect();
        assert_eq!(ops.len(), 2, "{topic}: Bob's insert and update fan out to both topics");
        assert!(
            ops.contains(&&Json::from("c")) && ops.contains(&&Json::from("u")),
            "{topic}: {ops:?}"
        );
    }
    assert!(got.iter().all(|r| r.value["after"]["id"] != 4), "country XX is dropped");

    let dlq = by_topic("sluice.dlq");
    assert_eq!(dlq.len(), 1);
    let dead = dlq[0];
    assert_eq!(dead.headers["sluice.plugin"], "clean");
    assert_eq!(dead.headers["sluice.error-kind"], "rejected");
    assert!(dead.headers["sluice.error"].contains("not an email address"), "{:?}", dead.headers);
    assert_eq!(dead.headers["sluice.pipeline"], "users");
    assert_eq!(dead.headers["sluice.position"], "binlog.000001:1377:0");
    assert_eq!(dead.headers["sluice.plugin-version"].len(), 16);
    assert_eq!(
        dead.value["after"]["id"], 3,
        "the record as it entered the plugin, replayable with `sluice plugin test`"
    );
}
