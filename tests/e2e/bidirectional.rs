//! Bidirectional sync between two real MariaDB servers through one Tansu:
//! both sites under concurrent load (with a SIGKILL of each) end equal, with
//! no change published twice or by the wrong site; a chain A → B → C passes
//! A's changes on once; the origin marker of a 10,000-row transaction holds
//! across binlog rotations; conflict rules pick the row they say.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use sluice_testkit::{Stack, plugins_dir};

use crate::process::{SluiceProcess, run_to_end};

const ITEMS: &str = "CREATE DATABASE shop; CREATE TABLE shop.items (
    id INT PRIMARY KEY,
    site CHAR(1) NOT NULL,
    n INT NOT NULL,
    note VARCHAR(40) CHARACTER SET utf8mb4,
    updated_at DATETIME(6) NOT NULL
)";

/// A message as the tests here look at it.
struct Seen {
    dedup: String,
    origin: Option<String>,
    envelope_origin: serde_json::Value,
}

/// Every message of `topics`: at least `expected` (waiting up to two
/// minutes for them), then until none came for five seconds.
fn drain(brokers: &str, topics: &[&str], expected: usize) -> HashMap<String, Vec<Seen>> {
    let quiet = Duration::from_secs(5);
    let deadline = Instant::now() + Duration::from_secs(120);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("drain-{}", std::process::id() ^ Instant::now().elapsed().subsec_nanos()),
        )
        .set("auto.offset.reset", "earliest")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create()
        .unwrap();
    consumer.subscribe(topics).unwrap();
    let mut seen: HashMap<String, Vec<Seen>> = HashMap::new();
    let mut last = Instant::now();
    let mut received = 0;
    while (received < expected && Instant::now() < deadline) || last.elapsed() < quiet {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                last = Instant::now();
                received += 1;
                let header = |name: &str| {
                    m.headers()
                        .and_then(|hs| hs.iter().find(|h| h.key == name).and_then(|h| h.value))
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                };
                let value: serde_json::Value = m.payload().map_or(serde_json::Value::Null, |p| serde_json::from_slice(p).unwrap());
                seen.entry(m.topic().to_owned()).or_default().push(Seen {
                    dedup: header("sluice.dedup-id").unwrap_or_default(),
                    origin: header("sluice.origin"),
                    envelope_origin: value["source"]["origin"].clone(),
                });
            }
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition))) | None => {}
            Some(Err(e)) => panic!("drain: {e}"),
        }
    }
    seen
}

/// Every row of shop.items, as text, by key.
async fn rows(url: &str, table: &str) -> Vec<String> {
    let mut db = mysql_async::Conn::from_url(url).await.unwrap();
    let rows: Vec<mysql_async::Row> = db.query(format!("SELECT * FROM {table} ORDER BY 1")).await.unwrap();
    rows.into_iter().map(|r| format!("{:?}", r.unwrap())).collect()
}

