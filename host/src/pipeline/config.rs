use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::env::expand_env;
use super::{CheckError, ConfigError, FileProblem};
use crate::plugin::PluginLimits;
use crate::sinks::SinkConfig;
use crate::sinks::dead_letter::DeadLetterConfig;
use crate::sources::SourceConfig;
use crate::telemetry::HttpEndpoint;

/// A pipeline file: a plugin directory and one or more pipelines.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    /// Directory of `NAME.wasm` plugins, relative to the pipeline file.
    pub plugin_dir: PathBuf,
    /// Where source positions are kept, relative to the pipeline file.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// When a pipeline stops for good (a failure that retrying cannot
    /// cure), keep the file's other pipelines running rather than stop the
    /// process with a non-zero exit.
    #[serde(default)]
    pub keep_running: bool,
    /// The id of the site whose MySQL the file's pipelines read and write,
    /// for bidirectional sync: changes made here carry it as their origin.
    #[serde(default)]
    pub site: Option<String>,
    /// Where `sluice run` serves /metrics, /health, /ready, /status and its
    /// status page: `HOST:PORT`, or `off`.
    #[serde(default)]
    pub http: HttpEndpoint,
    /// Seconds a stop (SIGTERM, Ctrl-C) may take to deliver what was read
    /// and store its positions before the process exits non-zero.
    #[serde(default = "default_shutdown_timeout_s")]
    pub shutdown_timeout_s: u64,
    #[serde(rename = "pipeline")]
    pub pipelines: Vec<PipelineConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub name: String,
    /// The pipeline's site, when it is not the file's.
    #[serde(default)]
    pub site: Option<String>,
    pub source: SourceConfig,
    /// Applied in order; each plugin's outputs feed the next.
    #[serde(default)]
    pub plugins: Vec<PluginStep>,
    pub sink: SinkConfig,
    pub dead_letter: DeadLetterConfig,
    /// What a record that fails (undecodable, rejected by a plugin,
    /// unwritable) does: go to the dead-letter queue, or halt the pipeline.
    #[serde(default)]
    pub on_error: OnError,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    #[default]
    DeadLetter,
    Stop,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginStep {
    /// File stem in the plugin directory (`clean` for `clean.wasm`).
    pub name: String,
    #[serde(default)]
    pub config: toml::Table,
    #[serde(default)]
    pub limits: PluginLimits,
}

impl PipelineConfig {
    /// Checks offline everything the pipeline will read as it starts: its
    /// source, its sink and its dead-letter queue. `sluice check` and `sluice
    /// run` both call this before anything connects.
    pub fn check(&self) -> Result<(), CheckError> {
        let part = |part: &'static str| move |e: Box<dyn std::error::Error + Send + Sync>| CheckError { part, source: e };
        self.source.check().map_err(|e| part("source")(e.into()))?;
        self.sink.check().map_err(|e| part("sink")(e.into()))?;
        // The queue is on the sink's cluster, else the source's.
        if let Some((brokers, properties)) = self.sink.kafka().or(self.source.kafka()) {
            self.dead_letter
                .check(brokers, properties)
                .map_err(|e| part("dead_letter")(e.into()))?;
        }
        Ok(())
    }

    /// A source and a sink that `sluice run` joins: MySQL to Kafka, or
    /// Kafka to MySQL.
    pub(crate) fn check_pairing(&self) -> Result<(), FileProblem> {
        let takes = match (&self.source, &self.sink) {
            (SourceConfig::Kafka(_), SinkConfig::Mysql(_)) => return Ok(()),
            (SourceConfig::MysqlBinlog(_) | SourceConfig::MysqlPoll(_), SinkConfig::Kafka(_)) => return Ok(()),
            (_, SinkConfig::Mysql(_)) => "a kafka source",
            (_, SinkConfig::Kafka(_)) => "a mysql-binlog or mysql-poll source",
        };
        Err(FileProblem::Pairing {
            pipeline: self.name.clone(),
            sink: self.sink.kind(),
            takes,
            given: self.source.kind(),
        })
    }
}

