//! Kafka → MySQL: mixed create/update/delete envelopes over 3 partitions end
//! as the exact final state; a second run over the same topic changes
//! nothing (the offsets table, written with the rows, says what was applied);
//! poison messages go to the dead-letter queue with their reasons while every
//! good record is applied.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, TopicPartitionList};
use serde_json::json;
use sluice::pipeline::PipelineFile;
use sluice::plugin::PluginHost;
use sluice::topology::run_pipeline;
use sluice_testkit::{Stack, engine, plugins_dir};
use tokio::sync::watch;

use crate::binlog_to_kafka::{PipelineTask, spawn_pipeline, stop_pipeline};
use crate::kafka_sink::consume;

const MESSAGES: usize = 100_000;
const KEYS: u64 = 5_000;

fn pipeline_file(stack: &Stack, group: &str, topic: &str) -> PipelineFile {
    PipelineFile::parse(&pipeline_text(stack, group, topic), |_| None).unwrap()
}

fn pipeline_text(stack: &Stack, group: &str, topic: &str) -> String {
    let pipeline = r#"
[[pipeline]]
name = "accounts"
source = { type = "kafka", brokers = "{brokers}", topics = ["{topic}"], group = "{group}", properties = { "session.timeout.ms" = "6000", "heartbeat.interval.ms" = "500" } }
sink = { type = "mysql", url = "{url}" }
dead_letter = { topic = "accounts.dlq" }

[[pipeline.plugins]]
name = "passthrough"
"#;
    stack.pipeline_text(plugins_dir(), None, &pipeline.replace("{topic}", topic).replace("{group}", group))
}

async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let result = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    result.into_iter().for_each(|r| {
        r.unwrap();
    });
}

pub(crate) async fn produce(brokers: &str, topic: &str, messages: &[(i32, Option<String>, Option<String>)]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
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
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .unwrap();
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
    let (stop_tx, task) = spawn_pipeline(file);
    wait_applied(db, total, "the pipeline", 240, Some(&task)).await;
    stop_pipeline(stop_tx, task).await;
}

