//! Write a Sluice plugin as one function over one record.
//!
//! ```ignore
//! use sluice_plugin::prelude::*;
//!
//! struct Upper;
//!
//! impl Transform for Upper {
//!     fn init(_config: &Config) -> Result<Self, Error> { Ok(Upper) }
//!
//!     fn transform(&mut self, mut record: Record) -> Result<Out, Error> {
//!         if let Some(Value::Str(name)) = record.get_mut("name") {
//!             *name = name.to_uppercase();
//!         }
//!         Ok(record.into())
//!     }
//! }
//!
//! sluice_plugin::export!(Upper);
//! ```
//!
//! The WIT batch ABI, schema bookkeeping and per-record error reporting are
//! handled here. The same code builds natively, so a plugin's logic can be
//! unit-tested with plain `cargo test` (see [`testing`]).

mod arena;
mod config;
mod record;
#[doc(hidden)]
pub mod rt;
mod schema;
pub mod testing;
mod value;

pub use config::Config;
pub use record::{Out, Record};
pub use schema::{Schemas, TableSchema};
/// A stateless plugin as one function: see [`sluice_plugin_macros::map`].
pub use sluice_plugin_macros::map;
pub use value::{Header, Position, Value};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_plugin_world",
        default_bindings_module: "sluice_plugin::bindings",
        additional_derives: [PartialEq],
    });
}

pub use bindings::sluice::plugin::types::{Column, Op};

/// A plugin's error for one record; any `std::error::Error`, `String` or
/// `&str` converts into it with `?` or `.into()`.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// What a plugin implements: build itself from its config once per instance,
/// then turn each record into zero, one or many records, or an error.
pub trait Transform: Sized + 'static {
    fn init(config: &Config) -> Result<Self, Error>;

    fn transform(&mut self, record: Record) -> Result<Out, Error>;
}

/// Log through the host (the pipeline's log, tagged with the plugin's name).
pub mod log {
    #[cfg(target_arch = "wasm32")]
    use crate::bindings::sluice::plugin::host;
    use crate::bindings::sluice::plugin::host::Level;

    fn emit(level: Level, message: &str) {
        #[cfg(target_arch = "wasm32")]
        host::log(level, message);
        #[cfg(not(target_arch = "wasm32"))]
        eprintln!("[{level:?}] {message}");
    }

    pub fn debug(message: &str) {
        emit(Level::Debug, message)
    }
    pub fn info(message: &str) {
        emit(Level::Info, message)
    }
    pub fn warn(message: &str) {
        emit(Level::Warn, message)
    }
    pub fn error(message: &str) {
        emit(Level::Error, message)
    }
}

/// Add to a named counter, reported with the pipeline's metrics.
pub fn count(name: &str, delta: u64) {
    #[cfg(target_arch = "wasm32")]
    bindings::sluice::plugin::host::count(name, delta);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (name, delta);
}

pub mod prelude {
    pub use crate::{Config, Error, Op, Out, Record, Transform, Value};
}

/// Exports a [`Transform`] implementation as the plugin's component world.
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        /// A crate exports one plugin: a second `export!` or
        /// `#[sluice_plugin::map]` in it is refused here, natively too.
        #[doc(hidden)]
        #[allow(dead_code)]
        const ONLY_ONE_SLUICE_PLUGIN_PER_CRATE: () = ();

        // Exports exist only in the wasm build; natively the plugin is a plain
        // library whose logic unit tests call through `sluice_plugin::testing`.
        #[cfg(target_arch = "wasm32")]
        mod __sluice_plugin_export {
            use super::*;

            struct Export;

            ::std::thread_local! {
                static PLUGIN: ::std::cell::RefCell<::std::option::Option<$plugin>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            impl $crate::bindings::exports::sluice::plugin::transform::Guest for Export {
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    PLUGIN.with(|slot| $crate::rt::init::<$plugin>(slot, config))
                }

                fn transform(
                    batch: $crate::bindings::sluice::plugin::types::Batch,
                ) -> $crate::bindings::sluice::plugin::types::BatchResult {
                    PLUGIN.with(|slot| $crate::rt::transform::<$plugin>(slot, batch))
                }
            }

            $crate::bindings::__export_plugin_world!(Export with_types_in $crate::bindings);
        }
    };
}
