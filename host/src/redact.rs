//! One redaction for everything Sluice prints. Secrets are registered as
//! they are read (passwords in URLs, environment variables named like
//! secrets that a pipeline file substitutes, credential-like client
//! properties, given literally or not), and every log line, error message
//! and panic message passes through [`redact`] on its way out, whichever
//! path produced it: librdkafka's own log lines and a TOML error that quotes
//! a line of the file included.
use std::borrow::Cow;
use std::io;
use std::sync::{LazyLock, RwLock};

use regex::Regex;

/// Values shorter than this would mask ordinary words in every line.
const MIN_LEN: usize = 4;
const MASK: &str = "***";

/// Longest first, so a secret that contains another is masked whole.
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Masks `secret` (and its percent-decoded form) wherever it is printed.
pub fn register(secret: &str) {
    let decoded = percent_decode(secret);
    // Quoted in a JSON document or a Debug-printed field, a quote or backslash in
    // the value is escaped: those forms are masked too.
    let quoted = |text: String| text[1..text.len() - 1].to_owned();
    let json = quoted(serde_json::to_string(secret).unwrap_or_default());
    let debug = quoted(format!("{secret:?}"));
    let mut secrets = SECRETS.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    // A plugin or a server may quote the value trimmed.
    for value in [secret, decoded.as_str(), secret.trim(), json.as_str(), debug.as_str()] {
        if value.len() >= MIN_LEN && !secrets.iter().any(|s| s == value) {
            secrets.push(value.to_owned());
        }
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every registered secret replaced by `***`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !secrets.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_owned();
    for secret in secrets.iter() {
        out = out.replace(secret.as_str(), MASK);
    }
    Cow::Owned(out)
}

/// Whether a setting or variable of this name holds a credential.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "credential",
        "jaas",
        "private",
        "key.pem",
        "api_key",
        "apikey",
        "api-key",
        "access_key",
        "access-key",
    ]
    .iter()
    .any(|s| name.contains(s))
        || name.ends_with("pass")
        || name == "pw"
        || ["_pw", "-pw", ".pw"].iter().any(|s| name.ends_with(s))
}

static URL_PASSWORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s"']*:([^@/\s"']+)@"#).expect("a valid pattern"));

/// Registers what a pipeline file's text shows of secrets before it is
/// parsed, so that a parse error quoting a line shows none: the passwords of
/// URLs, and every string of a credential-like key's value as written
/// (`sasl.password = "…"`, `'…'`, `"""…"""`, or an array of them).
pub fn register_in_text(text: &str) {
    static SECRET_KEY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"["']?([A-Za-z0-9_.\-]+)["']?\s*=\s*"#).expect("a valid pattern"));
    for found in URL_PASSWORD.captures_iter(text) {
        register(&found[1]);
    }
    for found in SECRET_KEY.captures_iter(text) {
        if is_secret_name(&found[1]) {
            let value = &text[found.get(0).expect("whole match").end()..];
            for string in quoted_strings(value) {
                if !string.starts_with("${") {
                    register(string);
                }
            }
        }
    }
}

/// The strings of the TOML value `text` starts with, as written: one string,
/// or those of an array.
fn quoted_strings(text: &str) -> Vec<&str> {
    const QUOTES: [&str; 4] = ["\"\"\"", "'''", "\"", "'"];
    let mut strings = Vec::new();
    let in_array = text.starts_with('[');
    let mut rest = if in_array { &text[1..] } else { text };
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        let Some(quote) = QUOTES.into_iter().find(|q| rest.starts_with(q)) else {
            break;
        };
        let body = &rest[quote.len()..];
        let Some(end) = string_end(body, quote) else { break };
        strings.push(&body[..end]);
        rest = &body[end + quote.len()..];
        if !in_array {
            break;
        }
    }
    strings
}

/// Where the string opened by `quote` ends in `body`; a basic string's
/// backslash escapes the next character.
fn string_end(body: &str, quote: &str) -> Option<usize> {
    let mut escaped = false;
    for (at, c) in body.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quote.starts_with('"') {
            escaped = true;
        } else if body[at..].starts_with(quote) {
            return Some(at);
        } else if c == '\n' && quote.len() == 1 {
            return None;
        }
    }
    None
}

/// Registers the secrets of a parsed pipeline file, with `${NAME}` already
/// replaced: every string under a credential-like key, at any depth, and
/// the password of every URL.
pub fn register_in_toml(table: &toml::Table) {
    for (key, value) in table {
        register_value(value, is_secret_name(key), key);
    }
}

