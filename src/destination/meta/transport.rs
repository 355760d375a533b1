//! Turning a client error (no HTTP answer) into a typed [`TransportError`]: which kind it is,
//! read from the error's types (the I/O error kind, rustls' error), and, for a refused
//! connection or a connect failure, whether the host is local or resolves at all. The URL is
//! kept as `scheme://host:port/path`, never with its query.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use super::error::{TransportError, TransportKind};

/// Classifies `error` and builds the failure; `scrub` removes the token from the client's text.
pub(crate) async fn transport_error(
    error: reqwest::Error,
    timeout: Duration,
    scrub: impl Fn(&str) -> String,
) -> TransportError {
    let url = error.url().cloned();
    let kind = if error.is_timeout() {
        TransportKind::Timeout
    } else if causes(&error).any(is_plain_http) {
        TransportKind::PlainHttp
    } else if io_kinds(&error).any(|kind| kind == io::ErrorKind::ConnectionRefused) {
        let addresses = match &url {
            Some(url) => resolve(url).await,
            None => None,
        };
        TransportKind::Refused {
            local: addresses
                .is_some_and(|ips| !ips.is_empty() && ips.iter().all(|ip| is_local(*ip))),
        }
    } else if error.is_connect()
        && match &url {
            Some(url) => resolve(url).await.is_none_or(|ips| ips.is_empty()),
            None => false,
        }
    {
        TransportKind::Unresolved
    } else {
        TransportKind::Other
    };
    let shown = url.as_ref().map(safe_url).unwrap_or_default();
    TransportError::new(kind, shown, scrub(&text(error)), timeout)
}

/// `scheme://host:port/path`: no user, password, query or fragment.
pub(crate) fn safe_url(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("-");
    match url.port_or_known_default() {
        Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    }
}

/// Why [`read_capped`] gave up.
pub(crate) enum Capped {
    /// The body could not be read (a cut connection, a timeout).
    Read(reqwest::Error),
    /// The body is larger than the cap: how we know (`Content-Length`, or bytes read).
    TooLarge(String),
}

/// The body of `response`, read chunk by chunk and never past `cap` bytes: a body that says
/// (`Content-Length`) or turns out to be larger fails as soon as that is known, having held at
/// most `cap` bytes and one chunk. Dropping the response then closes the connection.
pub(crate) async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, Capped> {
    if let Some(length) = response.content_length() {
        if length > cap as u64 {
            return Err(Capped::TooLarge(format!("Content-Length {length}")));
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Capped::Read)? {
        if body.len() + chunk.len() > cap {
            return Err(Capped::TooLarge(format!(
                "more than {} bytes read",
                body.len() + chunk.len()
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Where a redirect answer points, as `scheme://host:port/path` (relative targets resolved
/// against the request's URL; never a query, which may carry anything), for the message.
pub(crate) fn redirect_target(response: &reqwest::Response) -> String {
    let Some(location) = response.headers().get(reqwest::header::LOCATION) else {
        return "nowhere (no Location header)".to_owned();
    };
    location
        .to_str()
        .ok()
        .and_then(|text| response.url().join(text).ok())
        .map_or_else(
            || "a Location that is not a URL".to_owned(),
            |url| safe_url(&url),
        )
}

/// The error and its causes, looking inside I/O errors too (whose `source` skips the error they
/// wrap).
fn causes(error: &reqwest::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    std::iter::from_fn(move || {
        let current = next?;
        next = current
            .downcast_ref::<io::Error>()
            .and_then(|io| {
                io.get_ref()
                    .map(|inner| inner as &(dyn std::error::Error + 'static))
            })
            .or_else(|| current.source());
        Some(current)
    })
}

/// The kinds of the I/O errors among the causes.
fn io_kinds(error: &reqwest::Error) -> impl Iterator<Item = io::ErrorKind> + '_ {
    causes(error).filter_map(|cause| cause.downcast_ref::<io::Error>().map(io::Error::kind))
}

/// rustls read a record that is not TLS: the server answered the handshake in plain text.
fn is_plain_http(cause: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        cause.downcast_ref::<rustls::Error>(),
        Some(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
        ))
    )
}

/// The host's addresses, or `None` when the name does not resolve.
async fn resolve(url: &reqwest::Url) -> Option<Vec<IpAddr>> {
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses = tokio::net::lookup_host((host, port)).await.ok()?;
    Some(addresses.map(|address| address.ip()).collect())
}

/// Loopback, private (RFC 1918, IPv6 unique local), link-local or unspecified: an address where
/// a refused connection means a mistake (nothing started, wrong port), not an outage.
fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_local(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || first & 0xfe00 == 0xfc00
                || first & 0xffc0 == 0xfe80
        }
    }
}

/// The text of a client error and its causes, without the URL.
fn text(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses_table() {
        let table = [
            ("127.0.0.1", true),
            ("10.1.2.3", true),
            ("172.16.0.1", true),
            ("192.168.1.10", true),
            ("169.254.0.1", true),
            ("0.0.0.0", true),
            ("::1", true),
            ("fd00::1", true),
            ("fe80::1", true),
            ("::ffff:192.168.0.1", true),
            ("157.240.1.35", false),
            ("8.8.8.8", false),
            ("2a03:2880::1", false),
            ("::ffff:8.8.8.8", false),
        ];
        for (ip, local) in table {
            assert_eq!(is_local(ip.parse().unwrap()), local, "{ip}");
        }
    }

    #[test]
    fn a_shown_url_keeps_scheme_host_port_and_path_only() {
        let table = [
            (
                "https://graph.facebook.com/v26.0/1?fields=id&appsecret_proof=abc",
                "https://graph.facebook.com:443/v26.0/1",
            ),
            (
                "http://user:pw@127.0.0.1:9/v26.0/1/events",
                "http://127.0.0.1:9/v26.0/1/events",
            ),
            ("http://[::1]:8080/x#frag", "http://[::1]:8080/x"),
        ];
        for (url, shown) in table {
            assert_eq!(safe_url(&url.parse().unwrap()), shown);
        }
    }
}
