//! No secret in any message: every bad pipeline file and every failing run
//! we could think of, with a password in the environment and another given
//! literally, prints neither, whatever printed it (a TOML error quoting the
//! line, librdkafka's own log, MySQL's errors, a plugin's refusal).
use std::time::Duration;

use sluice_tests::{Stack, plugins_dir};

use crate::process::run_to_end;

const PASSWORD: &str = "Sekr3t-env-4711";
const LITERAL: &str = "Lit3ral-pw-0815";

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
            let env = [("PASSWORD", PASSWORD), ("SLUICE_LOG", "debug")];
            let (code, output) = run_to_end(&[command, path.to_str().unwrap()], &env, Duration::from_secs(60));
            for secret in [PASSWORD, LITERAL, "Lit3ral%2Dpw%2D0815"] {
                assert!(!output.contains(secret), "{name}: `sluice {command}` printed the secret:\n{output}");
            }
            assert!(!output.is_empty(), "{name}: `sluice {command}` said nothing");
            if code.is_some_and(|c| c != 0) {
                seen += 1;
            }
        }
    }
    assert!(seen >= 25, "most cases fail with a non-zero exit ({seen})");
}
