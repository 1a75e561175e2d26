//! How records are written to and read from Kafka messages. Each format
//! keeps its encoder and decoder side by side, tested as one.
pub mod debezium;
