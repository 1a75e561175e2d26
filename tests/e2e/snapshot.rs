//! The initial snapshot: 100k rows of every column type read in key chunks
//! while a writer keeps changing the table, handed over to the binlog with
//! no gap and no duplicate; snapshot values equal the binlog's for the same
//! rows; live changes and an ALTER TABLE follow.
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use serde_json::{Value as Json, json};
use sluice::pipeline::PipelineFile;
use sluice_testkit::{Stack, plugins_dir};

use crate::binlog_to_kafka::start_pipeline;
use crate::kafka_sink::{Received, consume};

const ROWS: u64 = 100_000;
/// Rows the concurrent writer inserts (ids above ROWS) while the snapshot runs.
const INSERTS: u64 = 300;

fn pipeline_file(stack: &Stack, state: &Path, mode: &str) -> PipelineFile {
    let pipeline = r#"
[[pipeline]]
name = "snap"
source = { type = "mysql-binlog", url = "{url}", tables = ["shop.everything"], server_id = 4343, snapshot = "{mode}" }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "snap.dlq" }

[[pipeline.plugins]]
name = "passthrough"
"#;
    let text = stack.pipeline_text(plugins_dir(), Some(state), &pipeline.replace("{mode}", mode));
    PipelineFile::parse(&text, |_| None).unwrap()
}

const SCHEMA: &str = "CREATE DATABASE shop; USE shop; SET time_zone = '+00:00';
    CREATE TABLE everything (
        id BIGINT PRIMARY KEY, tiny TINYINT, small SMALLINT UNSIGNED, med MEDIUMINT, i INT UNSIGNED,
        big BIGINT UNSIGNED, price DECIMAL(20,6), f FLOAT, d DOUBLE, bits BIT(12), day DATE, at DATETIME(6),
        stamp TIMESTAMP(3) NULL, took TIME(6), yr YEAR, code CHAR(4), name VARCHAR(100) CHARACTER SET utf8mb4,
        body TEXT, raw VARBINARY(16), blob_ BLOB, tier ENUM('gold','silver','bronze'), tags SET('a','b','c'),
        doc JSON, touched INT NOT NULL DEFAULT 0);";

/// Row `n` of the table, each column a function of `n`; `source` supplies n.
fn fill(source: &str) -> String {
    format!(
        "INSERT INTO shop.everything (id, tiny, small, med, i, big, price, f, d, bits, day, at, stamp, took, yr,
            code, name, body, raw, blob_, tier, tags, doc)
         SELECT n, n % 256 - 128, n % 65536, n - 50000, n * 40000, 18446744073709551615 - n, n / 7, n / 3, n * 1.5,
            n % 4096, '2000-01-01' + INTERVAL n DAY, '2020-01-01' + INTERVAL n * 1000001 MICROSECOND,
            FROM_UNIXTIME(1600000000.125 + n), SEC_TO_TIME(n * 7 - 350000.25), 1901 + n % 255, CONCAT('c', n % 1000),
            CONCAT('Zoë 🚀 ', n), REPEAT('x', n % 50), UNHEX(LPAD(HEX(n), 8, '0')), IF(n % 10 = 0, NULL, UNHEX(MD5(n))),
            ELT(1 + n % 3, 'gold', 'silver', 'bronze'), ELT(1 + n % 4, '', 'a', 'a,b', 'b,c'),
            JSON_OBJECT('n', n, 'tags', JSON_ARRAY('x', n % 3))
         FROM ({source}) AS rows_"
    )
}

fn op(r: &Received) -> &str {
    r.value["op"].as_str().unwrap_or("tombstone")
}

