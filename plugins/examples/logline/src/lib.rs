//! `logline`: clean application log lines into rows for a log table. A line
//! arrives as a JSON object with `ts`, `level` and a free-text `message`
//! holding `key=value` pairs (`user=42 took=153ms path=/pay`).
//!
//! Config:
//! - `fields`: keys to lift out of `message` into columns; a number with a
//!   unit suffix (`153ms`) keeps its number.
//! - `drop_levels`: levels not worth keeping (e.g. `debug`).
//! - `into`: the destination table, e.g. `logs.events`.
//!
//! The level is lower-cased; a line without `ts` is rejected with its reason.
use sluice_plugin::prelude::*;

pub struct LogLine {
    fields: Vec<String>,
    drop_levels: Vec<String>,
    into: String,
}

impl Transform for LogLine {
    fn init(config: &Config) -> Result<Self, Error> {
        Ok(LogLine {
            fields: config.list("fields"),
            drop_levels: config.list("drop_levels").iter().map(|l| l.to_lowercase()).collect(),
            into: config.require("into")?.to_owned(),
        })
    }

    fn transform(&mut self, mut record: Record) -> Result<Out, Error> {
        if !matches!(record.get("ts"), Some(Value::Str(_))) {
            return Err("a log line without a `ts` text".into());
        }
        let level = match record.get("level") {
            Some(Value::Str(level)) => level.trim().to_lowercase(),
            _ => "info".to_owned(),
        };
        if self.drop_levels.contains(&level) {
            return Ok(Out::Drop);
        }
        record.set("level", "varchar(10)", Value::Str(level));
        let message = match record.get("message") {
            Some(Value::Str(m)) => m,
            _ => String::new(),
        };
        for field in &self.fields {
            let found = message
                .split_whitespace()
                .find_map(|pair| pair.strip_prefix(field.as_str())?.strip_prefix('='));
            record.set(field, "varchar(255)", found.map_or(Value::Null, value_of));
        }
        record.set_destination(self.into.clone());
        Ok(record.into())
    }
}

/// `153ms` → 153; `42` → 42; anything else stays text.
fn value_of(text: &str) -> Value {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    match digits.parse::<i64>() {
        Ok(n) if !digits.is_empty() => Value::Int(n),
        _ => Value::Str(text.to_owned()),
    }
}

sluice_plugin::export!(LogLine);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin::testing::{batch, run};

    fn line(ts: Value, level: &str, message: &str) -> Vec<Value> {
        vec![ts, Value::Str(level.into()), Value::Str(message.into())]
    }

    #[test]
    fn lines_become_rows_and_noise_is_dropped_or_rejected() {
        let input = batch(
            "logs",
            "raw",
            &["ts", "level", "message"],
            vec![
                line(
                    Value::Str("2026-11-26T12:00:01Z".into()),
                    " WARN",
                    "paid user=42 took=153ms path=/pay",
                ),
                line(Value::Str("2026-11-26T12:00:02Z".into()), "DEBUG", "noise"),
                line(Value::Null, "INFO", "no time"),
            ],
        );
        let config = [("fields", "user,took,path"), ("drop_levels", "debug"), ("into", "logs.events")];
        let out = run::<LogLine>(&config, input);
        let row = &out.outputs[0].as_ref().unwrap()[0];
        assert_eq!(row.get("level"), Some(Value::Str("warn".into())));
        assert_eq!(row.get("user"), Some(Value::Int(42)));
        assert_eq!(row.get("took"), Some(Value::Int(153)));
        assert_eq!(row.get("path"), Some(Value::Str("/pay".into())));
        assert!(out.outputs[1].as_ref().unwrap().is_empty(), "debug lines are dropped");
        assert!(out.outputs[2].as_ref().unwrap_err().contains("without a `ts`"));
    }
}
