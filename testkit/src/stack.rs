//! A private MariaDB + Tansu started by `scripts/stack.sh`, stopped on drop:
//! used by benchmarks here and by the end-to-end tests.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct LocalStack {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/stack.sh")
}

impl LocalStack {
    /// Panics with the script's output when the servers do not come up.
    pub fn start() -> LocalStack {
        Self::start_with(&[])
    }

    /// A stack whose MariaDB has binary logging off.
    pub fn start_without_binlog() -> LocalStack {
        Self::start_with(&[("SLUICE_STACK_BINLOG", "off")])
    }

    /// A stack whose MariaDB also takes TLS and whose broker takes only TLS,
    /// with certificates from a private CA in [`LocalStack::tls_file`].
    pub fn start_with_tls() -> LocalStack {
        Self::start_with(&[("SLUICE_STACK_TLS", "on")])
    }

    /// A second site's MariaDB alone (its own datadir, port and server id),
    /// for pipelines that share another stack's broker.
    pub fn start_mysql_only() -> LocalStack {
        Self::start_with(&[("SLUICE_STACK_KAFKA", "off")])
    }

    fn start_with(settings: &[(&str, &str)]) -> LocalStack {
        let dir = tempfile::Builder::new().prefix("sluice-stack-").tempdir().expect("temp dir");
        let output = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            // Only what this stack asks for, whatever the caller's environment says.
            .env_remove("SLUICE_STACK_BINLOG")
            .env_remove("SLUICE_STACK_TLS")
            .env_remove("SLUICE_STACK_KAFKA")
            .envs(settings.iter().copied())
            .output()
            .expect("run stack.sh");
        assert!(
            output.status.success(),
            "stack.sh start failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let text = std::fs::read_to_string(dir.path().join("stack.env")).expect("stack.env");
        let env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        LocalStack { dir, env }
    }

    /// Stops MariaDB and starts it again on the same port and data.
    pub fn restart_mysql(&self) {
        self.run("restart-mysql");
    }

    /// Stops MariaDB until [`LocalStack::start_mysql`].
    pub fn stop_mysql(&self) {
        self.run("stop-mysql");
    }

    /// Starts MariaDB again on the same port and data.
    pub fn start_mysql(&self) {
        self.run("start-mysql");
    }

    /// Freezes the broker (SIGSTOP): clients' requests hang, nothing is lost.
    pub fn pause_kafka(&self) {
        self.run("pause-kafka");
    }

    pub fn resume_kafka(&self) {
        self.run("resume-kafka");
    }

    /// Replaces the broker with an empty one on the same port.
    pub fn restart_kafka(&self) {
        self.run("restart-kafka");
    }

    fn run(&self, command: &str) {
        let output = Command::new("bash")
            .arg(script())
            .arg(command)
            .arg(self.dir.path())
            .output()
            .expect("run stack.sh");
        assert!(
            output.status.success(),
            "stack.sh {command} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub fn mysql_url(&self) -> &str {
        &self.env["SLUICE_MYSQL_URL"]
    }

    pub fn kafka_brokers(&self) -> &str {
        &self.env["SLUICE_KAFKA_BROKERS"]
    }

    /// `ca.pem`, `server.pem`, `client.pem`, `client.key`, … of a TLS stack.
    pub fn tls_file(&self, name: &str) -> PathBuf {
        Path::new(&self.env["SLUICE_STACK_TLS_DIR"]).join(name)
    }

    /// A pipeline file on this stack: `plugin_dir`, `state_dir` when given,
    /// then `pipelines` with `{url}` and `{brokers}` standing for this
    /// stack's MySQL URL and brokers. A plain string rather than a `format!`
    /// template, so the TOML's inline tables need no doubled braces.
    pub fn pipeline_text(&self, plugin_dir: &Path, state_dir: Option<&Path>, pipelines: &str) -> String {
        let path = |p: &Path| toml::Value::String(p.display().to_string());
        let mut text = format!("plugin_dir = {}\n", path(plugin_dir));
        if let Some(state) = state_dir {
            text.push_str(&format!("state_dir = {}\n", path(state)));
        }
        text + &pipelines
            .replace("{url}", self.mysql_url())
            .replace("{brokers}", self.kafka_brokers())
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").arg(self.dir.path()).status();
    }
}