fn id_of(r: &Received) -> u64 {
    let key: Json = serde_json::from_str(r.key.as_deref().expect("a key")).unwrap();
    key["id"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_hands_over_to_the_binlog_exactly() {
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(SCHEMA).await.unwrap();
    db.query_drop(fill(&format!("SELECT CAST(seq AS SIGNED) AS n FROM seq_1_to_{ROWS}")))
        .await
        .unwrap();

    // The snapshot has begun once it stores its first chunk's progress; a
    // writer then inserts and updates while it reads on. Its changes are not
    // in the snapshot's view: each must arrive once, from the binlog.
    let (stop, task) = start_pipeline(pipeline_file(&stack, state.path(), "initial")).await;
    let url = stack.mysql_url().to_owned();
    let writer = tokio::spawn(async move {
        let mut db = mysql_async::Conn::from_url(url).await.unwrap();
        db.query_drop("SET time_zone = '+00:00'").await.unwrap();
        for k in 1..=INSERTS {
            db.query_drop(fill(&format!("SELECT {} AS n", ROWS + k))).await.unwrap();
            db.query_drop(format!("UPDATE shop.everything SET name = 'changed {k}' WHERE id = {}", k * 300))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    });
    writer.await.unwrap();

    // Every row's snapshot image must equal its binlog image: touch them all.
    db.query_drop(format!("UPDATE shop.everything SET touched = 1 WHERE id <= {ROWS}"))
        .await
        .unwrap();
    db.query_drop(
        "ALTER TABLE shop.everything ADD COLUMN extra VARCHAR(10) DEFAULT 'x' AFTER id;
         UPDATE shop.everything SET extra = 'y' WHERE id = 1;
         DELETE FROM shop.everything WHERE id = 2;
         INSERT INTO shop.everything (id, extra, name) VALUES (900000, 'z', 'live');",
    )
    .await
    .unwrap();
    let expected = ROWS /* r */ + INSERTS * 2 /* c, u */ + ROWS /* touched */ + 3;
    let got = consume(stack.kafka_brokers(), "snapshot-1", &["shop.everything"], expected as usize);
    let count = |o: &str| got.iter().filter(|r| op(r) == o).count();
    assert_eq!(
        got.len() as u64,
        expected,
        "messages on shop.everything: r {} c {} u {} d {}",
        count("r"),
        count("c"),
        count("u"),
        count("d")
    );

    let mut per_key: HashMap<u64, Vec<&Received>> = HashMap::new();
    for r in &got {
        per_key.entry(id_of(r)).or_default().push(r);
    }
    // Each row is born once: as a snapshot read or as a binlog insert.
    for id in (1..=ROWS + INSERTS).chain([900000]) {
        let births = per_key[&id].iter().filter(|r| matches!(op(r), "r" | "c")).count();
        assert_eq!(births, 1, "row {id} read or inserted {births} times");
    }
    assert_eq!(count("r") as u64, ROWS, "the writer's rows are not in the snapshot's view");
    assert!(got.iter().filter(|r| op(r) == "r").all(|r| r.value["source"]["snapshot"] == true));

    // Snapshot values equal the binlog's before image of the same row.
    for id in 1..=ROWS {
        let read = per_key[&id].iter().find(|r| op(r) == "r").map(|r| &r.value["after"]);
        let touch = per_key[&id]
            .iter()
            .find(|r| op(r) == "u" && r.value["after"]["touched"] == 1)
            .expect("touch");
        let state_before_touch = per_key[&id]
            .iter()
            .take_while(|r| !std::ptr::eq(**r, *touch))
            .fold(None, |_, r| Some(&r.value["after"]));
        assert_eq!(Some(&touch.value["before"]), state_before_touch, "row {id}");
        if let Some(read) = read
            && per_key[&id].iter().filter(|r| op(r) == "u").count() == 1
        {
            assert_eq!(read, &touch.value["before"], "snapshot and binlog images of row {id}");
        }
    }
    // And equal MySQL's own rendering of each type.
    let seven = per_key[&7].iter().find(|r| op(r) == "r").unwrap();
    let blob7: String = db.query_first("SELECT TO_BASE64(UNHEX(MD5(7)))").await.unwrap().unwrap();
    let mut expected_seven = json!({
        "id": 7, "tiny": -121, "small": 7, "med": -49993, "i": 280000, "big": 18446744073709551608u64,
        "price": "1.000000", "d": 10.5, "bits": "AAc=", "day": "2000-01-08", "at": "2020-01-01 00:00:07.000007",
        "stamp": "2020-09-13T12:26:47.125000Z", "took": "-97:12:31.250000", "yr": 1908, "code": "c7",
        "name": "Zoë 🚀 7", "body": "xxxxxxx", "raw": "AAAABw==", "blob_": blob7, "tier": "silver", "tags": "b,c",
        "doc": "{\"n\": 7, \"tags\": [\"x\", 1]}", "touched": 0
    });
    let f = seven.value["after"]["f"].as_f64().unwrap();
    assert!((f - 7.0 / 3.0).abs() < 1e-5, "FLOAT {f}");
    expected_seven["f"] = seven.value["after"]["f"].clone();
    assert_eq!(seven.value["after"], expected_seven);

    // Live changes after the hand-over, across an ALTER TABLE.
    let ops = |id: u64| per_key[&id].iter().map(|r| op(r)).collect::<Vec<_>>();
    assert_eq!(ops(2), ["r", "u", "d"]);
    assert_eq!(ops(1).last(), Some(&"u"));
    assert_eq!(per_key[&1].last().unwrap().value["after"]["extra"], "y");
    assert_eq!(per_key[&900000][0].value["after"]["extra"], "z");

    // The final state the topic implies is the table's.
    let mut folded: BTreeMap<u64, Json> = BTreeMap::new();
    for (id, records) in &per_key {
        match &records.last().unwrap().value["after"] {
            Json::Null => folded.remove(id),
            after => folded.insert(*id, after["name"].clone()),
        };
    }
    let rows: Vec<(u64, Option<String>)> = db.query("SELECT id, name FROM shop.everything ORDER BY id").await.unwrap();
    let table: BTreeMap<u64, Json> = rows.into_iter().map(|(id, name)| (id, json!(name))).collect();
    assert_eq!(folded, table);
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// Runs a `snapshot-only` pipeline, from what `state` holds, until it returns
/// by itself once every table is read.
async fn run_snapshot_only(stack: &Stack, state: &Path) {
    let mut file = pipeline_file(stack, state, "snapshot-only");
    let host = sluice::plugin::PluginHost::open(sluice_testkit::engine(), &file.plugin_dir).unwrap();
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let pipeline = file.pipelines.remove(0);
    tokio::time::timeout(
        Duration::from_secs(120),
        sluice::topology::run_pipeline(&pipeline, host, &file.state_dir, stop),
    )
    .await
    .expect("snapshot-only finishes")
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_only_stops_when_read_and_never_skips_the_snapshot() {
    let stack = Stack::start();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(SCHEMA).await.unwrap();
    db.query_drop(fill("SELECT CAST(seq AS SIGNED) AS n FROM seq_1_to_2500"))
        .await
        .unwrap();

    let state = tempfile::tempdir().unwrap();
    run_snapshot_only(&stack, state.path()).await;
    let got = consume(stack.kafka_brokers(), "snapshot-only", &["shop.everything"], 2500);
    assert!(got.iter().all(|r| op(r) == "r"));
    let stored = std::fs::read_to_string(state.path().join("snap.position.json")).unwrap();
    assert!(stored.starts_with(r#"{"binlog":"#), "hand-over position stored: {stored}");

    // `never`: only changes made after the start arrive.
    let state = tempfile::tempdir().unwrap();
    let mut file = pipeline_file(&stack, state.path(), "never");
    file.pipelines[0].name = "live".into();
    let (stop, task) = start_pipeline(file).await;
    db.query_drop(fill("SELECT 5000 AS n")).await.unwrap();
    let got = consume(stack.kafka_brokers(), "snapshot-never", &["shop.everything"], 2501);
    assert_eq!(got.iter().filter(|r| op(r) == "c").map(id_of).collect::<Vec<_>>(), [5000]);
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// A snapshot stopped part-way resumes after the last key it delivered,
/// though it reads several batches per query: across the two runs every row
/// arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_snapshot_resumes_after_its_last_delivered_row() {
    // Enough rows that the first run is still reading when it is stopped.
    const ROWS: usize = 400_000;
    let stack = Stack::start();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop("CREATE DATABASE shop; CREATE TABLE shop.everything (id BIGINT PRIMARY KEY, name VARCHAR(40))")
        .await
        .unwrap();
    db.query_drop(format!(
        "USE shop; INSERT INTO everything SELECT seq, CONCAT('row ', seq) FROM seq_1_to_{ROWS}"
    ))
    .await
    .unwrap();

    let state = tempfile::tempdir().unwrap();
    // Returns once the first batches are acknowledged and their progress stored.
    let (stop, task) = start_pipeline(pipeline_file(&stack, state.path(), "snapshot-only")).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    let stored = std::fs::read_to_string(state.path().join("snap.position.json")).unwrap();
    assert!(stored.contains(r#""cursor":{"#), "stopped part-way through the table: {stored}");

    run_snapshot_only(&stack, state.path()).await;
    let got = consume(stack.kafka_brokers(), "snapshot-resume", &["shop.everything"], ROWS);
    let ids: std::collections::BTreeSet<u64> = got.iter().map(id_of).collect();
    assert_eq!(got.len(), ROWS, "no row twice");
    assert_eq!(ids.len(), ROWS, "every row");
    assert_eq!((ids.first(), ids.last()), (Some(&1), Some(&(ROWS as u64))));
}
