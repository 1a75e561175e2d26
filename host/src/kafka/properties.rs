//! The librdkafka properties a pipeline file passes through to its clients.
use std::collections::BTreeMap;
use std::fmt;

use rdkafka::ClientConfig;
use serde::Deserialize;

/// librdkafka client properties passed through from the pipeline file
/// (`security.protocol`, `sasl.*`, `ssl.*`, `compression.type`, …), so a
/// secured cluster needs nothing Sluice-specific. Values of credential-like
/// keys never print.
#[derive(Clone, Default)]
pub struct ClientProperties(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for ClientProperties {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let properties = BTreeMap::<String, String>::deserialize(deserializer)?;
        for (key, value) in &properties {
            if Self::is_secret(key) {
                crate::redact::register(value);
            }
        }
        Ok(ClientProperties(properties))
    }
}

impl ClientProperties {
    /// Sets every property on `config`; set last, so the file's values win.
    pub fn apply(&self, config: &mut ClientConfig) {
        for (key, value) in &self.0 {
            config.set(key, value);
        }
    }

    /// librdkafka's `message.max.bytes` as set here, else its default: the
    /// largest message the producer takes (key, value and headers).
    pub fn max_message_bytes(&self) -> usize {
        self.0
            .get("message.max.bytes")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(1_000_000)
    }

    /// Those that say how to reach and sign in to the cluster.
    pub fn connection(&self) -> ClientProperties {
        let connects = |key: &str| key == "security.protocol" || key.starts_with("ssl.") || key.starts_with("sasl.");
        ClientProperties(
            self.0
                .iter()
                .filter(|(k, _)| connects(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    /// These, with `overrides` set over them.
    pub fn with(mut self, overrides: &ClientProperties) -> ClientProperties {
        self.0.extend(overrides.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        self
    }

    fn is_secret(key: &str) -> bool {
        crate::redact::is_secret_name(key)
    }
}

impl fmt::Debug for ClientProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, if Self::is_secret(k) { "***" } else { v.as_str() })))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn properties(pairs: &[(&str, &str)]) -> ClientProperties {
        ClientProperties(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn a_dead_letter_queue_takes_the_clusters_sign_in_settings_and_its_own_win() {
        let side = properties(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.password", "pw"),
            ("ssl.ca.location", "/ca.pem"),
            ("session.timeout.ms", "6000"),
        ]);
        let own = properties(&[("ssl.ca.location", "/other.pem"), ("linger.ms", "1")]);
        let merged = side.connection().with(&own);
        let expected = properties(&[
            ("linger.ms", "1"),
            ("sasl.password", "pw"),
            ("security.protocol", "SASL_SSL"),
            ("ssl.ca.location", "/other.pem"),
        ]);
        assert_eq!(merged.0, expected.0);
        assert!(!format!("{merged:?}").contains("pw\""), "secrets stay hidden: {merged:?}");
    }
}
