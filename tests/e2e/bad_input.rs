//! Bad settings fail at start with a message that names the fix, never a panic.
use mysql_async::prelude::Queryable;
use sluice::pipeline::PipelineFile;
use sluice::plugin::PluginHost;
use sluice::topology::run_pipeline;
use sluice_testkit::{Stack, engine, plugins_dir};
use tokio::sync::watch;

async fn start_error(url: &str, brokers: &str, tables: &str) -> String {
    let state = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
plugin_dir = "{plugins}"
state_dir = "{state}"

[[pipeline]]
name = "bad"
source = {{ type = "mysql-binlog", url = "{url}", tables = [{tables}], server_id = 77 }}
sink = {{ type = "kafka", brokers = "{brokers}" }}
dead_letter = {{ topic = "bad.dlq" }}
"#,
        plugins = plugins_dir().display(),
        state = state.path().display(),
    );
    let mut file = PipelineFile::parse(&text, |_| None).unwrap();
    let host = PluginHost::open(engine(), &file.plugin_dir).unwrap();
    let (_stop_tx, stop) = watch::channel(false);
    let pipeline = file.pipelines.remove(0);
    let run = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        run_pipeline(&pipeline, host, &file.state_dir, stop),
    );
    run.await
        .expect("start-up errors come within a minute")
        .expect_err("the pipeline must not start")
        .to_string()
}

fn assert_names(error: &str, expected: &[&str]) {
    for e in expected {
        assert!(error.contains(e), "{error:?} should mention {e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_fail_at_start_naming_the_fix() {
    let stack = Stack::start();
    let (url, brokers) = (stack.mysql_url().to_owned(), stack.kafka_brokers().to_owned());
    let mut db = mysql_async::Conn::from_url(&url).await.unwrap();
    db.query_drop(
        "CREATE DATABASE shop; CREATE TABLE shop.users (id INT PRIMARY KEY);
         CREATE USER 'weak'@'%' IDENTIFIED BY 'pw'; GRANT SELECT ON shop.* TO 'weak'@'%';",
    )
    .await
    .unwrap();

    let e = start_error("mysql://root:secret@127.0.0.1:1/", &brokers, r#""shop.users""#).await;
    assert_names(&e, &["cannot connect to MySQL", "root:***@127.0.0.1:1"]);
    assert!(!e.contains("secret"), "a password leaked into {e:?}");

    let e = start_error(&url, "127.0.0.1:1", r#""shop.users""#).await;
    assert_names(&e, &["no Kafka broker answers at 127.0.0.1:1", "check `brokers`"]);

    let e = start_error(&url, &brokers, r#""shop.users", "shop.nosuch""#).await;
    assert_names(&e, &["`shop.nosuch` in source.tables does not exist"]);

    let weak = url.replace("root@", "weak:pw@");
    let e = start_error(&weak, &brokers, r#""shop.users""#).await;
    assert_names(&e, &["REPLICATION SLAVE"]);

    db.query_drop("SET GLOBAL binlog_format = 'STATEMENT'").await.unwrap();
    let e = start_error(&url, &brokers, r#""shop.users""#).await;
    assert_names(&e, &["binlog_format must be ROW"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_binlog_is_named_and_can_be_polled_instead() {
    let stack = Stack::start_without_binlog();
    let url = stack.mysql_url().to_owned();
    let mut db = mysql_async::Conn::from_url(&url).await.unwrap();
    db.query_drop(
        "CREATE DATABASE shop; CREATE TABLE shop.users (id INT PRIMARY KEY, seen TIMESTAMP(6));
         INSERT INTO shop.users VALUES (1, '2026-01-01'), (2, '2026-01-01');",
    )
    .await
    .unwrap();
    let e = start_error(&url, stack.kafka_brokers(), r#""shop.users""#).await;
    assert_names(&e, &["binary logging is off", "--log-bin"]);

    let config: sluice::sources::polling::PollingSourceConfig = toml::from_str(&format!(
        r#"url = "{url}"
tables = [{{ table = "shop.users", timestamp = "seen" }}]"#
    ))
    .unwrap();
    let mut source = sluice::sources::PollingSource::connect(&config, None).await.unwrap();
    let batch = source.next_batch(100, std::time::Duration::from_millis(10)).await.unwrap();
    assert_eq!(batch.records.len(), 2);

    let bad: sluice::sources::polling::PollingSourceConfig = toml::from_str(&format!(
        r#"url = "{url}"
tables = [{{ table = "shop.users", timestamp = "updated" }}]"#
    ))
    .unwrap();
    let e = sluice::sources::PollingSource::connect(&bad, None)
        .await
        .err()
        .expect("an unknown column")
        .to_string();
    assert_names(&e, &["timestamp column `updated` does not exist", "id, seen"]);
}
