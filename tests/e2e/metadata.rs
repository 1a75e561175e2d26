//! Row events without full metadata (binlog_row_metadata=MINIMAL) are
//! completed from information_schema: names, key, signedness, ENUM/SET
//! members; MariaDB's JSON columns are JSON in snapshot and binlog alike.
use std::time::Duration;

use mysql_async::prelude::Queryable;
use sluice::record::{Op, Value};
use sluice::sources::MysqlCapture;
use sluice::sources::binlog::BinlogSourceConfig;
use sluice_testkit::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimal_metadata_is_completed_from_the_catalog() {
    let stack = Stack::start();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(
        "SET GLOBAL binlog_row_metadata = 'MINIMAL'; CREATE DATABASE shop;
         CREATE TABLE shop.t (id BIGINT UNSIGNED PRIMARY KEY, tier ENUM('gold','silver'), tags SET('a','b','c'),
                              doc JSON, n MEDIUMINT UNSIGNED);
         INSERT INTO shop.t VALUES (1, 'gold', 'b', '[1]', 1);",
    )
    .await
    .unwrap();
    let config: BinlogSourceConfig = toml::from_str(&format!(
        r#"url = "{}"
tables = ["shop.t"]
server_id = 4646"#,
        stack.mysql_url()
    ))
    .unwrap();
    let mut source = MysqlCapture::connect(&config, None, "metadata").await.unwrap();
    // A session opened now writes with the global's MINIMAL metadata.
    let mut writer = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    let metadata: String = writer.query_first("SELECT @@binlog_row_metadata").await.unwrap().unwrap();
    assert_eq!(metadata, "MINIMAL");
    writer
        .query_drop(r#"INSERT INTO shop.t VALUES (18446744073709551615, 'silver', 'a,c', '{"k": [1, 2]}', 16777215)"#)
        .await
        .unwrap();
    let mut records = Vec::new();
    for _ in 0..100 {
        records.extend(source.next_batch(100, Duration::from_millis(100)).await.unwrap().records);
        if records.len() >= 2 {
            break;
        }
    }
    let (read, insert) = (&records[0], &records[1]);
    assert_eq!((read.op, insert.op), (Op::Read, Op::Insert));
    let schema = insert.schema.as_deref().unwrap();
    let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "tier", "tags", "doc", "n"]);
    assert_eq!(schema.key, [0]);
    assert_eq!(schema.columns[3].sql_type, "json");
    assert_eq!(
        insert.after.as_deref().unwrap(),
        [
            Value::Uint(u64::MAX),
            Value::Str("silver".into()),
            Value::Str("a,c".into()),
            Value::Json(r#"{"k": [1, 2]}"#.into()),
            Value::Uint(16777215)
        ]
    );
    assert_eq!(read.get("doc"), Some(&Value::Json("[1]".into())));
    assert_eq!(read.schema.as_deref().unwrap().columns[3].sql_type, "json");
}
