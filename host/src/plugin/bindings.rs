//! The one `bindgen!` site: host-side Rust types and glue for the
//! `sluice:plugin@0.1.0` world. The pipeline's records *are* these types, so a
//! batch crosses into a plugin without conversion.
wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    additional_derives: [PartialEq],
});

pub use sluice::plugin::host::{Host as HostImports, Level};
pub use sluice::plugin::types::{
    Batch, BatchResult, BinlogPosition, Column, Header, KafkaPosition, Op, Output, Position, Record,
    Schema, Value,
};

/// The WIT world a plugin must implement, as named in errors.
pub const WORLD: &str = "sluice:plugin/plugin@0.1.0";
