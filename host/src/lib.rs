//! Sluice: moves records between MySQL and Kafka through sandboxed
//! WebAssembly plugins.
pub mod cli;
pub mod formats;
pub mod kafka;
pub mod mysql;
pub mod pipeline;
pub mod plugin;
pub mod positions;
pub mod record;
pub mod redact;
pub mod rejected;
pub mod secret;
pub mod sinks;
pub mod sources;
pub mod topology;
pub mod transforms;
pub mod verify;
