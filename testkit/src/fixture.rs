//! Pipeline files built from parts, so tests and benchmarks do not each
//! write out the same TOML.

/// One `[[pipeline]]` table: a source, a sink, a dead-letter topic and
/// plugins, each an inline TOML table. `{url}` and `{brokers}` are left for
/// [`crate::LocalStack::pipeline_text`] to fill.
pub struct Pipeline {
    name: String,
    source: String,
    sink: String,
    dead_letter: String,
    plugins: Vec<String>,
}

impl Pipeline {
    pub fn new(name: &str) -> Self {
        Pipeline {
            name: name.to_owned(),
            source: String::new(),
            sink: String::new(),
            dead_letter: format!("{{ topic = \"{name}.dlq\" }}"),
            plugins: Vec::new(),
        }
    }

    /// A binlog source of the stack's MariaDB; `extra` adds keys (`snapshot = "never"`).
    pub fn binlog(mut self, tables: &[&str], server_id: u32, extra: &str) -> Self {
        self.source = format!(
            "{{ type = \"mysql-binlog\", url = \"{{url}}\", tables = {}, server_id = {server_id}{} }}",
            list(tables),
            comma(extra)
        );
        self
    }

    /// A Kafka source of the stack's broker.
    pub fn kafka_source(mut self, topics: &[&str], extra: &str) -> Self {
        self.source = format!(
            "{{ type = \"kafka\", brokers = \"{{brokers}}\", topics = {}{} }}",
            list(topics),
            comma(extra)
        );
        self
    }

    /// A Kafka sink on the stack's broker.
    pub fn kafka_sink(mut self, extra: &str) -> Self {
        self.sink = format!("{{ type = \"kafka\", brokers = \"{{brokers}}\"{} }}", comma(extra));
        self
    }

    /// A MySQL sink into the stack's MariaDB.
    pub fn mysql_sink(mut self, extra: &str) -> Self {
        self.sink = format!("{{ type = \"mysql\", url = \"{{url}}\"{} }}", comma(extra));
        self
    }

    pub fn dead_letter(mut self, topic: &str) -> Self {
        self.dead_letter = format!("{{ topic = \"{topic}\" }}");
        self
    }

    /// A plugin step; `keys` are its lines (`config = { … }`, `limits = { … }`).
    pub fn plugin(mut self, name: &str, keys: &str) -> Self {
        self.plugins.push(format!("\n[[pipeline.plugins]]\nname = \"{name}\"\n{keys}"));
        self
    }

    pub fn toml(&self) -> String {
        format!(
            "\n[[pipeline]]\nname = \"{}\"\nsource = {}\nsink = {}\ndead_letter = {}\n{}",
            self.name,
            self.source,
            self.sink,
            self.dead_letter,
            self.plugins.concat()
        )
    }
}

fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

fn comma(extra: &str) -> String {
    if extra.is_empty() { String::new() } else { format!(", {extra}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_pipeline_is_the_toml_a_person_would_write() {
        let text = Pipeline::new("p")
            .binlog(&["shop.t"], 7, "snapshot = \"never\"")
            .kafka_sink("")
            .plugin("passthrough", "")
            .toml();
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        let pipeline = &parsed["pipeline"][0];
        assert_eq!(pipeline["source"]["tables"][0].as_str(), Some("shop.t"));
        assert_eq!(pipeline["source"]["snapshot"].as_str(), Some("never"));
        assert_eq!(pipeline["sink"]["brokers"].as_str(), Some("{brokers}"));
        assert_eq!(pipeline["dead_letter"]["topic"].as_str(), Some("p.dlq"));
        assert_eq!(pipeline["plugins"][0]["name"].as_str(), Some("passthrough"));
    }
}
