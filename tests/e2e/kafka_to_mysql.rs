//! Kafka → MySQL: mixed create/update/delete envelopes over 3 partitions end
//! as the exact final state; a second run over the same topic changes
//! nothing (the offsets table, written with the rows, says what was applied);
//! poison messages go to the dead-letter queue with their reasons while every
//! good record is applied.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, TopicPartitionList};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use sluice::pipeline::PipelineFile;
use sluice::plugin::PluginHost;
use sluice::topology::run_pipeline;
use sluice_tests::{Stack, engine, plugins_dir};
use tokio::sync::watch;

use crate::kafka_sink::consume;

const MESSAGES: usize = 100_000;
const KEYS: u64 = 5_000;

fn pipeline_file(stack: &Stack, group: &str, topic: &str) -> PipelineFile {
    let text = format!(
        r#"
plugin_dir = "{plugins}"

[[pipeline]]
name = "accounts"
source = {{ type = "kafka", brokers = "{brokers}", topics = ["{topic}"], group = "{group}" }}
sink = {{ type = "mysql", url = "{url}" }}
dead_letter = {{ topic = "accounts.dlq" }}

[[pipeline.plugins]]
name = "passthrough"
"#,
        plugins = plugins_dir().display(),
        brokers = stack.kafka_brokers(),
        url = stack.mysql_url(),
    );
    PipelineFile::parse(&text, |_| None).unwrap()
}

async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let result = admin.create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &AdminOptions::new()).await.unwrap();
    result.into_iter().for_each(|r| {
        r.unwrap();
    });
}

async fn produce(brokers: &str, topic: &str, messages: &[(i32, Option<String>, Option<String>)]) {
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", brokers).set("linger.ms", "5").create().unwrap();
    for chunk in messages.chunks(5000) {
        let sends = chunk.iter().map(|(partition, key, value)| {
            let mut record = FutureRecord::<String, String>::to(topic).partition(*partition);
            if let Some(key) = key {
                record = record.key(key);
            }
            if let Some(value) = value {
                record = record.payload(value);
            }
            producer.send(record, Duration::from_secs(30))
        });
        for sent in futures::future::join_all(sends).await {
            sent.unwrap();
        }
    }
}

/// The offsets `group` has committed to the broker on `topic`, summed.
fn group_committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", group).create().unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    match consumer.committed_offsets(list, Duration::from_secs(10)) {
        Ok(list) => list.elements().iter().filter_map(|e| e.offset().to_raw()).filter(|o| *o > 0).sum(),
        Err(_) => 0,
    }
}