impl PipelineConfig {
    /// The site id, and the origins a binlog source forwards, are site ids;
    /// forwarding needs a site to forward from.
    fn check_origins(&self) -> Result<(), FileProblem> {
        let problem = |message| FileProblem::Site {
            pipeline: self.name.clone(),
            message,
        };
        let forward = match &self.source {
            SourceConfig::MysqlBinlog(source) => source.forward_origins.as_slice(),
            _ => &[],
        };
        if let Some(site) = &self.site {
            crate::origin::check_site(site).map_err(problem)?;
        } else if !forward.is_empty() {
            return Err(problem(
                "source.forward_origins needs the site this pipeline runs at: set `site` at the top of the file or in the pipeline".into(),
            ));
        }
        for origin in forward {
            crate::origin::check_site(origin).map_err(|m| problem(format!("source.forward_origins: {m}")))?;
            if Some(origin) == self.site.as_ref() {
                return Err(problem(format!(
                    "source.forward_origins names `{origin}`, this pipeline's own site, whose changes are always published: remove it"
                )));
            }
        }
        Ok(())
    }
}

impl PluginStep {
    /// The config as the plugin receives it: text values, arrays comma-joined,
    /// nested tables as dotted keys.
    pub fn flat_config(&self) -> Vec<(String, String)> {
        let mut out = BTreeMap::new();
        flatten("", &self.config, &mut out);
        out.into_iter().collect()
    }
}

fn default_shutdown_timeout_s() -> u64 {
    30
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("state")
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>) {
    for (key, value) in table {
        let key = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(t) => flatten(&key, t, out),
            toml::Value::Array(items) => {
                out.insert(key, items.iter().map(scalar).collect::<Vec<_>>().join(","));
            }
            other => {
                out.insert(key, scalar(other));
            }
        }
    }
}