/// Waits until `table` holds the same rows on every server; panics with
/// how many differ when it does not within `within`.
async fn converge(urls: &[&str], table: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let first = rows(urls[0], table).await;
        let mut differ = 0;
        for url in &urls[1..] {
            let other = rows(url, table).await;
            let (a, b): (HashSet<&String>, HashSet<&String>) = (first.iter().collect(), other.iter().collect());
            differ += a.symmetric_difference(&b).count();
        }
        if differ == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{table}: {differ} rows still differ after {within:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A site's pipelines: its binlog to `<site>.shop.items`, and the other
/// site's topic into its MySQL under last-writer-wins.
fn site_file(dir: &Path, site: &str, other: &str, url: &str, brokers: &str, server_id: u32) -> std::path::PathBuf {
    let text = format!(
        r#"plugin_dir = {plugins:?}
state_dir = {state:?}
site = "{site}"

[[pipeline]]
name = "{site}-out"
source = {{ type = "mysql-binlog", url = "{url}", tables = ["shop.items"], server_id = {server_id} }}
sink = {{ type = "kafka", brokers = "{brokers}", topic = "{site}.{{database}}.{{table}}" }}
dead_letter = {{ topic = "{site}.dlq" }}

[[pipeline]]
name = "{site}-in"
source = {{ type = "kafka", brokers = "{brokers}", topics = ["{other}.shop.items"], group = "site-{site}" }}
sink = {{ type = "mysql", url = "{url}", conflict = "last-writer-wins", version_column = "updated_at", dead_letter_conflicts = true }}
dead_letter = {{ topic = "{site}.dlq" }}
"#,
        plugins = plugins_dir().display().to_string(),
        state = dir.join(format!("state-{site}")).display().to_string(),
    );
    let path = dir.join(format!("{site}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// One site's application: `total` changes in about `seconds`, in
/// transactions of ten, on keys of its own and on shared keys.
struct Load {
    site: &'static str,
    url: String,
    own_base: i32,
    total: usize,
    seconds: u64,
}

/// What a site's application did: its changes, and each write to a
/// shared key with the version it gave it.
#[derive(Default)]
struct Done {
    changes: usize,
    shared: Vec<(i32, String, &'static str, i32)>,
}

const SHARED_KEYS: i32 = 500;

/// A reproducible stream of draws (xorshift), seeded per site.
struct Draws(u64);

impl Draws {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

impl Load {
    async fn run(self) -> Done {
        let mut db = mysql_async::Conn::from_url(&self.url).await.unwrap();
        let mut rng = Draws(self.own_base as u64);
        let mut done = Done::default();
        let mut live: Vec<i32> = Vec::new();
        let mut next_key = self.own_base;
        let mut counter = 0;
        let start = Instant::now();
        let rate = self.total as f64 / self.seconds as f64;
        // A writer raises the version past the one it overwrites, whatever the clock says.
        let bump = "GREATEST(NOW(6), updated_at + INTERVAL 1 MICROSECOND)";
        while done.changes < self.total {
            counter += 1;
            let note = format!("{} ü😀 {counter}", self.site);
            if rng.below(100) < 5 {
                // A shared key, on its own: both sites write these.
                let key = 1 + rng.below(SHARED_KEYS as usize) as i32;
                let result: Result<Option<String>, _> = async {
                    let mut tx = db.start_transaction(Default::default()).await?;
                    tx.exec_drop(
                        format!(
                            "INSERT INTO shop.items VALUES (?, ?, ?, ?, NOW(6)) ON DUPLICATE KEY UPDATE \
                             site = VALUES(site), n = VALUES(n), note = VALUES(note), updated_at = {bump}"
                        ),
                        (key, self.site, counter, &note),
                    )
                    .await?;
                    let version: Option<String> = tx
                        .exec_first("SELECT CAST(updated_at AS CHAR) FROM shop.items WHERE id = ?", (key,))
                        .await?;
                    tx.commit().await?;
                    Ok::<_, mysql_async::Error>(version)
                }
                .await;
                match result {
                    Ok(version) => {
                        done.changes += 1;
                        done.shared.push((key, version.unwrap(), self.site, counter));
                    }
                    Err(mysql_async::Error::Server(e)) if matches!(e.code, 1205 | 1213) => {}
                    Err(e) => panic!("{}: {e}", self.site),
                }
            } else {
                let mut pending_live = live.clone();
                let result = async {
                    let mut tx = db.start_transaction(Default::default()).await?;
                    for _ in 0..10 {
                        let roll = rng.below(100);
                        if pending_live.len() < 50 || roll < 50 {
                            tx.exec_drop("INSERT INTO shop.items VALUES (?, ?, 0, ?, NOW(6))", (next_key, self.site, &note))
                                .await?;
                            pending_live.push(next_key);
                            next_key += 1;
                        } else if roll < 88 {
                            let key = pending_live[rng.below(pending_live.len())];
                            tx.exec_drop(
                                format!("UPDATE shop.items SET n = n + 1, note = ?, updated_at = {bump} WHERE id = ?"),
                                (&note, key),
                            )
                            .await?;
                        } else {
                            let key = pending_live.swap_remove(rng.below(pending_live.len()));
                            tx.exec_drop("DELETE FROM shop.items WHERE id = ?", (key,)).await?;
                        }
                    }
                    tx.commit().await
                }
                .await;
                match result {
                    // An application retries a transaction the server chose as a deadlock's victim.
                    Err(mysql_async::Error::Server(e)) if matches!(e.code, 1205 | 1213) => {}
                    Err(e) => panic!("{}: {e}", self.site),
                    Ok(()) => {
                        live = pending_live;
                        done.changes += 10;
                    }
                }
            }
            let due = Duration::from_secs_f64(done.changes as f64 / rate);
            if let Some(ahead) = due.checked_sub(start.elapsed()) {
                tokio::time::sleep(ahead).await;
            }
        }
        done
    }
}

/// Stops a site's process as a service manager does (SIGTERM); returns the
/// `stopped` line of `pipeline`, which says what it dropped.
fn stop(process: &mut SluiceProcess, pipeline: &str) -> String {
    process.terminate();
    let line = process.wait_for_line(&[pipeline, "stopped"], Duration::from_secs(60));
    assert_eq!(process.exit_code(Duration::from_secs(60)), Some(0));
    line
}

/// A number a log line gives as `name=N` (the log has no colours off a terminal).
fn field(line: &str, name: &str) -> u64 {
    let at = line.find(&format!("{name}=")).unwrap_or_else(|| panic!("no {name} in {line}")) + name.len() + 1;
    line[at..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sites_under_concurrent_load_and_kills_end_equal_without_echo() {
    let a = Stack::start();
    let b = Stack::start_mysql_only();
    let brokers = a.kafka_brokers().to_owned();
    for url in [a.mysql_url(), b.mysql_url()] {
        let mut db = mysql_async::Conn::from_url(url).await.unwrap();
        db.query_drop(ITEMS).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let file_a = site_file(dir.path(), "a", "b", a.mysql_url(), &brokers, 101);
    let file_b = site_file(dir.path(), "b", "a", b.mysql_url(), &brokers, 102);
    let start = |file: &Path, site: &str| {
        let process = SluiceProcess::start(&["run", file.to_str().unwrap()]);
        for pipeline in [format!("{site}-out"), format!("{site}-in")] {
            process.wait_for_line(&[&pipeline, "running"], Duration::from_secs(60));
        }
        process
    };
    let mut site_a = start(&file_a, "a");
    let mut site_b = start(&file_b, "b");

    let load = |site, url: &str, own_base| {
        tokio::spawn(
            Load {
                site,
                url: url.to_owned(),
                own_base,
                total: 50_000,
                seconds: 60,
            }
            .run(),
        )
    };
    let (load_a, load_b) = (load("a", a.mysql_url(), 1_000_000), load("b", b.mysql_url(), 2_000_000));
    // Each site's process killed once under load, and started again.
    tokio::time::sleep(Duration::from_secs(20)).await;
    site_a.child.kill().unwrap();
    site_a.child.wait().unwrap();
    site_a = start(&file_a, "a");
    tokio::time::sleep(Duration::from_secs(20)).await;
    site_b.child.kill().unwrap();
    site_b.child.wait().unwrap();
    site_b = start(&file_b, "b");
    let (done_a, done_b) = (load_a.await.unwrap(), load_b.await.unwrap());
    assert!(done_a.changes >= 50_000 && done_b.changes >= 50_000);

    converge(&[a.mysql_url(), b.mysql_url()], "shop.items", Duration::from_secs(180)).await;
    let (code, report) = run_to_end(
        &[
            "verify",
            "--source",
            a.mysql_url(),
            "--target",
            b.mysql_url(),
            "--tables",
            "shop.items",
        ],
        &[],
        Duration::from_secs(120),
    );
    assert_eq!(code, Some(0), "{report}");
    // Site A's file knows its own MySQL; site B's server is named.
    let (code, report) = run_to_end(
        &["verify", file_a.to_str().unwrap(), "--pipeline", "a-out", "--target", b.mysql_url()],
        &[],
        Duration::from_secs(120),
    );
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("equal"), "{report}");

    // Each topic holds its own site's changes, each once by dedup id, and nothing else.
    let seen = drain(&brokers, &["a.shop.items", "b.shop.items"], done_a.changes + done_b.changes);
    for (site, done) in [("a", &done_a), ("b", &done_b)] {
        let messages = &seen[&format!("{site}.shop.items")];
        let ids: HashSet<&str> = messages.iter().map(|m| m.dedup.as_str()).collect();
        assert_eq!(ids.len(), done.changes, "site {site}: distinct changes published");
        let foreign: Vec<_> = messages.iter().filter(|m| m.origin.as_deref() != Some(site)).collect();
        assert!(
            foreign.is_empty(),
            "site {site} published {} changes of another origin",
            foreign.len()
        );
        assert!(messages.iter().all(|m| m.envelope_origin == site), "the envelope names the origin");
    }

    // Every shared key holds the write with the newest version (ties: site b).
    let mut winner: BTreeMap<i32, (String, &str, i32)> = BTreeMap::new();
    for (key, version, site, n) in done_a.shared.iter().chain(&done_b.shared) {
        let candidate = (version.clone(), *site, *n);
        let entry = winner.entry(*key).or_insert_with(|| candidate.clone());
        if (&candidate.0, candidate.1) > (&entry.0, entry.1) {
            *entry = candidate;
        }
    }
    assert!(winner.len() > 100, "the load wrote {} shared keys", winner.len());
    let mut db = mysql_async::Conn::from_url(a.mysql_url()).await.unwrap();
    let finals: Vec<(i32, String, i32)> = db
        .query(format!("SELECT id, site, n FROM shop.items WHERE id <= {SHARED_KEYS}"))
        .await
        .unwrap();
    for (id, site, n) in finals {
        let (_, expected_site, expected_n) = &winner[&id];
        assert_eq!((site.as_str(), n), (*expected_site, *expected_n), "shared key {id}");
    }

    // Both directions dropped echoes, and counted them.
    let out_a = stop(&mut site_a, "a-out");
    let out_b = stop(&mut site_b, "b-out");
    assert!(field(&out_a, "echoes_dropped") > 0, "{out_a}");
    assert!(field(&out_b, "echoes_dropped") > 0, "{out_b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_forwards_the_first_sites_changes_to_the_third_once() {
    let a = Stack::start();
    let (b, c) = (Stack::start_mysql_only(), Stack::start_mysql_only());
    let brokers = a.kafka_brokers().to_owned();
    for url in [a.mysql_url(), b.mysql_url(), c.mysql_url()] {
        let mut db = mysql_async::Conn::from_url(url).await.unwrap();
        db.query_drop(ITEMS).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"plugin_dir = {plugins:?}
state_dir = {state:?}

[[pipeline]]
name = "a-out"
site = "a"
source = {{ type = "mysql-binlog", url = "{a}", tables = ["shop.items"], server_id = 201 }}
sink = {{ type = "kafka", brokers = "{brokers}", topic = "a.{{database}}.{{table}}" }}
dead_letter = {{ topic = "dlq" }}

[[pipeline]]
name = "b-in"
site = "b"
source = {{ type = "kafka", brokers = "{brokers}", topics = ["a.shop.items"], group = "b-in" }}
sink = {{ type = "mysql", url = "{b}" }}
dead_letter = {{ topic = "dlq" }}

[[pipeline]]
name = "b-out"
site = "b"
source = {{ type = "mysql-binlog", url = "{b}", tables = ["shop.items"], server_id = 202, forward_origins = ["a"] }}
sink = {{ type = "kafka", brokers = "{brokers}", topic = "b.{{database}}.{{table}}" }}
dead_letter = {{ topic = "dlq" }}

[[pipeline]]
name = "c-in"
site = "c"
source = {{ type = "kafka", brokers = "{brokers}", topics = ["b.shop.items"], group = "c-in" }}
sink = {{ type = "mysql", url = "{c}" }}
dead_letter = {{ topic = "dlq" }}
"#,
        plugins = plugins_dir().display().to_string(),
        state = dir.path().join("state").display().to_string(),
        a = a.mysql_url(),
        b = b.mysql_url(),
        c = c.mysql_url(),
    );
    let file = dir.path().join("chain.toml");
    std::fs::write(&file, text).unwrap();
    let mut process = SluiceProcess::start(&["run", file.to_str().unwrap()]);
    for pipeline in ["a-out", "b-in", "b-out", "c-in"] {
        process.wait_for_line(&[pipeline, "running"], Duration::from_secs(60));
    }
    let mut db_a = mysql_async::Conn::from_url(a.mysql_url()).await.unwrap();
    db_a.query_drop(
        "INSERT INTO shop.items SELECT seq, 'a', seq, CONCAT('ä ', seq), NOW(6) FROM shop.seq_1_to_500;
         UPDATE shop.items SET n = n + 1 WHERE id <= 200;
         DELETE FROM shop.items WHERE id > 400",
    )
    .await
    .unwrap();
    let a_changes = 500 + 200 + 100;
    let mut db_b = mysql_async::Conn::from_url(b.mysql_url()).await.unwrap();
    // B's own rows, made once A's have arrived, so the two never touch one key.
    converge(&[a.mysql_url(), b.mysql_url()], "shop.items", Duration::from_secs(60)).await;
    db_b.query_drop("INSERT INTO shop.items SELECT 1000 + seq, 'b', seq, NULL, NOW(6) FROM shop.seq_1_to_50")
        .await
        .unwrap();
    converge(&[b.mysql_url(), c.mysql_url()], "shop.items", Duration::from_secs(60)).await;
    assert_eq!(rows(c.mysql_url(), "shop.items").await.len(), 450);

    let seen = drain(&brokers, &["a.shop.items", "b.shop.items"], a_changes + 400 + 50);
    let from = |topic: &str, origin: &str| -> Vec<&str> {
        seen[topic]
            .iter()
            .filter(|m| m.origin.as_deref() == Some(origin))
            .map(|m| m.dedup.as_str())
            .collect()
    };
    // B's sink applies the last change of each key per batch: A's 800
    // changes are at least the 400 rows that remain, each forwarded once.
    let forwarded = from("b.shop.items", "a");
    let distinct: HashSet<&str> = forwarded.iter().copied().collect();
    assert_eq!(distinct.len(), forwarded.len(), "no change of A forwarded twice");
    assert!(
        (400..=a_changes).contains(&forwarded.len()),
        "{} of A's changes forwarded",
        forwarded.len()
    );
    assert_eq!(from("b.shop.items", "b").len(), 50, "B's own changes");
    assert_eq!(seen["b.shop.items"].len(), forwarded.len() + 50, "nothing else");
    assert_eq!(seen["a.shop.items"].len(), a_changes, "A's topic holds A's changes, each once");
    converge(
        &[a.mysql_url(), c.mysql_url()],
        "shop.items WHERE id < 1000",
        Duration::from_secs(10),
    )
    .await;
    let line = stop(&mut process, "b-out");
    assert_eq!(field(&line, "echoes_dropped"), 0, "B forwarded every change A made: {line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_row_sink_transaction_keeps_its_origin_across_rotations() {
    let stack = Stack::start();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(
        "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20));
         SET GLOBAL max_binlog_size = 4096",
    )
    .await
    .unwrap();
    // The marker table and its row, as a MySQL sink writes them.
    let sink: sluice::sinks::mysql::MysqlSinkConfig = toml::from_str(&format!("url = \"{}\"", stack.mysql_url())).unwrap();
    drop(sluice::sinks::mysql::MysqlSink::connect(&sink, "in", Some("a")).await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let pipelines = r#"
site = "a"

[[pipeline]]
name = "forwarding"
source = { type = "mysql-binlog", url = "{url}", tables = ["shop.*", "sluice.*"], server_id = 301, forward_origins = ["z"] }
sink = { type = "kafka", brokers = "{brokers}", topic = "fwd.{database}.{table}" }
dead_letter = { topic = "dlq" }

[[pipeline]]
name = "local"
source = { type = "mysql-binlog", url = "{url}", tables = ["shop.t"], server_id = 302 }
sink = { type = "kafka", brokers = "{brokers}", topic = "local.{database}.{table}" }
dead_letter = { topic = "dlq" }
"#;
    let file = dir.path().join("p.toml");
    std::fs::write(
        &file,
        stack.pipeline_text(plugins_dir(), Some(&dir.path().join("state")), pipelines),
    )
    .unwrap();
    let process = SluiceProcess::start(&["run", file.to_str().unwrap()]);
    for pipeline in ["forwarding", "local"] {
        process.wait_for_line(&[pipeline, "running"], Duration::from_secs(60));
    }
    let mut rotate = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    let mut tx = db.start_transaction(Default::default()).await.unwrap();
    tx.query_drop(
        "INSERT INTO sluice.sluice_origin (pipeline, connection, origin, seq) VALUES ('in', CONNECTION_ID(), 'z', 1) \
         ON DUPLICATE KEY UPDATE origin = VALUES(origin), seq = seq + 1",
    )
    .await
    .unwrap();
    for chunk in 0..100 {
        tx.query_drop(format!(
            "INSERT INTO shop.t SELECT {} + seq, 'from z' FROM shop.seq_1_to_100",
            chunk * 100
        ))
        .await
        .unwrap();
        if chunk % 25 == 0 {
            rotate.query_drop("FLUSH BINARY LOGS").await.unwrap();
        }
    }
    tx.commit().await.unwrap();
    db.query_drop("INSERT INTO shop.t SELECT 20000 + seq, 'local' FROM shop.seq_1_to_10")
        .await
        .unwrap();
    let files: Vec<mysql_async::Row> = db.query("SHOW BINARY LOGS").await.unwrap();
    assert!(files.len() >= 5, "the binlog rotated: {} files", files.len());

    let seen = drain(
        stack.kafka_brokers(),
        &["fwd.shop.t", "local.shop.t", "fwd.sluice.sluice_origin"],
        10_020,
    );
    let count = |topic: &str, origin: &str| {
        seen.get(topic)
            .map_or(0, |m| m.iter().filter(|m| m.origin.as_deref() == Some(origin)).count())
    };
    let summary: Vec<(String, usize, usize, usize)> = seen
        .iter()
        .map(|(topic, m)| (topic.clone(), m.len(), count(topic, "z"), count(topic, "a")))
        .collect();
    assert_eq!(
        count("fwd.shop.t", "z"),
        10_000,
        "the whole transaction, forwarded with its origin; (topic, messages, from z, from a): {summary:?}"
    );
    assert_eq!(count("fwd.shop.t", "a"), 10);
    assert_eq!(seen["fwd.shop.t"].len(), 10_010);
    assert!(!seen.contains_key("fwd.sluice.sluice_origin"), "marker rows are never published");
    assert_eq!(count("local.shop.t", "a"), 10);
    assert_eq!(seen["local.shop.t"].len(), 10, "z's rows are z's own to publish");
    process.interrupt();
    let line = process.wait_for_line(&["local", "stopped"], Duration::from_secs(60));
    assert_eq!(field(&line, "echoes_dropped"), 10_000, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_by_pipeline_names_each_difference_and_repairs_through_the_pipeline() {
    let a = Stack::start();
    let b = Stack::start_mysql_only();
    let table = "CREATE DATABASE shop; CREATE TABLE shop.kinds (id INT PRIMARY KEY, price DECIMAL(12,4), at DATETIME(6),
                 name VARCHAR(40) CHARACTER SET utf8mb4, blob_col BLOB, maybe INT NULL)";
    for url in [a.mysql_url(), b.mysql_url()] {
        let mut db = mysql_async::Conn::from_url(url).await.unwrap();
        db.query_drop(table).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"plugin_dir = {plugins:?}
state_dir = {state:?}
site = "a"

[[pipeline]]
name = "a-out"
source = {{ type = "mysql-binlog", url = "{a}", tables = ["shop.*"], server_id = 401 }}
sink = {{ type = "kafka", brokers = "{brokers}", topic = "a.{{database}}.{{table}}" }}
dead_letter = {{ topic = "dlq" }}

[[pipeline]]
name = "b-in"
site = "b"
source = {{ type = "kafka", brokers = "{brokers}", topics = ["^a\\.shop\\..*"], group = "b-in" }}
sink = {{ type = "mysql", url = "{b}" }}
dead_letter = {{ topic = "dlq" }}
"#,
        plugins = plugins_dir().display().to_string(),
        state = dir.path().join("state").display().to_string(),
        a = a.mysql_url(),
        b = b.mysql_url(),
        brokers = a.kafka_brokers(),
    );
    let file = dir.path().join("p.toml");
    std::fs::write(&file, text).unwrap();
    let file = file.to_str().unwrap();
    let process = SluiceProcess::start(&["run", file]);
    for pipeline in ["a-out", "b-in"] {
        process.wait_for_line(&[pipeline, "running"], Duration::from_secs(60));
    }
    let mut db_a = mysql_async::Conn::from_url(a.mysql_url()).await.unwrap();
    db_a.query_drop(
        "INSERT INTO shop.kinds SELECT seq, seq / 7, TIMESTAMP('2026-01-01') + INTERVAL seq SECOND, CONCAT('ü ', seq),
                UNHEX(LPAD(HEX(seq), 8, '0')), IF(seq % 3 = 0, NULL, seq) FROM shop.seq_1_to_300",
    )
    .await
    .unwrap();
    converge(&[a.mysql_url(), b.mysql_url()], "shop.kinds", Duration::from_secs(60)).await;
    let (code, report) = run_to_end(&["verify", file, "--pipeline", "a-out"], &[], Duration::from_secs(60));
    assert_eq!(code, Some(0), "{report}");

    let mut db_b = mysql_async::Conn::from_url(b.mysql_url()).await.unwrap();
    db_b.query_drop(
        "DELETE FROM shop.kinds WHERE id = 10;
         INSERT INTO shop.kinds (id, name) VALUES (9999, 'extra');
         UPDATE shop.kinds SET price = price + 0.0001 WHERE id = 20;
         UPDATE shop.kinds SET at = at + INTERVAL 1 MICROSECOND WHERE id = 30;
         UPDATE shop.kinds SET name = 'ü 40 😀' WHERE id = 40;
         UPDATE shop.kinds SET blob_col = UNHEX('00') WHERE id = 50;
         UPDATE shop.kinds SET maybe = 0 WHERE id = 60",
    )
    .await
    .unwrap();
    let (code, output) = run_to_end(&["verify", file, "--pipeline", "a-out", "--json"], &[], Duration::from_secs(60));
    assert_eq!(code, Some(1), "{output}");
    let report: serde_json::Value = serde_json::from_str(output.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    let kinds = &report["tables"][0];
    assert_eq!(kinds["table"], "shop.kinds");
    let ids = |what: &str| -> Vec<i64> { kinds[what].as_array().unwrap().iter().map(|k| k["id"].as_i64().unwrap()).collect() };
    assert_eq!(
        (ids("missing"), ids("extra"), ids("different")),
        (vec![10], vec![9999], vec![20, 30, 40, 50, 60])
    );

    let (code, output) = run_to_end(&["verify", file, "--pipeline", "a-out", "--repair"], &[], Duration::from_secs(120));
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("shop.kinds: sent 7 row(s) again through pipeline `a-out`"),
        "{output}"
    );
    assert_eq!(rows(a.mysql_url(), "shop.kinds").await, rows(b.mysql_url(), "shop.kinds").await);

    // Named wrong, or naming the pipeline that reads Kafka: said, with the way out.
    let (code, output) = run_to_end(&["verify", file, "--pipeline", "a-oot"], &[], Duration::from_secs(30));
    assert_eq!(code, Some(1));
    assert!(output.contains("no pipeline `a-oot` in the file; it has: a-out, b-in"), "{output}");
    let (code, output) = run_to_end(&["verify", file, "--pipeline", "b-in"], &[], Duration::from_secs(30));
    assert_eq!(code, Some(1));
    assert!(output.contains("pipeline `b-in` reads Kafka"), "{output}");
}

#[test]
fn an_origin_stays_with_what_a_plugin_makes_of_a_change() {
    use sluice::origin::{origin_of, set_origin};
    use sluice::pipeline::PluginStep;
    use sluice::plugin::{PluginHost, PluginLimits};
    use sluice::transforms::PluginChain;

    let host = PluginHost::open(sluice_testkit::engine(), plugins_dir()).unwrap();
    let step = PluginStep {
        name: "faulty".into(),
        config: toml::from_str("output = \"headerless\"").unwrap(),
        limits: PluginLimits::default(),
    };
    let mut records = sluice_testkit::batch(&[
        r#"{"op":"insert","database":"shop","table":"t","after":{"id":1}}"#,
        r#"{"op":"insert","database":"shop","table":"t","after":{"id":2}}"#,
    ]);
    set_origin(&mut records[0], "far");
    let out = PluginChain::build(&host, &[step]).unwrap().run(records);
    assert_eq!(out.records.len(), 2, "{:?}", out.rejected);
    assert!(out.records.iter().all(|r| r.schema.is_none()), "the plugin's own new records");
    let origins: Vec<Option<&str>> = out.records.iter().map(origin_of).collect();
    assert_eq!(origins, [Some("far"), None], "a change made here keeps naming none");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_headers_that_name_no_site_are_dead_letters_and_local_rows_keep_their_site() {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let stack = Stack::start();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop(ITEMS).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pipelines = r#"
site = "a"

[[pipeline]]
name = "a-out"
source = { type = "mysql-binlog", url = "{url}", tables = ["shop.items"], server_id = 501 }
sink = { type = "kafka", brokers = "{brokers}", topic = "a.{database}.{table}" }
dead_letter = { topic = "dlq" }

[[pipeline]]
name = "a-in"
source = { type = "kafka", brokers = "{brokers}", topics = ["in.shop.items"], group = "a-in" }
sink = { type = "mysql", url = "{url}", conflict = "last-writer-wins", version_column = "updated_at" }
dead_letter = { topic = "dlq" }
"#;
    let file = dir.path().join("p.toml");
    std::fs::write(
        &file,
        stack.pipeline_text(plugins_dir(), Some(&dir.path().join("state")), pipelines),
    )
    .unwrap();
    let mut process = SluiceProcess::start(&["run", file.to_str().unwrap()]);
    for pipeline in ["a-out", "a-in"] {
        process.wait_for_line(&[pipeline, "running"], Duration::from_secs(60));
    }
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", stack.kafka_brokers())
        .create()
        .unwrap();
    let long = "x".repeat(5000);
    // One flush, so one batch: rows with and without an origin share the sink's transaction.
    let messages: [(i32, Option<&str>); 9] = [
        (930, Some("b")),
        (931, None),
        (932, Some("c")),
        (933, None),
        (934, None),
        (935, Some("😀")),
        (936, Some(&long)),
        (937, Some("")),
        (938, Some("a")),
    ];
    let sends = messages.iter().map(|(id, origin)| {
        let value = serde_json::json!({
            "op": "c", "before": null,
            "after": {"id": id, "site": "x", "n": 0, "note": null, "updated_at": "2026-01-01 00:00:00.000000"},
            "source": {"db": "shop", "table": "items"}
        })
        .to_string();
        let key = format!("{{\"id\":{id}}}");
        let mut headers = OwnedHeaders::new();
        if let Some(origin) = origin {
            headers = headers.insert(Header {
                key: "sluice.origin",
                value: Some(origin.as_bytes()),
            });
        }
        let producer = producer.clone();
        async move {
            let record = FutureRecord::to("in.shop.items").key(&key).payload(&value).headers(headers);
            producer.send(record, Duration::from_secs(10)).await.map(|_| ()).map_err(|(e, _)| e)
        }
    });
    for sent in futures::future::join_all(sends).await {
        sent.unwrap();
    }
    let seen = drain(stack.kafka_brokers(), &["a.shop.items", "dlq"], 3 + 3);
    let published: Vec<(&str, Option<&str>)> = seen["a.shop.items"]
        .iter()
        .map(|m| (m.dedup.as_str(), m.origin.as_deref()))
        .collect();
    assert_eq!(
        published.len(),
        3,
        "931, 933, 934 made no origin: this site's to publish: {published:?}"
    );
    assert!(published.iter().all(|(_, origin)| *origin == Some("a")), "{published:?}");
    assert_eq!(seen["dlq"].len(), 3, "the three headers that name no site");
    let ids: Vec<i32> = db.query("SELECT id FROM shop.items ORDER BY id").await.unwrap();
    assert_eq!(ids, [930, 931, 932, 933, 934], "938 was this site's own, come back");
    let line = stop(&mut process, "a-in");
    assert_eq!(field(&line, "echoes_dropped"), 1, "{line}");
}
