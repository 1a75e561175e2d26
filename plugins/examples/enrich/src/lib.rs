//! `enrich`: add derived columns and values looked up from a table in config.
//!
//! Config:
//! - `domain_from`: an email column; adds `<column>_domain` with the part after `@`.
//! - `lookup_column`, `lookup_into`, `lookup.<value> = <result>`: adds column
//!   `lookup_into` holding the looked-up value of `lookup_column`;
//!   `lookup_default` fills misses (NULL when absent).
use std::collections::BTreeMap;

use sluice_plugin::prelude::*;

pub struct Enrich {
    domain_from: Option<(String, String)>,
    lookup: Option<Lookup>,
}

struct Lookup {
    column: String,
    into: String,
    table: BTreeMap<String, String>,
    default: Option<String>,
}

impl Transform for Enrich {
    fn init(config: &Config) -> Result<Self, Error> {
        let domain_from = config.get("domain_from").map(|c| (c.to_owned(), format!("{c}_domain")));
        let lookup = match config.get("lookup_column") {
            None => None,
            Some(column) => Some(Lookup {
                column: column.to_owned(),
                into: config.require("lookup_into")?.to_owned(),
                table: config.table("lookup"),
                default: config.get("lookup_default").map(str::to_owned),
            }),
        };
        if domain_from.is_none() && lookup.is_none() {
            return Err("nothing to enrich: set `domain_from` and/or `lookup_column`".into());
        }
        Ok(Enrich { domain_from, lookup })
    }

    fn transform(&mut self, mut record: Record) -> Result<Out, Error> {
        if let Some((source, target)) = &self.domain_from {
            let domain = match record.get(source) {
                Some(Value::Str(email)) => email.rsplit_once('@').map(|(_, d)| Value::Str(d.trim().to_lowercase())),
                _ => None,
            };
            record.set(target, "varchar(255)", domain.unwrap_or(Value::Null));
        }
        if let Some(lookup) = &self.lookup {
            let key = record.get(&lookup.column).as_ref().and_then(text_of);
            let found = key.and_then(|k| lookup.table.get(&k)).or(lookup.default.as_ref());
            let value = found.map_or(Value::Null, |v| Value::Str(v.clone()));
            record.set(&lookup.into, "varchar(255)", value);
        }
        Ok(record.into())
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Int(i) => Some(i.to_string()),
        Value::Uint(u) => Some(u.to_string()),
        other => other.as_str().map(str::to_owned),
    }
}

sluice_plugin::export!(Enrich);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin::testing::{batch, run};

    #[test]
    fn adds_the_email_domain_and_a_looked_up_value_or_its_default() {
        let rows = vec![
            vec![Value::Str("Ann@Example.COM".into()), Value::Str("DE".into())],
            vec![Value::Str("no-at-sign".into()), Value::Str("ZZ".into())],
        ];
        let config = [
            ("domain_from", "email"),
            ("lookup_column", "country"),
            ("lookup_into", "country_name"),
            ("lookup.DE", "Germany"),
            ("lookup_default", "unknown"),
        ];
        let out = run::<Enrich>(&config, batch("shop", "users", &["email", "country"], rows));
        let first = &out.outputs[0].as_ref().unwrap()[0];
        assert_eq!(first.get("email_domain"), Some(Value::Str("example.com".into())));
        assert_eq!(first.get("country_name"), Some(Value::Str("Germany".into())));
        let second = &out.outputs[1].as_ref().unwrap()[0];
        assert_eq!(second.get("email_domain"), Some(Value::Null), "no domain in an address without @");
        assert_eq!(second.get("country_name"), Some(Value::Str("unknown".into())));
    }

    #[test]
    fn a_config_with_nothing_to_do_is_refused() {
        let refused = Enrich::init(&Config::new(Vec::new())).err().expect("refused");
        assert!(refused.to_string().contains("nothing to enrich"), "{refused}");
    }
}
