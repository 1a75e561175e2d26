//! The Python baselines, installed from PyPI into `.tools/bench-venv` on
//! first use: python-mysql-replication + kafka-python for MySQL -> Kafka
//! (`scripts/bench/python_cdc.py`), kafka-python + mysql-connector-python for
//! Kafka -> MySQL (`scripts/bench/python_sink.py`).
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use sluice::mysql::BinlogCheckpoint;
use sluice_testkit::LocalStack;

const PACKAGES: [&str; 4] = [
    "mysql-replication==1.0.17",
    "kafka-python==3.0.12",
    "lz4==4.4.4",
    "mysql-connector-python==9.5.0",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> anyhow::Result<PathBuf> {
    let venv = repo().join(".tools/bench-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        let made = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .context("python3 -m venv")?;
        anyhow::ensure!(made.success(), "python3 -m venv failed (Debian: apt-get install python3-venv)");
    }
    let pip = Command::new(&python)
        .args(["-m", "pip", "install", "-q"])
        .args(PACKAGES)
        .status()
        .context("pip install")?;
    anyhow::ensure!(pip.success(), "pip install {} failed", PACKAGES.join(" "));
    Ok(python)
}

fn mysql_port(stack: &LocalStack) -> String {
    stack
        .mysql_url()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned()
}

fn rate(script: &str, args: &[&str]) -> anyhow::Result<f64> {
    let output = Command::new(python()?)
        .arg(repo().join("scripts/bench").join(script))
        .args(args)
        .output()
        .context(script.to_owned())?;
    anyhow::ensure!(
        output.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .with_context(|| format!("{script} printed no rate"))
}

/// Rows/s of the Python consumer writing `count` messages of `topic`.
pub fn sink_rate(stack: &LocalStack, topic: &str, count: usize) -> anyhow::Result<f64> {
    anyhow::ensure!(count > 0, "skipped (--python-records 0)");
    rate(
        "python_sink.py",
        &[&mysql_port(stack), stack.kafka_brokers(), topic, &count.to_string()],
    )
}

/// Rows/s of the Python pipeline over the same binlog range.
pub fn cdc_rate(stack: &LocalStack, start: &BinlogCheckpoint, end: &BinlogCheckpoint, rows: usize) -> anyhow::Result<f64> {
    let (start_pos, end_pos, rows) = (start.pos.to_string(), end.pos.to_string(), rows.to_string());
    rate(
        "python_cdc.py",
        &[&mysql_port(stack), stack.kafka_brokers(), &start.file, &start_pos, &end_pos, &rows],
    )
}
