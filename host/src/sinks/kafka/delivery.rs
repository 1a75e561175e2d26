use std::collections::VecDeque;
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

/// Sends every message and waits until Kafka has acknowledged all of them:
/// only then may a source position up to them be stored.
pub async fn deliver_all(producer: &FutureProducer, messages: Vec<Outgoing>) -> Result<(), SinkError> {
    let mut pending: VecDeque<(String, DeliveryFuture)> = VecDeque::with_capacity(messages.len());
    for message in messages {
        loop {
            let mut record = FutureRecord::to(&message.topic).headers(message.headers.clone());
            if let Some(key) = &message.key {
                record = record.key(key);
            }
            if let Some(payload) = &message.payload {
                record = record.payload(payload);
            }
            match producer.send_result(record) {
                Ok(future) => {
                    pending.push_back((message.topic.clone(), future));
                    break;
                }
                // The local queue is full: wait for the oldest delivery, then retry.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => match pending.pop_front() {
                    Some((topic, future)) => settle(topic, future).await?,
                    None => tokio::time::sleep(Duration::from_millis(10)).await,
                },
                Err((source, _)) => return Err(SinkError::Delivery { topic: message.topic, source }),
            }
        }
    }
    for (topic, future) in pending {
        settle(topic, future).await?;
    }
    Ok(())
}

async fn settle(topic: String, future: DeliveryFuture) -> Result<(), SinkError> {
    match future.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((source, _))) => Err(SinkError::Delivery { topic, source }),
        Err(_cancelled) => Err(SinkError::Delivery { topic, source: KafkaError::Canceled }),
    }
}
