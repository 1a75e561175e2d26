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
async fn a_table_that_cannot_be_compared_is_named_with_why() {
    let (a, b) = (Stack::start_without_binlog(), Stack::start_without_binlog());
    let mut src = mysql_async::Conn::from_url(a.mysql_url()).await.unwrap();
    let mut dst = mysql_async::Conn::from_url(b.mysql_url()).await.unwrap();
    src.query_drop("CREATE DATABASE shop; CREATE TABLE shop.nokey (v INT); CREATE TABLE shop.k (id INT PRIMARY KEY)")
        .await
        .unwrap();
    dst.query_drop("CREATE DATABASE shop; CREATE TABLE shop.nokey (v INT)")
        .await
        .unwrap();
    for (table, says) in [("shop.nokey", "has no primary key"), ("shop.k", "no such table on the target")] {
        let (code, output) = run_to_end(
            &["verify", "--source", a.mysql_url(), "--target", b.mysql_url(), "--tables", table],
            &[],
            Duration::from_secs(60),
        );
        assert_eq!(code, Some(1), "{output}");
        assert!(output.contains(&format!("{table}: {says}")), "{output}");
    }
}
