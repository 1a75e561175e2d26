//! `tally`: turn each order into a per-customer, per-minute contribution
//! (`minute`, `orders` = 1, the amount), for a MySQL sink in `accumulate`
//! mode that adds them up. The sink writes them with the Kafka offsets in
//! one transaction, so every order counts exactly once.
//!
//! Config:
//! - `time`: the column holding the order time (DATETIME text or TIMESTAMP).
//! - `into`: the destination table, e.g. `shop.customer_minutes`.
use sluice_plugin::prelude::*;

pub struct Tally {
    time: String,
    into: String,
}

impl Transform for Tally {
    fn init(config: &Config) -> Result<Self, Error> {
        Ok(Tally {
            time: config.require("time")?.to_owned(),
            into: config.require("into")?.to_owned(),
        })
    }

    fn transform(&mut self, mut record: Record) -> Result<Out, Error> {
        // Only new orders count; updates and deletes of an order do not add one.
        if !matches!(record.op(), Op::Insert | Op::Read) {
            return Ok(Out::Drop);
        }
        let minute = match record.get(&self.time) {
            Some(Value::Str(t) | Value::Datetime(t)) if t.len() >= 16 => format!("{}:00", &t[..16].replace('T', " ")),
            Some(Value::Timestamp(micros)) => {
                let secs = micros.div_euclid(1_000_000) / 60 * 60;
                format!("@{secs}")
            }
            other => return Err(format!("`{}` is {other:?}, not a time", self.time).into()),
        };
        record.set("minute", "datetime", Value::Datetime(minute));
        record.set("orders", "int", Value::Int(1));
        record.set_destination(self.into.clone());
        Ok(record.into())
    }
}

sluice_plugin::export!(Tally);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin::testing::{batch, run};

    #[test]
    fn an_order_becomes_one_order_in_its_minute() {
        let input = batch(
            "shop",
            "orders",
            &["id", "customer", "amount", "at"],
            vec![vec![
                Value::Int(1),
                Value::Int(7),
                Value::Decimal("12.50".into()),
                Value::Str("2026-11-26T12:34:56Z".into()),
            ]],
        );
        let out = run::<Tally>(&[("time", "at"), ("into", "shop.customer_minutes")], input);
        let record = &out.outputs[0].as_ref().unwrap()[0];
        assert_eq!(record.get("minute"), Some(Value::Datetime("2026-11-26 12:34:00".into())));
        assert_eq!(record.get("orders"), Some(Value::Int(1)));
        assert_eq!(record.destination().as_deref(), Some("shop.customer_minutes"));
    }
}
