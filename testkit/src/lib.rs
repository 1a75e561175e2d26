//! What the end-to-end suites and the benchmarks share: a private MariaDB +
//! Tansu stack started by `scripts/stack.sh`, the built plugins, pipeline
//! files built from parts, and plugin runners.
mod fixture;
mod stack;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ has a parent")
        .to_owned()
}

/// Builds every plugin (examples and test guests) once per test run and
/// returns the directory holding the `.wasm` files.
pub fn plugins_dir() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let plugins = repo_root().join("plugins");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
            .current_dir(&plugins)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .status()
            .expect("run cargo to build the plugins");
        assert!(status.success(), "building plugins/ failed");
        plugins.join("target/wasm32-wasip2/release")
    })
}

pub fn plugin_path(name: &str) -> PathBuf {
    plugins_dir().join(format!("{name}.wasm"))
}

pub use fixture::Pipeline;
/// A private MariaDB and Tansu broker; stopped when dropped.
pub use stack::LocalStack as Stack;
pub use stack::LocalStack;

use std::sync::Arc;

use sluice::plugin::{BatchOutput, PluginEngine, PluginHost, PluginLimits, PluginRunner};
use sluice::record::{JsonRecordReader, Record, Value};

/// One engine per test process: its epoch ticker thread is shared.
pub fn engine() -> Arc<PluginEngine> {
    static ENGINE: OnceLock<Arc<PluginEngine>> = OnceLock::new();
    ENGINE.get_or_init(|| Arc::new(PluginEngine::new().expect("plugin engine"))).clone()
}

/// A runner for the built plugin `name` with `config` pairs.
pub fn runner(name: &str, config: &[(&str, &str)], limits: PluginLimits) -> PluginRunner {
    let host = PluginHost::new(engine());
    host.load_file(&plugin_path(name)).expect("load plugin");
    let config = config.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    host.runner(name, config, limits).expect("start plugin")
}

/// Records from JSON lines (the `sluice plugin test` form).
pub fn batch(lines: &[&str]) -> Vec<Record> {
    let mut reader = JsonRecordReader::default();
    lines
        .iter()
        .map(|line| reader.read_line(line).unwrap_or_else(|e| panic!("bad test record {line}: {e}")))
        .collect()
}

/// Value of `column` in output record `record` of input `input`.
pub fn after(out: &BatchOutput, input: usize, record: usize, column: &str) -> Value {
    let rec = &out.outputs[input]
        .as_ref()
        .unwrap_or_else(|e| panic!("record {input} failed: {}", e.failure))[record];
    rec.get(column).unwrap_or_else(|| panic!("no column {column} in {rec:?}")).clone()
}

/// A copy of a component with a custom section appended: same behaviour,
/// different bytes (and so a different version hash). Reload tests and the
/// reload benchmark use it to make as many distinct versions as they need.
pub fn with_custom_section(component: &[u8], tag: &str) -> Vec<u8> {
    let name = b"sluice-variant";
    let mut body = leb128(name.len() as u64);
    body.extend_from_slice(name);
    body.extend_from_slice(tag.as_bytes());
    let mut out = component.to_vec();
    out.push(0); // custom section id
    out.extend(leb128(body.len() as u64));
    out.extend(body);
    out
}

fn leb128(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}
