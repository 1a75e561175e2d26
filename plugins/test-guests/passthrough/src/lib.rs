//! Returns every record unchanged: the baseline for benchmarks and reload tests.
use sluice_plugin::prelude::*;

pub struct Passthrough;

impl Transform for Passthrough {
    fn init(_: &Config) -> Result<Self, Error> {
        Ok(Passthrough)
    }

    fn transform(&mut self, record: Record) -> Result<Out, Error> {
        Ok(record.into())
    }
}

sluice_plugin::export!(Passthrough);
