//! The values a plugin works with: owned and typed. The wire form (spans into
//! a batch arena) stays inside the SDK.

pub use sluice_layout::{Header, Value};

/// Where a record came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Position {
    Binlog {
        file: String,
        pos: u64,
        gtid: Option<String>,
        row: u32,
    },
    Kafka {
        topic: String,
        partition: i32,
        offset: i64,
    },
    Other(String),
}