fn scalar(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl PipelineFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            source: e,
        })?;
        let mut file = Self::parse(&text, |name| std::env::var(name).ok()).map_err(|problem| ConfigError::Invalid {
            path: path.display().to_string(),
            problem,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        file.plugin_dir = base.join(&file.plugin_dir);
        file.state_dir = base.join(&file.state_dir);
        for pipeline in &mut file.pipelines {
            pipeline.source.rebase(base);
            pipeline.sink.rebase(base);
        }
        Ok(file)
    }

    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, FileProblem> {
        // Before anything can quote the text back: the secrets it shows.
        crate::redact::register_in_text(text);
        let mut table: toml::Table = toml::from_str(text)?;
        expand_env(&mut table, &env)?;
        crate::redact::register_in_toml(&table);
        let mut file = match PipelineFile::deserialize(table) {
            Ok(file) => file,
            // The text as written gives the error its line and column; it
            // holds no value from the environment.
            Err(e) => return Err(toml::from_str::<PipelineFile>(text).err().unwrap_or(e).into()),
        };
        for pipeline in &mut file.pipelines {
            if pipeline.site.is_none() {
                pipeline.site = file.site.clone();
            }
        }
        file.validate()?;
        Ok(file)
    }

    /// The names of the plugins the file's pipelines use.
    pub fn plugin_names(&self) -> impl Iterator<Item = String> + '_ {
        self.pipelines.iter().flat_map(|p| p.plugins.iter().map(|step| step.name.clone()))
    }

    fn validate(&self) -> Result<(), FileProblem> {
        if self.pipelines.is_empty() {
            return Err(FileProblem::NoPipelines);
        }
        if self.shutdown_timeout_s == 0 {
            return Err(FileProblem::ShutdownTimeout);
        }
        if let Some(site) = &self.site {
            crate::origin::check_site(site).map_err(FileProblem::BadSite)?;
        }
        let mut names = std::collections::BTreeSet::new();
        let mut readers: BTreeMap<(String, u32), &str> = BTreeMap::new();
        for p in &self.pipelines {
            if let SourceConfig::MysqlBinlog(source) = &p.source {
                // Two readers with one server id: the server drops one (error 4052).
                let url = source.url.expose();
                let server = url.rsplit_once('@').map_or(url, |(_, host)| host).trim_start_matches("mysql://");
                let server = server.split('/').next().unwrap_or(server).to_owned();
                if let Some(other) = readers.insert((server.clone(), source.server_id), &p.name) {
                    return Err(FileProblem::SharedServerId {
                        first: other.to_owned(),
                        second: p.name.clone(),
                        server,
                        server_id: source.server_id,
                    });
                }
            }
            if !names.insert(&p.name) {
                return Err(FileProblem::DuplicateName(p.name.clone()));
            }
            // The name names its position file in state_dir, and its consumer group.
            let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if p.name.is_empty() || p.name.starts_with('.') || !p.name.chars().all(allowed) {
                return Err(FileProblem::BadName(p.name.clone()));
            }
            p.check_pairing()?;
            p.check_origins()?;
            for step in &p.plugins {
                if let Err(message) = step.limits.check() {
                    return Err(FileProblem::Limits {
                        pipeline: p.name.clone(),
                        plugin: step.name.clone(),
                        message,
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
plugin_dir = "plugins"

[[pipeline]]
name = "users"
source = { type = "mysql-binlog", url = "mysql://u:${PW}@127.0.0.1/", tables = ["shop.users"], server_id = 7 }
sink = { type = "kafka", brokers = "127.0.0.1:9092" }
dead_letter = { topic = "sluice.dlq" }

[[pipeline.plugins]]
name = "clean"
limits = { memory_mb = 32 }
config = { mask = ["phone", "ssn"], lookup = { DE = "Germany" } }
"#;

    #[test]
    fn parses_a_pipeline_and_flattens_plugin_config() {
        let file = PipelineFile::parse(GOOD, |_| Some("pw".into())).unwrap();
        let step = &file.pipelines[0].plugins[0];
        assert_eq!(step.limits.memory_mb, 32);
        assert_eq!(step.limits.batch_timeout_ms, PluginLimits::default().batch_timeout_ms);
        assert_eq!(
            step.flat_config(),
            vec![("lookup.DE".into(), "Germany".into()), ("mask".into(), "phone,ssn".into())]
        );
        let SourceConfig::MysqlBinlog(source) = &file.pipelines[0].source else {
            panic!("wrong source")
        };
        assert!(!format!("{source:?}").contains("pw"));
    }

    #[test]
    fn two_binlog_readers_of_one_server_need_two_server_ids() {
        let pipeline = |name: &str, server_id: u32| {
            format!(
                "[[pipeline]]\nname = \"{name}\"\nsource = {{ type = \"mysql-binlog\", url = \"mysql://u:pw@db:3306/\", tables = [\"a.b\"], server_id = {server_id} }}\n\
                 sink = {{ type = \"kafka\", brokers = \"k\" }}\ndead_letter = {{ topic = \"d\" }}\n"
            )
        };
        let file = |pipelines: String| PipelineFile::parse(&format!("plugin_dir = \"p\"\n{pipelines}"), |_| None);
        let e = file(pipeline("one", 7) + &pipeline("two", 7)).expect_err("refused").to_string();
        assert!(
            e.contains("`one` and `two` both read the binlog of db:3306 with server_id 7"),
            "{e}"
        );
        assert!(file(pipeline("one", 7) + &pipeline("two", 8)).is_ok());
    }

    #[test]
    fn unknown_fields_are_named() {
        let bad = GOOD.replace("server_id = 7", "server_id = 7, tabels = []");
        let e = PipelineFile::parse(&bad, |_| Some("pw".into())).unwrap_err().to_string();
        assert!(e.contains("tabels"), "{e}");
    }

    #[test]
    fn a_source_and_sink_that_run_cannot_join_are_refused_as_the_file_is_read() {
        let pairs = [
            (
                GOOD.replace(
                    "type = \"mysql-binlog\", url = \"mysql://u:${PW}@127.0.0.1/\", tables = [\"shop.users\"], server_id = 7",
                    "type = \"kafka\", brokers = \"k\", topics = [\"t\"], group = \"g\"",
                ),
                "pipeline `users`: a kafka sink takes a mysql-binlog or mysql-poll source, not a kafka source",
            ),
            (
                GOOD.replace(
                    "sink = { type = \"kafka\", brokers = \"127.0.0.1:9092\" }",
                    "sink = { type = \"mysql\", url = \"mysql://u@h/\" }",
                ),
                "pipeline `users`: a mysql sink takes a kafka source, not a mysql-binlog source",
            ),
        ];
        for (text, expected) in pairs {
            assert_ne!(text, GOOD, "the case changed the file");
            let e = PipelineFile::parse(&text, |_| Some("pw".into())).unwrap_err();
            assert!(matches!(e, FileProblem::Pairing { .. }), "{e}");
            assert_eq!(e.to_string(), expected);
        }
    }
}