/// Waits until `group` has committed `total` offsets on `topic` to the broker.
async fn wait_group_committed(brokers: &str, group: &str, topic: &str, partitions: i32, total: i64, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while group_committed(brokers, group, topic, partitions) < total {
        assert!(Instant::now() < deadline, "{what} within {} s", within.as_secs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

type Model = BTreeMap<u64, (String, String, String)>;
type Messages = Vec<(i32, Option<String>, Option<String>)>;

/// A deterministic stream of creates, updates, deletes and tombstones over
/// KEYS keys (each key on partition id % partitions, so its order holds),
/// and the final state it implies.
fn mixed_stream(count: usize, partitions: u64, seed: u64) -> (Messages, Model) {
    let mut model = Model::new();
    let mut messages = Vec::with_capacity(count);
    let mut seed = seed;
    for i in 0..count as u64 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let id = (seed >> 33) % KEYS;
        let partition = (id % partitions) as i32;
        let key = Some(json!({ "id": id }).to_string());
        let row = (
            format!("name {i}"),
            format!("{}.{:02}", i % 100000, i % 100),
            format!("2026-01-01T00:00:{:02}.{:06}Z", i % 60, i % 1_000_000),
        );
        let after = json!({ "id": id, "name": row.0, "balance": row.1, "seen": row.2 });
        let source = json!({ "db": "shop", "table": "accounts" });
        let value = match (model.contains_key(&id), (seed >> 20) % 10) {
            (false, _) => Some(json!({ "op": "c", "before": null, "after": after, "source": source })),
            (true, 0..=6) => Some(json!({ "op": "u", "before": { "id": id }, "after": after, "source": source })),
            (true, 7..=8) => Some(json!({ "op": "d", "before": { "id": id }, "after": null, "source": source })),
            (true, _) => None, // a tombstone
        };
        match &value {
            Some(v) if v["op"] != "d" => model.insert(id, row),
            _ => model.remove(&id),
        };
        messages.push((partition, key, value.map(|v| v.to_string())));
    }
    (messages, model)
}

fn normalise(model: &Model) -> Model {
    model
        .iter()
        .map(|(id, (n, b, s))| (*id, (n.clone(), format!("{:.2}", b.parse::<f64>().unwrap()), s.clone())))
        .collect()
}

async fn accounts(db: &mut mysql_async::Conn) -> Model {
    let rows: Vec<(u64, String, String, String)> = db
        .query("SELECT id, name, CAST(balance AS CHAR), DATE_FORMAT(seen, '%Y-%m-%dT%H:%i:%s.%fZ') FROM shop.accounts ORDER BY id")
        .await
        .unwrap();
    rows.into_iter().map(|(id, n, b, s)| (id, (n, b, s))).collect()
}

const ACCOUNTS: &str = "CREATE DATABASE shop;
    CREATE TABLE shop.accounts (id INT PRIMARY KEY, name VARCHAR(40), balance DECIMAL(12,2), seen DATETIME(6))";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_envelopes_end_in_the_exact_final_state_once() {
    let stack = Stack::start();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(ACCOUNTS).await.unwrap();
    create_topic(stack.kafka_brokers(), "shop.accounts", 3).await;

    let (messages, model) = mixed_stream(MESSAGES, 3, 42);
    produce(stack.kafka_brokers(), "shop.accounts", &messages).await;
    run_until_applied(pipeline_file(&stack, "accounts-1", "shop.accounts"), &mut db, MESSAGES as i64).await;

    let (table, normalised) = (accounts(&mut db).await, normalise(&model));
    assert_eq!(table.len(), normalised.len(), "rows in shop.accounts");
    assert!(table == normalised, "shop.accounts differs from the final state of the stream");

    // A new group starts where the offsets table says, not at the start of
    // the topic: nothing is applied again (a hand-made edit survives).
    let survivor = *table.keys().next().unwrap();
    db.query_drop(format!("UPDATE shop.accounts SET name = 'edited by hand' WHERE id = {survivor}"))
        .await
        .unwrap();
    let (stop_tx, task) = spawn_pipeline(pipeline_file(&stack, "accounts-2", "shop.accounts"));
    let started = "the new group did not start at the offsets table's offsets";
    wait_group_committed(
        stack.kafka_brokers(),
        "accounts-2",
        "shop.accounts",
        3,
        MESSAGES as i64,
        Duration::from_secs(60),
        started,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_pipeline(stop_tx, task).await;
    let name: String = db
        .query_first(format!("SELECT name FROM shop.accounts WHERE id = {survivor}"))
        .await
        .unwrap()
        .unwrap();
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
        (
            0,
            key(1),
            envelope(json!({ "id": 1, "name": "good", "balance": "1.50" }), "accounts"),
        ),
        (0, key(2), Some("{not json".to_string())),
        (
            0,
            key(3),
            envelope(json!({ "id": 3, "name": "x", "balance": "123456789.00" }), "accounts"),
        ),
        (
            0,
            key(4),
            envelope(json!({ "id": 4, "name": "far too long a name", "balance": "1" }), "accounts"),
        ),
        (0, None, envelope(json!({ "name": "no key", "balance": "1" }), "accounts")),
        (0, key(6), envelope(json!({ "id": 6, "name": "lost" }), "nosuch")),
        (
            0,
            key(7),
            envelope(json!({ "id": 7, "name": "good too", "balance": "2.25" }), "accounts"),
        ),
    ];
    create_topic(stack.kafka_brokers(), "shop.accounts", 1).await;
    produce(stack.kafka_brokers(), "shop.accounts", &messages).await;
    run_until_applied(pipeline_file(&stack, "poison", "shop.accounts"), &mut db, messages.len() as i64).await;

    let rows: Vec<(u64, String, String)> = db
        .query("SELECT id, name, CAST(balance AS CHAR) FROM shop.accounts ORDER BY id")
        .await
        .unwrap();
    assert_eq!(rows, [(1, "good".into(), "1.50".into()), (7, "good too".into(), "2.25".into())]);
    let dead = consume(stack.kafka_brokers(), "poison-dlq", &["accounts.dlq"], 5);
    let reason = |needle: &str| {
        dead.iter().find(|d| d.headers["sluice.error"].contains(needle)).unwrap_or_else(|| {
            panic!(
                "no dead letter says {needle:?}: {:?}",
                dead.iter().map(|d| &d.headers["sluice.error"]).collect::<Vec<_>>()
            )
        })
    };
    assert_eq!(reason("not valid JSON").headers["sluice.error-kind"], "undecodable");
    assert_eq!(
        reason("Out of range value for column 'balance'").headers["sluice.error-kind"],
        "unwritable"
    );
    reason("Data too long for column 'name'");
    reason("missing primary key column `id`");
    reason("table `shop.nosuch` does not exist");
    assert!(dead.iter().all(|d| d.headers["sluice.position"].starts_with("shop.accounts/0/")));
}

/// The applied offsets per partition, as the offsets table holds them.
async fn stored_offsets(db: &mut mysql_async::Conn) -> BTreeMap<i32, i64> {
    let rows: Vec<(i32, i64)> = db
        .query("SELECT kafka_partition, next_offset FROM sluice.sluice_offsets WHERE pipeline = 'accounts'")
        .await
        .unwrap_or_default();
    rows.into_iter().collect()
}

/// Waits until the offsets table accounts for `total` messages; `running`,
/// the in-process pipeline that must not stop meanwhile.
async fn wait_applied(db: &mut mysql_async::Conn, total: i64, what: &str, within_secs: u64, running: Option<&PipelineTask>) {
    let deadline = Instant::now() + Duration::from_secs(within_secs);
    loop {
        let applied: i64 = stored_offsets(db).await.values().sum();
        if applied == total {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: offsets table at {applied} of {total} after {within_secs} s"
        );
        assert!(running.is_none_or(|task| !task.is_finished()), "{what}: the pipeline stopped early");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hosts_share_partitions_and_survive_sigkill() {
    let stack = Stack::start();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(ACCOUNTS).await.unwrap();
    create_topic(stack.kafka_brokers(), "shop.accounts", 6).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.toml");
    std::fs::write(&file, pipeline_text(&stack, "accounts-pair", "shop.accounts")).unwrap();
    let (messages, model) = mixed_stream(60_000, 6, 7);
    let counts = |upto: usize| {
        let mut per: BTreeMap<i32, i64> = BTreeMap::new();
        for (p, _, _) in &messages[..upto] {
            *per.entry(*p).or_default() += 1;
        }
        per
    };

    let mut first = crate::crash_resume::spawn_pipeline(&file);
    let mut second = crate::crash_resume::spawn_pipeline(&file);
    produce(stack.kafka_brokers(), "shop.accounts", &messages[..30_000]).await;
    wait_applied(&mut db, 30_000, "both hosts", 300, None).await;
    // Kill one host mid-load: its partitions must move to the survivor.
    produce(stack.kafka_brokers(), "shop.accounts", &messages[30_000..40_000]).await;
    first.kill().unwrap();
    first.wait().unwrap();
    produce(stack.kafka_brokers(), "shop.accounts", &messages[40_000..50_000]).await;
    wait_applied(&mut db, 50_000, "the survivor", 300, None).await;
    assert_eq!(stored_offsets(&mut db).await, counts(50_000), "offsets table per partition");

    // Kill the survivor too, mid-load, and start a fresh host.
    let rest = messages[50_000..].to_vec();
    let producing = {
        let brokers = stack.kafka_brokers().to_owned();
        tokio::spawn(async move { produce(&brokers, "shop.accounts", &rest).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    second.kill().unwrap();
    second.wait().unwrap();
    producing.await.unwrap();
    let mut third = crate::crash_resume::spawn_pipeline(&file);
    wait_applied(&mut db, 60_000, "the restarted host", 300, None).await;
    third.kill().unwrap();
    third.wait().unwrap();
    assert_eq!(stored_offsets(&mut db).await, counts(60_000), "offsets table per partition");
    let (table, expected) = (accounts(&mut db).await, normalise(&model));
    assert_eq!(table.len(), expected.len(), "rows in shop.accounts");
    assert!(table == expected, "shop.accounts differs from the final state of the stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sink_reconnects_when_mysql_restarts_mid_load() {
    let stack = Stack::start();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(ACCOUNTS).await.unwrap();
    create_topic(stack.kafka_brokers(), "shop.accounts", 3).await;
    let (messages, model) = mixed_stream(30_000, 3, 11);
    let (stop_tx, task) = spawn_pipeline(pipeline_file(&stack, "accounts-restart", "shop.accounts"));

    produce(stack.kafka_brokers(), "shop.accounts", &messages[..10_000]).await;
    wait_applied(&mut db, 10_000, "before the restart", 300, Some(&task)).await;
    let rest = messages[10_000..].to_vec();
    let brokers = stack.kafka_brokers().to_owned();
    let producing = tokio::spawn(async move { produce(&brokers, "shop.accounts", &rest).await });
    tokio::task::block_in_place(|| stack.restart_mysql());
    producing.await.unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    wait_applied(&mut db, 30_000, "after the restart", 300, Some(&task)).await;
    assert!(!task.is_finished(), "the pipeline must ride out the restart: {:?}", task.await);
    stop_pipeline(stop_tx, task).await;
    let (table, expected) = (accounts(&mut db).await, normalise(&model));
    assert!(table == expected, "shop.accounts differs from the final state of the stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn running_totals_count_every_order_exactly_once() {
    let stack = Stack::start();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(
        "CREATE DATABASE shop; CREATE TABLE shop.customer_minutes (customer INT, minute DATETIME, orders INT NOT NULL,
         amount DECIMAL(12,2) NOT NULL, PRIMARY KEY (customer, minute))",
    )
    .await
    .unwrap();
    create_topic(stack.kafka_brokers(), "shop.orders", 3).await;
    let mut expected: BTreeMap<(u64, String), (u64, u64)> = BTreeMap::new(); // (orders, cents)
    let messages: Messages = (0..3000u64)
        .map(|id| {
            let (customer, minute, cents) = (id % 10, id % 7, 100 + id % 50);
            let entry = expected.entry((customer, format!("2026-11-26 12:0{minute}:00"))).or_default();
            *entry = (entry.0 + 1, entry.1 + cents);
            let after = json!({ "id": id, "customer": customer, "amount": format!("{}.{:02}", cents / 100, cents % 100),
                                "at": format!("2026-11-26T12:0{minute}:{:02}Z", id % 60) });
            let value = json!({ "op": "c", "before": null, "after": after, "source": { "db": "shop", "table": "orders" } });
            ((id % 3) as i32, Some(json!({ "id": id }).to_string()), Some(value.to_string()))
        })
        .collect();
    produce(stack.kafka_brokers(), "shop.orders", &messages).await;
    let text = |group: &str| {
        let pipeline = r#"
[[pipeline]]
name = "accounts"
source = { type = "kafka", brokers = "{brokers}", topics = ["shop.orders"], group = "{group}" }
sink = { type = "mysql", url = "{url}", accumulate = ["orders", "amount"] }
dead_letter = { topic = "orders.dlq" }

[[pipeline.plugins]]
name = "tally"
config = { time = "at", into = "shop.customer_minutes" }
"#;
        stack.pipeline_text(plugins_dir(), None, &pipeline.replace("{group}", group))
    };
    let totals = async |db: &mut mysql_async::Conn| -> BTreeMap<(u64, String), (u64, u64)> {
        let rows: Vec<(u64, String, u64, u64)> = db
            .query("SELECT customer, CAST(minute AS CHAR), orders, CAST(amount * 100 AS UNSIGNED) FROM shop.customer_minutes")
            .await
            .unwrap();
        rows.into_iter().map(|(c, m, o, a)| ((c, m), (o, a))).collect()
    };
    run_until_applied(PipelineFile::parse(&text("tally-1"), |_| None).unwrap(), &mut db, 3000).await;
    assert_eq!(totals(&mut db).await, expected);

    // Read again by a new group: every order was counted; none counts twice.
    let (stop_tx, task) = spawn_pipeline(PipelineFile::parse(&text("tally-2"), |_| None).unwrap());
    let read = "the second run did not read the topic";
    wait_group_committed(
        stack.kafka_brokers(),
        "tally-2",
        "shop.orders",
        3,
        3000,
        Duration::from_secs(120),
        read,
    )
    .await;
    stop_pipeline(stop_tx, task).await;
    assert_eq!(totals(&mut db).await, expected);
}

/// The sink itself skips records at or below the offsets it stored, whatever
/// the consumer hands it (a rebalance, a group whose broker offsets lag),
/// dead letters included; and it creates a missing table from the first
/// record when asked to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_skips_records_it_already_applied_and_creates_missing_tables() {
    use sluice::record::{Column, Op, Position, Record, Schema, Value};
    use sluice::sinks::dead_letter::DeadLetterQueue;
    use sluice::sinks::mysql::{MysqlSink, MysqlSinkConfig, RowPlanner};

    let stack = Stack::start();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    // The table does not exist: `create_tables` makes it from the first record.
    db.query_drop("CREATE DATABASE shop").await.unwrap();
    let config: MysqlSinkConfig = toml::from_str(&format!("url = \"{}\"\ncreate_tables = true", stack.mysql_url())).unwrap();
    let dlq: DeadLetterQueue = DeadLetterQueue::new(
        &toml::from_str("topic = \"t.dlq\"").unwrap(),
        stack.kafka_brokers(),
        &Default::default(),
        "p",
    )
    .unwrap();
    let mut sink = MysqlSink::connect(&config, "p", None).await.unwrap();
    let mut planner = RowPlanner::connect(&config, "p").await.unwrap();
    let schema = std::sync::Arc::new(Schema {
        database: "shop".into(),
        table: "t".into(),
        columns: vec![
            Column {
                name: "id".into(),
                sql_type: String::new(),
            },
            Column {
                name: "v".into(),
                sql_type: String::new(),
            },
        ],
        key: vec![0],
    });
    let mut records: Vec<Record> = (0..10)
        .map(|i| Record {
            op: Op::Insert,
            position: Position::Kafka {
                topic: "shop.t".into(),
                partition: 0,
                offset: i,
            },
            ts_ms: 0,
            schema: Some(schema.clone()),
            before: None,
            after: Some(vec![Value::Int(i % 3), Value::Int(i)]),
            key: None,
            payload: None,
            headers: Vec::new(),
            destination: None,
        })
        .collect();
    // A raw message no plugin decoded: it cannot be written, so it is a dead letter.
    let mut raw = records[0].clone();
    (raw.op, raw.schema, raw.after, raw.payload) = (Op::Message, None, None, Some(b"not a row".to_vec()));
    raw.position = Position::Kafka {
        topic: "shop.t".into(),
        partition: 0,
        offset: 10,
    };
    records.push(raw);
    let next = [(("shop.t".to_owned(), 0), 11)].into_iter().collect();
    let applied = sink
        .apply(&planner.plan(records.clone()).await.unwrap(), &next, &[], &dlq)
        .await
        .unwrap();
    assert_eq!(applied.unwritable, 1);
    let rows: Vec<(i32, i32)> = db.query("SELECT id, v FROM shop.t ORDER BY id").await.unwrap();
    assert_eq!(rows, [(0, 9), (1, 7), (2, 8)], "the last change per key");
    let key: String = db
        .query_first("SELECT GROUP_CONCAT(COLUMN_NAME) FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_NAME = 't' AND CONSTRAINT_NAME = 'PRIMARY'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(key, "id", "the created table's primary key is the record's key");
    db.query_drop("UPDATE shop.t SET v = -1").await.unwrap();
    // The same batch again, plus one new record: only the new one applies,
    // and the dead letter is not sent a second time.
    let mut again = records;
    let mut newer = again[0].clone();
    newer.position = Position::Kafka {
        topic: "shop.t".into(),
        partition: 0,
        offset: 11,
    };
    again.push(newer);
    let next = [(("shop.t".to_owned(), 0), 12)].into_iter().collect();
    let applied = sink.apply(&planner.plan(again).await.unwrap(), &next, &[], &dlq).await.unwrap();
    assert_eq!(applied.unwritable, 0);
    let rows: Vec<(i32, i32)> = db.query("SELECT id, v FROM shop.t ORDER BY id").await.unwrap();
    assert_eq!(rows, [(0, 0), (1, -1), (2, -1)]);
    assert_eq!(
        sink.applied_offsets().await.unwrap(),
        [(("shop.t".to_owned(), 0), 12)].into_iter().collect()
    );
    let dead = consume(stack.kafka_brokers(), "dlq-reader", &["t.dlq"], 1);
    assert_eq!(dead[0].headers["sluice.position"], "shop.t/0/10");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_brokers_and_mysql_are_named_at_start() {
    let stack = Stack::start();
    let run = async |text: String| {
        let mut file = PipelineFile::parse(&text, |_| None).unwrap();
        let host = PluginHost::open(engine(), &file.plugin_dir).unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        let pipeline = file.pipelines.remove(0);
        let run = run_pipeline(&pipeline, host, std::path::Path::new("."), stop);
        tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("start-up errors come within a minute")
            .unwrap_err()
            .to_string()
    };
    let no_broker = pipeline_text(&stack, "g", "t").replace(stack.kafka_brokers(), "127.0.0.1:1");
    let e = run(no_broker).await;
    assert!(e.contains("no Kafka broker answers at 127.0.0.1:1"), "{e}");
    let no_mysql = pipeline_text(&stack, "g", "t").replace(stack.mysql_url(), "mysql://root:secret@127.0.0.1:1/");
    let e = run(no_mysql).await;
    assert!(e.contains("cannot connect to MySQL at mysql://root:***@127.0.0.1:1/"), "{e}");
    assert!(!e.contains("secret"), "{e}");
}
