//! The polling source, for servers without binlog access: a user with
//! SELECT only; rows sharing one timestamp across poll boundaries and across
//! batch pages arrive once each; updates arrive as new versions; a restart
//! re-delivers nothing.
use std::collections::HashSet;
use std::path::Path;

use mysql_async::prelude::Queryable;
use sluice::pipeline::PipelineFile;
use sluice_tests::{Stack, plugins_dir};

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
    let mut ids: Vec<u64> = got.iter().filter(|r| r.topic == topic).map(|r| r.value["after"]["id"].as_u64().unwrap()).collect();
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
    assert!(orders == expected, "orders delivered: {} ids, expected {}", orders.len(), expected.len());
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