/// Runs the pipeline until the offsets table accounts for `total` messages.
async fn run_until_applied(file: PipelineFile, db: &mut mysql_async::Conn, total: i64) {
    let mut file = file;
    let pipeline = file.pipelines.remove(0);
    let host = PluginHost::open(engine(), &file.plugin_dir).unwrap();
    let (stop_tx, stop) = watch::channel(false);
    let state_dir = file.state_dir.clone();
    let task = tokio::spawn(async move { run_pipeline(&pipeline, host, &state_dir, stop).await.expect("pipeline failed") });
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let applied: Option<i64> = db
            .query_first::<Option<i64>, _>("SELECT CAST(SUM(next_offset) AS SIGNED) FROM sluice.sluice_offsets WHERE pipeline = 'accounts'")
            .await
            .ok()
            .flatten()
            .flatten();
        if applied == Some(total) {
            break;
        }
        assert!(Instant::now() < deadline, "offsets table at {applied:?} of {total} after 240 s");
        assert!(!task.is_finished(), "the pipeline stopped early");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop_tx.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_envelopes_end_in_the_exact_final_state_once() {
    let stack = Stack::start();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(
        "CREATE DATABASE shop;
         CREATE TABLE shop.accounts (id INT PRIMARY KEY, name VARCHAR(40), balance DECIMAL(12,2), seen DATETIME(6))",
    )
    .await
    .unwrap();
    create_topic(stack.kafka_brokers(), "shop.accounts", 3).await;

    // A deterministic stream over KEYS keys; the model is the final state.
    let mut model: BTreeMap<u64, (String, String, String)> = BTreeMap::new();
    let mut messages = Vec::with_capacity(MESSAGES);
    let mut seed: u64 = 42;
    for i in 0..MESSAGES as u64 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let id = (seed >> 33) % KEYS;
        let partition = (id % 3) as i32;
        let key = Some(json!({ "id": id }).to_string());
        let row = (format!("name {i}"), format!("{}.{:02}", i % 100000, i % 100), format!("2026-01-01T00:00:{:02}.{:06}Z", i % 60, i % 1_000_000));
        let after = json!({ "id": id, "name": row.0, "balance": row.1, "seen": row.2 });
        let exists = model.contains_key(&id);
        let value = match (exists, (seed >> 20) % 10) {
            (false, _) => Some(json!({ "op": "c", "before": null, "after": after, "source": { "db": "shop", "table": "accounts" } })),
            (true, 0..=6) => Some(json!({ "op": "u", "before": { "id": id }, "after": after, "source": { "db": "shop", "table": "accounts" } })),
            (true, 7..=8) => Some(json!({ "op": "d", "before": { "id": id }, "after": null, "source": { "db": "shop", "table": "accounts" } })),
            (true, _) => None, // a tombstone
        };
        match &value {
            Some(v) if v["op"] != "d" => {
                model.insert(id, row);
            }
            _ => {
                model.remove(&id);
            }
        }
        messages.push((partition, key, value.map(|v| v.to_string())));
    }
    produce(stack.kafka_brokers(), "shop.accounts", &messages).await;
    run_until_applied(pipeline_file(&stack, "accounts-1", "shop.accounts"), &mut db, MESSAGES as i64).await;

    let rows: Vec<(u64, String, String, String)> =
        db.query("SELECT id, name, CAST(balance AS CHAR), DATE_FORMAT(seen, '%Y-%m-%dT%H:%i:%s.%fZ') FROM shop.accounts ORDER BY id").await.unwrap();
    let table: BTreeMap<u64, (String, String, String)> = rows.into_iter().map(|(id, n, b, s)| (id, (n, b, s))).collect();
    let normalised: BTreeMap<u64, (String, String, String)> = model
        .iter()
        .map(|(id, (n, b, s))| (*id, (n.clone(), format!("{:.2}", b.parse::<f64>().unwrap()), s.clone())))
        .collect();
    assert_eq!(table.len(), normalised.len(), "rows in shop.accounts");
    assert!(table == normalised, "shop.accounts differs from the final state of the stream");

    // A new group reads the whole topic again: the offsets table says it
    // was applied, so nothing changes (a hand-made edit survives).
    let survivor = *table.keys().next().unwrap();
    db.query_drop(format!("UPDATE shop.accounts SET name = 'edited by hand' WHERE id = {survivor}")).await.unwrap();
    let mut file = pipeline_file(&stack, "accounts-2", "shop.accounts");
    let pipeline = file.pipelines.remove(0);
    let host = PluginHost::open(engine(), &file.plugin_dir).unwrap();
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(async move { run_pipeline(&pipeline, host, std::path::Path::new("."), stop).await.expect("pipeline failed") });
    // It has read the whole topic once its group committed the end.
    let deadline = Instant::now() + Duration::from_secs(240);
    while group_committed(stack.kafka_brokers(), "accounts-2", "shop.accounts", 3) < MESSAGES as i64 {
        assert!(Instant::now() < deadline, "the second run did not read the topic within 240 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    let name: String = db.query_first(format!("SELECT name FROM shop.accounts WHERE id = {survivor}")).await.unwrap().unwrap();
    assert_eq!(name, "edited by hand");
    let count: u64 = db.query_first("SELECT COUNT(*) FROM shop.accounts").await.unwrap().unwrap();
    assert_eq!(count as usize, normalised.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_messages_go_to_the_dead_letter_queue_with_their_reasons() {
    let stack = Stack::start();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop("CREATE DATABASE shop; CREATE TABLE shop.accounts (id INT PRIMARY KEY, name VARCHAR(10), balance DECIMAL(6,2))")
        .await
        .unwrap();
    let envelope = |after: serde_json::Value, table: &str| {
        Some(json!({ "op": "c", "before": null, "after": after, "source": { "db": "shop", "table": table } }).to_string())
    };
    let key = |id: u64| Some(json!({ "id": id }).to_string());
    let messages = vec![
        (0, key(1), envelope(json!({ "id": 1, "name": "good", "balance": "1.50" }), "accounts")),
        (0, key(2), Some("{not json".to_string())),
        (0, key(3), envelope(json!({ "id": 3, "name": "x", "balance": "123456789.00" }), "accounts")),
        (0, key(4), envelope(json!({ "id": 4, "name": "far too long a name", "balance": "1" }), "accounts")),
        (0, None, envelope(json!({ "name": "no key", "balance": "1" }), "accounts")),
        (0, key(6), envelope(json!({ "id": 6, "name": "lost" }), "nosuch")),
        (0, key(7), envelope(json!({ "id": 7, "name": "good too", "balance": "2.25" }), "accounts")),
    ];
    create_topic(stack.kafka_brokers(), "shop.accounts", 1).await;
    produce(stack.kafka_brokers(), "shop.accounts", &messages).await;
    run_until_applied(pipeline_file(&stack, "poison", "shop.accounts"), &mut db, messages.len() as i64).await;

    let rows: Vec<(u64, String, String)> =
        db.query("SELECT id, name, CAST(balance AS CHAR) FROM shop.accounts ORDER BY id").await.unwrap();
    assert_eq!(rows, [(1, "good".into(), "1.50".into()), (7, "good too".into(), "2.25".into())]);
    let dead = consume(stack.kafka_brokers(), "poison-dlq", &["accounts.dlq"], 5);
    let reason = |needle: &str| {
        dead.iter()
            .find(|d| d.headers["sluice.error"].contains(needle))
            .unwrap_or_else(|| panic!("no dead letter says {needle:?}: {:?}", dead.iter().map(|d| &d.headers["sluice.error"]).collect::<Vec<_>>()))
    };
    assert_eq!(reason("not valid JSON").headers["sluice.error-kind"], "undecodable");
    assert_eq!(reason("Out of range value for column 'balance'").headers["sluice.error-kind"], "unwritable");
    reason("Data too long for column 'name'");
    reason("missing primary key column `id`");
    reason("table `shop.nosuch` does not exist");
    assert!(dead.iter().all(|d| d.headers["sluice.position"].starts_with("shop.accounts/0/")));
}
