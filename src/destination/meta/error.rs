//! What a failed exchange with the Graph API is, as typed values: [`MetaError`] (an HTTP answer
//! that is not a success, with Meta's `code`, `error_subcode`, `fbtrace_id` and user message)
//! and [`TransportError`] (no HTTP answer at all), joined in [`Failure`]. Their `Display` never
//! carries a token, a request body, a URL query or customer data.

use std::fmt;
use std::time::Duration;

use super::graph::GraphError;
use crate::destination::retry::Traced;

/// An HTTP answer from Meta (or the stand-in) that is not a success: a Graph error, a status
/// without one, or a 2xx whose body is not what the API returns.
///
/// `Display` is the advice for the user once the failure is final (what it means, what to do,
/// Meta's words and the `fbtrace_id`); before that (a transient failure, as in the retry log and
/// `RetriesExhausted`) it is the short `HTTP 503, meta error code 2: …`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaError(Box<Fields>);

/// The fields of a [`MetaError`], boxed so that results carrying one stay small.
#[derive(Debug, Clone, PartialEq)]
struct Fields {
    /// The HTTP status.
    status: u16,
    /// The Graph error, when the body was one (its texts already scrubbed of the token).
    graph: Option<GraphError>,
    /// `fbtrace_id` from the body, else the `x-fb-trace-id` header.
    fbtrace_id: Option<String>,
    /// The server's delay hint (`Retry-After`, usage headers), uncapped.
    hint: Option<Duration>,
    /// For a 2xx whose body did not parse: serde's message (positions only, no content).
    unreadable: Option<String>,
    /// What the failure means and what to do, once it is final; see [`MetaError::advised`].
    advice: Option<String>,
}

impl MetaError {
    /// An error answer: `graph` is the parsed `error` object, if the body was one.
    pub(crate) fn http(
        status: u16,
        graph: Option<GraphError>,
        header_trace: Option<String>,
        hint: Option<Duration>,
    ) -> Self {
        let fbtrace_id = graph
            .as_ref()
            .and_then(|g| g.fbtrace_id.clone())
            .or(header_trace);
        Self(Box::new(Fields {
            status,
            graph,
            fbtrace_id,
            hint,
            unreadable: None,
            advice: None,
        }))
    }

    /// A success status whose body is not what the API returns.
    pub(crate) fn unreadable(status: u16, message: String, fbtrace_id: Option<String>) -> Self {
        Self(Box::new(Fields {
            status,
            graph: None,
            fbtrace_id,
            hint: None,
            unreadable: Some(message),
            advice: None,
        }))
    }

    /// The same error, final, with what it means and what to do (its `Display` from now on).
    pub(crate) fn advised(mut self, advice: String) -> Self {
        self.0.advice = Some(advice);
        self
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        self.0.status
    }

    /// Meta's `code` (190: token, 100: invalid parameter, …), when the body was a Graph error.
    pub fn code(&self) -> Option<i64> {
        self.graph()?.code
    }

    /// Meta's `error_subcode` (33 under 100: unknown dataset; 2804xxx: event data), if any.
    pub fn error_subcode(&self) -> Option<i64> {
        self.graph()?.error_subcode
    }

    /// Meta's trace id for the request, to quote to Meta's support.
    pub fn fbtrace_id(&self) -> Option<&str> {
        self.0.fbtrace_id.as_deref()
    }

    /// Meta's `error_user_title` (e.g. "Event Timestamp Too Old"), if any.
    pub(crate) fn user_title(&self) -> Option<&str> {
        self.graph()?.error_user_title.as_deref()
    }

    /// The best text Meta gave for people: `error_user_msg`, else `message`; localized.
    pub(crate) fn user_message(&self) -> Option<&str> {
        let graph = self.graph()?;
        graph
            .error_user_msg
            .as_deref()
            .or(graph.message.as_deref())
            .filter(|t| !t.is_empty())
    }

