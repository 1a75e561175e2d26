//! MariaDB GTIDs: records carry the GTID of their transaction, positions
//! store the GTID state, and with `gtid = true` a restart finds its place by
//! that state alone (as after a fail-over, where files and offsets differ).
use mysql_async::prelude::Queryable;
use serde_json::Value as Json;
use sluice::pipeline::PipelineFile;
use sluice_testkit::{Stack, plugins_dir};

use crate::binlog_to_kafka::start_pipeline;
use crate::kafka_sink::consume;

fn pipeline_file(stack: &Stack, state: &std::path::Path) -> PipelineFile {
    let pipeline = r#"
[[pipeline]]
name = "gtid"
source = { type = "mysql-binlog", url = "{url}", tables = ["shop.t"], server_id = 4545, snapshot = "never", gtid = true }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "gtid.dlq" }
"#;
    PipelineFile::parse(&stack.pipeline_text(plugins_dir(), Some(state), pipeline), |_| None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_resumes_from_the_gtid_state_alone() {
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let (stop, task) = start_pipeline(pipeline_file(&stack, state.path())).await;
    db.query_drop("INSERT INTO shop.t VALUES (1); INSERT INTO shop.t VALUES (2), (3)")
        .await
        .unwrap();
    let got = consume(stack.kafka_brokers(), "gtid-1", &["shop.t"], 3);
    let server_gtid: String = db.query_first("SELECT @@gtid_binlog_pos").await.unwrap().unwrap();
    let gtids: Vec<&str> = got.iter().map(|r| r.value["source"]["gtid"].as_str().expect("a gtid")).collect();
    assert!(
        gtids.contains(&server_gtid.as_str()),
        "{gtids:?} lacks the server's last GTID {server_gtid}"
    );
    stop.send(true).unwrap();
    task.await.unwrap();

    // Only the GTID state is right in the stored position now.
    let path = state.path().join("gtid.position.json");
    let mut stored: Json = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(stored["binlog"]["gtid"], server_gtid.as_str());
    stored["binlog"]["file"] = "binlog.999999".into();
    stored["binlog"]["pos"] = 4.into();
    std::fs::write(&path, serde_json::to_vec(&stored).unwrap()).unwrap();

    db.query_drop("INSERT INTO shop.t VALUES (4)").await.unwrap();
    let (stop, task) = start_pipeline(pipeline_file(&stack, state.path())).await;
    let all = consume(stack.kafka_brokers(), "gtid-2", &["shop.t"], 4);
    let mut ids: Vec<u64> = all.iter().map(|r| r.value["after"]["id"].as_u64().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3, 4], "the change made while stopped, once");
    db.query_drop("INSERT INTO shop.t VALUES (5)").await.unwrap();
    consume(stack.kafka_brokers(), "gtid-3", &["shop.t"], 5);
    stop.send(true).unwrap();
    task.await.unwrap();
    let stored: Json = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        stored["binlog"]["file"], "binlog.000001",
        "the file name is learnt from the stream: {stored}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_hand_over_stores_the_gtid_state() {
    use sluice::sources::{MysqlCapture, SourcePosition};
    let stack = Stack::start();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY); INSERT INTO shop.t VALUES (1), (2)")
        .await
        .unwrap();
    let gtid_now: String = db.query_first("SELECT @@gtid_binlog_pos").await.unwrap().unwrap();
    let config: sluice::sources::binlog::BinlogSourceConfig = toml::from_str(&format!(
        "url = \"{}\"\ntables = [\"shop.t\"]\nserver_id = 9911\ngtid = true",
        stack.mysql_url()
    ))
    .unwrap();
    let mut capture = MysqlCapture::connect(&config, None, "handover").await.unwrap();
    let handover = loop {
        let batch = capture.next_batch(100, std::time::Duration::from_millis(100)).await.unwrap();
        if let Some(SourcePosition::Binlog(at)) = batch.checkpoint {
            break at;
        }
    };
    assert_eq!(
        handover.gtid.as_deref(),
        Some(gtid_now.as_str()),
        "the hand-over names the GTID state, not only file and offset"
    );
}
