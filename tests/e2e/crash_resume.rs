//! SIGKILL the pipeline process in the middle of a 200k-row load, start it
//! again: every row reaches Kafka (duplicates allowed, with the same dedup id).
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use sluice::pipeline::PipelineFile;
use sluice::plugin::PluginHost;
use sluice::topology::run_pipeline;
use sluice_testkit::{Stack, engine, plugins_dir};
use tokio::sync::watch;

const ROWS: u32 = 200_000;
const CHILD_ENV: &str = "SLUICE_TEST_PIPELINE_FILE";

fn pipeline_text(stack: &Stack, state: &Path) -> String {
    let pipeline = r#"
[[pipeline]]
name = "load"
source = { type = "mysql-binlog", url = "{url}", tables = ["shop.bulk_load"], server_id = 5151 }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "load.dlq" }

[[pipeline.plugins]]
name = "passthrough"
"#;
    stack.pipeline_text(plugins_dir(), Some(state), pipeline)
}

/// The pipeline as a separate process (this test binary, running the ignored
/// test below), so it can be killed with SIGKILL.
pub fn spawn_pipeline(file: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "crash_resume::pipeline_process", "--nocapture"])
        .env(CHILD_ENV, file)
        .spawn()
        .unwrap()
}

/// Not a test of its own: the body of the process the crash tests kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by crash_resume::a_killed_pipeline_resumes_without_losing_rows"]
async fn pipeline_process() {
    let path = std::env::var(CHILD_ENV).expect("started by the crash test");
    let mut file = PipelineFile::load(Path::new(&path)).unwrap();
    let host = PluginHost::open(engine(), &file.plugin_dir).unwrap();
    let (_stop_tx, stop) = watch::channel(false);
    let pipeline = file.pipelines.remove(0);
    run_pipeline(&pipeline, host, &file.state_dir, stop).await.unwrap();
}

fn wait_for_position(position: &Path, other_than: Option<&[u8]>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = std::fs::read(position).ok();
        if now.is_some() && now.as_deref() != other_than {
            return;
        }
        assert!(Instant::now() < deadline, "the pipeline stored no new position within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_pipeline_resumes_without_losing_rows() {
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("pipeline.toml");
    std::fs::write(&file, pipeline_text(&stack, state.path())).unwrap();
    let position = state.path().join("load.position.json");
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop("CREATE DATABASE shop; USE shop; CREATE TABLE bulk_load (id INT PRIMARY KEY, v VARCHAR(20))")
        .await
        .unwrap();

    let mut child = spawn_pipeline(&file);
    wait_for_position(&position, None);
    let chunk = 10_000;
    let insert = |start: u32| {
        format!(
            "INSERT INTO shop.bulk_load SELECT seq, CONCAT('row-', seq) FROM seq_{}_to_{}",
            start + 1,
            start + chunk
        )
    };
    for start in (0..ROWS / 2 + chunk).step_by(chunk as usize) {
        db.query_drop(insert(start)).await.unwrap();
    }
    // Mid-load, once some batches are acknowledged: no chance to flush anything.
    let before = std::fs::read(&position).ok();
    wait_for_position(&position, before.as_deref());
    child.kill().unwrap();
    child.wait().unwrap();
    for start in (ROWS / 2 + chunk..ROWS).step_by(chunk as usize) {
        db.query_drop(insert(start)).await.unwrap();
    }
    let before = std::fs::read(&position).ok();
    let mut child = spawn_pipeline(&file);
    wait_for_position(&position, before.as_deref());

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", stack.kafka_brokers())
        .set("group.id", "crash-check")
        .set("auto.offset.reset", "earliest")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create()
        .unwrap();
    consumer.subscribe(&["shop.bulk_load"]).unwrap();
    let (mut ids, mut messages) = (HashSet::new(), 0u64);
    let deadline = Instant::now() + Duration::from_secs(300);
    while ids.len() < ROWS as usize {
        assert!(
            Instant::now() < deadline,
            "only {} of {ROWS} rows reached Kafka within 5 minutes",
            ids.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                messages += 1;
                let dedup = m
                    .headers()
                    .and_then(|hs| hs.iter().find(|h| h.key == "sluice.dedup-id"))
                    .and_then(|h| h.value);
                ids.insert(dedup.expect("dedup id header").to_vec());
            }
            None | Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition))) => {}
            Some(Err(e)) => panic!("consume: {e}"),
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(ids.len(), ROWS as usize, "every row, once per dedup id");
    eprintln!(
        "{ROWS} rows, {messages} messages ({} duplicates after the kill)",
        messages - u64::from(ROWS)
    );
}

