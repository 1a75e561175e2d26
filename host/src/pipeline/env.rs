/// Replaces `${NAME}` with the environment variable NAME, so secrets stay out
/// of pipeline files. An unset variable is an error naming it and its line;
/// `$${` writes a literal `${`.
pub fn expand_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
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
        let end = after.find('}').ok_or_else(|| format!("line {}: `${{` without a closing `}}`", line_of(text, rest, at)))?;
        let name = &after[..end];
        let value = lookup(name).ok_or_else(|| {
            format!("line {}: environment variable {name} is not set (export it, or write $${{ for a literal)", line_of(text, rest, at))
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn line_of(text: &str, rest: &str, at: usize) -> usize {
    let offset = text.len() - rest.len() + at;
    text[..offset].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_and_names_missing_variables() {
        let lookup = |n: &str| (n == "PW").then(|| "s3cret".to_owned());
        assert_eq!(expand_env("url = \"mysql://u:${PW}@h/\"", lookup).unwrap(), "url = \"mysql://u:s3cret@h/\"");
        assert_eq!(expand_env("a = \"$${PW}\"", lookup).unwrap(), "a = \"${PW}\"");
        let e = expand_env("a = 1\nb = \"${NOPE}\"", lookup).unwrap_err();
        assert!(e.contains("line 2") && e.contains("NOPE"), "{e}");
    }
}
