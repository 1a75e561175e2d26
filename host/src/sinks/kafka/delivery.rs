use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use tokio::sync::Notify;

use crate::sinks::SinkError;

/// The producer every Kafka-bound part of Sluice uses: acknowledgements
/// are counted per batch rather than sent one by one through a future per
/// message (a channel allocation, a send and a poll for each message).
pub type Producer = ThreadedProducer<BatchAckCounter>;

/// Hands each delivery report to the batch its message belongs to.
pub struct BatchAckCounter;

impl ClientContext for BatchAckCounter {}

impl ProducerContext for BatchAckCounter {
    type DeliveryOpaque = Arc<BatchAcks>;

    fn delivery(&self, result: &DeliveryResult<'_>, batch: Arc<BatchAcks>) {
        if let Err((error, message)) = result {
            let mut failure = batch.failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            failure.get_or_insert_with(|| (message.topic().to_owned(), error.clone()));
        }
        if batch.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            batch.done.notify_one();
        }
    }
}

/// The reports still awaited for one batch, and its first failure.
pub struct BatchAcks {
    left: AtomicUsize,
    failure: Mutex<Option<(String, KafkaError)>>,
    done: Notify,
}

/// One message to produce.
pub struct Outgoing {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    /// None is a tombstone.
    pub payload: Option<Vec<u8>>,
    pub headers: OwnedHeaders,
}

/// Acknowledgements still to come for messages already handed to the producer.
pub struct Acks(Arc<BatchAcks>);

impl Acks {
    /// Waits for every acknowledgement; the first failure is returned.
    pub async fn wait(self) -> Result<(), SinkError> {
        // A report that lands between the check and the wait leaves a permit.
        while self.0.left.load(Ordering::Acquire) > 0 {
            self.0.done.notified().await;
        }
        match self.0.failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() {
            Some((topic, source)) => Err(SinkError::Delivery { topic, source }),
            None => Ok(()),
        }
    }
}

/// Hands every message to the producer, in order, and returns their pending
/// acknowledgements. Order of hand-over is order per partition, so a
/// pipeline enqueues batch after batch and may wait for acks concurrently.
pub async fn enqueue_all(producer: &Producer, messages: Vec<Outgoing>) -> Result<Acks, SinkError> {
    // Counted up front: a report may arrive before the last message is handed over.
    let batch = Arc::new(BatchAcks { left: AtomicUsize::new(messages.len()), failure: Mutex::new(None), done: Notify::new() });
    let mut messages = messages.into_iter();
    while let Some(Outgoing { topic, key, payload, headers }) = messages.next() {
        let mut record = BaseRecord::with_opaque_to(&topic, batch.clone()).headers(headers);
        if let Some(key) = &key {
            record = record.key(key);
        }
        if let Some(payload) = &payload {
            record = record.payload(payload);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                // The local queue is full: the producer's thread drains it; the
                // record comes back untouched for the retry.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((source, _)) => {
                    // This message and those after it will never be reported.
                    let unsent = 1 + messages.len();
                    batch.left.fetch_sub(unsent, Ordering::AcqRel);
                    return Err(SinkError::Delivery { topic, source });
                }
            }
        }
    }
    Ok(Acks(batch))
}

/// Sends every message and waits until Kafka has acknowledged all of them.
pub async fn deliver_all(producer: &Producer, messages: Vec<Outgoing>) -> Result<(), SinkError> {
    enqueue_all(producer, messages).await?.wait().await
}
