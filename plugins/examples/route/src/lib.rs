//! `route`: choose each record's destination topic/table from a column value,
//! fan it out to several, or drop it.
//!
//! Config:
//! - `column`: the column whose value picks the route (required).
//! - `routes.<value> = "dest[,dest…]"`: destinations for that value; several fan out.
//! - `default`: destinations for other values; without it they keep the sink's default.
//! - `drop`: values whose records are dropped.
use std::collections::BTreeMap;

use sluice_plugin::prelude::*;

pub struct Route {
    column: String,
    routes: BTreeMap<String, Vec<String>>,
    default: Vec<String>,
    drop: Vec<String>,
}

impl Transform for Route {
    fn init(config: &Config) -> Result<Self, Error> {
        let routes = config
            .table("routes")
            .into_iter()
            .map(|(value, dests)| (value, split(&dests)))
            .collect();
        Ok(Route {
            column: config.require("column")?.to_owned(),
            routes,
            default: config.list("default"),
            drop: config.list("drop"),
        })
    }

    fn transform(&mut self, record: Record) -> Result<Out, Error> {
        let value = match record.get(&self.column) {
            Some(Value::Int(i)) => i.to_string(),
            Some(Value::Uint(u)) => u.to_string(),
            Some(v) => v.as_str().unwrap_or_default().to_owned(),
            None => String::new(),
        };
        if self.drop.contains(&value) {
            return Ok(Out::Drop);
        }
        let destinations = self.routes.get(&value).unwrap_or(&self.default);
        Ok(match destinations.as_slice() {
            [] => record.into(),
            [one] => with_destination(record, one).into(),
            many => Out::Many(many.iter().map(|d| with_destination(record.clone(), d)).collect()),
        })
    }
}

fn with_destination(mut record: Record, destination: &str) -> Record {
    record.set_destination(destination);
    record
}

fn split(list: &str) -> Vec<String> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

sluice_plugin::export!(Route);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin::testing::{batch, run};

    #[test]
    fn picks_fans_out_keeps_and_drops_by_column_value() {
        let rows = ["eu", "us", "xx", "other"].iter().map(|c| vec![Value::Str((*c).into())]).collect();
        let config = [
            ("column", "country"),
            ("routes.eu", "users.eu"),
            ("routes.us", "users.us, users.audit"),
            ("drop", "xx"),
        ];
        let out = run::<Route>(&config, batch("shop", "users", &["country"], rows));
        let destinations = |i: usize| -> Vec<Option<String>> { out.outputs[i].as_ref().unwrap().iter().map(Record::destination).collect() };
        assert_eq!(destinations(0), [Some("users.eu".to_owned())]);
        assert_eq!(destinations(1), [Some("users.us".to_owned()), Some("users.audit".to_owned())]);
        assert!(destinations(2).is_empty(), "a dropped record has no output");
        assert_eq!(destinations(3), [None], "no route and no default: the sink's own destination");
    }

    #[test]
    fn a_default_takes_the_values_without_a_route_and_numbers_route_by_their_text() {
        let rows = vec![vec![Value::Int(7)], vec![Value::Int(8)]];
        let out = run::<Route>(
            &[("column", "n"), ("routes.7", "seven"), ("default", "rest")],
            batch("d", "t", &["n"], rows),
        );
        assert_eq!(out.outputs[0].as_ref().unwrap()[0].destination().as_deref(), Some("seven"));
        assert_eq!(out.outputs[1].as_ref().unwrap()[0].destination().as_deref(), Some("rest"));
    }
}
