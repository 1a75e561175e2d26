//! The MySQL sink's conflict rules against a real MariaDB: each change is
//! judged against the row it would overwrite, by the server's own types
//! (DATETIME(6), a counter); losers are counted and dead-lettered with kind
//! `conflict` and the reason; the rows after each origin's marker are that
//! origin's.
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use sluice::kafka::Offsets;
use sluice::origin::set_origin;
use sluice::record::{Column, Op, Position, Record, Schema, Value};
use sluice::sinks::dead_letter::DeadLetterQueue;
use sluice::sinks::mysql::{Applied, MysqlSink, MysqlSinkConfig, RowPlanner};
use sluice_testkit::Stack;

use crate::kafka_sink::consume;

fn schema(table: &str) -> Arc<Schema> {
    let column = |name: &str| Column {
        name: name.into(),
        sql_type: String::new(),
    };
    Arc::new(Schema {
        database: "shop".into(),
        table: table.into(),
        columns: vec![column("id"), column("v"), column("ver")],
        key: vec![0],
    })
}

/// Builds records of one table at consecutive offsets of one partition.
struct Changes {
    table: &'static str,
    records: Vec<Record>,
}

impl Changes {
    fn new(table: &'static str) -> Self {
        Changes {
            table,
            records: Vec::new(),
        }
    }

    fn push(&mut self, op: Op, id: i64, version: Value, origin: &str) -> &mut Self {
        self.change(op, id, version.clone(), version, origin)
    }

    /// A change whose before image has version `found`, its after image `made`.
    fn change(&mut self, op: Op, id: i64, found: Value, made: Value, origin: &str) -> &mut Self {
        let row = vec![Value::Int(id), Value::Str(format!("{origin} {op:?}")), made];
        let position = Position::Kafka {
            topic: self.table.into(),
            partition: 0,
            offset: self.records.len() as i64,
        };
        let mut record = Record::read(position, 0, schema(self.table), row.clone());
        record.op = op;
        let mut before = row.clone();
        before[2] = found;
        match op {
            Op::Delete => (record.before, record.after) = (Some(before), None),
            Op::Update => record.before = Some(before),
            _ => {}
        }
        set_origin(&mut record, origin);
        self.records.push(record);
        self
    }

    fn next_offsets(&self) -> Offsets {
        [((self.table.to_owned(), 0), self.records.len() as i64)].into()
    }
}

async fn apply(stack: &Stack, sink: &str, dlq: &DeadLetterQueue, changes: &Changes) -> Applied {
    let config: MysqlSinkConfig = toml::from_str(&format!("url = \"{}\"\n{sink}", stack.mysql_url())).unwrap();
    let mut writer = MysqlSink::connect(&config, changes.table, Some("m")).await.unwrap();
    let mut planner = RowPlanner::connect(&config, changes.table).await.unwrap();
    let plan = planner.plan(changes.records.clone()).await.unwrap();
    writer.apply(&plan, &changes.next_offsets(), &[], dlq).await.unwrap()
}