/// A snapshot killed midway and resumed reads some rows again, at a newer
/// state: each dedup id still names one content, and the resumed read's
/// ids name its own (newer) view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_killed_midway_gives_each_dedup_id_one_content() {
    const SNAPSHOT_ROWS: u32 = 150_000;
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let pipeline = r#"
[[pipeline]]
name = "snap"
source = { type = "mysql-binlog", url = "{url}", tables = ["shop.snap"], server_id = 5252 }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "snap.dlq" }
"#;
    let file = state.path().join("pipeline.toml");
    std::fs::write(&file, stack.pipeline_text(plugins_dir(), Some(state.path()), pipeline)).unwrap();
    let position = state.path().join("snap.position.json");
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(format!(
        "CREATE DATABASE shop; CREATE TABLE shop.snap (id INT PRIMARY KEY, v VARCHAR(20));
         USE shop; INSERT INTO shop.snap SELECT seq, 'first' FROM seq_1_to_{SNAPSHOT_ROWS}"
    ))
    .await
    .unwrap();
    let mut child = spawn_pipeline(&file);
    // Killed once the snapshot has stored a cursor part-way through.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stored = std::fs::read_to_string(&position).unwrap_or_default();
        if stored.contains("\"cursor\":{") {
            break;
        }
        assert!(Instant::now() < deadline, "no snapshot cursor stored within 120 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Every row changes while the pipeline is down: a row read again reads differently.
    db.query_drop("UPDATE shop.snap SET v = 'second'").await.unwrap();
    let mut child = spawn_pipeline(&file);
    let deadline = Instant::now() + Duration::from_secs(300);
    while !std::fs::read_to_string(&position).unwrap_or_default().contains("\"binlog\"") {
        assert!(Instant::now() < deadline, "the resumed snapshot did not finish within 300 s");
        std::thread::sleep(Duration::from_millis(100));
    }

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", stack.kafka_brokers())
        .set("group.id", "snap-check")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["shop.snap"]).unwrap();
    let mut contents: std::collections::HashMap<String, HashSet<String>> = std::collections::HashMap::new();
    let mut read_rows = HashSet::new();
    let (started, mut quiet) = (Instant::now(), Instant::now());
    while quiet.elapsed() < Duration::from_secs(5) || contents.is_empty() && started.elapsed() < Duration::from_secs(30) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            quiet = Instant::now();
            let dedup = m
                .headers()
                .and_then(|hs| hs.iter().find(|h| h.key == "sluice.dedup-id"))
                .and_then(|h| h.value)
                .unwrap();
            let value: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            if value["op"] == "r" {
                read_rows.insert(value["after"]["id"].as_u64().unwrap());
            }
            contents
                .entry(String::from_utf8(dedup.to_vec()).unwrap())
                .or_default()
                .insert(value["after"].to_string());
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(read_rows.len(), SNAPSHOT_ROWS as usize, "every row read by the snapshot");
    let two_contents: Vec<&String> = contents.iter().filter(|(_, c)| c.len() > 1).map(|(id, _)| id).collect();
    assert!(
        two_contents.is_empty(),
        "{} dedup ids name two contents, e.g. {:?}",
        two_contents.len(),
        two_contents.first()
    );
    let views: HashSet<&str> = contents
        .keys()
        .filter_map(|id| id.strip_prefix("shop.snap@snapshot:"))
        .map(|rest| &rest[..rest.rfind(':').unwrap()])
        .collect();
    assert_eq!(views.len(), 2, "the resumed read has ids of its own view: {views:?}");
}
