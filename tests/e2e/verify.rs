//! `sluice verify` against two real MariaDB servers: a hand-made missing
//! row, extra row and changed values of every kind are found and named
//! exactly, repaired, and an independent comparison agrees.
use std::time::Duration;

use mysql_async::prelude::Queryable;
use sluice_testkit::Stack;

use crate::process::run_to_end;

const TABLE: &str = "CREATE TABLE shop.items (
    id INT PRIMARY KEY,
    price DECIMAL(12,4),
    at DATETIME(6),
    name VARCHAR(40) CHARACTER SET utf8mb4,
    blob_col BLOB,
    maybe INT NULL,
    legacy VARCHAR(20) CHARACTER SET latin1
)";

async fn fill(url: &str) -> mysql_async::Conn {
    let mut db = mysql_async::Conn::from_url(url).await.unwrap();
    db.query_drop(format!(
        "CREATE DATABASE shop; {TABLE}; CREATE TABLE shop.pairs (a INT, b VARCHAR(10), v INT, PRIMARY KEY (b, a))"
    ))
    .await
    .unwrap();
    db.query_drop(
        "INSERT INTO shop.items
         SELECT seq, seq / 7, TIMESTAMP('2026-01-01 00:00:00') + INTERVAL seq SECOND, CONCAT('item ', seq, ' ü'),
                UNHEX(LPAD(HEX(seq), 8, '0')), IF(seq % 3 = 0, NULL, seq), 'café'
         FROM shop.seq_1_to_2500",
    )
    .await
    .unwrap();
    db.query_drop("INSERT INTO shop.pairs SELECT seq, CONCAT('k', seq % 10), seq FROM shop.seq_1_to_300")
        .await
        .unwrap();
    db
}

fn verify(source: &str, target: &str, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec![
        "verify",
        "--source",
        source,
        "--target",
        target,
        "--tables",
        "shop.items,shop.pairs",
        "--chunk-rows",
        "200",
    ];
    args.extend_from_slice(extra);
    run_to_end(&args, &[], Duration::from_secs(120))
}

