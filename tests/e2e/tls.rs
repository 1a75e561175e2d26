//! TLS on every connection Sluice makes, against a stack whose certificates a
//! private CA signed: rows go MySQL → Kafka → MySQL with a capture account
//! that requires TLS, a writer account that requires a client certificate,
//! and a broker that speaks only TLS, and arrive exactly; a row the writer
//! cannot store reaches the dead-letter queue on that broker. Each side
//! refuses to run without its TLS settings, with an error that names the fix.
use std::path::Path;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use sluice::pipeline::PipelineFile;
use sluice::plugin::PluginHost;
use sluice::topology::run_pipeline;
use sluice_testkit::{Stack, engine, plugins_dir};
use tokio::sync::watch;

use crate::binlog_to_kafka::{spawn_pipeline, stop_pipeline};

const CAPTURE: &str = r#"
[[pipeline]]
name = "out"
source = { type = "mysql-binlog", url = "{cdc}", tables = ["shop.users"], server_id = 4301 {source_tls} }
sink = { type = "kafka", brokers = "{brokers}", properties = { {kafka_tls} } }
dead_letter = { topic = "tls.dlq" }

[[pipeline.plugins]]
name = "passthrough"
"#;

const APPLY: &str = r#"
[[pipeline]]
name = "back"
source = { type = "kafka", brokers = "{brokers}", topics = ["shop.users"], group = "back",
           properties = { "session.timeout.ms" = "6000", "heartbeat.interval.ms" = "500", {kafka_tls} } }
sink = { type = "mysql", url = "{writer}", table = "copy.{table}" {sink_tls} }
dead_letter = { topic = "tls.dlq" }
"#;

/// What each pipeline file says about TLS; the tests leave out one part at a time.
struct Tls {
    source: String,
    kafka: String,
    sink: String,
}

