//! Every MariaDB column type at its extremes, every character set, and keys
//! declared in every order, through MySQL → Kafka and back: each row read by
//! the snapshot (`r`) and again from the binlog (delete, insert, key change,
//! update) must arrive identical, and equal to what the server itself
//! returns for each value, in the envelope, the key and the flat format.
//! A Kafka → MySQL pipeline then writes the topics into copies of the
//! tables, which must end equal to the originals.
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use base64::Engine as _;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value as Wire};
use serde_json::{Map, Value as Json};
use sluice::pipeline::PipelineFile;
use sluice_testkit::{Stack, plugins_dir};

use crate::binlog_to_kafka::{spawn_pipeline, start_pipeline, stop_pipeline};
use crate::kafka_sink::{Received, consume};

/// One table of the matrix: its columns, its primary key clause, its rows
/// (SQL literals per column, `rid` first), and how its key changes.
struct Table {
    name: &'static str,
    columns: Vec<(&'static str, &'static str)>,
    key: &'static str,
    rows: Vec<Vec<&'static str>>,
    change_key: &'static str,
}

fn types_table() -> Table {
    let c = |name, ty| (name, ty);
    let columns = vec![
        c("id", "INT NOT NULL"),
        c("ti", "TINYINT"),
        c("tiu", "TINYINT UNSIGNED"),
        c("si", "SMALLINT"),
        c("siu", "SMALLINT UNSIGNED"),
        c("mi", "MEDIUMINT"),
        c("miu", "MEDIUMINT UNSIGNED"),
        c("i", "INT"),
        c("iu", "INT UNSIGNED"),
        c("bi", "BIGINT"),
        c("biu", "BIGINT UNSIGNED"),
        c("d65", "DECIMAL(65,30)"),
        c("d10", "DECIMAL(10,0)"),
        c("d52", "DECIMAL(5,2) UNSIGNED"),
        c("f", "FLOAT"),
        c("db", "DOUBLE"),
        c("b1", "BIT(1)"),
        c("b7", "BIT(7)"),
        c("b64", "BIT(64)"),
        c("dd", "DATE"),
        c("dt0", "DATETIME"),
        c("dt3", "DATETIME(3)"),
        c("dt6", "DATETIME(6)"),
        c("ts0", "TIMESTAMP NULL"),
        c("ts2", "TIMESTAMP(2) NULL"),
        c("ts6", "TIMESTAMP(6) NULL"),
        c("t0", "TIME"),
        c("t1", "TIME(1)"),
        c("t2", "TIME(2)"),
        c("t3", "TIME(3)"),
        c("t4", "TIME(4)"),
        c("t5", "TIME(5)"),
        c("t6", "TIME(6)"),
        c("y", "YEAR"),
        c("ch", "CHAR(10)"),
        c("vc", "VARCHAR(300)"),
        c("bn", "BINARY(8)"),
        c("vb", "VARBINARY(10)"),
        c("tb", "TINYBLOB"),
        c("bl", "BLOB"),
        c("mb", "MEDIUMBLOB"),
        c("lb", "LONGBLOB"),
        c("tt", "TINYTEXT"),
        c("tx", "TEXT"),
        c("mt", "MEDIUMTEXT"),
        c("lt", "LONGTEXT"),
        c("en", "ENUM('a','b','é')"),
        c("st", "SET('a','b','c')"),
        c("js", "JSON"),
        c("g", "GEOMETRY"),
        c("pt", "POINT"),
        c("ip", "INET6"),
        c("uu", "UUID"),
        c("dz", "DECIMAL(10,2) UNSIGNED ZEROFILL"),
        c("i4", "INET4"),
        c("fu", "FLOAT UNSIGNED"),
        c("hid", "INT INVISIBLE"),
        c("gen", "INT AS (ti + 1) VIRTUAL"),
    ];
    let min = vec![
        "1",
        "-128",
        "0",
        "-32768",
        "0",
        "-8388608",
        "0",
        "-2147483648",
        "0",
        "-9223372036854775808",
        "0",
        "-99999999999999999999999999999999999.999999999999999999999999999999",
        "-9999999999",
        "0",
        "-3.40282e38",
        "-1.7976931348623157e308",
        "b'0'",
        "b'0'",
        "0",
        "'1000-01-01'",
        "'1000-01-01 00:00:00'",
        "'1000-01-01 00:00:00.000'",
        "'1000-01-01 00:00:00.000000'",
        "'1970-01-01 00:00:01'",
        "'1970-01-01 00:00:01.00'",
        "'1970-01-01 00:00:01.000000'",
        "'-838:59:59'",
        "'-838:59:59.9'",
        "'-838:59:59.99'",
        "'-838:59:59.999'",
        "'-838:59:59.9999'",
        "'-838:59:59.99999'",
        "'-838:59:59.999999'",
        "1901",
        "''",
        "''",
        "x''",
        "x''",
        "x''",
        "x''",
        "x''",
        "x''",
        "''",
        "''",
        "''",
        "''",
        "'a'",
        "''",
        "'{}'",
        "ST_GeomFromText('POINT(0 0)')",
        "ST_GeomFromText('POINT(-180 -90)')",
        "'::'",
        "'00000000-0000-0000-0000-000000000000'",
        "0",
        "'0.0.0.0'",
        "0",
        "1",
        "DEFAULT",
    ];
    let max = vec![
        "2",
        "127",
        "255",
        "32767",
        "65535",
        "8388607",
        "16777215",
        "2147483647",
        "4294967295",
        "9223372036854775807",
        "18446744073709551615",
        "99999999999999999999999999999999999.999999999999999999999999999999",
        "9999999999",
        "999.99",
        "3.40282e38",
        "1.7976931348623157e308",
        "b'1'",
        "b'1111111'",
        "x'FFFFFFFFFFFFFFFF'",
        "'9999-12-31'",
        "'9999-12-31 23:59:59'",
        "'9999-12-31 23:59:59.999'",
        "'9999-12-31 23:59:59.999999'",
        "'2038-01-19 03:14:07'",
        "'2038-01-19 03:14:07.99'",
        "'2038-01-19 03:14:07.999999'",
        "'838:59:59'",
        "'838:59:59.9'",
        "'838:59:59.99'",
        "'838:59:59.999'",
        "'838:59:59.9999'",
        "'838:59:59.99999'",
        "'838:59:59.999999'",
        "2155",
        "'abcdefghij'",
        "REPEAT('x', 300)",
        "x'FFFFFFFFFFFFFFFF'",
        "x'FFFFFFFFFFFFFFFFFFFF'",
        "REPEAT(x'FF', 255)",
        "REPEAT(x'AB', 5000)",
        "REPEAT(x'CD', 70000)",
        "REPEAT(x'EF', 100000)",
        "REPEAT('t', 255)",
        "REPEAT('é', 1000)",
        "REPEAT('🚀', 20000)",
        "REPEAT('ü', 50000)",
        "'é'",
        "'a,b,c'",
        "'{\"a\":[1,2,{\"b\":null}],\"é\":\"🚀\"}'",
        "ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0),(2 2,3 2,3 3,2 2))')",
        "ST_GeomFromText('POINT(180 90)')",
        "'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'",
        "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
        "99999999.99",
        "'255.255.255.255'",
        "3.40282e38",
        "2",
        "DEFAULT",
    ];
    let special = vec![
        "3",
        "0",
        "1",
        "0",
        "1",
        "-1",
        "1",
        "-1",
        "1",
        "-1",
        "1",
        "0.000000000000000000000000000001",
        "0",
        "0.50",
        "0.1",
        "0.1",
        "b'1'",
        "b'1010101'",
        "b'1'",
        "'0000-00-00'",
        "'0000-00-00 00:00:00'",
        "'2024-02-29 12:34:56.5'",
        "'2024-02-29 23:59:59.000001'",
        "'0000-00-00 00:00:00'",
        "'2024-03-01 00:00:00.12'",
        "'2024-03-01 00:00:00.000001'",
        "'-00:00:00'",
        "'-00:00:00.5'",
        "'-00:00:00.5'",
        "'-00:00:00.005'",
        "'-12:00:00.25'",
        "'-00:00:01.00001'",
        "'-00:00:00.000001'",
        "0",
        "'a  '",
        "'trailing  '",
        "x'0102000000000000'",
        "x'000100'",
        "x'00FF00'",
        "x'00'",
        "x'0000'",
        "x'FF00'",
        "'Zoë 🚀'",
        "'tab\\there \"q\" \\\\'",
        "'\\0nul'",
        "'line\\nbreak'",
        "'b'",
        "'b'",
        "'[]'",
        "ST_GeomFromText('LINESTRING(0 0,1 1,2 0)', 4326)",
        "ST_GeomFromText('POINT(1.5 -2.25)')",
        "'::ffff:10.0.0.1'",
        "'6ccd780c-baba-1026-9564-5b8c656024db'",
        "1.5",
        "'10.0.0.1'",
        "0.5",
        "3",
        "DEFAULT",
    ];
    let mut more = special.clone();
    more[0] = "4";
    more[51] = "'::10.0.0.1'";
    more[52] = "'550e8400-e29b-41d4-a716-446655440000'";
    more[27] = "'-00:00:00.1'";
    let mut edge = special.clone();
    edge[0] = "6";
    edge[51] = "'::2'";
    edge[52] = "'01890a5d-ac96-774b-bcce-b302099a8057'";
    let mut nulls = vec!["NULL"; columns.len()];
    nulls[0] = "5";
    *nulls.last_mut().unwrap() = "DEFAULT";
    for row in [&min, &max, &special, &more, &edge, &nulls] {
        assert_eq!(row.len(), columns.len(), "a value per column");
    }
    Table {
        name: "types",
        columns,
        key: "PRIMARY KEY (id)",
        rows: vec![min, max, special, more, nulls],
        change_key: "id = id + 1000",
    }
}

