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
}

impl BrokerError {
    /// Whether trying again later may succeed: brokers down, not bad settings.
    pub fn is_transient(&self) -> bool {
        matches!(self, BrokerError::Unreachable { .. })
    }
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
