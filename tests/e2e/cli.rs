//! The `sluice` command line, run in-process with captured streams.
use std::io::Cursor;
use std::path::Path;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use sluice_testkit::{Stack, plugin_path, plugins_dir, repo_root};

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn sluice(args: &[&str], stdin: &str) -> Run {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let argv = std::iter::once("sluice").chain(args.iter().copied()).map(Into::into);
    let code = sluice::cli::run(argv, &mut Cursor::new(stdin.as_bytes()), &mut out, &mut err);
    Run {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

const RECORDS: &str = r#"{"op":"insert","database":"shop","table":"users","primary_key":["id"],"after":{"id":1,"email":" A@B.IO ","phone":"12345678"}}
{"op":"insert","database":"shop","table":"users","primary_key":["id"],"after":{"id":2,"email":"nope","phone":null}}
{"op":"insert","database":"shop","table":"users","primary_key":["id"],"after":{"id":3,"email":"c@d.io","phone":"99"}}
"#;

#[test]
fn plugin_test_prints_outputs_and_exits_zero_when_all_pass() {
    let clean = plugin_path("clean");
    let run = sluice(&["plugin", "test", clean.to_str().unwrap(), "--config", "mask=phone"], RECORDS);
    assert_eq!(run.code, 0, "{}", run.err);
    let lines: Vec<serde_json::Value> = run.out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "the invalid email is dropped: {}", run.out);
    assert_eq!(lines[0]["after"]["email"], "a@b.io");
    assert_eq!(lines[0]["after"]["phone"], "****");
    assert_eq!(lines[0]["primary_key"], serde_json::json!(["id"]));
    assert!(run.err.contains("3 records in, 2 out, 0 failed"), "{}", run.err);
}

#[test]
fn plugin_test_reports_failed_records_by_line_and_exits_non_zero() {
    let clean = plugin_path("clean");
    let input = format!("{RECORDS}this is not json\n");
    let run = sluice(
        &[
            "plugin",
            "test",
            clean.to_str().unwrap(),
            "--config",
            "on_invalid=reject",
            "--batch-size",
            "2",
        ],
        &input,
    );
    assert_eq!(run.code, 1);
    assert!(
        run.err.contains("line 2: rejected: column `email` is not an email address"),
        "{}",
        run.err
    );
    assert!(run.err.contains("line 4: invalid record: not JSON"), "{}", run.err);
    assert_eq!(run.out.lines().count(), 2);
}

#[test]
fn plugin_test_names_a_plugin_that_is_not_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.wasm");
    std::fs::write(&path, wat::parse_str("(module)").unwrap()).unwrap();
    let run = sluice(&["plugin", "test", path.to_str().unwrap()], "");
    assert_eq!(run.code, 1);
    assert!(
        run.err.contains("plugin `broken` refused: this is a core wasm module"),
        "{}",
        run.err
    );
}