fn register_value(value: &toml::Value, secret: bool, key: &str) {
    match value {
        toml::Value::String(text) => {
            if secret {
                if (1..MIN_LEN).contains(&text.chars().count()) {
                    tracing::warn!("the value of `{key}` is shorter than {MIN_LEN} characters: too short to be masked in logs");
                }
                register(text);
            }
            for found in URL_PASSWORD.captures_iter(text) {
                register(&found[1]);
            }
        }
        // A number or boolean given as a credential is printed as its text.
        toml::Value::Integer(_) | toml::Value::Float(_) if secret => register(&value.to_string()),
        toml::Value::Array(items) => items.iter().for_each(|item| register_value(item, secret, key)),
        toml::Value::Table(table) => {
            for (inner, item) in table {
                register_value(item, secret || is_secret_name(inner), inner);
            }
        }
        _ => {}
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A writer that redacts what passes through it: for the log, the CLI's
/// output and its error stream.
pub struct RedactingWriter<W>(pub W);

impl<W: io::Write> io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(redact(text).as_bytes())?,
            Err(_) => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Panic messages go out redacted too (a value in an `expect` message, a
/// URL in an assertion).
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let message = format!("thread '{}' {info}", thread.name().unwrap_or("<unnamed>"));
        eprintln!("{}", redact(&message));
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_are_masked_wherever_they_appear() {
        register("Zq-unit-secret-1");
        register("abc");
        assert_eq!(
            redact("url mysql://u:Zq-unit-secret-1@h, again Zq-unit-secret-1"),
            "url mysql://u:***@h, again ***"
        );
        assert_eq!(redact("abc is too short to mask"), "abc is too short to mask");
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_secret_is_masked_also_where_it_is_quoted_with_escapes() {
        register("Zq\"quo\\te\tpw");
        let json = serde_json::json!({ "error": "login Zq\"quo\\te\tpw refused" }).to_string();
        assert_eq!(redact(&json), r#"{"error":"login *** refused"}"#);
        assert_eq!(redact(&format!("{:?}", "Zq\"quo\\te\tpw")), "\"***\"");
    }

    #[test]
    fn secrets_in_pipeline_text_are_found_before_parsing() {
        register_in_text(
            "url = \"mysql://cdc:Lit%40eral-pw@db:3306/\"\nproperties = { \"sasl.password\" = \"Zq-sasl-pw\", \"linger.ms\" = \"5\" }\nkey = \"${FROM_ENV}\"",
        );
        assert_eq!(redact("Lit%40eral-pw Lit@eral-pw Zq-sasl-pw"), "*** *** ***");
        assert_eq!(redact("linger.ms = 5"), "linger.ms = 5", "other values stay");
    }

    #[test]
    fn secrets_written_in_any_toml_string_form_are_found_before_parsing() {
        register_in_text(concat!(
            "token = [\"Zq-array-1\", 'Zq-array-2']\n",
            "password = '''Zq-literal-ml'''\n",
            "secret = \"\"\"Zq-basic-ml\"\"\"\n",
            "x = { \"sasl.password\" = \"Zq-esc\\u0033\\\"q\" }",
        ));
        assert_eq!(
            redact("Zq-array-1 Zq-array-2 Zq-literal-ml Zq-basic-ml Zq-esc\\u0033\\\"q"),
            "*** *** *** *** ***"
        );
    }

    #[test]
    fn api_keys_short_pw_names_numbers_and_trimmed_values_count_as_secrets() {
        assert!(is_secret_name("KAFKA_API_KEY") && is_secret_name("SASL_PW") && is_secret_name("pw"));
        assert!(!is_secret_name("primary_key") && !is_secret_name("key_columns") && !is_secret_name("cpw_x"));
        let table: toml::Table = toml::from_str("[c]\npassword = 12345678\ntoken = \"Zq-trimmed \"").unwrap();
        register_in_toml(&table);
        assert_eq!(redact("12345678 Zq-trimmed"), "*** ***");
    }

    #[test]
    fn secrets_of_a_parsed_file_are_found_at_any_depth() {
        let table: toml::Table = toml::from_str(concat!(
            "[a.b]\ntokens = [\"Zq-deep-1\"]\n",
            "[c]\nurl = \"kafka://u:Zq-url-pw@h\"\nname = \"Zq-not-secret\""
        ))
        .unwrap();
        register_in_toml(&table);
        assert_eq!(redact("Zq-deep-1 Zq-url-pw Zq-not-secret"), "*** *** Zq-not-secret");
    }

    #[test]
    fn the_writer_redacts_each_write() {
        register("Zq-writer-secret");
        let mut out = RedactingWriter(Vec::new());
        io::Write::write_all(&mut out, b"a Zq-writer-secret b").unwrap();
        assert_eq!(out.0, b"a *** b");
    }
}
