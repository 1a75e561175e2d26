//! Sluice: moves records between MySQL and Kafka through sandboxed
//! WebAssembly plugins.
pub mod bench;
pub mod cli;
pub mod pipeline;
pub mod plugin;
pub mod positions;
pub mod record;
pub mod redact;
pub mod sinks;
pub mod sources;
pub mod topology;
pub mod transforms;
