//! `${NAME}` in a pipeline file's string values takes the value of
//! environment variable NAME, so secrets stay out of pipeline files. It is
//! done on the parsed file, so a value is never read as TOML (quotes and
//! backslashes in it stay as they are) and no parse error can quote it.
//! An unset variable is an error naming it and the key; `$${` writes a
//! literal `${`.
use toml::Value;

use super::FileProblem;

pub fn expand_env(table: &mut toml::Table, lookup: &impl Fn(&str) -> Option<String>) -> Result<(), FileProblem> {
    for (key, value) in table.iter_mut() {
        expand_value(key, value, lookup)?;
    }
    Ok(())
}

fn expand_value(path: &str, value: &mut Value, lookup: &impl Fn(&str) -> Option<String>) -> Result<(), FileProblem> {
    match value {
        Value::String(text) if text.contains("${") => *text = expand_text(path, text, lookup)?,
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_value(&format!("{path}[{i}]"), item, lookup)?;
            }
        }
        Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                expand_value(&format!("{path}.{key}"), item, lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand_text(path: &str, text: &str, lookup: &impl Fn(&str) -> Option<String>) -> Result<String, FileProblem> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        if rest[..at].ends_with('$') {
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| FileProblem::UnclosedVariable { key: path.to_owned() })?;
        let name = &after[..end];
        if name.trim().is_empty() {
            return Err(FileProblem::EmptyVariable { key: path.to_owned() });
        }
        let value = lookup(name).ok_or_else(|| FileProblem::UnsetVariable {
            key: path.to_owned(),
            name: name.to_owned(),
        })?;
        if crate::redact::is_secret_name(name) {
            crate::redact::register(&value);
        }
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<toml::Table, String> {
        let mut table: toml::Table = toml::from_str(text).unwrap();
        expand_env(&mut table, &lookup).map_err(|e| e.to_string())?;
        Ok(table)
    }

    #[test]
    fn expands_in_string_values_and_names_missing_variables() {
        let lookup = |n: &str| (n == "PW").then(|| "s3\"c\\ret".to_owned());
        let table = expand("url = \"mysql://u:${PW}@h/\"\nlist = [\"${PW}\"]\n# uses ${NOPE}\n", lookup).unwrap();
        assert_eq!(
            table["url"].as_str(),
            Some("mysql://u:s3\"c\\ret@h/"),
            "quotes and backslashes stay as they are"
        );
        assert_eq!(table["list"][0].as_str(), Some("s3\"c\\ret"));
        assert_eq!(expand("a = \"$${PW}\"", lookup).unwrap()["a"].as_str(), Some("${PW}"));
        let e = expand("a = 1\n[t]\nb = \"${NOPE}\"", lookup).unwrap_err();
        assert!(e.contains("t.b") && e.contains("NOPE"), "{e}");
    }
}
