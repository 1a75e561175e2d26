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
use sluice_tests::{Stack, engine, plugins_dir};
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
    db.query_drop("CREATE DATABASE shop; USE shop; CREATE TABLE bulk_load (id INT PRIMARY KEY, v VARCHAR(20))").await.unwrap();

    let mut child = spawn_pipeline(&file);
    wait_for_position(&position, None);
    let chunk = 10_000;
    let mut killed = false;
    for start in (0..ROWS).step_by(chunk as usize) {
        db.query_drop(format!(
            "INSERT INTO shop.bulk_load SELECT seq, CONCAT('row-', seq) FROM seq_{}_to_{}",
            start + 1,
            start + chunk
        ))
        .await
        .unwrap();
        if !killed && start >= ROWS / 2 {
            // Mid-load, once some batches are acknowledged: no chance to flush anything.
            let before = std::fs::read(&position).ok();
            wait_for_position(&position, before.as_deref());
            child.kill().unwrap();
            child.wait().unwrap();
            killed = true;
        }
    }
    assert!(killed);
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
        assert!(Instant::now() < deadline, "only {} of {ROWS} rows reached Kafka within 5 minutes", ids.len());
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                messages += 1;
                let dedup = m.headers().and_then(|hs| hs.iter().find(|h| h.key == "sluice.dedup-id")).and_then(|h| h.value);
                ids.insert(dedup.expect("dedup id header").to_vec());
            }
            None | Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition))) => {}
            Some(Err(e)) => panic!("consume: {e}"),
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(ids.len(), ROWS as usize, "every row, once per dedup id");
    eprintln!("{ROWS} rows, {messages} messages ({} duplicates after the kill)", messages - u64::from(ROWS));
}