/// One column per character set (and two binary collations), each with text
/// the set can hold; every value must arrive as CONVERT(col USING utf8mb4).
fn charsets_table() -> Table {
    let sets: Vec<(&str, &str, &str)> = vec![
        ("utf8mb4", "utf8mb4", "'Zoë 🚀 中文'"),
        ("utf8mb3", "utf8mb3", "'Zoë ñ 中文'"),
        ("latin1", "latin1", "'café Ã© ÿ €'"),
        ("latin1_bin", "latin1 COLLATE latin1_bin", "'Ã©'"),
        ("utf8mb4_bin", "utf8mb4 COLLATE utf8mb4_bin", "'Ünï 🚀'"),
        ("latin2", "latin2", "'Łódź'"),
        ("latin5", "latin5", "'İstanbul ğ'"),
        ("latin7", "latin7", "'Ąžuolas'"),
        ("cp1250", "cp1250", "'Łódź €'"),
        ("cp1251", "cp1251", "'Привет, мир'"),
        ("cp1256", "cp1256", "'مرحبا'"),
        ("cp1257", "cp1257", "'Ąžuolas'"),
        ("cp850", "cp850", "'café ñ'"),
        ("cp852", "cp852", "'Łódź'"),
        ("cp866", "cp866", "'Привет'"),
        ("koi8r", "koi8r", "'Привет'"),
        ("koi8u", "koi8u", "'Привіт'"),
        ("greek", "greek", "'Καλημέρα'"),
        ("hebrew", "hebrew", "'שלום'"),
        ("macroman", "macroman", "'café ∑'"),
        ("macce", "macce", "'Łódź'"),
        ("dec8", "dec8", "'café'"),
        ("hp8", "hp8", "'café'"),
        ("swe7", "swe7", "'ÅÄÖ'"),
        ("keybcs2", "keybcs2", "'Čeština'"),
        ("armscii8", "armscii8", "'Բարեւ'"),
        ("geostd8", "geostd8", "'ქართული'"),
        ("tis620", "tis620", "'สวัสดี'"),
        ("ascii", "ascii", "'plain ascii'"),
        ("ucs2", "ucs2", "'Zoë ñ 中文'"),
        ("utf16", "utf16", "'Zoë 🚀 中文'"),
        ("utf16le", "utf16le", "'Zoë 🚀 中文'"),
        ("utf32", "utf32", "'Zoë 🚀 中文'"),
        ("gbk", "gbk", "'中文字符'"),
        ("gb2312", "gb2312", "'中文字符'"),
        ("big5", "big5", "'中文'"),
        ("sjis", "sjis", "'日本語テキスト'"),
        ("cp932", "cp932", "'日本語テキスト'"),
        ("ujis", "ujis", "'日本語'"),
        ("eucjpms", "eucjpms", "'日本語'"),
        ("euckr", "euckr", "'한국어'"),
    ];
    let mut columns = vec![("id", "INT NOT NULL")];
    let mut text = vec!["1"];
    let mut ascii = vec!["2"];
    let mut empty = vec!["3"];
    let mut nulls = vec!["4"];
    for (name, charset, value) in &sets {
        let ty: &'static str = Box::leak(format!("VARCHAR(40) CHARACTER SET {charset}").into_boxed_str());
        columns.push((Box::leak(format!("c_{name}").into_boxed_str()), ty));
        text.push(value);
        ascii.push("'abc  '");
        empty.push("''");
        nulls.push("NULL");
    }
    // Fixed-width text and ENUM/SET members outside UTF-8.
    columns.extend([
        ("ch_utf16", "CHAR(6) CHARACTER SET utf16"),
        ("ch_latin1", "CHAR(6) CHARACTER SET latin1"),
        ("en_latin1", "ENUM('café','naïve') CHARACTER SET latin1"),
        ("st_cp1251", "SET('да','нет') CHARACTER SET cp1251"),
        ("tx_latin1", "TEXT CHARACTER SET latin1"),
        ("tx_gbk", "TEXT CHARACTER SET gbk"),
    ]);
    text.extend(["'Zoë'", "'café'", "'café'", "'да,нет'", "'café Ã©'", "'中文'"]);
    ascii.extend(["'ab '", "'ab '", "'naïve'", "'нет'", "'abc'", "'abc'"]);
    empty.extend(["''", "''", "'café'", "''", "''", "''"]);
    nulls.extend(["NULL"; 6]);
    Table {
        name: "charsets",
        columns,
        key: "PRIMARY KEY (id)",
        rows: vec![text, ascii, empty, nulls],
        change_key: "id = id + 1000",
    }
}