async fn rows(db: &mut mysql_async::Conn, table: &str) -> Vec<(i64, String, Option<String>)> {
    db.query(format!("SELECT id, v, CAST(ver AS CHAR) FROM shop.{table} ORDER BY id"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_rules_keep_the_row_they_say_and_dead_letter_the_losers() {
    let stack = Stack::start();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    let t = "'2026-01-01 00:00:02.000000'";
    db.query_drop(format!(
        "CREATE DATABASE shop;
         CREATE TABLE shop.lww (id INT PRIMARY KEY, v VARCHAR(20), ver DATETIME(6) NULL);
         INSERT INTO shop.lww VALUES (1, 'target', {t}), (2, 'target', {t}), (3, 'target', {t}), (4, 'target', {t}),
                                     (5, 'target', {t}), (6, 'target', NULL), (8, 'target', {t}), (9, 'target', NULL),
                                     (10, 'target', NULL);
         CREATE TABLE shop.tw (id INT PRIMARY KEY, v VARCHAR(20), ver INT);
         INSERT INTO shop.tw VALUES (1, 'target', 1), (2, 'target', 2), (3, 'target', 3), (5, 'target', 5), (6, 'target', 6),
                                    (7, 'target', 11);
         CREATE TABLE shop.nover (id INT PRIMARY KEY, v VARCHAR(20))"
    ))
    .await
    .unwrap();
    let dlq = DeadLetterQueue::new(
        &toml::from_str("topic = \"conflicts.dlq\"").unwrap(),
        stack.kafka_brokers(),
        &Default::default(),
        "p",
    )
    .unwrap();
    let at = |s: u32| Value::Datetime(format!("2026-01-01 00:00:0{s}.000000"));

    // last-writer-wins, this sink at site "m".
    let mut lww = Changes::new("lww");
    lww.push(Op::Update, 1, at(3), "x") // newer: applies
        .push(Op::Update, 2, at(1), "x") // older: loses
        .push(Op::Update, 3, at(2), "z") // equal, "z" sorts after "m": applies
        .push(Op::Update, 4, at(2), "a") // equal, "a" sorts before "m": loses
        .push(Op::Delete, 5, at(1), "x") // deletes an older row than the one there: loses
        .push(Op::Update, 6, at(1), "x") // the row has no version: applies
        .push(Op::Insert, 7, at(1), "x") // no row: applies
        .push(Op::Delete, 8, at(2), "x") // the row it deleted: applies
        .push(Op::Update, 9, Value::Null, "z") // two NULL versions tie; "z" sorts after "m": applies
        .push(Op::Update, 10, Value::Null, "a"); // a NULL tie, "a" sorts before "m": loses
    let sink = "conflict = \"last-writer-wins\"\nversion_column = \"ver\"\ndead_letter_conflicts = true";
    let applied = apply(&stack, sink, &dlq, &lww).await;
    assert_eq!(
        applied,
        Applied {
            unwritable: 0,
            conflicts: 4,
            written: 6
        }
    );
    let got = rows(&mut db, "lww").await;
    let v = |id: i64| got.iter().find(|r| r.0 == id).map(|r| r.1.as_str());
    assert_eq!(
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(v),
        [
            Some("x Update"),
            Some("target"),
            Some("z Update"),
            Some("target"),
            Some("target"),
            Some("x Update"),
            Some("x Insert"),
            None,
            Some("z Update"),
            Some("target"),
        ]
    );
    // The last origin's marker row is the one left.
    let origin: Option<String> = db.query_first("SELECT origin FROM sluice.sluice_origin").await.unwrap();
    assert_eq!(origin.as_deref(), Some("z"), "groups in origin order: a, x, z");

    // target-wins with a counter.
    let mut tw = Changes::new("tw");
    tw.push(Op::Update, 1, Value::Int(1), "x") // the row is as the change found it: applies
        .push(Op::Update, 2, Value::Int(1), "x") // the row changed since: loses
        .push(Op::Insert, 3, Value::Int(9), "x") // the key is taken: loses
        .push(Op::Insert, 4, Value::Int(1), "x") // the key is free: applies
        .push(Op::Delete, 5, Value::Int(5), "x") // the row as found: applies
        .push(Op::Delete, 6, Value::Int(3), "x") // the row changed since: loses
        // Three updates of one key in one batch: judged by the row the first found.
        .change(Op::Update, 7, Value::Int(11), Value::Int(12), "x")
        .change(Op::Update, 7, Value::Int(12), Value::Int(13), "x")
        .change(Op::Update, 7, Value::Int(13), Value::Int(14), "x")
        .push(Op::Update, 8, Value::Int(1), "x"); // the target deleted the row: loses
    let sink = "conflict = \"target-wins\"\nversion_column = \"ver\"\ndead_letter_conflicts = true";
    assert_eq!(apply(&stack, sink, &dlq, &tw).await.conflicts, 4);
    let got: Vec<(i64, String, i64)> = db.query("SELECT id, v, ver FROM shop.tw ORDER BY id").await.unwrap();
    let expected = [
        (1, "x Update", 1),
        (2, "target", 2),
        (3, "target", 3),
        (4, "x Insert", 1),
        (6, "target", 6),
        (7, "x Update", 14),
    ];
    assert_eq!(got, expected.map(|(id, v, ver)| (id, v.to_owned(), ver)));

    // A table without the version column: unwritable, not a conflict.
    let mut nover = Changes::new("nover");
    nover.push(Op::Insert, 1, Value::Null, "x");
    let sink = "conflict = \"last-writer-wins\"\nversion_column = \"ver\"";
    assert_eq!(
        apply(&stack, sink, &dlq, &nover).await,
        Applied {
            unwritable: 1,
            conflicts: 0,
            written: 0
        }
    );

    let dead = consume(stack.kafka_brokers(), "conflicts", &["conflicts.dlq"], 9);
    let kinds: Vec<(&str, &str)> = dead
        .iter()
        .map(|d| (d.headers["sluice.error-kind"].as_str(), d.headers["sluice.error"].as_str()))
        .collect();
    let conflicts: Vec<&str> = kinds.iter().filter(|(k, _)| *k == "conflict").map(|(_, why)| *why).collect();
    assert_eq!(conflicts.len(), 8, "{kinds:?}");
    for reason in [
        "last-writer-wins: the target row's `ver` is newer than this change's",
        "last-writer-wins: the target row's `ver` equals this change's, and ties go to site `m` over `a`",
        "target-wins: the target already holds a row with this key",
        "target-wins: the target row's `ver` changed since",
        "target-wins: the target has no row with this key (it was deleted there)",
    ] {
        assert!(conflicts.iter().any(|why| why.contains(reason)), "{reason}: {conflicts:?}");
    }
    assert!(
        kinds
            .iter()
            .any(|(k, why)| *k == "unwritable" && why.contains("no version column `ver`")),
        "{kinds:?}"
    );
}
