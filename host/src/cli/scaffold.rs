use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// `sluice plugin new NAME`: a crate that builds a component with the SDK.
pub fn run(name: &str, path: Option<PathBuf>, out: &mut dyn Write) -> anyhow::Result<i32> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !valid {
        bail!("plugin name {name:?}: use lowercase letters, digits, '-' or '_', starting with a letter");
    }
    let dir = path.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() {
        bail!("{} already exists; choose another name or --path", dir.display());
    }
    let sdk = sdk_path()?;
    let type_name: String = name.split(['-', '_']).map(|w| w[..1].to_uppercase() + &w[1..]).collect();
    let files = [
        (
            "Cargo.toml",
            CARGO_TOML.replace("{name}", name).replace("{sdk}", &sdk.display().to_string()),
        ),
        (".gitignore", "target/\n".to_owned()),
        ("src/lib.rs", LIB_RS.replace("{Type}", &type_name).replace("{name}", name)),
    ];
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("file has a parent"))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    writeln!(out, "created plugin `{name}` in {}", dir.display())?;
    writeln!(
        out,
        "build:  (cd {} && cargo build --release --target wasm32-wasip2)",
        dir.display()
    )?;
    writeln!(out, "unit tests, natively: (cd {} && cargo test)", dir.display())?;
    writeln!(
        out,
        "test:   sluice plugin test {}/target/wasm32-wasip2/release/{}.wasm < records.jsonl",
        dir.display(),
        name.replace('-', "_")
    )?;
    Ok(0)
}

/// The SDK next to this source tree, or $SLUICE_SDK_PATH.
fn sdk_path() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("SLUICE_SDK_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk"));
    path.canonicalize().with_context(|| {
        format!(
            "plugin SDK not found at {}; set SLUICE_SDK_PATH to plugins/sdk of a Sluice checkout",
            path.display()
        )
    })
}

const CARGO_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
sluice-plugin = { path = "{sdk}" }

# A standalone crate, not part of any enclosing workspace.
[workspace]

[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = true
"#;

const LIB_RS: &str = r#"//! `{name}`: describe what this plugin does to each record.
use sluice_plugin::prelude::*;

pub struct {Type};

impl Transform for {Type} {
    fn init(_config: &Config) -> Result<Self, Error> {
        Ok({Type})
    }

    fn transform(&mut self, record: Record) -> Result<Out, Error> {
        Ok(record.into())
    }
}

sluice_plugin::export!({Type});

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin::testing::{batch, run};

    // Runs natively: cargo test
    #[test]
    fn passes_records_through() {
        let out = run::<{Type}>(&[], batch("db", "t", &["id"], vec![vec![Value::Int(1)]]));
        assert_eq!(out.outputs[0].as_ref().unwrap().len(), 1);
    }
}
"#;
