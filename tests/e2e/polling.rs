//! The polling source, for servers without binlog access: a user with
//! SELECT only; rows sharing one timestamp across poll boundaries and across
//! batch pages arrive once each; updates arrive as new versions; a restart
//! re-delivers nothing.
use std::collections::HashSet;
use std::path::Path;

use mysql_async::prelude::Queryable;
use sluice::pipeline::PipelineFile;
use sluice_testkit::{Stack, plugins_dir};

use crate::binlog_to_kafka::start_pipeline;
use crate::kafka_sink::{Received, consume};

fn pipeline_file(stack: &Stack, state: &Path) -> PipelineFile {
    // The poller may only read: no REPLICATION grant, no binlog.
    let url = stack.mysql_url().replace("root@", "poller:secret@");
    let pipeline = r#"
[[pipeline]]
name = "poll"
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "poll.dlq" }

[pipeline.source]
type = "mysql-poll"
url = "{poller}"
interval_ms = 200
delay_ms = 500
tables = [
    { table = "shop.orders", timestamp = "updated_at", id = "id" },
    { table = "shop.events", id = "seq" },
]
"#;
    let text = stack.pipeline_text(plugins_dir(), Some(state), &pipeline.replace("{poller}", &url));
    PipelineFile::parse(&text, |_| None).unwrap()
}

fn ids(got: &[Received], topic: &str) -> Vec<u64> {
    let mut ids: Vec<u64> = got
        .iter()
        .filter(|r| r.topic == topic)
        .map(|r| r.value["after"]["id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn polling_delivers_rows_sharing_a_timestamp_once() {
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(
        "CREATE DATABASE shop; USE shop; SET time_zone = '+00:00';
         CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, amount INT);
         CREATE TABLE events (seq BIGINT PRIMARY KEY, id INT);
         CREATE USER poller IDENTIFIED BY 'secret'; GRANT SELECT ON shop.* TO poller;
         INSERT INTO orders (updated_at, amount) VALUES ('2026-01-01', 1), ('2026-01-01', 2), ('2026-01-01', 3);
         INSERT INTO events VALUES (10, 1), (11, 2);",
    )
    .await
    .unwrap();
    let (stop, task) = start_pipeline(pipeline_file(&stack, state.path())).await;
    let first = consume(stack.kafka_brokers(), "poll-1", &["shop.orders", "shop.events"], 5);
    assert_eq!(ids(&first, "shop.orders"), [1, 2, 3]);

    // The same timestamp again after it was read, then a group larger than
    // one batch, an update, and rows too young for the first poll after them.
    db.query_drop(
        "INSERT INTO orders (updated_at, amount) VALUES ('2026-01-01', 4), ('2026-01-01', 5), ('2026-01-01', 6);
         INSERT INTO orders (updated_at, amount) SELECT '2026-01-02', seq FROM seq_1_to_2500;
         UPDATE orders SET updated_at = '2026-01-03', amount = -1 WHERE id = 1;
         INSERT INTO orders (updated_at, amount) VALUES (NOW(6), 7), (NOW(6), 8);
         INSERT INTO events VALUES (12, 3);",
    )
    .await
    .unwrap();
    let total = 5 + 3 + 2500 + 1 + 2 + 1;
    let got = consume(stack.kafka_brokers(), "poll-2", &["shop.orders", "shop.events"], total);
    assert_eq!(got.len(), total);
    let orders = ids(&got, "shop.orders");
    // INSERT … SELECT may leave gaps in AUTO_INCREMENT: ask the table.
    let mut expected: Vec<u64> = db.query("SELECT id FROM shop.orders").await.unwrap();
    expected.push(1); // the update is a new version of row 1
    expected.sort_unstable();
    assert!(
        orders == expected,
        "orders delivered: {} ids, expected {}",
        orders.len(),
        expected.len()
    );
    assert_eq!(ids(&got, "shop.events"), [1, 2, 3]);
    let dedup: HashSet<&String> = got.iter().map(|r| &r.headers["sluice.dedup-id"]).collect();
    assert_eq!(dedup.len(), total, "each row version has its own dedup id");
    let updated = got.iter().find(|r| r.value["after"]["amount"] == -1).expect("the update");
    assert_eq!(updated.value["after"]["updated_at"], "2026-01-03 00:00:00.000000");

    // A restart resumes from the stored marks: only the new row comes.
    stop.send(true).unwrap();
    task.await.unwrap();
    db.query_drop("INSERT INTO shop.events VALUES (13, 4)").await.unwrap();
    let (stop, task) = start_pipeline(pipeline_file(&stack, state.path())).await;
    let all = consume(stack.kafka_brokers(), "poll-3", &["shop.orders", "shop.events"], total + 1);
    assert_eq!(all.len(), total + 1);
    assert_eq!(ids(&all, "shop.events"), [1, 2, 3, 4]);
    stop.send(true).unwrap();
    task.await.unwrap();
}

fn coarse_pipeline(stack: &Stack, state: &Path, lookback_ms: u64) -> PipelineFile {
    let pipeline = r#"
[[pipeline]]
name = "coarse"
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "coarse.dlq" }

[pipeline.source]
type = "mysql-poll"
url = "{url}"
interval_ms = 100
delay_ms = 500
lookback_ms = LOOKBACK
tables = [{ table = "shop.accounts", timestamp = "updated_at" }]
"#;
    let text = stack.pipeline_text(plugins_dir(), Some(state), &pipeline.replace("LOOKBACK", &lookback_ms.to_string()));
    PipelineFile::parse(&text, |_| None).unwrap()
}