fn pipeline_file(dir: &Path, plugins: &Path, extra: &str) -> std::path::PathBuf {
    let text = format!(
        r#"plugin_dir = "{}"

[[pipeline]]
name = "users"
source = {{ type = "mysql-binlog", url = "mysql://sluice:${{SLUICE_TEST_PW}}@127.0.0.1:3306/", tables = ["shop.users"], server_id = 99 }}
sink = {{ type = "kafka", brokers = "127.0.0.1:9092" }}
dead_letter = {{ topic = "sluice.dlq" }}

[[pipeline.plugins]]
name = "clean"
config = {{ mask = ["phone"] }}
{extra}
"#,
        plugins.display()
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_accepts_a_good_pipeline_and_names_what_is_wrong_in_bad_ones() {
    // SAFETY: no other test reads this variable.
    unsafe { std::env::set_var("SLUICE_TEST_PW", "pw") };
    let dir = tempfile::tempdir().unwrap();
    let good = pipeline_file(dir.path(), plugins_dir(), "");
    let run = sluice(&["check", good.to_str().unwrap()], "");
    assert_eq!(run.code, 0, "{}", run.err);
    assert!(run.out.contains("pipeline users: plugin clean version"), "{}", run.out);

    let cases = [
        ("limits = { memory_mb = 0 }", "memory_mb must be at least 1"),
        ("mask_styl = 1", "unknown field `mask_styl`"),
        (
            "[[pipeline.plugins]]\nname = \"clean\"\nconfig = { mask_style = \"blur\" }",
            "mask_style must be `redact` or `last4`",
        ),
        // Every plugin file of the directory is offered, used or not.
        ("[[pipeline.plugins]]\nname = \"nosuch\"", "; found: clean, enrich, faulty"),
    ];
    for (extra, expected) in cases {
        let bad = pipeline_file(dir.path(), plugins_dir(), extra);
        let run = sluice(&["check", bad.to_str().unwrap()], "");
        assert_eq!(run.code, 1, "{extra}");
        assert!(run.err.contains(expected), "{extra}: {}", run.err);
    }

    let slash = dir.path().join("slash.toml");
    let text = std::fs::read_to_string(&good).unwrap().replace("${SLUICE_TEST_PW}", "pass/word");
    std::fs::write(&slash, text).unwrap();
    let run = sluice(&["check", slash.to_str().unwrap()], "");
    assert_eq!(run.code, 1, "an unencoded / in the password fails offline");
    assert!(
        run.err.contains("pipeline `users`: source: url is not a MySQL URL") && run.err.contains("/ as %2F"),
        "{}",
        run.err
    );
}

#[test]
fn check_creates_every_client_and_reads_every_tls_file_without_reaching_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-ca.pem").display().to_string();
    let file = |name: &str, source: &str, sink: &str, dead_letter: &str| {
        let text = r#"plugin_dir = "{plugins}"

[[pipeline]]
name = "users"
source = { type = "mysql-binlog", url = "mysql://sluice:pw@127.0.0.1:3306/", tables = ["shop.users"], server_id = 99 {source} }
sink = { type = "kafka", brokers = "127.0.0.1:9", properties = { {sink} } }
dead_letter = { topic = "sluice.dlq", properties = { {dead_letter} } }
"#;
        let text = text
            .replace("{plugins}", &plugins_dir().display().to_string())
            .replace("{source}", source)
            .replace("{sink}", sink)
            .replace("{dead_letter}", dead_letter);
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    };
    // A librdkafka built without OpenSSL, SASL or zstd refused each of these.
    let secured = r#""security.protocol" = "SASL_SSL", "sasl.mechanism" = "SCRAM-SHA-512", "sasl.username" = "sluice", "sasl.password" = "hunter2", "compression.type" = "zstd""#;
    let run = sluice(&["check", file("secured", "", secured, "").to_str().unwrap()], "");
    assert_eq!(run.code, 0, "{}", run.err);
    assert!(
        !format!("{}{}", run.out, run.err).contains("hunter2"),
        "the password printed: {}{}",
        run.out,
        run.err
    );

    let no_ca = format!(r#""security.protocol" = "SSL", "ssl.ca.location" = "{missing}""#);
    let cases = [
        (
            file("mysql-ca", &format!(r#", tls = {{ ca = "{missing}" }}"#), "", ""),
            format!("pipeline `users`: source: tls.ca: cannot read {missing}"),
        ),
        (
            file("kafka-ca", "", &no_ca, ""),
            "pipeline `users`: sink: cannot create the Kafka producer for 127.0.0.1:9: Client creation error: ssl.ca.location failed"
                .into(),
        ),
        (
            file("dead-letter", "", "", r#""compression.type" = "brotli""#),
            "pipeline `users`: dead_letter: cannot create the Kafka producer".into(),
        ),
        (
            file("not-pem", r#", tls = { ca = "not-pem.toml" }"#, "", ""),
            "pipeline `users`: source: tls.ca:".into(),
        ),
    ];
    for (path, expected) in cases {
        let run = sluice(&["check", path.to_str().unwrap()], "");
        assert_eq!(run.code, 1, "{}", std::fs::read_to_string(&path).unwrap());
        assert!(run.err.contains(&expected), "expected {expected:?} in: {}", run.err);
    }
    // The TLS file named relative to the pipeline file, from another directory:
    // found there, and refused for what it holds.
    let run = sluice(&["check", dir.path().join("not-pem.toml").to_str().unwrap()], "");
    assert!(
        run.err.contains("not-pem.toml is not a PEM file (no -----BEGIN line)"),
        "{}",
        run.err
    );
    assert!(
        run.err.contains(&dir.path().display().to_string()),
        "the path is the pipeline file's: {}",
        run.err
    );
}

/// Listeners that count who connects: a server `check` must never reach.
fn quiet_listeners(n: usize) -> Vec<std::net::TcpListener> {
    (0..n)
        .map(|_| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            listener
        })
        .collect()
}

fn connections(listener: &std::net::TcpListener) -> usize {
    std::iter::from_fn(|| listener.accept().ok()).count()
}

#[test]
fn check_reaches_no_server_and_run_refuses_what_check_refuses_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let servers = quiet_listeners(3);
    let port = |i: usize| servers[i].local_addr().unwrap().port();
    let file = |name: &str, extra: &str| {
        let text = format!(
            "plugin_dir = \"{}\"\n[[pipeline]]\nname = \"p\"\n\
             source = {{ type = \"mysql-binlog\", url = \"mysql://u:pw@127.0.0.1:{}/\", tables = [\"a.b\"], server_id = 5 }}\n\
             sink = {{ type = \"kafka\", brokers = \"127.0.0.1:{}\" }}\n\
             dead_letter = {{ topic = \"dlq\", brokers = \"127.0.0.1:{}\" }}\n{extra}",
            plugins_dir().display(),
            port(0),
            port(1),
            port(2)
        );
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let good = file("good", "");
    let run = sluice(&["check", good.to_str().unwrap()], "");
    assert_eq!(run.code, 0, "{}", run.err);
    // librdkafka connects within milliseconds of creating a client with brokers.
    std::thread::sleep(Duration::from_millis(500));
    let reached: Vec<usize> = servers.iter().map(connections).collect();
    assert_eq!(reached, [0, 0, 0], "check reached MySQL, the sink's or the queue's brokers");

    let refused = file(
        "refused",
        "[[pipeline.plugins]]\nname = \"clean\"\nconfig = { on_invalid = \"bogus\" }",
    );
    let checked = sluice(&["check", refused.to_str().unwrap()], "");
    let (code, output) = crate::process::run_to_end(&["run", refused.to_str().unwrap()], &[], Duration::from_secs(30));
    assert_eq!((checked.code, code), (1, Some(1)), "{}\n{output}", checked.err);
    let reason = "plugin `clean` refused: init refused its config";
    assert!(checked.err.contains(reason) && output.contains(reason), "{}\n{output}", checked.err);
    std::thread::sleep(Duration::from_millis(500));
    let reached: Vec<usize> = servers.iter().map(connections).collect();
    assert_eq!(reached, [0, 0, 0], "run reached a server before refusing:\n{output}");
}

#[test]
fn check_refuses_settings_that_cannot_work_and_names_each() {
    let dir = tempfile::tempdir().unwrap();
    let source = r#"{ type = "mysql-binlog", url = "mysql://u:pw@127.0.0.1:3306/", tables = ["a.b"], server_id = 5 }"#;
    let kafka_source = r#"{ type = "kafka", brokers = "127.0.0.1:9", topics = ["t"], group = "g" }"#;
    let sink = r#"{ type = "kafka", brokers = "127.0.0.1:9" }"#;
    let mysql_sink = r#"{ type = "mysql", url = "mysql://u:pw@127.0.0.1:3306/" }"#;
    let cases = [
        (
            "dlq-empty",
            source,
            sink,
            r#"{ topic = "" }"#,
            "dead_letter: topic `` is not a Kafka topic name",
        ),
        (
            "dlq-bad",
            source,
            sink,
            r#"{ topic = "bad topic/x" }"#,
            "dead_letter: topic `bad topic/x` is not a Kafka topic name",
        ),
        (
            "dlq-template",
            source,
            sink,
            r#"{ topic = "{table}.dlq" }"#,
            "is not a Kafka topic name",
        ),
        (
            "no-brokers",
            source,
            r#"{ type = "kafka", brokers = "" }"#,
            r#"{ topic = "d" }"#,
            "sink: brokers `` is not a list of host:port",
        ),
        (
            "topic-placeholder",
            source,
            r#"{ type = "kafka", brokers = "k:9", topic = "{bogus}.{table}" }"#,
            r#"{ topic = "d" }"#,
            "sink: topic `{bogus}.{table}`: unknown placeholder {bogus}",
        ),
        (
            "table-placeholder",
            kafka_source,
            r#"{ type = "mysql", url = "mysql://u@h/", table = "{db}.x" }"#,
            r#"{ topic = "d" }"#,
            "sink: table `{db}.x`: unknown placeholder {db}",
        ),
        (
            "no-tables",
            r#"{ type = "mysql-binlog", url = "mysql://u@h/", tables = [], server_id = 5 }"#,
            sink,
            r#"{ topic = "d" }"#,
            "source: tables is empty",
        ),
        (
            "no-dot",
            r#"{ type = "mysql-binlog", url = "mysql://u@h/", tables = ["nodot"], server_id = 5 }"#,
            sink,
            r#"{ topic = "d" }"#,
            "source: tables: `nodot` is not database.table",
        ),
        (
            "server-id-0",
            r#"{ type = "mysql-binlog", url = "mysql://u@h/", tables = ["a.b"], server_id = 0 }"#,
            sink,
            r#"{ topic = "d" }"#,
            "source: server_id 0",
        ),
        (
            "no-topics",
            r#"{ type = "kafka", brokers = "k:9", topics = [], group = "g" }"#,
            mysql_sink,
            r#"{ topic = "d" }"#,
            "source: topics must name at least one topic",
        ),
        (
            "no-group",
            r#"{ type = "kafka", brokers = "k:9", topics = ["t"], group = " " }"#,
            mysql_sink,
            r#"{ topic = "d" }"#,
            "source: group is empty",
        ),
        (
            "raw-at",
            r#"{ type = "mysql-binlog", url = "mysql://u:p@ss/w#rd@127.0.0.1:1/", tables = ["a.b"], server_id = 5 }"#,
            sink,
            r#"{ topic = "d" }"#,
            "source: url is not a MySQL URL (more than one @, or a #)",
        ),
    ];
    for (name, source, sink, dead_letter, expected) in cases {
        let text = format!(
            "plugin_dir = \"{}\"\n[[pipeline]]\nname = \"p\"\nsource = {source}\nsink = {sink}\ndead_letter = {dead_letter}\n",
            plugins_dir().display()
        );
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, &text).unwrap();
        let run = sluice(&["check", path.to_str().unwrap()], "");
        assert_eq!(run.code, 1, "{name}: accepted\n{text}");
        assert!(run.err.contains(expected), "{name}: expected {expected:?} in: {}", run.err);
    }
    for bad in ["../escaped", "", ".hidden", "a b"] {
        let text = format!(
            "plugin_dir = \"{}\"\n[[pipeline]]\nname = \"{bad}\"\nsource = {source}\nsink = {sink}\ndead_letter = {{ topic = \"d\" }}\n",
            plugins_dir().display()
        );
        let path = dir.path().join("name.toml");
        std::fs::write(&path, text).unwrap();
        let run = sluice(&["check", path.to_str().unwrap()], "");
        assert!(
            run.code == 1 && run.err.contains(&format!("pipeline.name: `{bad}` is not a name")),
            "{bad:?}: {}",
            run.err
        );
    }
}

#[test]
fn plugin_new_scaffolds_a_crate_that_builds_and_passes_records() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("my-filter");
    let run = sluice(&["plugin", "new", "my-filter", "--path", crate_dir.to_str().unwrap()], "");
    assert_eq!(run.code, 0, "{}", run.err);
    // Share the plugins' target directory so the SDK is not compiled again.
    let target = repo_root().join("plugins/target");
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .unwrap();
    assert!(status.success());
    let wasm = target.join("wasm32-wasip2/release/my_filter.wasm");
    let run = sluice(&["plugin", "test", wasm.to_str().unwrap()], RECORDS);
    assert_eq!(run.code, 0, "{}", run.err);
    assert_eq!(run.out.lines().count(), 3);
}

#[test]
fn every_example_pipeline_file_passes_check() {
    // SAFETY: no other test reads this variable.
    unsafe { std::env::set_var("SLUICE_MYSQL_PASSWORD", "pw") };
    for (name, value) in [
        ("SITE_A_URL", "mysql://sluice:pw@127.0.0.1:3306/"),
        ("SITE_B_URL", "mysql://sluice:pw@127.0.0.1:3307/"),
        ("KAFKA_BROKERS", "127.0.0.1:9092"),
    ] {
        // SAFETY: as above.
        unsafe { std::env::set_var(name, value) };
    }
    plugins_dir();
    for name in ["pipeline.toml", "aggregate.toml", "logs.toml", "bidirectional.toml"] {
        let path = sluice_testkit::repo_root().join("examples").join(name);
        let run = sluice(&["check", path.to_str().unwrap()], "");
        assert_eq!(run.code, 0, "examples/{name}: {}{}", run.out, run.err);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_connect_reaches_every_server_and_names_each_fault_in_one_line() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let url = stack.mysql_url();
    let port = &url[url.rfind(':').unwrap()..];
    // Each its own server id: two binlog readers of one server may not share one.
    let server_ids = std::sync::atomic::AtomicU32::new(9);
    let pipeline = |name: &str, url: &str, table: &str, brokers: &str| {
        let server_id = server_ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!(
            "[[pipeline]]\nname = \"{name}\"\nsource = {{ type = \"mysql-binlog\", url = \"{url}\", tables = [\"{table}\"], server_id = {server_id} }}\n\
             sink = {{ type = \"kafka\", brokers = \"{brokers}\" }}\ndead_letter = {{ topic = \"dlq\" }}\n"
        )
    };
    let brokers = stack.kafka_brokers();
    let good = pipeline("good", url, "shop.t", brokers);
    let faults = [
        pipeline("mysql-down", &url.replace(port, ":1/"), "shop.t", brokers),
        pipeline("wrong-password", &url.replace("root@", "root:nope@"), "shop.t", brokers),
        pipeline("missing-table", url, "shop.missing", brokers),
        pipeline("broker-down", url, "shop.t", "127.0.0.1:1"),
    ]
    .concat();
    let path = dir.path().join("pipelines.toml");
    std::fs::write(&path, stack.pipeline_text(plugins_dir(), Some(dir.path()), &good)).unwrap();
    let (code, output) = crate::process::run_to_end(&["check", "--connect", path.to_str().unwrap()], &[], Duration::from_secs(30));
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("pipeline good: source (MySQL binlog): ok") && output.contains("pipeline good: sink (Kafka): ok"),
        "{output}"
    );

    std::fs::write(&path, stack.pipeline_text(plugins_dir(), Some(dir.path()), &faults)).unwrap();
    let started = std::time::Instant::now();
    let (code, output) = crate::process::run_to_end(&["check", "--connect", path.to_str().unwrap()], &[], Duration::from_secs(30));
    let took = started.elapsed();
    assert_eq!(code, Some(1), "{output}");
    let failed: Vec<&str> = output.lines().filter(|l| l.contains("FAILED")).collect();
    // The dead-letter queue shares the sink's brokers: the broker that is down fails twice.
    assert_eq!(failed.len(), 5, "one line per fault:\n{output}");
    for (pipeline, says) in [
        ("mysql-down", "cannot connect to MySQL at mysql://root:***@127.0.0.1:1/"),
        ("wrong-password", "Access denied"),
        ("missing-table", "`shop.missing` in source.tables does not exist"),
        ("broker-down", "no Kafka broker answers at 127.0.0.1:1"),
    ] {
        assert!(
            failed
                .iter()
                .any(|l| l.contains(&format!("pipeline {pipeline}:")) && l.contains(says)),
            "{pipeline}: {says}\n{output}"
        );
    }
    assert!(
        !output.contains("librdkafka"),
        "librdkafka's own lines are folded into ours:\n{output}"
    );
    eprintln!("check --connect with four faulty pipelines took {took:?}");
}

#[test]
fn a_broken_file_in_the_plugin_directory_that_no_pipeline_uses_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(plugin_path("passthrough"), plugins.join("passthrough.wasm")).unwrap();
    std::fs::write(plugins.join("junk.wasm"), b"not a component").unwrap();
    let file = dir.path().join("pipelines.toml");
    std::fs::write(
        &file,
        r#"plugin_dir = "plugins"
[[pipeline]]
name = "p"
source = { type = "kafka", brokers = "127.0.0.1:1", topics = ["t"], group = "g" }
sink = { type = "mysql", url = "mysql://u@127.0.0.1:1/" }
dead_letter = { topic = "dlq" }
[[pipeline.plugins]]
name = "passthrough"
"#,
    )
    .unwrap();
    let (code, output) = crate::process::run_to_end(&["check", file.to_str().unwrap()], &[], std::time::Duration::from_secs(30));
    assert_eq!(code, Some(0), "{output}");
    assert!(!output.contains("ERROR") && !output.contains("junk"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_a_topic_that_appears_after_it_starts_from_every_partition() {
    let stack = Stack::start();
    let brokers = stack.kafka_brokers().to_owned();
    let args = ["tail", "--brokers", &brokers, "tail.me", "--max", "4", "--timeout-s", "60"].map(str::to_owned);
    let tail = std::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::process::run_to_end(&args, &[], Duration::from_secs(90))
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let messages: Vec<(i32, Option<String>, Option<String>)> =
        (0..4).map(|p| (p, Some(format!("k{p}")), Some(format!("{{\"n\":{p}}}")))).collect();
    crate::kafka_to_mysql::produce(&brokers, "tail.me", &messages).await;
    let (code, output) = tail.join().unwrap();
    assert_eq!(code, Some(0), "{output}");
    let lines: Vec<serde_json::Value> = output.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let mut partitions: Vec<i64> = lines.iter().map(|l| l["partition"].as_i64().unwrap()).collect();
    partitions.sort();
    assert_eq!(partitions, [0, 1, 2, 3], "{output}");
    assert!(lines.iter().all(|l| l["value"]["n"] == l["partition"]), "{output}");
}

#[test]
fn verify_says_its_two_ways_when_given_half_of_one() {
    let file = sluice_testkit::repo_root().join("examples/bidirectional.toml");
    let file = file.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["verify", file], "a pipeline file needs --pipeline NAME"),
        (
            &["verify", "--pipeline", "a-out"],
            "--pipeline names a pipeline of a file: give the FILE too",
        ),
        (&["verify", "--source", "mysql://u:pw@h/", "--tables", "d.t"], "or two servers with"),
        (&["verify"], "sluice verify FILE --pipeline NAME [--target URL]"),
    ];
    for (args, expected) in cases {
        let run = sluice(args, "");
        assert_eq!(run.code, 1, "{args:?}");
        assert!(run.err.contains(expected), "{args:?}: {}", run.err);
        assert!(!run.err.contains("pw@"), "{}", run.err);
    }
}
