//! The Kafka backend, shared by the source that consumes and the sinks that
//! produce: client properties, offsets, and reaching the cluster.
mod properties;

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::client::{Client, ClientContext};

pub use self::properties::ClientProperties;

/// The next offset to read per (topic, partition).
pub type Offsets = BTreeMap<(String, i32), i64>;

/// Creating a client, or finding a broker, failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot create the Kafka {role} for {brokers}: {source} (check brokers and the client properties)")]
    Client {
        role: &'static str,
        brokers: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("no Kafka broker answers at {brokers}: {source} (check `brokers`, the network and the client properties)")]
    Unreachable {
        brokers: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A setting found wrong before any client is made.
    #[error("{0}")]
    Settings(String),
}

impl BrokerError {
    /// Whether trying again later may succeed: brokers down, not bad settings.
    pub fn is_transient(&self) -> bool {
        matches!(self, BrokerError::Unreachable { .. })
    }
}

/// Has librdkafka check a client's properties, and the files they name, by
/// creating the client with no bootstrap servers: it then reaches none.
pub(crate) fn check_client<C: rdkafka::config::FromClientConfig>(
    role: &'static str,
    brokers: &str,
    mut config: rdkafka::ClientConfig,
) -> Result<(), BrokerError> {
    check_brokers(brokers)?;
    config.set("bootstrap.servers", "");
    config.create::<C>().map(drop).map_err(|source| BrokerError::Client {
        role,
        brokers: brokers.to_owned(),
        source,
    })
}

/// A broker list names at least one `host:port`.
pub(crate) fn check_brokers(brokers: &str) -> Result<(), BrokerError> {
    let listed: Vec<&str> = brokers.split(',').map(str::trim).collect();
    if listed.iter().any(|b| b.is_empty() || b.contains(char::is_whitespace)) {
        return Err(BrokerError::Settings(format!(
            "brokers `{brokers}` is not a list of host:port separated by commas"
        )));
    }
    Ok(())
}

/// The longest topic name Kafka takes.
pub(crate) const MAX_TOPIC_LEN: usize = 249;

/// A character Kafka takes in a topic name.
pub(crate) fn topic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// A topic name Kafka takes: 1–249 of `A-Z a-z 0-9 . _ -`.
pub(crate) fn check_topic(key: &str, topic: &str) -> Result<(), BrokerError> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN || !topic.chars().all(topic_char) || topic == "." || topic == ".." {
        return Err(BrokerError::Settings(format!(
            "{key} `{topic}` is not a Kafka topic name: 1 to 249 of A-Z a-z 0-9 . _ -"
        )));
    }
    Ok(())
}

/// The number of brokers in the cluster's metadata, asked through `client`:
/// an unreachable cluster fails here, named, instead of stalling later.
/// librdkafka's call blocks, so it runs where blocking is allowed.
pub(crate) fn reach<C: ClientContext>(client: &Client<C>, brokers: &str, within: Duration) -> Result<usize, BrokerError> {
    let fetch = || client.fetch_metadata(None, within);
    let metadata = match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(fetch),
        _ => fetch(),
    };
    metadata.map(|m| m.brokers().len()).map_err(|source| BrokerError::Unreachable {
        brokers: brokers.to_owned(),
        source,
    })
}
