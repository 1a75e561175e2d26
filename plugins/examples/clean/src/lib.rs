//! `clean`: tidy strings, lowercase emails, mask PII, and drop (or reject)
//! rows that fail the rules.
//!
//! Config (all optional):
//! - `trim` (default `true`): trim strings and collapse runs of whitespace.
//! - `lowercase` (default `email`): columns to lowercase.
//! - `mask`: PII columns to mask in both row images.
//! - `mask_style` (`redact` | `last4`, default `redact`): `****` or `****1234`.
//! - `require`: columns that must be present, non-null and non-empty.
//! - `email_columns` (default `email`): non-null values must look like an email.
//! - `on_invalid` (`drop` | `reject`, default `drop`): drop silently, or fail
//!   the record so it lands in the dead-letter queue with the reason.
use sluice_plugin::prelude::*;

pub struct Clean {
    trim: bool,
    lowercase: Vec<String>,
    mask: Vec<String>,
    keep_last4: bool,
    require: Vec<String>,
    email_columns: Vec<String>,
    reject_invalid: bool,
}

impl Transform for Clean {
    fn init(config: &Config) -> Result<Self, Error> {
        let default_email = || config.get("email_columns").is_none().then(|| vec!["email".to_owned()]);
        Ok(Clean {
            trim: config.parse_or("trim", true)?,
            lowercase: if config.get("lowercase").is_some() {
                config.list("lowercase")
            } else {
                vec!["email".into()]
            },
            mask: config.list("mask"),
            keep_last4: match config.get("mask_style").unwrap_or("redact") {
                "redact" => false,
                "last4" => true,
                other => return Err(format!("mask_style must be `redact` or `last4`, not {other:?}").into()),
            },
            require: config.list("require"),
            email_columns: default_email().unwrap_or_else(|| config.list("email_columns")),
            reject_invalid: match config.get("on_invalid").unwrap_or("drop") {
                "drop" => false,
                "reject" => true,
                other => return Err(format!("on_invalid must be `drop` or `reject`, not {other:?}").into()),
            },
        })
    }

    fn transform(&mut self, mut record: Record) -> Result<Out, Error> {
        if self.trim {
            record.update_all(|_, v| {
                if let Value::Str(s) = v {
                    tidy(s);
                }
            });
        }
        for column in &self.lowercase {
            record.update(column, |v| {
                if let Value::Str(s) = v {
                    *s = s.to_lowercase();
                }
            });
        }
        if let Some(problem) = self.invalid(&record) {
            sluice_plugin::count("clean.invalid", 1);
            return if self.reject_invalid { Err(problem.into()) } else { Ok(Out::Drop) };
        }
        for column in &self.mask {
            record.update(column, |v| mask(v, self.keep_last4));
        }
        Ok(record.into())
    }
}

impl Clean {
    /// Why the newest row image breaks a rule, if it does. Deletes are never
    /// dropped: losing one would leave the row alive downstream.
    fn invalid(&self, record: &Record) -> Option<String> {
        if record.op() == Op::Delete {
            return None;
        }
        for column in &self.require {
            match record.get(column) {
                None | Some(Value::Null) => return Some(format!("required column `{column}` is missing or null")),
                Some(Value::Str(s)) if s.is_empty() => return Some(format!("required column `{column}` is empty")),
                _ => {}
            }
        }
        for column in &self.email_columns {
            if let Some(Value::Str(s)) = record.get(column)
                && !looks_like_email(&s)
            {
                return Some(format!("column `{column}` is not an email address: {s:?}"));
            }
        }
        None
    }
}

/// Trim, and collapse inner whitespace runs into one space, in place.
fn tidy(s: &mut String) {
    let trimmed = s.trim();
    let needs_collapse = trimmed
        .as_bytes()
        .windows(2)
        .any(|w| w[0].is_ascii_whitespace() && w[1].is_ascii_whitespace())
        || trimmed.contains(['\t', '\n', '\r']);
    if needs_collapse {
        *s = trimmed.split_whitespace().collect::<Vec<_>>().join(" ");
    } else if trimmed.len() != s.len() {
        *s = trimmed.to_owned();
    }
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && !domain.contains('@') && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        }
        None => false,
    }
}

fn mask(v: &mut Value, keep_last4: bool) {
    let masked = match v {
        Value::Null => return,
        Value::Str(s) if keep_last4 => {
            let tail: String = s.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
            format!("****{tail}")
        }
        _ => "****".to_owned(),
    };
    *v = Value::Str(masked);
}

sluice_plugin::export!(Clean);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin::testing::{batch, run};

    #[test]
    fn tidies_lowercases_and_masks() {
        let input = batch(
            "shop",
            "users",
            &["id", "email", "phone"],
            vec![vec![
                Value::Int(1),
                Value::Str("  Ann@Example.COM ".into()),
                Value::Str("+49 170 1234567".into()),
            ]],
        );
        let out = run::<Clean>(&[("mask", "phone"), ("mask_style", "last4")], input);
        let row = out.outputs[0].as_ref().unwrap()[0].after().unwrap();
        assert_eq!(row[1], Value::Str("ann@example.com".into()));
        assert_eq!(row[2], Value::Str("****4567".into()));
    }
}
