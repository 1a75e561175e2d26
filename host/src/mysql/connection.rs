//! Connections to MySQL for every part of Sluice (the capture, the polling
//! source, the MySQL sink): the URL, which is a secret, and TLS for servers
//! whose certificates a private CA signed or whose accounts require a
//! client certificate.
use std::path::{Path, PathBuf};

use mysql_async::{ClientIdentity, Conn, IoError, Opts, OptsBuilder, SslOpts};
use serde::Deserialize;

use super::MysqlError;
use crate::secret::Secret;

/// What the URL cannot say about TLS: the URL's `require_ssl`, `verify_ca`
/// and `verify_identity` parameters take no files. Giving this table turns
/// TLS on; verification stays as the URL sets it (on, by default).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlTls {
    /// PEM file of the CA certificates to trust besides the built-in roots
    /// (a private CA, or a cloud provider's bundle such as Amazon RDS's).
    pub ca: Option<PathBuf>,
    /// PEM certificate chain of this client, for accounts created
    /// `REQUIRE X509` or `REQUIRE SUBJECT …`; needs `key`.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
}

impl MysqlTls {
    /// Makes relative file paths relative to `base` (the pipeline file's directory).
    pub(crate) fn rebase(&mut self, base: &Path) {
        for path in [&mut self.ca, &mut self.cert, &mut self.key].into_iter().flatten() {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// Reads the files, as connecting would, without connecting.
    pub fn check(&self) -> Result<(), MysqlError> {
        self.ssl_opts(None).map(drop).map_err(MysqlError::Settings)
    }

    /// The URL's TLS settings with these files added. The files are read
    /// here, so a missing one is named with its key at start-up.
    fn ssl_opts(&self, from_url: Option<&SslOpts>) -> Result<SslOpts, String> {
        let read = |key: &str, path: &Path| {
            let pem = std::fs::read(path).map_err(|e| format!("tls.{key}: cannot read {}: {e}", path.display()))?;
            if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
                return Err(format!("tls.{key}: {} is not a PEM file (no -----BEGIN line)", path.display()));
            }
            Ok(pem.into())
        };
        let mut ssl = from_url.cloned().unwrap_or_default();
        if let Some(ca) = &self.ca {
            ssl = ssl.with_root_certs(vec![read("ca", ca)?]);
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => ssl = ssl.with_client_identity(Some(ClientIdentity::new(read("cert", cert)?, read("key", key)?))),
            (None, None) => {}
            _ => {
                return Err("tls.cert and tls.key go together: give the client's certificate chain and its private key, or neither".into());
            }
        }
        Ok(ssl)
    }
}

/// Checks, without connecting, what connecting would read: the URL, and the
/// TLS files.
pub(crate) fn check_settings(url: &Secret, tls: Option<&MysqlTls>) -> Result<(), MysqlError> {
    let not_a_url = |why: String| {
        MysqlError::Settings(format!(
            "url is not a MySQL URL ({why}): write mysql://user:password@host:port/ and percent-encode / @ : ? # \
             in the user or password (/ as %2F, @ as %40)"
        ))
    };
    let text = url.expose();
    // An unencoded `@` or `#` in a password parses, as another host: refused
    // here rather than sent to that host.
    let before_query = text.split('?').next().unwrap_or(text);
    if text.contains('#') || before_query.matches('@').count() > 1 {
        return Err(not_a_url("more than one @, or a #".into()));
    }
    Opts::from_url(text).map_err(|e| not_a_url(e.to_string()))?;
    tls.map_or(Ok(()), MysqlTls::check)
}

/// A connection to the server at `url`, over TLS when the URL asks for it
/// (`require_ssl=true`) or `tls` is given. Errors name the server without
/// its password.
pub(crate) async fn connect(url: &Secret, tls: Option<&MysqlTls>) -> Result<Conn, MysqlError> {
    let redacted = redact(url.expose());
    let mut opts = Opts::from_url(url.expose()).map_err(|e| MysqlError::Connect {
        url: redacted.clone(),
        source: e.into(),
    })?;
    if let Some(tls) = tls {
        let ssl = tls.ssl_opts(opts.ssl_opts()).map_err(|message| MysqlError::TlsSettings {
            url: redacted.clone(),
            message,
        })?;
        opts = OptsBuilder::from_opts(opts).ssl_opts(ssl).into();
    }
    Conn::new(opts).await.map_err(|source| match tls_failure(&source) {
        Some(message) => MysqlError::TlsHandshake { url: redacted, message },
        None => MysqlError::Connect { url: redacted, source },
    })
}

/// What went wrong in TLS, if that is what failed: mysql_async reports a
/// certificate the handshake rejects as an I/O error around rustls's.
fn tls_failure(error: &mysql_async::Error) -> Option<String> {
    match error {
        mysql_async::Error::Io(IoError::Tls(tls)) => Some(tls.to_string()),
        mysql_async::Error::Io(IoError::Io(io)) => io.get_ref()?.downcast_ref::<rustls::Error>().map(ToString::to_string),
        _ => None,
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_files_are_read_up_front_and_named_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, b"-----BEGIN CERTIFICATE-----\n").unwrap();
        let url_opts = Opts::from_url("mysql://u@h/?require_ssl=true&verify_identity=false").unwrap();
        let ssl = MysqlTls {
            ca: Some(ca),
            ..Default::default()
        }
        .ssl_opts(url_opts.ssl_opts())
        .unwrap();
        assert_eq!(ssl.root_certs().len(), 1);
        assert!(
            ssl.root_certs()[0] == b"-----BEGIN CERTIFICATE-----\n".to_vec().into(),
            "the file's bytes, read"
        );
        assert!(ssl.skip_domain_validation(), "the URL's verification settings are kept");

        let missing = MysqlTls {
            ca: Some(dir.path().join("nope.pem")),
            ..Default::default()
        };
        let error = missing.ssl_opts(None).unwrap_err();
        assert!(error.starts_with("tls.ca: cannot read ") && error.contains("nope.pem"), "{error}");
        let half = MysqlTls {
            cert: Some(dir.path().join("c.pem")),
            ..Default::default()
        };
        assert!(half.ssl_opts(None).unwrap_err().starts_with("tls.cert and tls.key go together"));
    }

    #[test]
    fn urls_print_without_their_password() {
        assert_eq!(
            redact("mysql://cdc:s3cret@db:3306/?require_ssl=true"),
            "mysql://cdc:***@db:3306/?require_ssl=true"
        );
        assert_eq!(redact("mysql://db:3306/"), "mysql://db:3306/");
    }
}
