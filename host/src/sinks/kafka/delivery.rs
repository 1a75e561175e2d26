use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use tokio::sync::Notify;

use crate::kafka::{BrokerError, ClientProperties};
use crate::sinks::SinkError;

/// The producer every Kafka-bound part of Sluice uses: acknowledgements
/// are counted per batch rather than sent one by one through a future per
/// message (a channel allocation, a send and a poll for each message).
pub type Producer = ThreadedProducer<BatchAckCounter>;

/// Hands each delivery report to the batch its message belongs to, and
/// counts the messages Kafka failed to take.
#[derive(Default)]
pub struct BatchAckCounter {
    pub(crate) errors: AtomicUsize,
}

impl ClientContext for BatchAckCounter {}

impl ProducerContext for BatchAckCounter {
    type DeliveryOpaque = Arc<BatchAcks>;

    fn delivery(&self, result: &DeliveryResult<'_>, batch: Arc<BatchAcks>) {
        if let Err((error, message)) = result {
            self.errors.fetch_add(1, Ordering::Relaxed);
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

/// Messages to produce, in order. The keys and payloads of all of them
/// share one buffer, and a run of messages to one topic shares its name:
/// three allocations and frees fewer per message, on the pipeline's busiest
/// thread, than a key, a payload and a topic of its own.
pub struct Outgoing {
    bytes: Vec<u8>,
    topics: Vec<String>,
    messages: Vec<OutgoingMessage>,
}

/// Bytes of an `Outgoing`'s buffer: a message's key or payload.
#[derive(Clone)]
pub struct Written(std::ops::Range<usize>);

impl Written {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

struct OutgoingMessage {
    topic: usize,
    key: Option<Written>,
    /// None is a tombstone.
    payload: Option<Written>,
    headers: OwnedHeaders,
}

impl Outgoing {
    pub fn with_capacity(messages: usize) -> Self {
        Outgoing {
            bytes: Vec::with_capacity(messages * 512),
            topics: Vec::new(),
            messages: Vec::with_capacity(messages),
        }
    }

    /// Appends what `write` writes, unless it returns false (nothing to send).
    pub fn write(&mut self, write: impl FnOnce(&mut Vec<u8>) -> bool) -> Option<Written> {
        let start = self.bytes.len();
        if write(&mut self.bytes) {
            Some(Written(start..self.bytes.len()))
        } else {
            self.bytes.truncate(start);
            None
        }
    }

    pub fn push(&mut self, topic: &str, key: Option<Written>, payload: Option<Written>, headers: OwnedHeaders) {
        if self.topics.last().is_none_or(|last| last != topic) {
            self.topics.push(topic.to_owned());
        }
        self.messages.push(OutgoingMessage {
            topic: self.topics.len() - 1,
            key,
            payload,
            headers,
        });
    }

    /// Total size of the payloads.
    pub fn payload_bytes(&self) -> usize {
        self.messages.iter().filter_map(|m| m.payload.as_ref()).map(|p| p.0.len()).sum()
    }
}

/// The most a record's framing adds in a v2 record batch (length, attributes,
/// timestamp and offset deltas, key, value and header counts), which
/// librdkafka counts against `message.max.bytes` before it takes a message.
const RECORD_OVERHEAD: usize = 5 + 1 + 10 + 5 + 5 + 5 + 5;

/// The size a message of `key`, `payload` and `headers` has against
/// librdkafka's `message.max.bytes`, counted as librdkafka counts it.
pub fn wire_size(key: Option<&Written>, payload: Option<&Written>, headers: &OwnedHeaders) -> usize {
    let len = |w: Option<&Written>| w.map_or(0, |w| w.0.len());
    let varint = |n: usize| (64 - ((n as u64) << 1).leading_zeros() as usize).div_ceil(7).max(1);
    let headers: usize = (0..headers.count())
        .map(|i| {
            let h = headers.get(i);
            let value = h.value.map_or(0, <[u8]>::len);
            varint(h.key.len()) + h.key.len() + varint(value) + value
        })
        .sum();
    RECORD_OVERHEAD + len(key) + len(payload) + headers
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
/// The producer copies what it is given, so `outgoing` is left empty with its
/// capacity, to be filled again: a fresh buffer per batch is memory the
/// allocator returns to the kernel and faults back in, zeroed, for the next
/// batch (8% of the stream's CPU in a profile).
///
/// A message librdkafka refuses as too large is left out, its index (in the
/// order of [`Outgoing::push`]) returned: it is that record's failure, not
/// the batch's.
pub async fn enqueue_all(producer: &Producer, outgoing: &mut Outgoing) -> Result<(Acks, Vec<usize>), SinkError> {
    let Outgoing { bytes, topics, messages } = outgoing;
    // Counted up front: a report may arrive before the last message is handed over.
    let batch = Arc::new(BatchAcks {
        left: AtomicUsize::new(messages.len()),
        failure: Mutex::new(None),
        done: Notify::new(),
    });
    let mut sent = messages.drain(..).enumerate();
    let mut failed = None;
    let mut too_large = Vec::new();
    'messages: while let Some((
        index,
        OutgoingMessage {
            topic,
            key,
            payload,
            headers,
        },
    )) = sent.next()
    {
        let topic = &topics[topic];
        let mut record = BaseRecord::with_opaque_to(topic, batch.clone()).headers(headers);
        if let Some(Written(key)) = key {
            record = record.key(&bytes[key]);
        }
        if let Some(Written(payload)) = payload {
            record = record.payload(&bytes[payload]);
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
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {
                    batch.left.fetch_sub(1, Ordering::AcqRel);
                    too_large.push(index);
                    break;
                }
                Err((source, _)) => {
                    // This message and those after it will never be reported.
                    batch.left.fetch_sub(1 + sent.len(), Ordering::AcqRel);
                    failed = Some(SinkError::Delivery {
                        topic: topic.clone(),
                        source,
                    });
                    break 'messages;
                }
            }
        }
    }
    bytes.clear();
    topics.clear();
    match failed {
        Some(error) => Err(error),
        None => Ok((Acks(batch), too_large)),
    }
}

/// Sends every message and waits until Kafka has acknowledged all of them.
pub async fn deliver_all(producer: &Producer, messages: &mut Outgoing) -> Result<(), SinkError> {
    enqueue_all(producer, messages).await?.0.wait().await
}

/// A producer tuned for throughput with idempotence on (no duplicates from
/// retries); any property set in the pipeline file wins.
pub fn producer(brokers: &str, properties: &ClientProperties) -> Result<Producer, BrokerError> {
    producer_config(brokers, properties)
        .create_with_context(BatchAckCounter::default())
        .map_err(|source| BrokerError::Client {
            role: "producer",
            brokers: brokers.to_owned(),
            source,
        })
}

/// Checks offline what [`producer`] would make of these settings.
pub(crate) fn check_producer(brokers: &str, properties: &ClientProperties) -> Result<(), BrokerError> {
    crate::kafka::check_client::<rdkafka::producer::BaseProducer>("producer", brokers, producer_config(brokers, properties))
}

fn producer_config(brokers: &str, properties: &ClientProperties) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000");
    properties.apply(&mut config);
    config
}
