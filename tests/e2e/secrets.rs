//! No secret in any message: every bad pipeline file and every failing run
//! we could think of, with a password in the environment and another given
//! literally, prints neither, whatever printed it (a TOML error quoting the
//! line, librdkafka's own log, MySQL's errors, a plugin's refusal).
use std::time::Duration;

use sluice_testkit::{Stack, plugins_dir};

use crate::process::run_to_end;

const PASSWORD: &str = "Sekr3t-env-4711";
const LITERAL: &str = "Lit3ral-pw-0815";
/// A password whose characters mean something in TOML.
const ESCAPED: &str = "Esc\\u0041ped\"pw";

/// Bad files: each a variation of a good one on the lines that hold secrets.
fn cases(url: &str, brokers: &str) -> Vec<(&'static str, String)> {
    let good_source = format!(r#"source = {{ type = "mysql-binlog", url = "{url}", tables = ["shop.t"], server_id = 7 }}"#);
    let sink = format!(
        r#"sink = {{ type = "kafka", brokers = "{brokers}", properties = {{ "sasl.password" = "${{PASSWORD}}", "security.protocol" = "PLAINTEXT" }} }}"#
    );
    let with = |name: &'static str, source: String, sink: &str, extra: &str| {
        (
            name,
            format!("[[pipeline]]\nname = \"p\"\n{source}\n{sink}\ndead_letter = {{ topic = \"dlq\" }}\n{extra}"),
        )
    };
    let env_url = url.replace("root@", "root:${PASSWORD}@");
    let literal_url = url.replace("root@", &format!("root:{LITERAL}@"));
    vec![
        with(
            "a typo'd key on the URL line",
            good_source.replace("url =", "urll =").replace(url, &env_url),
            &sink,
            "",
        ),
        with(
            "a wrong type on the URL line",
            good_source.replace("server_id = 7", "server_id = \"seven\"").replace(url, &env_url),
            &sink,
            "",
        ),
        with(
            "an unknown source type",
            good_source.replace("mysql-binlog", "mysql-bin").replace(url, &literal_url),
            &sink,
            "",
        ),
        with(
            "a TOML syntax error on the URL line",
            good_source.replace(", tables", " tables").replace(url, &env_url),
            &sink,
            "",
        ),
        with(
            "a literal password and a typo",
            good_source.replace("tables", "tabels").replace(url, &literal_url),
            &sink,
            "",
        ),
        with(
            "a percent-encoded password",
            good_source
                .replace(url, &url.replace("root@", "root:Lit3ral%2Dpw%2D0815@"))
                .replace("server_id", "serverid"),
            &sink,
            "",
        ),
        with(
            "a typo in a property on the password's line",
            good_source.clone(),
            &sink.replace("security.protocol", "security.protocl"),
            "",
        ),
        with(
            "a bad SASL mechanism",
            good_source.clone(),
            &sink.replace("\"PLAINTEXT\"", "\"SASL_PLAINTEXT\", \"sasl.mechanism\" = \"NOPE\""),
            "",
        ),
        with(
            "a TLS file named after the password",
            good_source.replace("server_id = 7", "server_id = 7, tls = { ca = \"/nowhere/${PASSWORD}.pem\" }"),
            &sink,
            "",
        ),
        with(
            "a plugin config holding the password, refused",
            good_source.clone(),
            &sink,
            "[[pipeline.plugins]]\nname = \"clean\"\nconfig = { api_token = \"${PASSWORD}\", on_invalid = \"explode\" }",
        ),
        with(
            "an unknown plugin",
            good_source.clone(),
            &sink,
            "[[pipeline.plugins]]\nname = \"nosuch\"\nconfig = { secret = \"${PASSWORD}\" }",
        ),
        with(
            "an unreachable MySQL with the password",
            good_source.replace(url, &env_url.replace(&url[url.rfind(':').unwrap()..], ":1/")),
            &sink,
            "",
        ),
        with("a wrong MySQL password", good_source.replace(url, &env_url), &sink, ""),
        with(
            "an unreachable broker with SASL",
            good_source.clone(),
            &sink.replace(brokers, "127.0.0.1:1").replace(
                "\"PLAINTEXT\"",
                "\"SASL_PLAINTEXT\", \"sasl.mechanism\" = \"PLAIN\", \"sasl.username\" = \"u\"",
            ),
            "",
        ),
        with(
            "a dead-letter queue with a literal secret",
            good_source.clone(),
            &sink,
            "dead_letter.properties = { \"sasl.password\" = \"Lit3ral-pw-0815\", \"bogus.key\" = \"1\" }",
        ),
        with(
            "a missing table",
            good_source.replace("shop.t", "shop.missing").replace(url, &env_url),
            &sink,
            "",
        ),
        with(
            "a token in an array, with a typo on its line",
            good_source.clone(),
            &sink,
            "[[pipeline.plugins]]\nname = \"clean\"\nconfg = { token = [\"Lit3ral-pw-0815\"] }",
        ),
        with(
            "a multi-line literal password with a syntax error on its line",
            good_source.clone(),
            &sink,
            "[[pipeline.plugins]]\nname = \"clean\"\nconfig = { password = '''Lit3ral-pw-0815''' oops = 1 }",
        ),
        with(
            "a password with TOML escapes and quotes in the environment, and a typo",
            good_source
                .replace("url =", "urll =")
                .replace(url, &url.replace("root@", "root:${ESCAPED_PASSWORD}@")),
            &sink,
            "",
        ),
        with(
            "a password with a slash that is not percent-encoded",
            good_source.replace(url, &url.replace("root@", "root:Lit3ral-pw/0815@")),
            &sink,
            "",
        ),
        with(
            "a duplicate pipeline name",
            good_source.replace(url, &literal_url),
            &sink,
            &format!(
                "[[pipeline]]\nname = \"p\"\n{}\n{sink}\ndead_letter = {{ topic = \"dlq\" }}",
                good_source.replace(url, &env_url)
            ),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_any_output_of_a_bad_file_or_a_failing_run() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    use mysql_async::prelude::Queryable;
    db.query_drop("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let mut seen = 0;
    for (name, pipelines) in cases(stack.mysql_url(), stack.kafka_brokers()) {
        let text = stack.pipeline_text(plugins_dir(), Some(dir.path()), &pipelines);
        let path = dir.path().join("pipelines.toml");
        std::fs::write(&path, &text).unwrap();
        for command in ["check", "run"] {
            // At debug level: every log line there is must be clean too.
            let env = [("PASSWORD", PASSWORD), ("ESCAPED_PASSWORD", ESCAPED), ("SLUICE_LOG", "debug")];
            let (code, output) = run_to_end(&[command, path.to_str().unwrap()], &env, Duration::from_secs(60));
            for secret in [
                PASSWORD,
                LITERAL,
                "Lit3ral%2Dpw%2D0815",
                ESCAPED,
                "EscAped",
                "Lit3ral-pw/0815",
                "0815@",
            ] {
                assert!(!output.contains(secret), "{name}: `sluice {command}` printed the secret:\n{output}");
            }
            assert!(!output.is_empty(), "{name}: `sluice {command}` said nothing");
            if code.is_some_and(|c| c != 0) {
                seen += 1;
            }
        }
    }
    assert!(seen >= 32, "most cases fail with a non-zero exit ({seen})");
}

/// A plugin's reason may quote a secret it was configured with: the dead
/// letter's header shows it masked, on one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_reason_quoting_a_secret_is_masked() {
    use mysql_async::prelude::Queryable;
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let mut db = mysql_async::Conn::from_url(stack.mysql_url()).await.unwrap();
    db.query_drop("CREATE DATABASE jobs; CREATE TABLE jobs.jobs (id INT PRIMARY KEY, action VARCHAR(20)); INSERT INTO jobs.jobs VALUES (1, 'fail-echo'), (2, 'ok')")
        .await
        .unwrap();
    let pipelines = r#"[[pipeline]]
name = "jobs"
source = { type = "mysql-binlog", url = "{url}", tables = ["jobs.jobs"], server_id = 31 }
sink = { type = "kafka", brokers = "{brokers}", topic = "jobs-out" }
dead_letter = { topic = "jobs-dlq" }

[[pipeline.plugins]]
name = "faulty"
config = { echo = "${DLQ_API_TOKEN}", init = "print" }
"#;
    let path = dir.path().join("pipelines.toml");
    std::fs::write(&path, stack.pipeline_text(plugins_dir(), Some(dir.path()), pipelines)).unwrap();
    // SAFETY: no other test reads this variable; the child inherits it.
    unsafe { std::env::set_var("DLQ_API_TOKEN", "Tok3n-in-a-reason") };
    let sluice = crate::process::SluiceProcess::start(&["run", path.to_str().unwrap()]);
    sluice.wait_for_line(&["plugin stdout: hello from init on stdout"], Duration::from_secs(60));
    sluice.wait_for_line(&["jobs", "running"], Duration::from_secs(60));
    let dead = crate::kafka_sink::consume(stack.kafka_brokers(), "dlq-secret", &["jobs-dlq"], 1);
    let reason = &dead[0].headers["sluice.error"];
    assert_eq!(reason, "rejected \\u{1b}[31m***\\r\\nsecond line");
}
