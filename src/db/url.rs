//! Reads a PostgreSQL URL as libpq does: tokio-postgres parses it, except for the TLS
//! parameters it does not know (`sslmode=verify-ca`/`verify-full`, `sslrootcert`, `sslcert`,
//! `sslkey`), which are taken out here first. Both forms are read: `postgres://…?k=v&…` and
//! `key=value key='quoted value'`.

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, not verified (libpq's `allow` and `prefer`).
    Prefer,
    /// TLS required, the certificate not verified (unless `sslrootcert` is given, as libpq).
    Require,
    /// TLS required, the certificate chain verified, not the host name.
    VerifyCa,
    /// TLS required, the certificate chain and the host name verified.
    VerifyFull,
}

/// The TLS parameters of a URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsParams {
    /// `sslmode`, when given.
    pub mode: Option<SslMode>,
    /// `sslrootcert`: a PEM file, or `system`.
    pub root_cert: Option<String>,
    /// `sslcert`: the client certificate (PEM).
    pub cert: Option<String>,
    /// `sslkey`: the client key (PEM).
    pub key: Option<String>,
}

impl TlsParams {
    /// Takes a parameter if it is one of ours.
    fn take(&mut self, key: &str, value: &str) -> Result<bool, String> {
        match key {
            "sslmode" => {
                self.mode = Some(match value {
                    "disable" => SslMode::Disable,
                    "allow" | "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    _ => {
                        return Err(
                            "parameter `sslmode` must be one of disable, allow, prefer, \
                                    require, verify-ca, verify-full"
                                .to_owned(),
                        )
                    }
                });
            }
            "sslrootcert" => self.root_cert = Some(value.to_owned()),
            "sslcert" => self.cert = Some(value.to_owned()),
            "sslkey" => self.key = Some(value.to_owned()),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Splits a URL into the text tokio-postgres parses and the TLS parameters taken out of it.
pub fn split(url: &str) -> Result<(String, TlsParams), String> {
    let mut tls = TlsParams::default();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_owned(), tls));
        };
        let mut kept: Vec<&str> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = form_urlencoded::parse(pair.as_bytes())
                .next()
                .unwrap_or_default();
            if !tls.take(&key, &value)? {
                kept.push(pair);
            }
        }
        let text = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((text, tls));
    }
    let mut kept: Vec<&str> = Vec::new();
    for (key, value, raw) in key_values(url)? {
        if !tls.take(&key, &value)? {
            kept.push(raw);
        }
    }
    Ok((kept.join(" "), tls))
}

/// The `key=value` pairs of a libpq connection string: (key, unquoted value, raw text).
fn key_values(text: &str) -> Result<Vec<(String, String, &str)>, String> {
    let bytes = text.as_bytes();
    let mut pairs = Vec::new();
    let mut i = 0;
    let skip_space = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_space(i);
        if i >= bytes.len() {
            return Ok(pairs);
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = text[start..i].to_owned();
        i = skip_space(i);
        if bytes.get(i) != Some(&b'=') {
            return Err(format!(
                "parameter `{key}` has no value (write `{key}=value`)"
            ));
        }
        i = skip_space(i + 1);
        let mut value = String::new();
        if bytes.get(i) == Some(&b'\'') {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return Err(format!("parameter `{key}`: unterminated quote")),
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') if i + 1 < bytes.len() => {
                        value.push(char::from(bytes[i + 1]));
                        i += 2;
                    }
                    Some(_) => {
                        let c = text[i..].chars().next().unwrap_or_default();
                        value.push(c);
                        i += c.len_utf8();
                    }
                }
            }
        } else {
            let begin = i;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            value.push_str(&text[begin..i]);
        }
        pairs.push((key, value, &text[start..i]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_form_loses_only_the_tls_parameters() {
        let (rest, tls) = split(
            "postgres://u:p@db:5432/x?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem\
             &options=-c%20search_path%3Dsales&sslcert=/c.pem&sslkey=/k.pem",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:p@db:5432/x?options=-c%20search_path%3Dsales"
        );
        assert_eq!(tls.mode, Some(SslMode::VerifyFull));
        assert_eq!(tls.root_cert.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(tls.cert.as_deref(), Some("/c.pem"));
        assert_eq!(tls.key.as_deref(), Some("/k.pem"));
        let (rest, tls) = split("postgresql://db/x?sslmode=verify-ca").unwrap();
        assert_eq!(rest, "postgresql://db/x");
        assert_eq!(tls.mode, Some(SslMode::VerifyCa));
    }

    #[test]
    fn key_value_form_keeps_quoted_values() {
        let (rest, tls) = split(
            "host=db dbname = x sslmode=verify-full sslrootcert='/my certs/ca.pem' \
             options='-c search_path=sales'",
        )
        .unwrap();
        assert_eq!(rest, "host=db dbname = x options='-c search_path=sales'");
        assert_eq!(tls.root_cert.as_deref(), Some("/my certs/ca.pem"));
        assert!(split("host").is_err());
        assert!(split("sslmode=verify").unwrap_err().contains("`sslmode`"));
    }
}