impl Tls {
    fn full(stack: &Stack) -> Tls {
        let file = |name: &str| stack.tls_file(name).display().to_string();
        Tls {
            source: format!(r#", tls = {{ ca = "{}" }}"#, file("ca.pem")),
            kafka: format!(r#""security.protocol" = "SSL", "ssl.ca.location" = "{}""#, file("ca.pem")),
            sink: format!(
                r#", tls = {{ ca = "{}", cert = "{}", key = "{}" }}"#,
                file("ca.pem"),
                file("client.pem"),
                file("client.key")
            ),
        }
    }
}

/// The stack's MySQL URL for `user` (whose password is `user-pw`).
fn account(stack: &Stack, user: &str) -> String {
    stack.mysql_url().replacen("root@", &format!("{user}:{user}-pw@"), 1)
}

/// `template` with `tls`, the capture reading as `cdc_url`.
fn file(stack: &Stack, state: &Path, template: &str, tls: &Tls, cdc_url: &str) -> PipelineFile {
    let text = template
        .replace("{cdc}", cdc_url)
        .replace("{writer}", &account(stack, "writer"))
        .replace("{source_tls}", &tls.source)
        .replace("{kafka_tls}", &tls.kafka)
        .replace("{sink_tls}", &tls.sink);
    PipelineFile::parse(&stack.pipeline_text(plugins_dir(), Some(state), &text), |_| None).unwrap()
}

/// Runs the file's pipeline, which must fail at start-up; returns its error.
async fn start_up_error(mut file: PipelineFile) -> String {
    let pipeline = file.pipelines.remove(0);
    let host = PluginHost::open(engine(), &file.plugin_dir).unwrap();
    let (_stop_tx, stop) = watch::channel(false);
    let run = run_pipeline(&pipeline, host, &file.state_dir, stop);
    match tokio::time::timeout(Duration::from_secs(60), run).await {
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(())) => panic!("pipeline `{}` ran without its TLS settings", pipeline.name),
        Err(_) => panic!("pipeline `{}` neither failed nor stopped within 60 s", pipeline.name),
    }
}

type Rows = Vec<(i64, String, String)>;

async fn rows(db: &mut mysql_async::Conn, table: &str) -> Rows {
    db.query(format!(
        "SELECT id, name, CAST(balance AS CHAR) FROM {table} WHERE id <> {TOO_LONG} ORDER BY id"
    ))
    .await
    .unwrap()
}

/// The row whose name does not fit `copy.users`.
const TOO_LONG: i64 = 1000;

/// Waits until `copy.users` holds exactly what `shop.users` does, but for
/// the row it cannot.
async fn wait_copied(db: &mut mysql_async::Conn, what: &str) -> Rows {
    let expected = rows(db, "shop.users").await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let copied = rows(db, "copy.users").await;
        if copied == expected {
            return copied;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: copy.users has {} rows, shop.users {}",
            copied.len(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rows_cross_mysql_and_kafka_over_tls_both_ways_and_nothing_runs_without_it() {
    let stack = Stack::start_with_tls();
    let state = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(
        "CREATE DATABASE shop; CREATE DATABASE copy;
         CREATE TABLE shop.users (id BIGINT PRIMARY KEY, name VARCHAR(40), balance DECIMAL(12,2));
         CREATE TABLE copy.users (id BIGINT PRIMARY KEY, name VARCHAR(24), balance DECIMAL(12,2));
         CREATE USER cdc IDENTIFIED BY 'cdc-pw' REQUIRE SSL;
         GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO cdc;
         CREATE USER writer IDENTIFIED BY 'writer-pw' REQUIRE X509;
         GRANT ALL ON *.* TO writer;
         USE shop; INSERT INTO shop.users SELECT seq, CONCAT('user ', seq), seq * 1.25 FROM seq_1_to_300",
    )
    .await
    .unwrap();
    let full = Tls::full(&stack);
    let cdc = &account(&stack, "cdc");

    // Each side without its TLS settings: the server or broker refuses, and
    // the error says what to set.
    let no_source_tls = Tls {
        source: String::new(),
        ..Tls::full(&stack)
    };
    let error = start_up_error(file(&stack, state.path(), CAPTURE, &no_source_tls, cdc)).await;
    assert!(error.contains("Access denied for user 'cdc'"), "{error}");
    let url_only = format!("{cdc}?require_ssl=true");
    let error = start_up_error(file(&stack, state.path(), CAPTURE, &no_source_tls, &url_only)).await;
    assert!(
        error.contains("TLS with MySQL") && error.contains("`tls.ca` must name the CA"),
        "{error}"
    );
    let no_kafka_tls = Tls {
        kafka: String::new(),
        ..Tls::full(&stack)
    };
    let error = start_up_error(file(&stack, state.path(), CAPTURE, &no_kafka_tls, cdc)).await;
    assert!(error.contains("no Kafka broker answers"), "{error}");
    let no_client_cert = Tls {
        sink: format!(r#", tls = {{ ca = "{}" }}"#, stack.tls_file("ca.pem").display()),
        ..Tls::full(&stack)
    };
    let error = start_up_error(file(&stack, state.path(), APPLY, &no_client_cert, cdc)).await;
    assert!(error.contains("Access denied for user 'writer'"), "{error}");

    // With them: a snapshot, then live changes, through Kafka and back. The
    // writer waits for the dead-letter queue's acknowledgement before it
    // commits: rows after the one it cannot store arrive only if the queue,
    // which takes its TLS settings from the source, reached the broker.
    let (capture_stop, capture) = spawn_pipeline(file(&stack, state.path(), CAPTURE, &full, cdc));
    let (apply_stop, apply) = spawn_pipeline(file(&stack, state.path(), APPLY, &full, cdc));
    assert_eq!(wait_copied(&mut db, "the snapshot").await.len(), 300);
    db.query_drop(
        "INSERT INTO shop.users VALUES (1000, REPEAT('too long ', 4), 0);
         INSERT INTO shop.users SELECT seq, CONCAT('late ', seq), seq / 8 FROM seq_301_to_500;
         UPDATE shop.users SET name = CONCAT(name, ' (edited)'), balance = -balance WHERE id % 7 = 0;
         DELETE FROM shop.users WHERE id % 25 = 0",
    )
    .await
    .unwrap();
    let copied = wait_copied(&mut db, "the live changes").await;
    assert_eq!(copied.len(), 500 - 20);
    assert!(
        copied.contains(&(14, "user 14 (edited)".into(), "-17.50".into())),
        "{:?}",
        &copied[..20]
    );
    stop_pipeline(capture_stop, capture).await;
    stop_pipeline(apply_stop, apply).await;
}
