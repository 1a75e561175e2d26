use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::sinks::SinkError;

/// One message to produce.
pub struct Outgoing {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    /// None is a tombstone.
    pub payload: Option<Vec<u8>>,
    pub headers: OwnedHeaders,
}

/// Acknowledgements still to come for messages already handed to the producer.
pub struct Acks(Vec<(String, DeliveryFuture)>);

impl Acks {
    /// Waits for every acknowledgement; the first failure is returned.
    pub async fn wait(self) -> Result<(), SinkError> {
        for (topic, future) in self.0 {
            settle(topic, future).await?;
        }
        Ok(())
    }
}

/// Hands every message to the producer, in order, and returns their pending
/// acknowledgements. Order of hand-over is order per partition, so a
/// pipeline enqueues batch after batch and may wait for acks concurrently.
pub async fn enqueue_all(producer: &FutureProducer, messages: Vec<Outgoing>) -> Result<Acks, SinkError> {
    let mut pending = Vec::with_capacity(messages.len());
    for Outgoing { topic, key, payload, headers } in messages {
        let mut record = FutureRecord::to(&topic).headers(headers);
        if let Some(key) = &key {
            record = record.key(key);
        }
        if let Some(payload) = &payload {
            record = record.payload(payload);
        }
        let future = loop {
            match producer.send_result(record) {
                Ok(future) => break future,
                // The local queue is full: the producer's thread drains it; the
                // record comes back untouched for the retry.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((source, _)) => return Err(SinkError::Delivery { topic, source }),
            }
        };
        pending.push((topic, future));
    }
    Ok(Acks(pending))
}

/// Sends every message and waits until Kafka has acknowledged all of them.
pub async fn deliver_all(producer: &FutureProducer, messages: Vec<Outgoing>) -> Result<(), SinkError> {
    enqueue_all(producer, messages).await?.wait().await
}

async fn settle(topic: String, future: DeliveryFuture) -> Result<(), SinkError> {
    match future.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((source, _))) => Err(SinkError::Delivery { topic, source }),
        Err(_cancelled) => Err(SinkError::Delivery { topic, source: KafkaError::Canceled }),
    }
}
