//! Records as the pipeline carries them: the WIT types themselves, so a batch
//! enters a plugin without conversion; plus their JSON-lines form.
mod json;

pub use crate::plugin::{Batch, BinlogPosition, Column, Header, KafkaPosition, Op, Position, Record, Schema, Value};
pub use json::{JsonBatchBuilder, JsonRecordError, record_to_json};