/// The last version of every row, as the server holds it and as Kafka got it.
async fn latest_versions(stack: &Stack, db: &mut mysql_async::Conn, topic: &str, group: &str) -> (Vec<(u64, u64)>, Vec<(u64, u64)>) {
    let held: Vec<(u64, u64)> = db.query("SELECT id, version FROM shop.accounts ORDER BY id").await.unwrap();
    let consumer_rows = crate::kafka_sink::read_all(stack.kafka_brokers(), group, topic);
    let mut got: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
    for value in consumer_rows {
        let (id, version) = (value["after"]["id"].as_u64().unwrap(), value["after"]["version"].as_u64().unwrap());
        let entry = got.entry(id).or_default();
        *entry = (*entry).max(version);
    }
    (held, got.into_iter().collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_second_timestamps_lose_no_update_made_within_a_second() {
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(
        "CREATE DATABASE shop; SET time_zone = '+00:00';
         CREATE TABLE shop.accounts (id INT PRIMARY KEY, version INT NOT NULL,
            updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP);
         USE shop; INSERT INTO shop.accounts (id, version) SELECT seq, 0 FROM seq_1_to_40;",
    )
    .await
    .unwrap();
    let (stop, task) = start_pipeline(coarse_pipeline(&stack, state.path(), 30_000)).await;
    // Updates spread over a few seconds: with whole-second timestamps,
    // every row updated within one second shares that second.
    for round in 1..=30u32 {
        db.exec_drop(
            "UPDATE shop.accounts SET version = ? WHERE id % 3 = ? OR id = ?",
            (round, round % 3, round),
        )
        .await
        .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(130)).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (held, got) = latest_versions(&stack, &mut db, "shop.accounts", "coarse-check").await;
    assert_eq!(got, held, "the latest version of every row arrived");
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_row_committed_behind_the_mark_is_found_by_the_lookback_window() {
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(
        "CREATE DATABASE shop; SET time_zone = '+00:00';
         CREATE TABLE shop.accounts (id INT PRIMARY KEY, version INT NOT NULL, updated_at DATETIME(6) NOT NULL);
         INSERT INTO shop.accounts VALUES (1, 1, NOW(6));",
    )
    .await
    .unwrap();
    let (stop, task) = start_pipeline(coarse_pipeline(&stack, state.path(), 30_000)).await;
    // A transaction takes its timestamp, then stays open well past delay_ms
    // while newer rows pass the mark.
    let mut slow = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    slow.query_drop("SET time_zone = '+00:00'; BEGIN; INSERT INTO shop.accounts VALUES (2, 1, NOW(6))")
        .await
        .unwrap();
    for id in 3..=5 {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        db.exec_drop("INSERT INTO shop.accounts VALUES (?, 1, NOW(6))", (id,))
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    slow.query_drop("COMMIT").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let (held, got) = latest_versions(&stack, &mut db, "shop.accounts", "late-check").await;
    assert_eq!(got, held, "the late row arrived too");
    stop.send(true).unwrap();
    task.await.unwrap();
}
