//! End-to-end suites: real plugins through the real host, a real MariaDB and
//! a real Tansu broker. One binary keeps link time down.
mod architecture;
mod bad_input;
mod bidirectional;
pub mod binlog_to_kafka;
mod cli;
mod conflicts;
pub mod crash_resume;
mod docs;
mod example_plugins;
mod fidelity;
mod gtid;
mod hot_reload;
pub mod kafka_sink;
pub mod kafka_to_mysql;
mod metadata;
mod operations;
mod polling;
mod process;
mod resilience;
mod sandbox;
mod secrets;
mod snapshot;
mod stack;
mod tls;
mod type_matrix;
mod verify;
