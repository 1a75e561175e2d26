//! The local stack scripts start a private MariaDB and Tansu that answer.
use std::time::Duration;

use mysql_async::prelude::Queryable;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sluice_testkit::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_serves_mariadb_with_row_binlog_and_a_kafka_broker() {
    let stack = Stack::start();

    let mut conn = mysql_async::Conn::from_url(stack.mysql_url())
        .await
        .expect("connect to the private MariaDB");
    let (log_bin, format, metadata): (u8, String, String) = conn
        .query_first("SELECT @@log_bin, @@binlog_format, @@binlog_row_metadata")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((log_bin, format.as_str(), metadata.as_str()), (1, "ROW", "FULL"));
    conn.disconnect().await.unwrap();

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", stack.kafka_brokers())
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    producer
        .send(FutureRecord::to("smoke").key("k").payload("hello"), Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .expect("produce to Tansu");

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", stack.kafka_brokers())
        .set("group.id", "smoke")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["smoke"]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let message = loop {
        assert!(std::time::Instant::now() < deadline, "nothing consumed from Tansu within 30 s");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => break m.detach(),
            Some(Err(e)) => panic!("consume from Tansu: {e}"),
            None => {}
        }
    };
    assert_eq!(message.payload(), Some(&b"hello"[..]));
    assert_eq!(message.key(), Some(&b"k"[..]));
}
