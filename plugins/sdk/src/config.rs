use std::collections::BTreeMap;

use crate::Error;

/// A plugin's settings from the pipeline file (`[pipelines.plugins.config]`)
/// or `sluice plugin test --config KEY=VALUE`. Values are text; TOML arrays
/// arrive comma-joined and nested tables as dotted keys (`lookup.DE`).
#[derive(Debug, Clone, Default)]
pub struct Config {
    values: BTreeMap<String, String>,
}

impl Config {
    pub fn new(values: impl IntoIterator<Item = (String, String)>) -> Self {
        Config {
            values: values.into_iter().collect(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// A setting that must be present; the error names the key.
    pub fn require(&self, key: &str) -> Result<&str, Error> {
        self.get(key).ok_or_else(|| format!("missing config key `{key}`").into())
    }

    /// A comma-separated list; empty when the key is absent.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
            .unwrap_or_default()
    }

    /// Every `PREFIX.name = value` entry as `name -> value`.
    pub fn table(&self, prefix: &str) -> BTreeMap<String, String> {
        let prefix = format!("{prefix}.");
        self.values
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|name| (name.to_owned(), v.clone())))
            .collect()
    }

    /// A setting parsed as `T`, or `default` when absent; the error names the key.
    pub fn parse_or<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, Error>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| format!("config key `{key}` = {v:?}: {e}").into()),
        }
    }
}