/// Every row of a table, as text, ordered by key: what the test compares on its own.
async fn all_rows(db: &mut mysql_async::Conn, table: &str) -> Vec<String> {
    let rows: Vec<mysql_async::Row> = db.query(format!("SELECT * FROM {table} ORDER BY 1, 2")).await.unwrap();
    rows.into_iter().map(|r| format!("{:?}", r.unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_every_difference_exactly_and_repair_makes_the_servers_equal() {
    let (a, b) = (Stack::start_without_binlog(), Stack::start_without_binlog());
    let (source, target) = (a.mysql_url(), b.mysql_url());
    let mut src = fill(source).await;
    let mut dst = fill(target).await;

    let (code, output) = verify(source, target, &[]);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("equal"), "{output}");

    dst.query_drop(
        "DELETE FROM shop.items WHERE id = 10;
         INSERT INTO shop.items (id, name) VALUES (9999, 'extra');
         UPDATE shop.items SET price = price + 0.0001 WHERE id = 20;
         UPDATE shop.items SET at = at + INTERVAL 1 MICROSECOND WHERE id = 30;
         UPDATE shop.items SET name = 'item 40 😀' WHERE id = 40;
         UPDATE shop.items SET blob_col = UNHEX('00') WHERE id = 50;
         UPDATE shop.items SET maybe = 0 WHERE id = 60;
         UPDATE shop.items SET legacy = 'cafe' WHERE id = 70;
         UPDATE shop.pairs SET v = -1 WHERE a = 7 AND b = 'k7'",
    )
    .await
    .unwrap();

    let (code, output) = verify(source, target, &["--json"]);
    assert_eq!(code, Some(1), "{output}");
    let report: serde_json::Value = serde_json::from_str(output.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(report["equal"], false);
    let items = &report["tables"][0];
    assert_eq!(items["table"], "shop.items");
    assert_eq!(items["rows"], 2500);
    let ids = |what: &str| -> Vec<i64> { items[what].as_array().unwrap().iter().map(|k| k["id"].as_i64().unwrap()).collect() };
    assert_eq!(ids("missing"), [10]);
    assert_eq!(ids("extra"), [9999]);
    assert_eq!(
        ids("different"),
        [20, 30, 40, 50, 60, 70],
        "DECIMAL, DATETIME(6), utf8mb4, BLOB, NULL, latin1"
    );
    assert_eq!(items["undecided"].as_array().unwrap().len(), 0);
    let pairs = &report["tables"][1];
    assert_eq!(
        pairs["different"],
        serde_json::json!([{"b": "k7", "a": 7}]),
        "a composite key, in key order"
    );

    let (code, human) = verify(source, target, &[]);
    assert_eq!(code, Some(1));
    for line in [
        "shop.items missing: id=10",
        "shop.items extra: id=9999",
        "shop.items different: id=40",
        "DIFFERENT",
    ] {
        assert!(human.contains(line), "{line}:\n{human}");
    }

    let (code, output) = verify(source, target, &["--repair"]);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("shop.items: repaired 8 row(s) on the target"), "{output}");
    for table in ["shop.items", "shop.pairs"] {
        assert_eq!(
            all_rows(&mut src, table).await,
            all_rows(&mut dst, table).await,
            "{table}: an independent full comparison"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_that_cannot_be_compared_are_named_with_why_and_the_others_still_compared() {
    let (a, b) = (Stack::start_without_binlog(), Stack::start_without_binlog());
    let mut src = mysql_async::Conn::from_url(a.mysql_url()).await.unwrap();
    let mut dst = mysql_async::Conn::from_url(b.mysql_url()).await.unwrap();
    // Without a key a row may be there twice: {1, 1, 5} and {5, 7, 7} have
    // one count and one XOR of hashes, and still differ.
    src.query_drop(
        "CREATE DATABASE shop; CREATE TABLE shop.nokey (v INT); CREATE TABLE shop.k (id INT PRIMARY KEY); CREATE TABLE shop.ok (id INT PRIMARY KEY);
         INSERT INTO shop.nokey VALUES (1), (1), (2); CREATE TABLE shop.twice (v INT); INSERT INTO shop.twice VALUES (1), (1), (5)",
    )
    .await
    .unwrap();
    dst.query_drop(
        "CREATE DATABASE shop; CREATE TABLE shop.nokey (v INT); CREATE TABLE shop.ok (id INT PRIMARY KEY); INSERT INTO shop.ok VALUES (1);
         INSERT INTO shop.nokey VALUES (2), (1), (1); CREATE TABLE shop.twice (v INT); INSERT INTO shop.twice VALUES (5), (7), (7)",
    )
    .await
    .unwrap();
    let (code, output) = run_to_end(
        &[
            "verify",
            "--source",
            a.mysql_url(),
            "--target",
            b.mysql_url(),
            "--tables",
            "shop.nokey,shop.k,shop.ok,shop.twice",
        ],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(1), "{output}");
    for says in [
        "shop.nokey: no primary key, compared whole (row count and row hashes): is equal; rows cannot be named",
        "shop.twice: no primary key, compared whole (row count and row hashes): differs; rows cannot be named",
        "shop.k: not compared: no such table on the target",
        "shop.ok extra: id=1",
    ] {
        assert!(output.contains(says), "{says}:\n{output}");
    }
}

/// Hard cases: each differs on the target,
/// is found, and is repaired without harm to anything else there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_cases_are_found_and_repaired_without_touching_anything_else() {
    let (a, b) = (Stack::start_without_binlog(), Stack::start_without_binlog());
    let (source, target) = (a.mysql_url(), b.mysql_url());
    let schema = "CREATE DATABASE d;
        CREATE TABLE d.par (id INT PRIMARY KEY, v INT);
        CREATE TABLE d.chi (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES d.par(id) ON DELETE CASCADE);
        CREATE TABLE d.wide (id INT PRIMARY KEY, b LONGBLOB);
        CREATE TABLE d.f (id INT PRIMARY KEY, f FLOAT);
        CREATE TABLE d.kb (k BIT(64) PRIMARY KEY, v INT);
        CREATE TABLE d.gen (id INT PRIMARY KEY, v INT, twice INT AS (v * 2) VIRTUAL);
        CREATE TABLE d.ci (k VARCHAR(20) PRIMARY KEY, v INT) COLLATE utf8mb4_general_ci;
        INSERT INTO d.ci VALUES ('same', 1);
        INSERT INTO d.par VALUES (1, 1), (2, 2); INSERT INTO d.chi VALUES (10, 1), (20, 2), (21, 2);
        INSERT INTO d.wide VALUES (1, REPEAT('a', 9000000)), (2, 'small');
        INSERT INTO d.f VALUES (1, 1.0000001);
        INSERT INTO d.kb VALUES (b'1111111111111111111111111111111111111111111111111111111111111111', 1), (0, 2), (1, 3);
        INSERT INTO d.gen (id, v) VALUES (1, 1)";
    let mut src = mysql_async::Conn::from_url(source).await.unwrap();
    let mut dst = mysql_async::Conn::from_url(target).await.unwrap();
    src.query_drop(schema).await.unwrap();
    dst.query_drop(schema).await.unwrap();
    dst.query_drop("ALTER TABLE d.par ADD COLUMN mine INT NOT NULL DEFAULT 0; UPDATE d.par SET mine = 5")
        .await
        .unwrap();
    src.query_drop(
        "UPDATE d.par SET v = 100 WHERE id = 2; UPDATE d.wide SET b = REPEAT('b', 9000000) WHERE id = 1; UPDATE d.gen SET v = 7",
    )
    .await
    .unwrap();
    dst.query_drop("UPDATE d.f SET f = 1.0000002; DELETE FROM d.kb WHERE k = 1")
        .await
        .unwrap();
    src.query_drop("INSERT INTO d.ci VALUES ('abc', 1), ('x ', 2)").await.unwrap();
    dst.query_drop("INSERT INTO d.ci VALUES ('ABC', 1), ('x', 2)").await.unwrap();
    let tables = "d.par,d.wide,d.f,d.kb,d.gen,d.ci";
    let args = |extra: &[&'static str]| {
        let mut args = vec!["verify", "--source", source, "--target", target, "--tables", tables, "--json"];
        args.extend_from_slice(extra);
        args
    };
    let (code, output) = run_to_end(&args(&[]), &[], Duration::from_secs(120));
    assert_eq!(code, Some(1), "{output}");
    let report: serde_json::Value = serde_json::from_str(output.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    let found = |i: usize, what: &str| report["tables"][i][what].as_array().unwrap().len();
    assert_eq!(found(0, "different"), 1, "the changed parent");
    assert_eq!(report["tables"][0]["not_compared"][0], "mine (only on the target)");
    assert_eq!(
        found(1, "different"),
        1,
        "a 9 MB value that differs (its hex would pass max_allowed_packet)"
    );
    assert_eq!(found(2, "different"), 1, "FLOAT 1.0000001 against 1.0000002");
    assert_eq!((found(3, "missing"), found(3, "different")), (1, 0), "a BIT key's missing row");
    assert_eq!(found(4, "different"), 1, "a row with a generated column");
    assert_eq!(
        (found(5, "different"), found(5, "missing"), found(5, "extra"), found(5, "undecided")),
        (2, 0, 0, 0),
        "keys equal under their collation, not in their bytes, are one row each that differs: {}",
        report["tables"][5]
    );

    let (code, output) = run_to_end(&args(&["--repair"]), &[], Duration::from_secs(120));
    assert_eq!(code, Some(0), "{output}");
    let children: Vec<i32> = dst.query("SELECT id FROM d.chi ORDER BY id").await.unwrap();
    assert_eq!(children, [10, 20, 21], "no child row was deleted by a cascade");
    let mine: Vec<i32> = dst.query("SELECT mine FROM d.par ORDER BY id").await.unwrap();
    assert_eq!(mine, [5, 5], "a column only the target has keeps its values");
    let keys: Vec<String> = dst.query("SELECT CONCAT('[', k, ']') FROM d.ci ORDER BY k").await.unwrap();
    assert_eq!(keys, ["[abc]", "[same]", "[x ]"], "the keys are the source's, byte for byte");
}

#[test]
fn a_server_that_takes_the_connection_and_never_answers_does_not_hold_verify() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("mysql://root:Qu1et-pw@127.0.0.1:{}/", silent.local_addr().unwrap().port());
    let (code, output) = run_to_end(
        &["verify", "--source", &url, "--target", &url, "--tables", "d.t"],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("source: mysql://root:***@127.0.0.1:") && output.contains("did not answer within 30 s"),
        "{output}"
    );
    assert!(!output.contains("Qu1et-pw"), "{output}");
}