/// Composite keys declared in orders other than the columns', a key on a
/// column prefix, and binary and latin1 key columns: rows differ in each
/// key column, so a key made of fewer columns would make two rows one.
fn key_tables() -> Vec<Table> {
    let abc = vec![("a", "INT NOT NULL"), ("b", "VARCHAR(10) NOT NULL"), ("c", "DATE NOT NULL")];
    let abc_rows = || {
        vec![
            vec!["1", "'x'", "'2024-01-01'"],
            vec!["2", "'x'", "'2024-01-01'"],
            vec!["1", "'y'", "'2024-01-01'"],
            vec!["1", "'x'", "'2024-01-02'"],
        ]
    };
    vec![
        Table {
            name: "k_bac",
            columns: abc.clone(),
            key: "PRIMARY KEY (b, a, c)",
            rows: abc_rows(),
            change_key: "a = a + 100",
        },
        Table {
            name: "k_cab",
            columns: abc.clone(),
            key: "PRIMARY KEY (c, a, b)",
            rows: abc_rows(),
            change_key: "b = CONCAT(b, '!')",
        },
        Table {
            name: "k_prefix",
            columns: vec![("s", "VARCHAR(20) NOT NULL"), ("n", "INT NOT NULL")],
            key: "PRIMARY KEY (s(4), n)",
            rows: vec![vec!["'abcdef'", "1"], vec!["'abcdxy'", "2"], vec!["'zz'", "1"]],
            change_key: "n = n + 10",
        },
        Table {
            name: "k_binary",
            columns: vec![("t", "VARCHAR(8) CHARACTER SET latin1 NOT NULL"), ("b", "BINARY(4) NOT NULL")],
            key: "PRIMARY KEY (t, b)",
            rows: vec![
                vec!["'café'", "x'01000000'"],
                vec!["'café'", "x'0100FF'"],
                vec!["'naïve'", "x'0100'"],
            ],
            change_key: "t = CONCAT(t, 'é')",
        },
    ]
}

