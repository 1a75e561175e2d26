//! Adds the header `marker: 1`, so a test can tell which build served a record.
use sluice_plugin::prelude::*;

pub struct Marker;

impl Transform for Marker {
    fn init(_: &Config) -> Result<Self, Error> {
        Ok(Marker)
    }

    fn transform(&mut self, mut record: Record) -> Result<Out, Error> {
        record.add_header("marker", "1");
        Ok(record.into())
    }
}

sluice_plugin::export!(Marker);
