//! The Python baseline of the CDC benchmark: python-mysql-replication +
//! kafka-python (`scripts/bench/python_cdc.py`), installed from PyPI into
//! `.tools/bench-venv` on first use.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use super::LocalStack;
use crate::sources::binlog::BinlogCheckpoint;

const PACKAGES: [&str; 2] = ["mysql-replication==1.0.17", "kafka-python==3.0.12"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> anyhow::Result<PathBuf> {
    let venv = repo().join(".tools/bench-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        let made = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().context("python3 -m venv")?;
        anyhow::ensure!(made.success(), "python3 -m venv failed (Debian: apt-get install python3-venv)");
    }
    let pip = Command::new(&python).args(["-m", "pip", "install", "-q"]).args(PACKAGES).status().context("pip install")?;
    anyhow::ensure!(pip.success(), "pip install {} failed", PACKAGES.join(" "));
    Ok(python)
}

/// Rows/s of the Python pipeline over the same binlog range.
pub fn cdc_rate(stack: &LocalStack, start: &BinlogCheckpoint, end: &BinlogCheckpoint, rows: usize) -> anyhow::Result<f64> {
    let port = stack.mysql_url().rsplit(':').next().unwrap_or_default().trim_end_matches('/').to_owned();
    let output = Command::new(python()?)
        .arg(repo().join("scripts/bench/python_cdc.py"))
        .args([&port, stack.kafka_brokers(), &start.file, &start.pos.to_string(), &end.pos.to_string(), &rows.to_string()])
        .output()
        .context("run python_cdc.py")?;
    anyhow::ensure!(output.status.success(), "python_cdc.py failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().parse().context("python_cdc.py printed no rate")
}