/// `rid` identifies a row through every change (it is no key); `v` is what
/// the plain update changes.
fn create_sql(database: &str, table: &Table) -> String {
    let columns: Vec<String> = table.columns.iter().map(|(name, ty)| format!("`{name}` {ty}")).collect();
    format!(
        "CREATE TABLE {database}.{} (rid INT NOT NULL UNIQUE, {}, v INT NOT NULL DEFAULT 0, {}) DEFAULT CHARSET = utf8mb4",
        table.name,
        columns.join(", "),
        table.key
    )
}

fn insert_sql(table: &Table) -> String {
    let names: Vec<String> = table.columns.iter().map(|(name, _)| format!("`{name}`")).collect();
    let rows: Vec<String> = table
        .rows
        .iter()
        .enumerate()
        .map(|(n, row)| format!("({n}, {})", row.join(", ")))
        .collect();
    format!(
        "INSERT INTO m.{} (rid, {}) VALUES {}",
        table.name,
        names.join(", "),
        rows.join(", ")
    )
}

/// Every column a statement may write, invisible ones too (a `SELECT *`
/// leaves them out), generated ones not.
fn writable(table: &Table) -> String {
    let columns = table
        .columns
        .iter()
        .filter(|(_, ty)| !ty.contains(" AS ("))
        .map(|(name, _)| format!("`{name}`"));
    std::iter::once("rid".to_owned())
        .chain(columns)
        .chain(std::iter::once("v".to_owned()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn tables() -> Vec<Table> {
    let mut all = vec![types_table(), charsets_table()];
    all.extend(key_tables());
    all
}

/// What the server returns for each column of each row of `db.table` (by
/// rid), in one canonical text per kind of column, None for NULL.
async fn server_values(conn: &mut Conn, database: &str, table: &str) -> BTreeMap<i64, BTreeMap<String, Option<String>>> {
    let columns: Vec<(String, String, Option<String>)> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_SET_NAME FROM information_schema.COLUMNS
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (database, table),
        )
        .await
        .unwrap();
    let mut out: BTreeMap<i64, BTreeMap<String, Option<String>>> = BTreeMap::new();
    for (name, data_type, charset) in columns {
        let expr = match (data_type.as_str(), charset.as_deref()) {
            ("float" | "double", _) => format!("`{name}`"),
            ("bit", _) => format!("CAST(`{name}` AS UNSIGNED)"),
            (_, Some(_)) => format!("CONVERT(`{name}` USING utf8mb4)"),
            ("binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob", _) => format!("HEX(`{name}`)"),
            (t, _) if t.contains("point") || t.contains("geometry") || t.contains("polygon") || t.contains("string") => {
                format!("HEX(`{name}`)")
            }
            _ => format!("CAST(`{name}` AS CHAR)"),
        };
        let rows: Vec<(i64, Wire)> = conn.exec(format!("SELECT rid, {expr} FROM {database}.{table}"), ()).await.unwrap();
        for (rid, value) in rows {
            let text = match value {
                Wire::NULL => None,
                Wire::Float(f) => Some(f.to_string()),
                Wire::Double(d) => Some(if data_type == "float" {
                    (d as f32).to_string()
                } else {
                    d.to_string()
                }),
                Wire::Bytes(b) => Some(String::from_utf8(b).unwrap()),
                Wire::Int(i) => Some(i.to_string()),
                Wire::UInt(u) => Some(u.to_string()),
                other => panic!("{table}.{name}: unexpected {other:?}"),
            };
            let text = match (data_type.as_str(), text) {
                // YEAR as the number it is.
                ("year", Some(t)) => Some(t.parse::<i64>().unwrap().to_string()),
                (_, t) => t,
            };
            out.entry(rid).or_default().insert(name.clone(), text);
        }
    }
    out
}

/// A value of our JSON in the canonical text of [`server_values`].
fn json_text(data_type: &str, fsp: u32, value: &Json) -> Option<String> {
    let base64 = || base64::engine::general_purpose::STANDARD.decode(value.as_str().unwrap()).unwrap();
    match (data_type, value) {
        (_, Json::Null) => None,
        ("bit", _) => Some(base64().iter().fold(0u64, |n, &b| (n << 8) | u64::from(b)).to_string()),
        ("binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob", _) => Some(hex(&base64())),
        (t, _) if t.contains("point") || t.contains("geometry") || t.contains("polygon") || t.contains("string") => Some(hex(&base64())),
        ("float", Json::Number(n)) => Some((n.as_f64().unwrap() as f32).to_string()),
        ("double", Json::Number(n)) => Some(n.as_f64().unwrap().to_string()),
        ("timestamp", Json::String(instant)) => {
            let t = chrono::DateTime::parse_from_rfc3339(instant).unwrap().naive_utc();
            // MariaDB's zero TIMESTAMP is stored as the epoch, which no
            // TIMESTAMP can otherwise hold.
            if t.and_utc().timestamp_micros() == 0 {
                let fraction = if fsp > 0 {
                    format!(".{}", "0".repeat(fsp as usize))
                } else {
                    String::new()
                };
                return Some(format!("0000-00-00 00:00:00{fraction}"));
            }
            let text = t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
            Some(text[..text.len() - (6 - fsp as usize) - usize::from(fsp == 0)].to_owned())
        }
        (_, Json::String(s)) => Some(s.clone()),
        (_, Json::Number(n)) => Some(n.to_string()),
        (_, other) => panic!("{data_type}: unexpected {other}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn row_of(received: &Received, image: &str) -> Map<String, Json> {
    received.value[image]
        .as_object()
        .unwrap_or_else(|| panic!("no {image} in {}", received.value))
        .clone()
}

/// The key a row must have: its key columns, in key order, as in the row.
fn expected_key(key_columns: &[String], row: &Map<String, Json>) -> Json {
    Json::Object(key_columns.iter().map(|k| (k.clone(), row[k].clone())).collect())
}

/// A row without the columns that the changes themselves change.
fn without(row: &Map<String, Json>, columns: &[&str]) -> Map<String, Json> {
    row.iter()
        .filter(|(k, _)| !columns.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_type_and_charset_arrives_as_the_server_holds_it_on_every_path() {
    let stack = Stack::start();
    let state = tempfile::tempdir().unwrap();
    let mut db = Conn::from_url(stack.mysql_url()).await.unwrap();
    let tables = tables();
    db.query_drop("CREATE DATABASE m; CREATE DATABASE original; CREATE DATABASE copy; SET SESSION sql_mode = '', time_zone = '+00:00'")
        .await
        .unwrap();
    for table in &tables {
        for database in ["m", "original", "copy"] {
            db.query_drop(create_sql(database, table))
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", create_sql(database, table)));
        }
        db.query_drop(insert_sql(table))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", table.name));
        let warnings: Vec<(String, u32, String)> = db.query("SHOW WARNINGS").await.unwrap();
        assert!(warnings.is_empty(), "{}: every value stored as written: {warnings:?}", table.name);
        db.query_drop(format!(
            "INSERT INTO original.{0} ({1}) SELECT {1} FROM m.{0}",
            table.name,
            writable(table)
        ))
        .await
        .unwrap();
    }
    let names: Vec<&str> = tables.iter().map(|t| t.name).collect();
    let rows: usize = tables.iter().map(|t| t.rows.len()).sum();

    let pipelines = r#"
[[pipeline]]
name = "envelope"
source = { type = "mysql-binlog", url = "{url}", tables = ["m.*"], server_id = 7101 }
sink = { type = "kafka", brokers = "{brokers}", topic = "env.{table}", tombstones = true, properties = { "message.max.bytes" = "10000000" } }
dead_letter = { topic = "matrix.dlq" }

[[pipeline]]
name = "flat"
source = { type = "mysql-binlog", url = "{url}", tables = ["m.*"], server_id = 7102 }
sink = { type = "kafka", brokers = "{brokers}", topic = "flat.{table}", format = "flat", properties = { "message.max.bytes" = "10000000" } }
dead_letter = { topic = "matrix.dlq" }
"#;
    let text = stack.pipeline_text(plugins_dir(), Some(state.path()), pipelines);
    let mut running = Vec::new();
    for n in 0..2 {
        let mut file = PipelineFile::parse(&text, |_| None).unwrap();
        let pipeline = file.pipelines.remove(n);
        file.pipelines = vec![pipeline];
        running.push(start_pipeline(file).await);
    }
    let env_topics: Vec<String> = names.iter().map(|n| format!("env.{n}")).collect();
    let env_topics: Vec<&str> = env_topics.iter().map(String::as_str).collect();
    // Snapshot first: every row once, as `r`.
    let snapshot = consume(stack.kafka_brokers(), "matrix-r", &env_topics, rows);
    assert!(snapshot.iter().all(|m| m.value["op"] == "r"), "only snapshot reads so far");

    // Then the binlog: every row deleted, inserted again from the copy of the
    // original, moved to another key, and updated in place.
    for table in &tables {
        db.query_drop(format!(
            "SET SESSION sql_mode = ''; DELETE FROM m.{0}; INSERT INTO m.{0} ({2}) SELECT {2} FROM original.{0};
             UPDATE m.{0} SET {1}; UPDATE m.{0} SET v = v + 1",
            table.name,
            table.change_key,
            writable(table)
        ))
        .await
        .unwrap();
    }
    // Per row: r; d and its tombstone; c; the key change's d, tombstone and c; u.
    let all = consume(stack.kafka_brokers(), "matrix-all", &env_topics, rows * 8);
    for (stop, task) in running {
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    for table in &tables {
        let data_types: HashMap<String, (String, u32)> = db
            .exec::<(String, String, Option<u32>), _, _>(
                "SELECT COLUMN_NAME, DATA_TYPE, DATETIME_PRECISION FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'm' AND TABLE_NAME = ?",
                (table.name,),
            )
            .await
            .unwrap()
            .into_iter()
            .map(|(name, ty, fsp)| (name, (ty, fsp.unwrap_or(0))))
            .collect();
        let key_columns: Vec<String> = db
            .exec(
                "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
                 WHERE TABLE_SCHEMA = 'm' AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
                (table.name,),
            )
            .await
            .unwrap();
        let expected = server_values(&mut db, "original", table.name).await;
        let topic = format!("env.{}", table.name);
        let messages: Vec<&Received> = all.iter().filter(|m| m.topic == topic).collect();
        for (rid, server) in &expected {
            let of_row = |image: &str, op: &str| -> Vec<&Received> {
                messages
                    .iter()
                    .copied()
                    .filter(|m| m.value["op"] == op && m.value[image].get("rid").and_then(Json::as_i64) == Some(*rid))
                    .collect()
            };
            let what = format!("{}.rid={rid}", table.name);
            let read = of_row("after", "r");
            let deletes = of_row("before", "d");
            let creates = of_row("after", "c");
            let updates = of_row("after", "u");
            assert_eq!(
                (read.len(), deletes.len(), creates.len(), updates.len()),
                (1, 2, 2, 1),
                "{what}: messages per op"
            );
            let snapshot_row = row_of(read[0], "after");

            // The snapshot's values are what the server returns.
            for (column, value) in &snapshot_row {
                let (data_type, fsp) = &data_types[column];
                assert_eq!(
                    json_text(data_type, *fsp, value),
                    server[column],
                    "{what}.{column} ({data_type}): snapshot vs server"
                );
            }
            // Every binlog image of the original row is the snapshot's row.
            let (deleted, moved_away) = match deletes[0].headers.get("sluice.key-change") {
                None => (deletes[0], deletes[1]),
                Some(_) => (deletes[1], deletes[0]),
            };
            let (created, moved_in) = match creates[0].headers.get("sluice.key-change") {
                None => (creates[0], creates[1]),
                Some(_) => (creates[1], creates[0]),
            };
            for (image, message) in [("before", deleted), ("after", created), ("before", moved_away)] {
                let row = row_of(message, image);
                for (column, value) in &snapshot_row {
                    assert_eq!(
                        &row[column], value,
                        "{what}.{column}: binlog {} {image} vs snapshot",
                        message.value["op"]
                    );
                }
            }
            // The key change: a delete under the old key, a create under the
            // new one, each naming the other; only the key columns differ.
            assert_eq!(
                moved_away.headers.get("sluice.key-change").map(String::as_str),
                Some("delete"),
                "{what}"
            );
            assert_eq!(
                moved_in.headers.get("sluice.key-change").map(String::as_str),
                Some("create"),
                "{what}"
            );
            let new_row = row_of(moved_in, "after");
            let key_names: Vec<&str> = key_columns.iter().map(String::as_str).collect();
            assert_eq!(
                without(&new_row, &key_names),
                without(&snapshot_row, &key_names),
                "{what}: a key change moves the row whole"
            );
            assert_ne!(
                expected_key(&key_columns, &new_row),
                expected_key(&key_columns, &snapshot_row),
                "{what}: the key changed"
            );
            assert_eq!(moved_away.headers["sluice.new-key"], moved_in.key.clone().unwrap(), "{what}");
            assert_eq!(moved_in.headers["sluice.old-key"], moved_away.key.clone().unwrap(), "{what}");
            let update = row_of(updates[0], "before");
            assert_eq!(update, new_row, "{what}: the update's before image");
            assert_eq!(
                without(&row_of(updates[0], "after"), &["v"]),
                without(&new_row, &["v"]),
                "{what}: the update's after image"
            );

            // Keys: every key column, in key order, as the row holds it.
            for (message, image) in [
                (read[0], "after"),
                (deleted, "before"),
                (created, "after"),
                (moved_away, "before"),
                (moved_in, "after"),
            ] {
                let key: Json = serde_json::from_str(message.key.as_deref().expect("a key")).unwrap();
                assert_eq!(
                    key,
                    expected_key(&key_columns, &row_of(message, image)),
                    "{what}: key of {}",
                    message.value["op"]
                );
                let order: Vec<&String> = key.as_object().unwrap().keys().collect();
                assert_eq!(order, key_columns.iter().collect::<Vec<_>>(), "{what}: key columns in key order");
            }
            // Each delete is followed by a tombstone for its key.
            for delete in [deleted, moved_away] {
                let at = messages.iter().position(|m| std::ptr::eq(*m, delete)).unwrap();
                let tombstone = messages[at + 1..].iter().find(|m| m.key == delete.key).expect("a tombstone");
                assert_eq!(
                    tombstone.value,
                    Json::Null,
                    "{what}: the message after a delete under its key is a tombstone"
                );
            }
        }
        // Distinct rows have distinct keys.
        let keys: std::collections::HashSet<&Option<String>> = messages.iter().filter(|m| m.value["op"] == "r").map(|m| &m.key).collect();
        assert_eq!(keys.len(), table.rows.len(), "{}: one key per row", table.name);
    }

    // The flat format carries the same rows; a delete is a tombstone.
    let flat_topics: Vec<String> = names.iter().map(|n| format!("flat.{n}")).collect();
    let flat_topics: Vec<&str> = flat_topics.iter().map(String::as_str).collect();
    let flat = consume(stack.kafka_brokers(), "matrix-flat", &flat_topics, rows * 6);
    for table in &tables {
        let env_topic = format!("env.{}", table.name);
        let flat_topic = format!("flat.{}", table.name);
        let rows_of = |messages: &[Received], topic: &str| -> Vec<(Option<String>, Json)> {
            messages
                .iter()
                .filter(|m| m.topic == topic && !m.value.is_null())
                .map(|m| (m.key.clone(), m.value.clone()))
                .collect()
        };
        let mut envelope_rows: Vec<(Option<String>, Json)> = all
            .iter()
            .filter(|m| m.topic == env_topic && !m.value.is_null() && m.value["op"] != "d")
            .map(|m| (m.key.clone(), m.value["after"].clone()))
            .collect();
        let mut flat_rows = rows_of(&flat, &flat_topic);
        let sort = |rows: &mut Vec<(Option<String>, Json)>| rows.sort_by_key(|(k, v)| (k.clone(), v.to_string()));
        sort(&mut envelope_rows);
        sort(&mut flat_rows);
        assert_eq!(
            flat_rows, envelope_rows,
            "{}: flat rows are the envelope's after images",
            table.name
        );
        let tombstones = flat.iter().filter(|m| m.topic == flat_topic && m.value.is_null()).count();
        assert_eq!(tombstones, table.rows.len() * 2, "{}: each delete a tombstone", table.name);
    }

    // Back through Kafka into copies of the tables: they end equal.
    let back = r#"
[[pipeline]]
name = "back"
source = { type = "kafka", brokers = "{brokers}", topics = ["^env\\..*"], group = "matrix-back", properties = { "session.timeout.ms" = "6000" } }
sink = { type = "mysql", url = "{url}", table = "copy.{table}" }
dead_letter = { topic = "matrix.back.dlq" }
"#;
    let file = PipelineFile::parse(&stack.pipeline_text(plugins_dir(), None, back), |_| None).unwrap();
    let (stop, task) = spawn_pipeline(file);
    let deadline = Instant::now() + Duration::from_secs(90);
    'tables: for table in &tables {
        loop {
            // Every column: the invisible ones a `SELECT *` leaves out, and the generated one.
            let generated = if table.name == "types" { ", gen" } else { "" };
            let all = |db: &str| format!("SELECT {}{generated} FROM {db}.{} ORDER BY rid", writable(table), table.name);
            let original: Vec<mysql_async::Row> = db.query(all("m")).await.unwrap();
            let copy: Vec<mysql_async::Row> = db.query(all("copy")).await.unwrap();
            let values = |rows: Vec<mysql_async::Row>| rows.into_iter().map(mysql_async::Row::unwrap).collect::<Vec<_>>();
            let (original, copy) = (values(original), values(copy));
            if original == copy {
                continue 'tables;
            }
            assert!(
                Instant::now() < deadline,
                "{}: the copy did not become equal to the original within 90 s:\noriginal {original:?}\ncopy {copy:?}",
                table.name
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    stop_pipeline(stop, task).await;
    let dead = consume(stack.kafka_brokers(), "matrix-dlq", &["matrix.dlq", "matrix.back.dlq"], 0);
    assert!(dead.is_empty(), "nothing went to a dead-letter queue");
}
