//! MySQL (a private MariaDB with ROW binlog) -> plugins -> Kafka (Tansu):
//! live changes arrive with exact values, and a restart resumes from the
//! stored position without losing or repeating a change.
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use serde_json::{Value as Json, json};
use sluice::pipeline::PipelineFile;
use sluice::plugin::PluginHost;
use sluice::topology::run_pipeline;
use sluice_testkit::{Stack, engine, plugins_dir};
use tokio::sync::watch;

use crate::kafka_sink::consume;

fn pipeline_file(stack: &Stack, state: &Path) -> PipelineFile {
    let pipeline = r#"
[[pipeline]]
name = "shop"
source = { type = "mysql-binlog", url = "{url}", tables = ["shop.*"], exclude = ["shop.audit"], server_id = 4242 }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "shop.dlq" }

[[pipeline.plugins]]
name = "clean"
config = { mask = ["phone"], trim = false, lowercase = [], email_columns = [] }
"#;
    PipelineFile::parse(&stack.pipeline_text(plugins_dir(), Some(state), pipeline), |_| None).unwrap()
}

/// Starts the pipeline; waits until it has stored a position, so changes
/// made after this are certainly captured.
async fn start(stack: &Stack, state: &Path) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    start_pipeline(pipeline_file(stack, state)).await
}

pub type PipelineTask = tokio::task::JoinHandle<Result<(), sluice::topology::PipelineError>>;

/// Runs the file's first pipeline in this process until told to stop.
pub fn spawn_pipeline(mut file: PipelineFile) -> (watch::Sender<bool>, PipelineTask) {
    let pipeline = file.pipelines.remove(0);
    let host = PluginHost::open(engine(), &file.plugin_dir).unwrap();
    let (stop_tx, stop) = watch::channel(false);
    let state_dir = file.state_dir.clone();
    (
        stop_tx,
        tokio::spawn(async move { run_pipeline(&pipeline, host, &state_dir, stop).await }),
    )
}

/// Stops a pipeline; it must have run without failing.
pub async fn stop_pipeline(stop_tx: watch::Sender<bool>, task: PipelineTask) {
    stop_tx.send(true).unwrap();
    task.await.unwrap().expect("pipeline failed");
}

