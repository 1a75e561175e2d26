//! One row must not stop or silence a pipeline: a row or message too large
//! for the broker, a row that cannot be decoded, a pipeline that fails for
//! good beside healthy ones, and a MySQL server that restarts under load.
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value as Json, json};
use sluice::pipeline::PipelineFile;
use sluice::plugin::PluginHost;
use sluice::telemetry::PipelineTelemetry;
use sluice::topology::{run_pipeline, supervise};
use sluice_testkit::{Stack, engine, plugins_dir};
use tokio::sync::watch;

use crate::binlog_to_kafka::{spawn_pipeline, start_pipeline, stop_pipeline};
use crate::kafka_sink::consume;
use crate::process::SluiceProcess;

fn file_of(stack: &Stack, state: &Path, pipelines: &str) -> PipelineFile {
    PipelineFile::parse(&stack.pipeline_text(plugins_dir(), Some(state), pipelines), |_| None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_over_the_message_limit_goes_to_the_dead_letter_queue_and_the_stream_goes_on() {
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop("CREATE DATABASE shop; CREATE TABLE shop.files (id INT PRIMARY KEY, body LONGBLOB)")
        .await
        .unwrap();
    let pipeline = r#"
[[pipeline]]
name = "files"
source = { type = "mysql-binlog", url = "{url}", tables = ["shop.files"], server_id = 6201 }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "files.dlq" }
"#;
    let (stop, task) = start_pipeline(file_of(&stack, state.path(), pipeline)).await;
    db.query_drop(
        "INSERT INTO shop.files VALUES (1, 'small');
         INSERT INTO shop.files VALUES (2, REPEAT('x', 3000000));
         INSERT INTO shop.files VALUES (3, 'after');",
    )
    .await
    .unwrap();
    let delivered = consume(stack.kafka_brokers(), "files", &["shop.files"], 2);
    let mut ids: Vec<u64> = delivered.iter().map(|m| m.value["after"]["id"].as_u64().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 3], "the rows around the large one arrive");
    let dead = consume(stack.kafka_brokers(), "files-dlq", &["files.dlq"], 1);
    let headers = &dead[0].headers;
    assert_eq!(headers["sluice.error-kind"], "unwritable");
    assert!(
        headers["sluice.error"].contains("over the producer's message.max.bytes of 1000000"),
        "{headers:?}"
    );
    assert!(
        headers.contains_key("sluice.truncated"),
        "too large for the queue too: cut down to its reason"
    );
    assert_eq!(dead[0].value["truncated"], true);
    assert!(
        dead[0].value["position"].as_str().unwrap().starts_with("binlog."),
        "{}",
        dead[0].value
    );
    assert_eq!(dead[0].key.as_deref(), Some(r#"{"id":2}"#), "the key, small, is kept");
    stop_pipeline_ok(stop, task).await;
}

async fn stop_pipeline_ok(stop: watch::Sender<bool>, task: tokio::task::JoinHandle<()>) {
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_sink_refuses_and_too_large_for_the_queue_does_not_block_the_pipeline() {
    let stack = Stack::start();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop("CREATE DATABASE shop; CREATE TABLE shop.notes (id INT PRIMARY KEY, note VARCHAR(100))")
        .await
        .unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", stack.kafka_brokers())
        .set("message.max.bytes", "10000000")
        .create()
        .unwrap();
    let envelope =
        |id: u32, note: &str| json!({"op": "c", "after": {"id": id, "note": note}, "source": {"db": "shop", "table": "notes"}}).to_string();
    let huge = "n".repeat(5_000_000);
    for (id, note) in [(1, "first"), (2, huge.as_str()), (3, "third")] {
        let key = json!({ "id": id }).to_string();
        producer
            .send(
                FutureRecord::to("in.notes").partition(0).key(&key).payload(&envelope(id, note)),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
    }
    let pipeline = r#"
[[pipeline]]
name = "notes"
source = { type = "kafka", brokers = "{brokers}", topics = ["in.notes"], group = "notes" }
sink = { type = "mysql", url = "{url}" }
dead_letter = { topic = "notes.dlq" }
"#;
    let state = tempfile::tempdir().unwrap();
    let (stop, task) = spawn_pipeline(file_of(&stack, state.path(), pipeline));
    let dead = consume(stack.kafka_brokers(), "notes-dlq", &["notes.dlq"], 1);
    let headers = &dead[0].headers;
    assert_eq!(headers["sluice.error-kind"], "unwritable");
    assert!(headers["sluice.error"].contains("Data too long"), "{headers:?}");
    assert_eq!(
        (headers["sluice.source-topic"].as_str(), headers["sluice.source-partition"].as_str()),
        ("in.notes", "0")
    );
    assert_eq!(headers["sluice.source-offset"], "1");
    assert!(headers.contains_key("sluice.truncated"), "{headers:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ids: Vec<u32> = db.query("SELECT id FROM shop.notes ORDER BY id").await.unwrap();
        if ids == [1, 3] {
            break;
        }
        assert!(Instant::now() < deadline, "rows 1 and 3 were not written within 30 s: {ids:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop_pipeline(stop, task).await;
}

/// A binlog position with nothing after it yet, stored for `pipeline` by
/// `sluice positions set`, so that a run starts exactly there.
async fn store_current_position(db: &mut mysql_async::Conn, config: &Path, pipeline: &str) {
    let (file, pos): (String, u64) = db
        .query_first("SHOW MASTER STATUS")
        .await
        .unwrap()
        .map(|row: mysql_async::Row| (row.get(0).unwrap(), row.get(1).unwrap()))
        .unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let binlog = format!("{file}:{pos}");
    let args = [
        "sluice",
        "positions",
        "set",
        config.to_str().unwrap(),
        pipeline,
        "--binlog",
        &binlog,
    ];
    let code = sluice::cli::run(args.map(Into::into), &mut std::io::empty(), &mut out, &mut err);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
}

/// Rows written while the server logs no column names, read after the
/// table has changed: the pipeline cannot name their values.
async fn write_unnameable_rows(db: &mut mysql_async::Conn, table: &str) {
    db.query_drop(format!(
        "SET GLOBAL binlog_row_metadata = 'MINIMAL';
         INSERT INTO {table} VALUES (1, 'before the change');
         ALTER TABLE {table} ADD COLUMN extra INT;
         INSERT INTO {table} VALUES (2, 'after the change', 7);
         SET GLOBAL binlog_row_metadata = 'FULL';"
    ))
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_row_goes_to_the_dead_letter_queue_unless_on_error_stops() {
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, note VARCHAR(40)); CREATE TABLE shop.u LIKE shop.t")
        .await
        .unwrap();
    let pipelines = r#"
[[pipeline]]
name = "goes-on"
source = { type = "mysql-binlog", url = "{url}", tables = ["shop.t"], server_id = 6301, snapshot = "never" }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "t.dlq" }

[[pipeline]]
name = "halts"
source = { type = "mysql-binlog", url = "{url}", tables = ["shop.u"], server_id = 6302, snapshot = "never" }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "u.dlq" }
on_error = "stop"
"#;
    let config = state.path().join("pipelines.toml");
    std::fs::write(&config, stack.pipeline_text(plugins_dir(), Some(state.path()), pipelines)).unwrap();
    store_current_position(&mut db, &config, "goes-on").await;
    store_current_position(&mut db, &config, "halts").await;
    write_unnameable_rows(&mut db, "shop.t").await;
    write_unnameable_rows(&mut db, "shop.u").await;

    let mut file = PipelineFile::load(&config).unwrap();
    let halts = file.pipelines.remove(1);
    let (stop, task) = spawn_pipeline(file);
    let delivered = consume(stack.kafka_brokers(), "t", &["shop.t"], 1);
    assert_eq!(
        delivered[0].value["after"],
        json!({"id": 2, "note": "after the change", "extra": 7})
    );
    let dead = consume(stack.kafka_brokers(), "t-dlq", &["t.dlq"], 1);
    assert_eq!(dead[0].headers["sluice.error-kind"], "undecodable");
    assert_eq!(dead[0].headers["sluice.plugin"], "source:mysql");
    assert!(
        dead[0].headers["sluice.error"].contains("binlog_row_metadata"),
        "{:?}",
        dead[0].headers
    );
    assert!(
        dead[0].value["payload"].is_object() || dead[0].value["payload"].is_string(),
        "the row's bytes: {}",
        dead[0].value
    );
    stop_pipeline(stop, task).await;

    let host = PluginHost::open(engine(), plugins_dir()).unwrap();
    let (_stop, stop_rx) = watch::channel(false);
    let run = run_pipeline(&halts, host, state.path(), stop_rx);
    let error = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("halts within a minute")
        .unwrap_err();
    assert!(!error.is_transient());
    let text = error.to_string();
    assert!(
        text.contains("on_error = \"stop\"") && text.contains("binlog_row_metadata") && text.contains("source:mysql"),
        "{text}"
    );
    let none = consume(stack.kafka_brokers(), "u", &["shop.u", "u.dlq"], 0);
    assert!(none.is_empty(), "a halted pipeline sends nothing of its batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_that_fails_for_good_is_logged_at_once_while_the_others_run_on() {
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(
        "CREATE DATABASE shop; CREATE TABLE shop.good (id INT PRIMARY KEY, note VARCHAR(40)); CREATE TABLE shop.bad LIKE shop.good;
         CREATE TABLE shop.landed LIKE shop.good",
    )
    .await
    .unwrap();
    // In each direction a healthy pipeline and one that halts on its first
    // bad record; keep_running keeps the healthy ones going.
    let pipelines = r#"
keep_running = true

[[pipeline]]
name = "good-out"
source = { type = "mysql-binlog", url = "{url}", tables = ["shop.good"], server_id = 6401, snapshot = "never" }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "good.dlq" }

[[pipeline]]
name = "bad-out"
source = { type = "mysql-binlog", url = "{url}", tables = ["shop.bad"], server_id = 6402, snapshot = "never" }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "bad.dlq" }
on_error = "stop"

[[pipeline]]
name = "good-in"
source = { type = "kafka", brokers = "{brokers}", topics = ["shop.good"], group = "good-in" }
sink = { type = "mysql", url = "{url}", table = "shop.landed" }
dead_letter = { topic = "good-in.dlq" }

[[pipeline]]
name = "bad-in"
source = { type = "kafka", brokers = "{brokers}", topics = ["poison"], group = "bad-in" }
sink = { type = "mysql", url = "{url}" }
dead_letter = { topic = "bad-in.dlq" }
on_error = "stop"
"#;
    let config = state.path().join("pipelines.toml");
    std::fs::write(&config, stack.pipeline_text(plugins_dir(), Some(state.path()), pipelines)).unwrap();
    store_current_position(&mut db, &config, "bad-out").await;
    write_unnameable_rows(&mut db, "shop.bad").await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", stack.kafka_brokers())
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to("poison").key("k").payload("not an envelope"),
            Duration::from_secs(30),
        )
        .await
        .unwrap();

    let mut sluice = SluiceProcess::start(&["run", config.to_str().unwrap()]);
    let bad_out = sluice.wait_for_line(&["ERROR", "pipeline `bad-out` stopped", "on_error"], Duration::from_secs(60));
    let bad_in = sluice.wait_for_line(&["ERROR", "pipeline `bad-in` stopped", "on_error"], Duration::from_secs(60));
    assert!(bad_out.contains("binlog_row_metadata"), "the cause is logged: {bad_out}");
    assert!(bad_in.contains("source:kafka"), "the cause is logged: {bad_in}");
    // The healthy pair still moves rows, out to Kafka and back into MySQL.
    sluice.wait_for_line(&["good-out", "running"], Duration::from_secs(60));
    sluice.wait_for_line(&["good-in", "running"], Duration::from_secs(60));
    db.query_drop("INSERT INTO shop.good VALUES (1, 'still flowing')").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let landed: Option<String> = db.query_first("SELECT note FROM shop.landed WHERE id = 1").await.unwrap();
        if landed.as_deref() == Some("still flowing") {
            break;
        }
        assert!(Instant::now() < deadline, "the healthy pipelines did not carry a row within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        sluice.exit_code(Duration::from_millis(100)),
        None,
        "keep_running keeps the process up"
    );
    sluice.interrupt();
    assert_eq!(
        sluice.exit_code(Duration::from_secs(30)),
        Some(1),
        "a run with a failed pipeline exits non-zero"
    );

    // Without keep_running, the first permanent failure stops the process.
    let text = std::fs::read_to_string(&config).unwrap().replace("keep_running = true", "");
    std::fs::write(&config, text).unwrap();
    let mut sluice = SluiceProcess::start(&["run", config.to_str().unwrap()]);
    sluice.wait_for_line(&["ERROR", "stopped", "on_error"], Duration::from_secs(60));
    assert_eq!(
        sluice.exit_code(Duration::from_secs(30)),
        Some(1),
        "the process stops with a non-zero exit"
    );
    sluice.wait_for_line(&["stopping the other pipelines"], Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_binlog_pipeline_rides_out_two_mysql_restarts_under_load() {
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop("CREATE DATABASE shop; CREATE TABLE shop.load (id INT PRIMARY KEY, note VARCHAR(40))")
        .await
        .unwrap();
    let pipeline = r#"
[[pipeline]]
name = "load"
source = { type = "mysql-binlog", url = "{url}", tables = ["shop.load"], server_id = 6501 }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "load.dlq" }
"#;
    let mut file = file_of(&stack, state.path(), pipeline);
    let position = state.path().join("load.position.json");
    let pipeline = file.pipelines.remove(0);
    let host = PluginHost::open(engine(), &file.plugin_dir).unwrap();
    let (stop_tx, stop) = watch::channel(false);
    let state_dir = file.state_dir.clone();
    let task = tokio::spawn(async move {
        let telemetry = PipelineTelemetry::detached(&pipeline.name);
        supervise(&pipeline, host, &state_dir, stop, &telemetry).await
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !position.exists() {
        assert!(Instant::now() < deadline, "the pipeline stored no position within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A steady writer: a row every few milliseconds, each committed row
    // remembered; it reconnects while the server is away.
    let url = stack.mysql_url().to_owned();
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let still = writing.clone();
    let writer = tokio::spawn(async move {
        let mut committed = HashSet::new();
        let mut conn: Option<mysql_async::Conn> = None;
        let mut id = 0u32;
        while still.load(std::sync::atomic::Ordering::Relaxed) {
            if conn.is_none() {
                conn = mysql_async::Conn::from_url(&url).await.ok();
            }
            let Some(c) = conn.as_mut() else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            id += 1;
            match c.exec_drop("INSERT INTO shop.load VALUES (?, 'steady')", (id,)).await {
                Ok(()) => {
                    committed.insert(id);
                }
                // Whether a failed commit took effect is not known here: the
                // id is left out of what must arrive either way.
                Err(_) => conn = None,
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        committed
    });
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(4)).await;
        stack.restart_mysql();
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    let committed = writer.await.unwrap();
    let count: u64 = db_count(&stack).await;
    assert!(
        committed.len() as u64 <= count && count > 500,
        "{} committed, {count} in the table",
        committed.len()
    );
    let arrived = consume_ids(stack.kafka_brokers(), "shop.load", count as usize, Duration::from_secs(120));
    let missing: Vec<&u32> = committed.iter().filter(|id| !arrived.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} committed rows never reached Kafka: {:?}",
        missing.len(),
        committed.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(arrived.len() as u64, count, "every row in the table arrived");
    stop_tx.send(true).unwrap();
    task.await.unwrap().expect("the pipeline ran on through both restarts");
}

async fn db_count(stack: &Stack) -> u64 {
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_first("SELECT COUNT(*) FROM shop.load").await.unwrap().unwrap()
}

/// The distinct `after.id`s of `topic`, read until `expected` of them came.
fn consume_ids(brokers: &str, topic: &str, expected: usize, within: Duration) -> HashSet<u32> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("ids-{topic}"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut ids = HashSet::new();
    let deadline = Instant::now() + within;
    while ids.len() < expected && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let value: Json = serde_json::from_slice(m.payload().unwrap_or(b"null")).unwrap();
            if let Some(id) = value["after"]["id"].as_u64() {
                ids.insert(id as u32);
            }
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_kafka_to_mysql_host_resumes_within_seconds() {
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop("CREATE DATABASE shop; CREATE TABLE shop.events (id INT PRIMARY KEY, note VARCHAR(40))")
        .await
        .unwrap();
    let pipeline = r#"
[[pipeline]]
name = "events"
source = { type = "kafka", brokers = "{brokers}", topics = ["in.events"], group = "events" }
sink = { type = "mysql", url = "{url}", table = "shop.events" }
dead_letter = { topic = "events.dlq" }
"#;
    let config = state.path().join("pipelines.toml");
    std::fs::write(&config, stack.pipeline_text(plugins_dir(), Some(state.path()), pipeline)).unwrap();
    // A producer that keeps a message a few milliseconds apart coming.
    let brokers = stack.kafka_brokers().to_owned();
    let producing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let still = producing.clone();
    let producer = tokio::spawn(async move {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("linger.ms", "1")
            .create()
            .unwrap();
        let mut id = 0u32;
        while still.load(std::sync::atomic::Ordering::Relaxed) {
            id += 1;
            let value = json!({"op": "c", "after": {"id": id, "note": "steady"}}).to_string();
            let key = json!({ "id": id }).to_string();
            producer
                .send(FutureRecord::to("in.events").key(&key).payload(&value), Duration::from_secs(30))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let rows = async |db: &mut mysql_async::Conn| -> u64 { db.query_first("SELECT COUNT(*) FROM shop.events").await.unwrap().unwrap() };
    let mut sluice = SluiceProcess::start(&["run", config.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while rows(&mut db).await < 200 {
        assert!(Instant::now() < deadline, "the first host applied no rows within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sluice.child.kill().unwrap();
    sluice.child.wait().unwrap();
    let at_kill = rows(&mut db).await;
    let restarted = Instant::now();
    let _sluice = SluiceProcess::start(&["run", config.to_str().unwrap()]);
    while rows(&mut db).await <= at_kill {
        assert!(
            restarted.elapsed() < Duration::from_secs(60),
            "the restarted host applied nothing within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resumed = restarted.elapsed();
    producing.store(false, std::sync::atomic::Ordering::Relaxed);
    producer.await.unwrap();
    eprintln!(
        "a Kafka -> MySQL host restarted after SIGKILL applied its first row after {:.1} s",
        resumed.as_secs_f64()
    );
    assert!(resumed < Duration::from_secs(20), "resumed after {resumed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_the_binlog_no_longer_holds_is_named_with_the_way_out() {
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let pipeline = r#"
[[pipeline]]
name = "lost"
source = { type = "mysql-binlog", url = "{url}", tables = ["shop.t"], server_id = 6601 }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "lost.dlq" }
"#;
    let config = state.path().join("pipelines.toml");
    std::fs::write(&config, stack.pipeline_text(plugins_dir(), Some(state.path()), pipeline)).unwrap();
    let (stop, task) = start_pipeline(PipelineFile::load(&config).unwrap()).await;
    db.query_drop("INSERT INTO shop.t VALUES (1), (2), (3)").await.unwrap();
    consume(stack.kafka_brokers(), "lost-1", &["shop.t"], 3);
    stop_pipeline_ok(stop, task).await;
    let stored = std::fs::read_to_string(state.path().join("lost.position.json")).unwrap();
    // The binlog starts over while the pipeline is stopped.
    db.query_drop("INSERT INTO shop.t VALUES (4); RESET MASTER; INSERT INTO shop.t VALUES (5)")
        .await
        .unwrap();

    let mut file = PipelineFile::load(&config).unwrap();
    let host = PluginHost::open(engine(), &file.plugin_dir).unwrap();
    let (_stop, stop_rx) = watch::channel(false);
    let pipeline = file.pipelines.remove(0);
    let telemetry = PipelineTelemetry::detached(&pipeline.name);
    let run = supervise(&pipeline, host, &file.state_dir, stop_rx, &telemetry);
    let error = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("fails within a minute")
        .unwrap_err();
    let text = error.to_string();
    let position: Json = serde_json::from_str(&stored).unwrap();
    let (file_name, pos) = (
        position["binlog"]["file"].as_str().unwrap(),
        position["binlog"]["pos"].as_u64().unwrap(),
    );
    assert!(text.contains(&format!("{file_name}:{pos}")), "the stored position is named: {text}");
    assert!(
        text.contains("sluice positions reset") && text.contains("--binlog"),
        "the ways out are named: {text}"
    );
    assert!(!text.contains("max_allowed_packet") || text.contains("purged or reset"), "{text}");
    assert!(!error.is_transient(), "retrying cannot bring a purged position back");

    // The first way out: start over with a new snapshot.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let args = ["sluice", "positions", "reset", config.to_str().unwrap(), "lost"];
    assert_eq!(
        sluice::cli::run(args.map(Into::into), &mut std::io::empty(), &mut out, &mut err),
        0,
        "{}",
        String::from_utf8_lossy(&err)
    );
    let (stop, task) = start_pipeline(PipelineFile::load(&config).unwrap()).await;
    let again = consume(stack.kafka_brokers(), "lost-2", &["shop.t"], 8);
    let read: HashSet<u64> = again
        .iter()
        .filter(|m| m.value["op"] == "r")
        .map(|m| m.value["after"]["id"].as_u64().unwrap())
        .collect();
    assert_eq!(read, (1..=5).collect(), "a new snapshot reads every row");
    stop_pipeline_ok(stop, task).await;
}
