/// Replaces `${NAME}` with the environment variable NAME, so secrets stay out
/// of pipeline files. An unset variable is an error naming it and its line;
/// `$${` writes a literal `${`; comment lines are left alone.
pub fn expand_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            out.push_str(&expand_line(i + 1, line, &lookup)?);
        }
    }
    Ok(out)
}

fn expand_line(line_no: usize, line: &str, lookup: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
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
            .ok_or_else(|| format!("line {line_no}: `${{` without a closing `}}`"))?;
        let name = &after[..end];
        let value = lookup(name)
            .ok_or_else(|| format!("line {line_no}: environment variable {name} is not set (export it, or write $${{ for a literal)"))?;
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

    #[test]
    fn expands_and_names_missing_variables() {
        let lookup = |n: &str| (n == "PW").then(|| "s3cret".to_owned());
        assert_eq!(
            expand_env("url = \"mysql://u:${PW}@h/\"", lookup).unwrap(),
            "url = \"mysql://u:s3cret@h/\""
        );
        assert_eq!(expand_env("a = \"$${PW}\"", lookup).unwrap(), "a = \"${PW}\"");
        assert_eq!(expand_env("# uses ${NOPE}\na = 1", lookup).unwrap(), "# uses ${NOPE}\na = 1");
        let e = expand_env("a = 1\nb = \"${NOPE}\"", lookup).unwrap_err();
        assert!(e.contains("line 2") && e.contains("NOPE"), "{e}");
    }
}