/// Runs the file's first pipeline until told to stop; returns once it has
/// stored a (new) position.
pub async fn start_pipeline(file: PipelineFile) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let position = file.state_dir.join(format!("{}.position.json", file.pipelines[0].name));
    let before = std::fs::read(&position).ok();
    let (stop_tx, task) = spawn_pipeline(file);
    let task = tokio::spawn(async move { task.await.unwrap().expect("pipeline failed") });
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read(&position).ok() == before || before.is_none() && !position.exists() {
        assert!(Instant::now() < deadline, "no position stored within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (stop_tx, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn binlog_changes_reach_kafka_exactly_and_resume_after_restart() {
    // TIME(6) here; every TIME width, negative fractions included, is in the type matrix.
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(
        "CREATE DATABASE shop; USE shop;
         CREATE TABLE users (
            id BIGINT UNSIGNED PRIMARY KEY, name VARCHAR(50) CHARACTER SET utf8mb4, phone VARCHAR(30),
            balance DECIMAL(12,4), tiny TINYINT UNSIGNED, born DATE, seen DATETIME(6), stamp TIMESTAMP(3) NULL,
            took TIME(6), photo BLOB, ratio DOUBLE, tier ENUM('gold','silver'), tags SET('a','b','c'), flags BIT(10));
         CREATE TABLE audit (id INT PRIMARY KEY, note TEXT);
         CREATE TABLE bulk (id INT PRIMARY KEY);
         SET time_zone = '+00:00';",
    )
    .await
    .unwrap();

    let (stop, task) = start(&stack, state.path()).await;
    db.query_drop(
        "INSERT INTO users VALUES
            (18446744073709551615, 'Zoë 🚀', '+49 170 1234567', -12.3400, 255, '2024-02-29',
             '2024-02-29 23:59:59.000001', '2024-03-01 00:00:00.125', '-838:59:58.999999', x'00ff', 0.5,
             'silver', 'a,c', b'1000000001');
         INSERT INTO audit VALUES (1, 'not captured');
         BEGIN; INSERT INTO users (id, name) VALUES (2, 'Two'); UPDATE users SET name = 'Deux' WHERE id = 2; COMMIT;
         DELETE FROM users WHERE id = 2;",
    )
    .await
    .unwrap();
    let got = consume(stack.kafka_brokers(), "binlog-1", &["shop.users"], 4);
    // Order holds per key (partition), not across keys.
    let of_key = |key: &str| got.iter().filter(|r| r.key.as_deref() == Some(key)).collect::<Vec<_>>();
    let big = of_key(r#"{"id":18446744073709551615}"#);
    let two = of_key(r#"{"id":2}"#);
    assert_eq!(big.len(), 1);
    let ops: Vec<&str> = two.iter().map(|r| r.value["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["c", "u", "d"]);
    let first = &big[0].value["after"];
    assert_eq!(
        *first,
        json!({
            "id": 18446744073709551615u64, "name": "Zoë 🚀", "phone": "****", "balance": "-12.3400", "tiny": 255,
            "born": "2024-02-29", "seen": "2024-02-29 23:59:59.000001", "stamp": "2024-03-01T00:00:00.125000Z",
            "took": "-838:59:58.999999", "photo": "AP8=", "ratio": 0.5,
            "tier": "silver", "tags": "a,c", "flags": "AgE="
        })
    );
    assert_eq!(two[1].value["before"]["name"], "Two");
    assert_eq!(two[1].value["after"]["name"], "Deux");
    assert_eq!(two[2].value["after"], serde_json::Value::Null);
    assert_eq!(big[0].value["source"]["db"], "shop");
    assert_eq!(big[0].value["source"]["file"], "binlog.000001");

    // One transaction larger than a batch goes out in several batches.
    db.query_drop("INSERT INTO shop.bulk SELECT seq FROM seq_1_to_2500").await.unwrap();
    let bulk = consume(stack.kafka_brokers(), "binlog-bulk", &["shop.bulk"], 2500);
    let distinct: HashSet<&Json> = bulk.iter().map(|r| &r.value["after"]["id"]).collect();
    assert_eq!(distinct.len(), 2500);

    // The table changes shape mid-stream: rows decode with the new columns.
    db.query_drop(
        "ALTER TABLE shop.users ADD COLUMN note VARCHAR(10) AFTER id;
         INSERT INTO shop.users (id, note, name) VALUES (10, 'added', 'Ten');
         ALTER TABLE shop.users DROP COLUMN ratio, RENAME COLUMN name TO full_name;
         INSERT INTO shop.users (id, full_name) VALUES (11, 'Eleven');",
    )
    .await
    .unwrap();
    let got = consume(stack.kafka_brokers(), "binlog-2", &["shop.users"], 6);
    let after = |id: u64| &got.iter().find(|r| r.value["after"]["id"] == id).expect("row").value["after"];
    assert_eq!((&after(10)["note"], &after(10)["name"]), (&json!("added"), &json!("Ten")));
    assert_eq!(after(11)["full_name"], "Eleven");
    assert!(after(11).get("ratio").is_none() && after(11).get("name").is_none(), "{}", after(11));

    // Stop, change more while stopped, start again: only the new change comes.
    stop.send(true).unwrap();
    task.await.unwrap();
    db.query_drop("INSERT INTO shop.users (id, full_name) VALUES (3, 'while stopped')")
        .await
        .unwrap();
    let (stop, task) = start(&stack, state.path()).await;
    let all = consume(stack.kafka_brokers(), "binlog-3", &["shop.users"], 7);
    assert_eq!(all.iter().filter(|r| r.value["after"]["full_name"] == "while stopped").count(), 1);
    let ids: HashSet<&String> = all.iter().map(|r| &r.headers["sluice.dedup-id"]).collect();
    assert_eq!(ids.len(), 7, "no change delivered twice");
    stop.send(true).unwrap();
    task.await.unwrap();
}
