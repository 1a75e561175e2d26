//! The one `bindgen!` site: host-side glue for the `sluice:plugin@0.2.0` world.
wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
});

pub use self::sluice::plugin::host::{Host as HostImports, Level};
pub use self::sluice::plugin::types as wit;

/// The WIT world a plugin must implement, as named in errors.
pub const WORLD: &str = "sluice:plugin/plugin@0.2.0";