    /// Meta's own `is_transient` verdict, if it gave one.
    pub(crate) fn is_transient(&self) -> Option<bool> {
        self.graph()?.is_transient
    }

    /// The Graph error, when the body was one.
    pub(crate) fn graph(&self) -> Option<&GraphError> {
        self.0.graph.as_ref()
    }

    /// The server's delay hint.
    pub(crate) fn hint(&self) -> Option<Duration> {
        self.0.hint
    }

    /// serde's message, when a 2xx body did not parse.
    pub(crate) fn unreadable_body(&self) -> Option<&str> {
        self.0.unreadable.as_deref()
    }

    /// ", subcode N" when there is one.
    pub(crate) fn subcode_suffix(&self) -> String {
        self.error_subcode()
            .map(|s| format!(", subcode {s}"))
            .unwrap_or_default()
    }

    /// The message recorded for events Meta rejected: title, Meta's words, code and trace id.
    pub(crate) fn rejection(&self) -> String {
        let title = self
            .user_title()
            .map(|t| format!("{t}: "))
            .unwrap_or_default();
        let text = self.user_message().unwrap_or("invalid event data");
        format!(
            "{title}{text} (code {}{}, fbtrace_id {})",
            self.code().unwrap_or(100),
            self.subcode_suffix(),
            self.fbtrace_id().unwrap_or("-")
        )
    }
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.0.status;
        if let Some(advice) = &self.0.advice {
            let says = self
                .user_message()
                .map(|text| format!("; meta says: \"{text}\""))
                .unwrap_or_default();
            let trace = self.fbtrace_id().unwrap_or("-");
            return write!(f, "{advice}{says} (fbtrace_id {trace})");
        }
        if let Some(message) = &self.0.unreadable {
            return write!(
                f,
                "HTTP {status} with a body that is not a graph api answer ({message})"
            );
        }
        let Some(graph) = self.graph() else {
            return write!(f, "HTTP {status}");
        };
        write!(f, "HTTP {status}, meta error code ")?;
        match graph.code {
            Some(code) => write!(f, "{code}{}", self.subcode_suffix())?,
            None => f.write_str("-")?,
        }
        // Transient and permission messages are generic; code-100 text may quote event data, so
        // it is left to the `Rejected` record.
        match graph.message.as_deref() {
            Some(message) if graph.code != Some(100) => write!(f, ": {message}"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for MetaError {}

/// What the advice for a final [`MetaError`] needs to know about the destination.
#[derive(Debug, Clone)]
pub(crate) struct AdviceContext {
    /// `destination.dataset_id`.
    pub(crate) dataset_id: String,
    /// `destination.api_version`.
    pub(crate) api_version: String,
    /// Where the token comes from ("the token file …", "the X environment variable").
    pub(crate) token_source: String,
    /// `destination.base_url` is not Meta's Graph API (a stand-in or a proxy).
    pub(crate) stand_in: bool,
}

impl AdviceContext {
    /// What a final Meta error means and what to do about it, decided on the code and subcode.
    pub(crate) fn advice(&self, error: &MetaError) -> String {
        let dataset = &self.dataset_id;
        let status = error.status();
        let sub = error.subcode_suffix();
        let token_source = &self.token_source;
        if let Some(message) = error.unreadable_body() {
            return format!(
                "the answer to the request (HTTP {status}) is not a graph api answer ({message}): \
                 check that destination.base_url points at Meta's Graph API"
            );
        }
        if error.graph().is_none() {
            return format!(
                "meta refused the request ({error}) without a graph error: check \
                 destination.base_url and destination.api_version ({})",
                self.api_version
            );
        }
        match error.code() {
            Some(190) if self.stand_in => format!(
                "the destination rejected the access token (code 190{sub}), and \
                 destination.base_url is not Meta's graph api: the local stand-in \
                 (`ocapi sandbox`) accepts only the token it was started with (`--token` \
                 or OCAPI_SANDBOX_TOKEN, default `sandbox-token`); put that token in {token_source}"
            ),
            Some(190) => format!(
                "meta rejected the access token (code 190{sub}): the token is invalid, \
                 expired or revoked; create a new system-user token in Business Manager \
                 and update {token_source}"
            ),
            Some(code @ (3 | 10 | 200..=299)) => format!(
                "the access token may not send events to dataset {dataset} (code \
                 {code}{sub}): in Business Manager, assign the dataset to the token's \
                 system user with full control, give the token the ads_management \
                 permission, then update {token_source}"
            ),
            Some(100) if error.error_subcode() == Some(33) => format!(
                "dataset {dataset} does not exist or the access token cannot reach it \
                 (code 100, subcode 33): check destination.dataset_id and that the \
                 token's system user is assigned to that dataset"
            ),
            Some(368) => format!(
                "meta has temporarily blocked this app or account for policy reasons \
                 (code 368{sub}): check Business Support Home for the restriction and \
                 re-run once it is lifted"
            ),
            Some(2635) => format!(
                "api version {} is deprecated (code 2635{sub}): set \
                 destination.api_version to a current version such as v26.0",
                self.api_version
            ),
            Some(code) => format!(
                "meta refused the request (HTTP {status}, code {code}{sub}): fix the request or \
                 the configuration as meta describes below, then re-run"
            ),
            None => format!(
                "meta refused the request (HTTP {status}) without an error code: check \
                 destination.base_url and destination.api_version"
            ),
        }
    }
}

/// Why a request got no HTTP answer; decides whether retrying can help (`classify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// No answer within `destination.request_timeout`.
    Timeout,
    /// The connection was refused; `local` when the host is a loopback or private address,
    /// where nothing restarts by itself within a retry budget (a stand-in that is not running, a
    /// wrong port).
    Refused {
        /// Whether every address of the host is loopback, private or link-local.
        local: bool,
    },
    /// The host name does not resolve.
    Unresolved,
    /// An `https://` URL whose server answered in plain HTTP (the TLS handshake read an HTTP
    /// answer).
    PlainHttp,
    /// The server answered with a redirect (3xx; the target, without its query, is in the
    /// message). ocapi follows none: a `POST /events` carries the access token and every event
    /// of the batch, and a followed `307`/`308` would hand both to the target host, and the
    /// Graph reads would send the token in their `Authorization` header.
    Redirect {
        /// The 3xx status.
        status: u16,
    },
    /// The answer's body passed [`MAX_ANSWER_BYTES`](super::MAX_ANSWER_BYTES): no Graph answer
    /// is that large, so the reading stops there instead of holding the whole body in memory.
    TooLarge,
    /// No request was made: a stop was requested while it waited for its rate-limit slot.
    Stopped,
    /// Anything else (reset, broken pipe, TLS failures): plausibly transient.
    Other,
}

/// A request that got no HTTP answer. `Display` names the URL as `scheme://host:port/path`,
/// never its query (which may hold the `appsecret_proof`) nor the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    /// What went wrong.
    kind: TransportKind,
    /// `scheme://host:port/path` of the request.
    url: String,
    /// The client's error and its causes, scrubbed of the token and without the URL.
    detail: String,
    /// `destination.request_timeout`, for the message of a timeout.
    timeout: Duration,
}

impl TransportError {
    /// A failure of `kind` on `url` (already stripped of its query).
    pub(crate) fn new(kind: TransportKind, url: String, detail: String, timeout: Duration) -> Self {
        Self {
            kind,
            url,
            detail,
            timeout,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> TransportKind {
        self.kind
    }

    /// The request's `scheme://host:port/path`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.url;
        match self.kind {
            TransportKind::Timeout => write!(
                f,
                "no answer from {url} within {}s (destination.request_timeout)",
                self.timeout.as_secs_f64()
            ),
            TransportKind::Refused { local: true } => write!(
                f,
                "nothing is listening at {url} (connection refused): start the server there \
                 (`ocapi sandbox` for the local stand-in) or fix destination.base_url"
            ),
            TransportKind::Refused { local: false } => {
                write!(f, "{url} refused the connection ({})", self.detail)
            }
            TransportKind::Unresolved => write!(
                f,
                "the host of {url} does not resolve ({}): check destination.base_url",
                self.detail
            ),
            TransportKind::PlainHttp => write!(
                f,
                "the server at {url} answered plain HTTP to a TLS handshake: it does not speak \
                 https; use http:// in destination.base_url for a local stand-in"
            ),
            TransportKind::Redirect { status } => write!(
                f,
                "{url} answered HTTP {status}, a redirect to {}: ocapi follows no redirect (the \
                 request carries the access token and the events); set destination.base_url to \
                 the address that answers itself",
                self.detail
            ),
            TransportKind::TooLarge => write!(
                f,
                "the answer from {url} is larger than {} bytes ({}), the most ocapi reads of a \
                 graph api answer: check that destination.base_url points at Meta's Graph API",
                super::MAX_ANSWER_BYTES,
                self.detail
            ),
            TransportKind::Stopped => write!(
                f,
                "no request to {url}: a stop was requested while it waited for its turn \
                 (destination.max_requests_per_second)"
            ),
            TransportKind::Other => write!(f, "cannot reach {url}: {}", self.detail),
        }
    }
}

impl std::error::Error for TransportError {}

/// One failed HTTP exchange: no answer, or an answer that is not a success.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    /// No HTTP answer: connection refused or reset, name resolution, TLS, timeout.
    #[error(transparent)]
    Transport(TransportError),
    /// An HTTP answer that is not a success.
    #[error(transparent)]
    Meta(MetaError),
}

impl Failure {
    /// The Meta error, when there was an answer.
    pub(crate) fn meta(&self) -> Option<&MetaError> {
        match self {
            Self::Meta(error) => Some(error),
            Self::Transport(_) => None,
        }
    }
}

impl Traced for Failure {
    fn trace_id(&self) -> Option<&str> {
        self.meta().and_then(MetaError::fbtrace_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(code: i64, subcode: Option<i64>, message: &str) -> GraphError {
        GraphError {
            message: Some(message.to_owned()),
            code: Some(code),
            error_subcode: subcode,
            fbtrace_id: Some("T".to_owned()),
            ..GraphError::default()
        }
    }

    #[test]
    fn a_meta_error_exposes_its_code_subcode_and_trace() {
        let error = MetaError::http(400, Some(graph(190, Some(463), "expired")), None, None);
        assert_eq!(error.status(), 400);
        assert_eq!(error.code(), Some(190));
        assert_eq!(error.error_subcode(), Some(463));
        assert_eq!(error.fbtrace_id(), Some("T"));
        assert_eq!(error.user_message(), Some("expired"));
        let bare = MetaError::http(502, None, Some("H".to_owned()), None);
        assert_eq!((bare.code(), bare.fbtrace_id()), (None, Some("H")));
        assert_eq!(bare.to_string(), "HTTP 502");
    }

    #[test]
    fn advice_becomes_the_display_with_metas_words_and_trace() {
        let error = MetaError::http(400, Some(graph(190, None, "bad token")), None, None)
            .advised("rotate the token".to_owned());
        assert_eq!(
            error.to_string(),
            "rotate the token; meta says: \"bad token\" (fbtrace_id T)"
        );
    }

    #[test]
    fn code_100_text_stays_out_of_the_short_display() {
        let error = MetaError::http(
            400,
            Some(graph(100, Some(2_804_003), "order X1")),
            None,
            None,
        );
        assert_eq!(
            error.to_string(),
            "HTTP 400, meta error code 100, subcode 2804003"
        );
        assert_eq!(
            error.rejection(),
            "order X1 (code 100, subcode 2804003, fbtrace_id T)"
        );
    }
}
