//! Hard cases, each a test: keys that page a snapshot
//! only when read back exactly, a GEOMETRY column before text columns,
//! every character of the multi-byte character sets, XA transactions, table
//! names Kafka refuses, and a key that changes only by case.
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use serde_json::{Value as Json, json};
use sluice::pipeline::PipelineFile;
use sluice::plugin::PluginHost;
use sluice::topology::run_pipeline;
use sluice_testkit::{Stack, engine, plugins_dir};
use tokio::sync::watch;

use crate::binlog_to_kafka::{spawn_pipeline, start_pipeline, stop_pipeline};
use crate::kafka_sink::{consume, read_all};

/// Runs a snapshot-only pipeline of `tables` to its end.
async fn snapshot_only(stack: &Stack, tables: &str) {
    let pipeline = format!(
        r#"
[[pipeline]]
name = "snap"
source = {{ type = "mysql-binlog", url = "{{url}}", tables = [{tables}], server_id = 8101, snapshot = "snapshot-only" }}
sink = {{ type = "kafka", brokers = "{{brokers}}", topic = "snap.{{table}}" }}
dead_letter = {{ topic = "snap.dlq" }}
"#
    );
    let state = tempfile::tempdir().unwrap();
    let mut file = PipelineFile::parse(&stack.pipeline_text(plugins_dir(), Some(state.path()), &pipeline), |_| None).unwrap();
    let host = PluginHost::open(engine(), &file.plugin_dir).unwrap();
    let (_stop, stop) = watch::channel(false);
    let pipeline = file.pipelines.remove(0);
    tokio::time::timeout(Duration::from_secs(120), run_pipeline(&pipeline, host, state.path(), stop))
        .await
        .expect("the snapshot ends")
        .expect("the snapshot runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_pages_every_kind_of_key_exactly_once() {
    let stack = Stack::start();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    // Each table has more rows than one chunk query reads (2,000), and most
    // rows share the first key column, so the cursor decides what comes next.
    db.query_drop(
        "SET SESSION sql_mode = ''; CREATE DATABASE k; USE k;
         CREATE TABLE by_enum (e ENUM('z','a','m') NOT NULL, id INT NOT NULL, PRIMARY KEY (e, id));
         INSERT INTO by_enum SELECT ELT(1 + seq % 3, 'z', 'a', 'm'), seq FROM seq_1_to_9000;
         CREATE TABLE by_set (s SET('z','a','m') NOT NULL, id INT NOT NULL, PRIMARY KEY (s, id));
         INSERT INTO by_set SELECT ELT(1 + seq % 2, 'z', 'a'), seq FROM seq_1_to_5000;
         CREATE TABLE by_float (f FLOAT NOT NULL, id INT NOT NULL, PRIMARY KEY (f, id));
         INSERT INTO by_float SELECT IF(seq % 2, 0.7, 0.1), seq FROM seq_1_to_5000;
         CREATE TABLE by_bit (b BIT(8) NOT NULL, id INT NOT NULL, PRIMARY KEY (b, id));
         INSERT INTO by_bit SELECT b'1', seq FROM seq_1_to_3000;
         CREATE TABLE by_zero_ts (ts TIMESTAMP NOT NULL DEFAULT 0, id INT NOT NULL, PRIMARY KEY (ts, id));
         INSERT INTO by_zero_ts SELECT IF(seq <= 3000, 0, '2024-01-01 00:00:00'), seq FROM seq_1_to_3010;
         CREATE TABLE by_invisible (id INT NOT NULL AUTO_INCREMENT INVISIBLE, note VARCHAR(10), PRIMARY KEY (id));
         INSERT INTO by_invisible (note) SELECT 'n' FROM seq_1_to_5000;
         CREATE TABLE by_sjis (k VARCHAR(8) CHARACTER SET sjis NOT NULL PRIMARY KEY);
         INSERT IGNORE INTO by_sjis SELECT CAST(UNHEX(CONCAT('61', HEX(0xF040 + seq))) AS CHAR CHARACTER SET sjis) FROM seq_0_to_187;
         INSERT INTO by_sjis SELECT CONCAT('b', seq) FROM seq_1_to_2500;",
    )
    .await
    .unwrap();
    let expected: BTreeMap<String, u64> = {
        let mut counts = BTreeMap::new();
        for table in ["by_enum", "by_set", "by_float", "by_bit", "by_zero_ts", "by_invisible", "by_sjis"] {
            let n: u64 = db.query_first(format!("SELECT COUNT(*) FROM k.{table}")).await.unwrap().unwrap();
            counts.insert(table.to_owned(), n);
        }
        counts
    };
    snapshot_only(&stack, "\"k.*\"").await;
    for (table, rows) in expected {
        let values = read_all(stack.kafka_brokers(), &format!("check-{table}"), &format!("snap.{table}"));
        assert_eq!(values.len() as u64, rows, "{table}: every row once");
        if table == "by_invisible" {
            let ids: HashSet<u64> = values
                .iter()
                .map(|v| v["after"]["id"].as_u64().expect("the invisible key is read too"))
                .collect();
            assert_eq!(ids.len() as u64, rows, "{table}: distinct keys");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_after_a_geometry_column_keep_their_character_sets() {
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(
        "CREATE DATABASE g; CREATE TABLE g.t (id INT PRIMARY KEY, p POINT, a VARCHAR(5) CHARACTER SET utf8mb4,
            b VARCHAR(5) CHARACTER SET latin1, j JSON, bn BINARY(3));
         INSERT INTO g.t VALUES (1, POINT(1, 1), 'é', 'ü', '{\"a\":[1,2]}', X'000100')",
    )
    .await
    .unwrap();
    let pipeline = r#"
[[pipeline]]
name = "geo"
source = { type = "mysql-binlog", url = "{url}", tables = ["g.t"], server_id = 8201 }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "geo.dlq" }
"#;
    let file = PipelineFile::parse(&stack.pipeline_text(plugins_dir(), Some(state.path()), pipeline), |_| None).unwrap();
    let (stop, task) = start_pipeline(file).await;
    db.query_drop("UPDATE g.t SET id = 2").await.unwrap();
    let got = consume(stack.kafka_brokers(), "geo", &["g.t"], 3);
    stop.send(true).unwrap();
    task.await.unwrap();
    let read = got.iter().find(|m| m.value["op"] == "r").unwrap();
    let created = got.iter().find(|m| m.value["op"] == "c").unwrap();
    let without_id = |row: &Json| {
        let mut row = row.as_object().unwrap().clone();
        row.remove("id");
        row
    };
    assert_eq!(without_id(&created.value["after"]), without_id(&read.value["after"]));
    assert_eq!(
        (&read.value["after"]["a"], &read.value["after"]["b"], &read.value["after"]["bn"]),
        (&json!("é"), &json!("ü"), &json!("AAEA"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_character_of_the_multi_byte_sets_arrives_as_the_server_converts_it() {
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    let sets = ["sjis", "cp932", "ujis", "eucjpms", "big5", "gbk", "gb2312", "euckr"];
    db.query_drop("CREATE DATABASE mb").await.unwrap();
    for set in sets {
        db.query_drop(format!(
            "CREATE TABLE mb.{set} (id INT PRIMARY KEY, c VARCHAR(4) CHARACTER SET {set})"
        ))
        .await
        .unwrap();
    }
    let pipeline = r#"
[[pipeline]]
name = "mb"
source = { type = "mysql-binlog", url = "{url}", tables = ["mb.*"], server_id = 8301, snapshot = "never" }
sink = { type = "kafka", brokers = "{brokers}", format = "flat", topic = "mb.{table}" }
dead_letter = { topic = "mb.dlq" }
"#;
    let file = PipelineFile::parse(&stack.pipeline_text(plugins_dir(), Some(state.path()), pipeline), |_| None).unwrap();
    let (stop, task) = start_pipeline(file).await;
    // Every two-byte sequence with a lead byte of 0x81 and up, as the server
    // stores it (what it cannot store is left out); for EUC-JP also the
    // three-byte JIS X 0212 ones.
    for set in sets {
        db.query_drop(format!(
            "SET SESSION sql_mode = ''; USE mb;
             INSERT IGNORE INTO {set} SELECT seq, CAST(UNHEX(HEX(seq)) AS CHAR CHARACTER SET {set}) FROM seq_33088_to_65278 WHERE seq % 256 >= 64"
        ))
        .await
        .unwrap();
        if set == "ujis" || set == "eucjpms" {
            db.query_drop(format!(
                "INSERT IGNORE INTO mb.{set} SELECT 100000 + seq, CAST(UNHEX(CONCAT('8F', HEX(seq))) AS CHAR CHARACTER SET {set})
                 FROM mb.seq_41377_to_65278 WHERE seq % 256 >= 161"
            ))
            .await
            .unwrap();
        }
    }
    let mut differ = Vec::new();
    for set in sets {
        let server: Vec<(u32, Option<String>)> = db
            .query(format!("SELECT id, CONVERT(c USING utf8mb4) FROM mb.{set}"))
            .await
            .unwrap();
        let values = read_all(stack.kafka_brokers(), &format!("mb-{set}"), &format!("mb.{set}"));
        let got: BTreeMap<u64, Json> = values.iter().map(|v| (v["id"].as_u64().unwrap(), v["c"].clone())).collect();
        assert_eq!(got.len(), server.len(), "{set}: every row arrived");
        for (id, text) in server {
            let arrived = &got[&u64::from(id)];
            if arrived.as_str() != text.as_deref() {
                differ.push(format!("{set} {id:X}: server {text:?}, binlog {arrived}"));
            }
        }
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    assert!(
        differ.is_empty(),
        "{} characters differ, e.g.:\n{}",
        differ.len(),
        differ[..differ.len().min(20)].join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xa_transactions_arrive_when_committed_and_never_when_rolled_back() {
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop("CREATE DATABASE xa; CREATE TABLE xa.t (id INT PRIMARY KEY, note VARCHAR(20))")
        .await
        .unwrap();
    let pipeline = r#"
[[pipeline]]
name = "xa"
source = { type = "mysql-binlog", url = "{url}", tables = ["xa.t"], server_id = 8401 }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "xa.dlq" }
"#;
    let file = PipelineFile::parse(&stack.pipeline_text(plugins_dir(), Some(state.path()), pipeline), |_| None).unwrap();
    let (stop, task) = start_pipeline(file).await;
    // A prepared XA transaction holds its connection until it is decided:
    // one connection each, decided in this order.
    let connect = || mysql_async::Conn::from_url(stack.mysql_url());
    let (mut rolled, mut kept) = (connect().await.unwrap(), connect().await.unwrap());
    rolled
        .query_drop("XA START 'rolled'; INSERT INTO xa.t VALUES (1, 'rolled back'); XA END 'rolled'; XA PREPARE 'rolled'")
        .await
        .unwrap();
    kept.query_drop("XA START 'kept'; INSERT INTO xa.t VALUES (2, 'committed'); XA END 'kept'; XA PREPARE 'kept'")
        .await
        .unwrap();
    db.query_drop("INSERT INTO xa.t VALUES (3, 'plain')").await.unwrap();
    rolled.query_drop("XA ROLLBACK 'rolled'").await.unwrap();
    kept.query_drop("XA COMMIT 'kept'").await.unwrap();
    db.query_drop("XA START 'one'; INSERT INTO xa.t VALUES (4, 'one phase'); XA END 'one'; XA COMMIT 'one' ONE PHASE")
        .await
        .unwrap();
    let got = consume(stack.kafka_brokers(), "xa", &["xa.t"], 3);
    stop.send(true).unwrap();
    task.await.unwrap();
    let mut ids: Vec<u64> = got.iter().map(|m| m.value["after"]["id"].as_u64().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [2, 3, 4], "the rolled-back row never arrives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_name_kafka_refuses_makes_a_legal_topic_and_a_row_at_the_limit_a_dead_letter() {
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(
        "CREATE DATABASE ty; CREATE TABLE ty.`we\"ird 表` (id INT PRIMARY KEY);
         CREATE TABLE ty.big (id INT PRIMARY KEY, body LONGTEXT)",
    )
    .await
    .unwrap();
    let pipeline = r#"
[[pipeline]]
name = "ty"
source = { type = "mysql-binlog", url = "{url}", tables = ["ty.*"], server_id = 8501 }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "ty.dlq" }
"#;
    let file = PipelineFile::parse(&stack.pipeline_text(plugins_dir(), Some(state.path()), pipeline), |_| None).unwrap();
    let (stop, task) = start_pipeline(file).await;
    db.query_drop("INSERT INTO ty.`we\"ird 表` VALUES (1); INSERT INTO ty.big VALUES (100, '')")
        .await
        .unwrap();
    let renamed = consume(stack.kafka_brokers(), "ty", &["ty.we_ird__"], 1);
    assert_eq!(renamed[0].value["after"]["id"], 1);
    assert_eq!(
        renamed[0].value["source"]["table"], "we\"ird 表",
        "the envelope keeps the table's own name"
    );
    // A row whose key, value and headers come to just under
    // message.max.bytes, over it with the record's framing that librdkafka
    // counts too: measured from a row of the same shape with an empty body.
    let probe = &consume(stack.kafka_brokers(), "ty-probe", &["ty.big"], 1)[0];
    let headers: usize = probe.headers.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
    let framing_free = probe.key.as_ref().unwrap().len() + probe.value.to_string().len() + headers;
    let body = 1_000_000 - 8 - framing_free;
    db.query_drop(format!("INSERT INTO ty.big VALUES (101, REPEAT('x', {body})), (102, 'small')"))
        .await
        .unwrap();
    let after = consume(stack.kafka_brokers(), "ty-big", &["ty.big"], 2);
    let ids: Vec<u64> = after.iter().map(|m| m.value["after"]["id"].as_u64().unwrap()).collect();
    assert!(ids.contains(&102) && !ids.contains(&101), "{ids:?}");
    let dead = consume(stack.kafka_brokers(), "ty-dlq", &["ty.dlq"], 1);
    assert!(
        dead[0].headers["sluice.error"].contains("message.max.bytes"),
        "{:?}",
        dead[0].headers
    );
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_changes_only_by_case_keeps_its_row_in_the_copy() {
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(
        "CREATE DATABASE ci; CREATE DATABASE copy;
         CREATE TABLE ci.people (email VARCHAR(50) COLLATE utf8mb4_general_ci PRIMARY KEY, v INT);
         CREATE TABLE copy.people LIKE ci.people;
         INSERT INTO ci.people SELECT CONCAT('person', seq, '@example.org'), seq FROM ci.seq_1_to_40",
    )
    .await
    .unwrap();
    let pipelines = r#"
[[pipeline]]
name = "out"
source = { type = "mysql-binlog", url = "{url}", tables = ["ci.people"], server_id = 8601 }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "ci.dlq" }

[[pipeline]]
name = "back"
source = { type = "kafka", brokers = "{brokers}", topics = ["ci.people"], group = "ci-back" }
sink = { type = "mysql", url = "{url}", table = "copy.{table}" }
dead_letter = { topic = "ci.back.dlq" }
"#;
    let text = stack.pipeline_text(plugins_dir(), Some(state.path()), pipelines);
    let mut out = PipelineFile::parse(&text, |_| None).unwrap();
    let back_pipeline = out.pipelines.remove(1);
    let mut back = PipelineFile::parse(&text, |_| None).unwrap();
    back.pipelines = vec![back_pipeline];
    let (stop_out, out_task) = start_pipeline(out).await;
    let (stop_back, back_task) = spawn_pipeline(back);
    for v in 1..=40 {
        db.exec_drop("UPDATE ci.people SET email = UPPER(email) WHERE v = ?", (v,))
            .await
            .unwrap();
    }
    // Under a case-insensitive collation `person1@…` and `PERSON1@…` are one
    // row: its update is one change, never a delete that could overtake the
    // create on another partition and remove the row.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let original: Vec<(String, i32)> = db.query("SELECT LOWER(email), v FROM ci.people ORDER BY v").await.unwrap();
        let copy: Vec<(String, i32)> = db.query("SELECT LOWER(email), v FROM copy.people ORDER BY v").await.unwrap();
        let updates: u64 = db
            .query_first("SELECT COUNT(*) FROM copy.people WHERE BINARY email = UPPER(email)")
            .await
            .unwrap()
            .unwrap();
        if original == copy && updates > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the copy holds {} of 40 rows: {copy:?}",
            copy.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop_out.send(true).unwrap();
    out_task.await.unwrap();
    stop_pipeline(stop_back, back_task).await;
}
