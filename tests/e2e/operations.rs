//! What an operator watches, seen by the real tools: a private Prometheus
//! scrapes `sluice run` every second, headless Chromium opens its status
//! page, and `/ready` follows the servers going away and coming back.
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value as Json;
use sluice_testkit::{LocalStack, plugins_dir};

use crate::process::SluiceProcess;

/// A private Prometheus on a free loopback port, scraping `target` every
/// second; its data in a temporary directory.
struct Prometheus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Prometheus {
    async fn start(target: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: sluice\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={address}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package `prometheus`, installed by scripts/install.sh)");
        let prometheus = Prometheus { child, address, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(sluice::telemetry::get(&prometheus.address, "/-/ready").await, Ok((200, _))) {
            assert!(Instant::now() < deadline, "Prometheus did not get ready within 30 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        prometheus
    }

    /// The instant vector of `query`, as (labels, value) pairs.
    async fn query(&self, query: &str) -> Vec<(HashMap<String, String>, f64)> {
        let encoded: String = form_urlencoded::Serializer::new(String::new()).append_pair("query", query).finish();
        let (code, body) = sluice::telemetry::get(&self.address, &format!("/api/v1/query?{encoded}"))
            .await
            .unwrap();
        let answer: Json = serde_json::from_slice(&body).unwrap();
        assert_eq!(code, 200, "{query}: {answer}");
        answer["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|series| {
                let labels = serde_json::from_value(series["metric"].clone()).unwrap();
                (labels, series["value"][1].as_str().unwrap().parse().unwrap())
            })
            .collect()
    }

    /// Polls `query` (summed over its series) until `done` holds; returns the value.
    async fn wait_for(&self, query: &str, done: impl Fn(f64) -> bool, within: Duration) -> f64 {
        let deadline = Instant::now() + within;
        loop {
            let result = self.query(query).await;
            let value = result.iter().map(|(_, v)| v).sum::<f64>();
            if !result.is_empty() && done(value) {
                return value;
            }
            assert!(Instant::now() < deadline, "{query} = {value} ({result:?}) after {within:?}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two pipelines in one process: `capture` reads `shop.people` through the
/// clean plugin (rows with a bad email are rejected and counted) into the
/// topic `shop.people`; `apply` writes that topic into `copy.people`.
fn pipeline_file(stack: &LocalStack, dir: &Path) -> std::path::PathBuf {
    let pipelines = r#"
http = "127.0.0.1:0"

[[pipeline]]
name = "capture"
source = { type = "mysql-binlog", url = "{url}", tables = ["shop.people"], server_id = 7301 }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "capture.dlq" }

[[pipeline.plugins]]
name = "clean"
config = { on_invalid = "reject" }

[[pipeline]]
name = "apply"
source = { type = "kafka", brokers = "{brokers}", topics = ["shop.people"], group = "apply" }
sink = { type = "mysql", url = "{url}", table = "copy.{table}" }
dead_letter = { topic = "apply.dlq" }
"#;
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, stack.pipeline_text(plugins_dir(), Some(&dir.join("state")), pipelines)).unwrap();
    path
}

/// `shop.people` and its copy `copy.people`, empty.
async fn people_tables(stack: &LocalStack) -> mysql_async::Conn {
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(
        "CREATE DATABASE shop; CREATE DATABASE copy;
         CREATE TABLE shop.people (id BIGINT PRIMARY KEY, email VARCHAR(64));
         CREATE TABLE copy.people (id BIGINT PRIMARY KEY, email VARCHAR(64))",
    )
    .await
    .unwrap();
    db
}

/// Inserts `rows` people from id `first` on, every `bad`-th with an email the
/// clean plugin rejects; returns how many were bad.
async fn insert_people(db: &mut mysql_async::Conn, first: u64, rows: u64, bad: u64) -> u64 {
    let mut rejected = 0;
    let values: Vec<String> = (first..first + rows)
        .map(|id| {
            let email = if id % bad == 0 {
                rejected += 1;
                format!("not an email {id}")
            } else {
                format!("p{id}@example.com")
            };
            format!("({id}, '{email}')")
        })
        .collect();
    db.query_drop(format!("INSERT INTO shop.people (id, email) VALUES {}", values.join(", ")))
        .await
        .unwrap();
    rejected
}

/// The address `sluice run` logged it serves at.
fn served_at(sluice: &SluiceProcess) -> String {
    let line = sluice.wait_for_line(&["serving /metrics"], Duration::from_secs(60));
    let at = line.split("http://").nth(1).expect("the address in the line");
    at.trim_end_matches('/').split('/').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sees_records_dead_letters_plugin_counts_and_lag_and_ready_follows_mysql() {
    let stack = LocalStack::start();
    let dir = tempfile::tempdir().unwrap();
    let mut db = people_tables(&stack).await;
    // Rows before the start: read by the snapshot.
    let mut bad = insert_people(&mut db, 1, 500, 50).await;
    let file = pipeline_file(&stack, dir.path());
    let sluice = SluiceProcess::start(&["run", file.to_str().unwrap(), "--http", "127.0.0.1:0"]);
    let address = served_at(&sluice);
    let prometheus = Prometheus::start(&address).await;

    // The snapshot's table, counted and estimated.
    let snapshot = r#"sluice_snapshot_rows{pipeline="capture",table="shop.people"}"#;
    prometheus.wait_for(snapshot, |v| v == 500.0, Duration::from_secs(60)).await;
    let estimated = r#"sluice_snapshot_rows_estimated{pipeline="capture",table="shop.people"}"#;
    assert_eq!(prometheus.wait_for(estimated, |_| true, Duration::from_secs(5)).await, 500.0);

    // Changes after it, in transactions of 100.
    for first in (501..=1500).step_by(100) {
        bad += insert_people(&mut db, first, 100, 50).await;
    }
    let good = 1500 - bad;
    let written = r#"sluice_records_written_total{pipeline="capture"}"#;
    assert_eq!(
        prometheus.wait_for(written, |v| v >= good as f64, Duration::from_secs(60)).await,
        good as f64
    );
    let dead = r#"sluice_records_dead_lettered_total{pipeline="capture"}"#;
    assert_eq!(
        prometheus.wait_for(dead, |v| v >= bad as f64, Duration::from_secs(30)).await,
        bad as f64
    );
    let dead_kinds = prometheus.query(dead).await;
    assert!(dead_kinds.iter().all(|(labels, _)| labels["kind"] == "rejected"), "{dead_kinds:?}");
    let counted = r#"sluice_plugin_count_total{pipeline="capture",plugin="clean",counter="clean.invalid"}"#;
    assert_eq!(
        prometheus.wait_for(counted, |v| v >= bad as f64, Duration::from_secs(30)).await,
        bad as f64
    );
    let calls = prometheus
        .query(r#"sluice_plugin_calls_total{pipeline="capture",plugin="clean"}"#)
        .await;
    assert_eq!(calls.len(), 1, "one version serves: {calls:?}");
    assert!(calls[0].0["version"].len() == 16 && calls[0].1 > 0.0, "{calls:?}");

    // The other pipeline wrote what the first published, and sent poison to its queue.
    let applied = r#"sluice_records_written_total{pipeline="apply"}"#;
    assert_eq!(
        prometheus.wait_for(applied, |v| v >= good as f64, Duration::from_secs(60)).await,
        good as f64
    );
    let rows: u64 = db.query_first("SELECT COUNT(*) FROM copy.people").await.unwrap().unwrap();
    assert_eq!(rows, good);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", stack.kafka_brokers())
        .create()
        .unwrap();
    const POISON: usize = 7;
    for n in 0..POISON {
        let payload = format!("{{not json {n}");
        producer
            .send(FutureRecord::to("shop.people").key("x").payload(&payload), Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let poisoned = r#"sluice_records_dead_lettered_total{pipeline="apply",kind="undecodable"}"#;
    assert_eq!(
        prometheus.wait_for(poisoned, |v| v >= POISON as f64, Duration::from_secs(30)).await,
        POISON as f64
    );
    // librdkafka reports the consumer's lag once a second: it has caught up.
    prometheus
        .wait_for(
            r#"sum(sluice_kafka_consumer_lag{pipeline="apply"})"#,
            |v| v == 0.0,
            Duration::from_secs(30),
        )
        .await;

    // With the broker frozen, the capture pipeline cannot deliver: its lag grows.
    let lag = r#"sluice_source_lag_seconds{pipeline="capture"}"#;
    assert!(prometheus.query(lag).await[0].1 < 3.0, "no lag while deliveries are acknowledged");
    stack.pause_kafka();
    insert_people(&mut db, 2001, 100, 1000).await;
    let behind = prometheus.wait_for(lag, |v| v >= 5.0, Duration::from_secs(60)).await;
    stack.resume_kafka();
    prometheus.wait_for(lag, |v| v < 2.0, Duration::from_secs(90)).await;
    eprintln!("lag reached {behind} s while the broker was paused, then fell back");

    // /ready follows MySQL away and back; /health stays up.
    assert_eq!(sluice::telemetry::get(&address, "/ready").await.unwrap().0, 200);
    stack.stop_mysql();
    let deadline = Instant::now() + Duration::from_secs(30);
    let reasons = loop {
        let (code, body) = sluice::telemetry::get(&address, "/ready").await.unwrap();
        if code == 503 {
            break serde_json::from_slice::<Json>(&body).unwrap();
        }
        assert!(Instant::now() < deadline, "/ready stayed {code} with MySQL stopped");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(reasons["ready"], false);
    let capture = reasons["not_ready"]["capture"].as_str().unwrap_or_default();
    assert!(capture.contains("retrying"), "{reasons}");
    assert_eq!(sluice::telemetry::get(&address, "/health").await.unwrap().0, 200);
    stack.start_mysql();
    let deadline = Instant::now() + Duration::from_secs(90);
    while sluice::telemetry::get(&address, "/ready").await.unwrap().0 != 200 {
        assert!(Instant::now() < deadline, "/ready did not come back to 200 after MySQL returned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The reconnected pipelines carry on.
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    insert_people(&mut db, 3001, 10, 1000).await;
    prometheus
        .wait_for(applied, |v| v >= (good + 110) as f64, Duration::from_secs(60))
        .await;
}

/// The text of the first `<td class="CLASS">` after the row of `pipeline`
/// in the page as Chromium rendered it.
fn cell_of(dom: &str, pipeline: &str, class: &str) -> Option<String> {
    let row = dom.find(&format!("<tr data-pipeline=\"{pipeline}\">"))?;
    let rest = &dom[row..];
    let cell = rest.find(&format!("<td class=\"{class}\">"))? + class.len() + 13;
    Some(rest[cell..cell + rest[cell..].find("</td>")?].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_in_chromium_and_sluice_status_show_both_pipelines_moving() {
    let stack = LocalStack::start();
    let dir = tempfile::tempdir().unwrap();
    people_tables(&stack).await;
    let file = pipeline_file(&stack, dir.path());
    let sluice = SluiceProcess::start(&["run", file.to_str().unwrap(), "--http", "127.0.0.1:0"]);
    let address = served_at(&sluice);
    // A steady trickle of changes through both pipelines while the page is looked at.
    let url = stack.mysql_url().to_owned();
    let load = tokio::spawn(async move {
        let mut db = mysql_async::Conn::from_url(url).await.unwrap();
        for first in (1..).step_by(20) {
            insert_people(&mut db, first, 20, 1_000_000).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = sluice::telemetry::get(&address, "/status").await.unwrap();
        let status: sluice::telemetry::StatusReport = serde_json::from_slice(&body).unwrap();
        if status.pipelines.iter().all(|p| p.records_written > 0) {
            break;
        }
        assert!(Instant::now() < deadline, "both pipelines did not write within 60 s: {status:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let shot = std::env::var("SLUICE_STATUS_SCREENSHOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("status.png"));
    let chromium = |extra: &[&str]| {
        let mut args = vec![
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,400",
            "--virtual-time-budget=4000",
        ];
        args.extend_from_slice(extra);
        let page = format!("http://{address}/");
        let output = Command::new("chromium")
            .args(&args)
            .arg(&page)
            .output()
            .expect("chromium (Debian package `chromium`, installed by scripts/install.sh)");
        assert!(output.status.success(), "chromium: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let dom = chromium(&["--dump-dom"]);
    for pipeline in ["capture", "apply"] {
        let rate = cell_of(&dom, pipeline, "num rate").unwrap_or_else(|| panic!("no row for {pipeline} in the page:\n{dom}"));
        let rate: f64 = rate.replace(',', "").parse().unwrap_or_else(|_| panic!("rate {rate:?}"));
        assert!(rate > 0.0, "{pipeline} shows a rate of {rate}:\n{dom}");
    }
    assert!(dom.contains(">running<"), "{dom}");
    assert!(dom.contains("clean "), "the plugin and its version: {dom}");
    chromium(&[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a screenshot of the page");

    // The same in the terminal.
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let args = ["sluice", "status", "--url", &address];
        let code = sluice::cli::run(args.map(Into::into), &mut std::io::empty(), &mut out, &mut err);
        (code, out, err)
    })
    .await
    .unwrap();
    let table = String::from_utf8(out).unwrap();
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("PIPELINE") && lines[0].contains("RATE/S"), "{table}");
    for pipeline in ["capture", "apply"] {
        let row = lines.iter().find(|l| l.starts_with(pipeline)).unwrap_or_else(|| panic!("{table}"));
        assert!(row.contains("running"), "{table}");
    }
    assert!(table.contains("clean "), "{table}");
    assert!(table.trim_end().ends_with("ready"), "{table}");
    load.abort();
}

/// A capture pipeline as a process, on `shop.load`, its snapshot of the
/// empty table done (so its position is stored before rows come).
fn load_pipeline(stack: &LocalStack, dir: &Path, extra: &str) -> std::path::PathBuf {
    let pipelines = format!(
        r#"{extra}
[[pipeline]]
name = "load"
source = {{ type = "mysql-binlog", url = "{{url}}", tables = ["shop.load"], server_id = 7302 }}
sink = {{ type = "kafka", brokers = "{{brokers}}", topic = "load" }}
dead_letter = {{ topic = "load.dlq" }}

[[pipeline.plugins]]
name = "passthrough"
config = {{ api_token = "tok-7f3a9c2e-never-logged" }}
"#
    );
    let path = dir.join("load.toml");
    std::fs::write(&path, stack.pipeline_text(plugins_dir(), Some(&dir.join("state")), &pipelines)).unwrap();
    path
}

async fn load_table(stack: &LocalStack) -> mysql_async::Conn {
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop("CREATE DATABASE shop; CREATE TABLE shop.load (id BIGINT PRIMARY KEY, v VARCHAR(32))")
        .await
        .unwrap();
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_200k_row_load_exits_zero_and_the_restart_sends_nothing_twice() {
    const ROWS: u64 = 200_000;
    let stack = LocalStack::start();
    let dir = tempfile::tempdir().unwrap();
    let mut db = load_table(&stack).await;
    let file = load_pipeline(&stack, dir.path(), "");
    let mut sluice = SluiceProcess::start(&["run", file.to_str().unwrap()]);
    sluice.wait_for_line(&["snapshot complete"], Duration::from_secs(60));
    let position = dir.path().join("state/load.position.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !position.exists() {
        assert!(Instant::now() < deadline, "no position stored within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // 400 transactions of 500 rows; the stop comes a fifth of the way in.
    let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (url, counter) = (stack.mysql_url().to_owned(), written.clone());
    let load = tokio::spawn(async move {
        let mut db = mysql_async::Conn::from_url(url).await.unwrap();
        for first in (1..=ROWS).step_by(500) {
            db.query_drop(format!(
                "INSERT INTO shop.load SELECT seq, CONCAT('row ', seq) FROM shop.seq_{first}_to_{}",
                first + 499
            ))
            .await
            .unwrap();
            counter.fetch_add(500, std::sync::atomic::Ordering::Relaxed);
        }
    });
    while written.load(std::sync::atomic::Ordering::Relaxed) < ROWS / 5 {
        assert!(!load.is_finished(), "the load ended early: {:?}", load.await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sluice.terminate();
    assert_eq!(sluice.exit_code(Duration::from_secs(30)), Some(0), "a graceful stop exits 0");
    sluice.wait_for_line(&["SIGTERM: stopping"], Duration::from_secs(1));
    sluice.wait_for_line(&["load", "stopped"], Duration::from_secs(1));
    load.await.unwrap();
    let (total,): (u64,) = db.query_first("SELECT COUNT(*) FROM shop.load").await.unwrap().unwrap();
    assert_eq!(total, ROWS);

    let _again = SluiceProcess::start(&["run", file.to_str().unwrap()]);
    // Exactly ROWS messages, and nothing more within two seconds after them.
    let received = crate::kafka_sink::consume_all(stack.kafka_brokers(), "check-load", "load", ROWS as usize);
    let mut by_dedup: HashMap<&str, Vec<&Json>> = HashMap::new();
    for m in &received {
        by_dedup.entry(m.headers["sluice.dedup-id"].as_str()).or_default().push(&m.value);
    }
    let twice: Vec<_> = by_dedup.iter().filter(|(_, v)| v.len() > 1).take(3).collect();
    assert!(twice.is_empty(), "{} messages; sent more than once: {twice:?}", received.len());
    let ids: std::collections::HashSet<u64> = received.iter().map(|m| m.value["after"]["id"].as_u64().expect("an id")).collect();
    assert_eq!(ids.len(), ROWS as usize, "nothing missing");
    assert_eq!(received.len(), ROWS as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_that_cannot_deliver_ends_after_the_shutdown_timeout_and_a_second_signal_at_once() {
    let stack = LocalStack::start();
    let dir = tempfile::tempdir().unwrap();
    let mut db = load_table(&stack).await;
    let file = load_pipeline(&stack, dir.path(), "shutdown_timeout_s = 3");
    let json = ["run", file.to_str().unwrap(), "--log-format", "json"];

    let mut sluice = SluiceProcess::start(&json);
    sluice.wait_for_line(&["snapshot complete"], Duration::from_secs(60));
    sluice.wait_for_line(&["\"pipeline\":\"load\"", "running"], Duration::from_secs(10));
    // The broker freezes with changes read and not acknowledged.
    stack.pause_kafka();
    db.query_drop("INSERT INTO shop.load SELECT seq, 'x' FROM shop.seq_1_to_2000")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let asked = Instant::now();
    sluice.terminate();
    assert_eq!(sluice.exit_code(Duration::from_secs(15)), Some(1), "not delivered: exit 1");
    let waited = asked.elapsed();
    assert!(waited >= Duration::from_secs(3), "it waited the shutdown timeout ({waited:?})");
    let line = sluice.wait_for_line(&["not stopped within shutdown_timeout_s (3 s)"], Duration::from_secs(1));
    assert!(
        line.contains("`load` (stopping, ") && line.contains("batches read and not acknowledged"),
        "{line}"
    );
    // Every line is a JSON object, the closing error too.
    let log = sluice.log();
    assert!(
        log.iter()
            .any(|l| l.contains("\"pipeline\":\"load\"") && l.contains("snapshot complete"))
    );
    for line in &log {
        let parsed: Json = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(parsed["level"].is_string() && parsed["timestamp"].is_string(), "{line}");
        assert!(!line.contains("tok-7f3a9c2e"), "a secret in the log: {line}");
    }

    // Again, and a second signal: out at once.
    stack.resume_kafka();
    let mut sluice = SluiceProcess::start(&json);
    sluice.wait_for_line(&["\"pipeline\":\"load\"", "running"], Duration::from_secs(60));
    stack.pause_kafka();
    db.query_drop("INSERT INTO shop.load SELECT seq, 'x' FROM shop.seq_2001_to_3000")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    sluice.terminate();
    sluice.wait_for_line(&["SIGTERM: stopping"], Duration::from_secs(5));
    let asked = Instant::now();
    sluice.terminate();
    assert_eq!(sluice.exit_code(Duration::from_secs(5)), Some(130));
    assert!(asked.elapsed() < Duration::from_secs(2), "a second signal exits at once");
    sluice.wait_for_line(&["SIGTERM after SIGTERM: exiting at once"], Duration::from_secs(1));
    stack.resume_kafka();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_shows_bars_on_a_terminal_and_progress_lines_otherwise() {
    let stack = LocalStack::start();
    let dir = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(
        "CREATE DATABASE s; CREATE TABLE s.a (id INT PRIMARY KEY, v VARCHAR(40));
         INSERT INTO s.a SELECT seq * 2, 'x' FROM s.seq_1_to_100000",
    )
    .await
    .unwrap();
    let file = dir.path().join("snapshot.toml");
    let pipelines = r#"
[[pipeline]]
name = "snap"
source = { type = "mysql-binlog", url = "{url}", tables = ["s.a"], server_id = 7303, snapshot = "snapshot-only" }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "snap.dlq" }
"#;
    std::fs::write(
        &file,
        stack.pipeline_text(plugins_dir(), Some(&dir.path().join("state")), pipelines),
    )
    .unwrap();
    let args = ["run", file.to_str().unwrap(), "--http", "off"];

    // Not on a terminal: log lines, the last with the exact count.
    let (code, log) = crate::process::run_to_end(&args, &[("SLUICE_LOG", "info")], Duration::from_secs(120));
    assert_eq!(code, Some(0), "{log}");
    let done = log
        .lines()
        .find(|l| l.contains("snapshot table done"))
        .unwrap_or_else(|| panic!("{log}"));
    for field in ["table=s.a", "rows=100000", "estimated=100000", "percent=100", "rows_per_sec="] {
        assert!(done.contains(field), "{field} in {done}");
    }

    // On a terminal (`script` gives the process one): a bar per table.
    std::fs::remove_dir_all(dir.path().join("state")).unwrap();
    let command = format!(
        "{} --ignored --exact process::sluice_process --nocapture",
        std::env::current_exe().unwrap().display()
    );
    let output = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env(crate::process::ARGS_ENV, args.join("\n"))
        .env("SLUICE_LOG", "info")
        .output()
        .expect("script (util-linux)");
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{screen}");
    assert!(screen.contains("snap s.a") && screen.contains("100,000/~100,000 rows"), "{screen}");
    assert!(screen.contains(" rows/s"), "{screen}");
    assert!(!screen.contains("snapshot table done"), "bars instead of progress lines: {screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_plugin_file_shows_in_ready_at_once_and_clears_when_the_good_file_is_back() {
    let stack = LocalStack::start();
    let dir = tempfile::tempdir().unwrap();
    people_tables(&stack).await;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let good = std::fs::read(plugins_dir().join("clean.wasm")).unwrap();
    std::fs::write(plugins.join("clean.wasm"), &good).unwrap();
    let pipelines = r#"
[[pipeline]]
name = "capture"
source = { type = "mysql-binlog", url = "{url}", tables = ["shop.people"], server_id = 7304 }
sink = { type = "kafka", brokers = "{brokers}" }
dead_letter = { topic = "capture.dlq" }

[[pipeline.plugins]]
name = "clean"
"#;
    let file = dir.path().join("pipeline.toml");
    std::fs::write(&file, stack.pipeline_text(&plugins, Some(&dir.path().join("state")), pipelines)).unwrap();
    let sluice = SluiceProcess::start(&["run", file.to_str().unwrap(), "--http", "127.0.0.1:0"]);
    let address = served_at(&sluice);
    let ready = async |want: u16| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (code, body) = sluice::telemetry::get(&address, "/ready").await.unwrap();
            if code == want {
                return serde_json::from_slice::<Json>(&body).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "/ready stayed {code}, not {want}: {}\n{}",
                String::from_utf8_lossy(&body),
                sluice.log().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    ready(200).await;

    // A broken file, with no record passing: the refusal shows at once.
    std::fs::write(plugins.join("clean.wasm"), b"\0asm garbage").unwrap();
    let refused = Instant::now();
    let reasons = ready(503).await;
    assert!(refused.elapsed() < Duration::from_secs(5), "{:?}", refused.elapsed());
    let reason = reasons["not_ready"]["capture"].as_str().unwrap();
    assert!(reason.starts_with("plugin `clean` refused a new file"), "{reason}");
    let (_, metrics) = sluice::telemetry::get(&address, "/metrics").await.unwrap();
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("sluice_plugin_reloads_refused_total{pipeline=\"capture\",plugin=\"clean\"} 1"),
        "{metrics}"
    );

    // The serving version's file back: ready again, nothing reloaded.
    std::fs::write(plugins.join("clean.wasm"), &good).unwrap();
    ready(200).await;
    let (_, metrics) = sluice::telemetry::get(&address, "/metrics").await.unwrap();
    assert!(
        String::from_utf8(metrics)
            .unwrap()
            .contains("sluice_plugin_reloads_total{pipeline=\"capture\",plugin=\"clean\"} 0")
    );
}
