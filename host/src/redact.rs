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
    let mut secrets = SECRETS.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    for value in [secret, decoded.as_str()] {
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
    ]
    .iter()
    .any(|s| name.contains(s))
        || name.ends_with("pass")
}

/// Registers what a pipeline file's text shows of secrets before it is
/// parsed: the passwords of URLs, and values of credential-like keys
/// (`sasl.password = "…"`), so an error that quotes a line shows none.
pub fn register_in_text(text: &str) {
    static URL_PASSWORD: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#"[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s"']*:([^@/\s"']+)@"#).expect("a valid pattern"));
    static SECRET_VALUE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#"(?m)["']?([A-Za-z0-9_.\-]+)["']?\s*=\s*["']([^"'\n]+)["']"#).expect("a valid pattern"));
    for found in URL_PASSWORD.captures_iter(text) {
        register(&found[1]);
    }
    for found in SECRET_VALUE.captures_iter(text) {
        if is_secret_name(&found[1]) && !found[2].starts_with("${") {
            register(&found[2]);
        }
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
    fn secrets_in_pipeline_text_are_found_before_parsing() {
        register_in_text(
            "url = \"mysql://cdc:Lit%40eral-pw@db:3306/\"\nproperties = { \"sasl.password\" = \"Zq-sasl-pw\", \"linger.ms\" = \"5\" }\nkey = \"${FROM_ENV}\"",
        );
        assert_eq!(redact("Lit%40eral-pw Lit@eral-pw Zq-sasl-pw"), "*** *** ***");
        assert_eq!(redact("linger.ms = 5"), "linger.ms = 5", "other values stay");
    }

    #[test]
    fn the_writer_redacts_each_write() {
        register("Zq-writer-secret");
        let mut out = RedactingWriter(Vec::new());
        io::Write::write_all(&mut out, b"a Zq-writer-secret b").unwrap();
        assert_eq!(out.0, b"a *** b");
    }
}
