//! The Graph API error body (docs/meta-capi.md §5) and the errors the sandbox answers with. The text
//! of `message`, `error_user_title` and `error_user_msg` imitates Meta (sentence case, English):
//! clients must branch on `code` and `error_subcode` only, as Meta's messages are localized.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::distr::{Alphanumeric, SampleString};
use serde::Serialize;
use serde_json::{json, Value};

/// Graph code for an invalid parameter (✅ S10).
pub(super) const CODE_INVALID_PARAMETER: u32 = 100;
/// Graph code for a temporary service error (✅ S10).
pub(super) const CODE_SERVICE: u32 = 2;
/// Graph code for user/ad-account throttling (✅ S10, S11).
pub(super) const CODE_USER_LIMIT: u32 = 17;
/// Graph code for an invalid or expired access token (✅ S10).
pub(super) const CODE_TOKEN: u32 = 190;
/// Subcode of code 17: "User request limit reached" (✅ S11).
pub(super) const SUBCODE_USER_LIMIT: u32 = 2_446_079;
/// Subcode of code 100: the object does not exist or the token may not see it (🟠 S27).
pub(super) const SUBCODE_UNKNOWN_OBJECT: u32 = 33;
/// Subcode of code 190 the sandbox uses for a missing token. Meta's own answer to a missing token
/// on other Graph edges is code 104; 190 is used so that clients see one "token problem" code.
pub(super) const SUBCODE_TOKEN_MISSING: u32 = 463;

/// Length of a generated `fbtrace_id`; real ones are 23 characters.
const FBTRACE_ID_LEN: usize = 23;

/// The Graph error `type`; an enum keeps [`GraphError`] small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(super) enum ErrorType {
    /// Most errors, including every CAPI validation error.
    OAuthException,
    /// Unknown objects and a bad `appsecret_proof`.
    GraphMethodException,
}

/// One Graph API error, serialized as the value of the top-level `error` key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct GraphError {
    /// The HTTP status it is answered with; not part of the body.
    #[serde(skip)]
    pub(super) status: StatusCode,
    /// Meta's developer-facing message.
    pub(super) message: String,
    /// The Graph error type.
    #[serde(rename = "type")]
    pub(super) kind: ErrorType,
    /// The Graph error code.
    pub(super) code: u32,
    /// The subcode, when Meta sends one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error_subcode: Option<u32>,
    /// Whether retrying the same request may succeed.
    pub(super) is_transient: bool,
    /// The user-facing title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error_user_title: Option<String>,
    /// The user-facing explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error_user_msg: Option<String>,
    /// `{"blame_field_specs": [[...]]}`, which the Python SDK reads; set when an event is named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error_data: Option<Value>,
}

impl GraphError {
    /// A permanent code-100 error with HTTP 400.
    pub(super) fn invalid(message: impl Into<String>, subcode: Option<u32>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: ErrorType::OAuthException,
            code: CODE_INVALID_PARAMETER,
            error_subcode: subcode,
            is_transient: false,
            error_user_title: None,
            error_user_msg: None,
            error_data: None,
        }
    }

    /// Sets the user-facing title and message.
    pub(super) fn with_user(mut self, title: &str, msg: impl Into<String>) -> Self {
        self.error_user_title = Some(title.to_owned());
        self.error_user_msg = Some(msg.into());
        self
    }

    /// A wrong token (code 190, HTTP 400 as the Graph API answers token errors; assumed, ❌).
    pub(super) fn invalid_token() -> Self {
        Self {
            code: CODE_TOKEN,
            ..Self::invalid(
                "Invalid OAuth access token - Cannot parse access token",
                None,
            )
        }
    }

    /// No token at all (code 190 / 463 here; see [`SUBCODE_TOKEN_MISSING`]).
    pub(super) fn missing_token() -> Self {
        Self {
            code: CODE_TOKEN,
            ..Self::invalid(
                "An access token is required to request this resource.",
                Some(SUBCODE_TOKEN_MISSING),
            )
        }
    }

    /// The dataset id is not the configured one (100 / 33, the text Meta sends for it).
    pub(super) fn unknown_object(id: &str) -> Self {
        Self {
            kind: ErrorType::GraphMethodException,
            ..Self::invalid(
                format!(
                    "Unsupported post request. Object with ID '{id}' does not exist, cannot be \
                     loaded due to missing permissions, or does not support this operation. \
                     Please read the Graph API documentation at \
                     https://developers.facebook.com/docs/graph-api"
                ),
                Some(SUBCODE_UNKNOWN_OBJECT),
            )
        }
    }

    /// An injected server error: code 2, transient, HTTP 500 or 503.
    pub(super) fn service(status: StatusCode) -> Self {
        Self {
            status,
            code: CODE_SERVICE,
            is_transient: true,
            ..Self::invalid(
                "An unexpected error has occurred. Please retry your request later.",
                None,
            )
        }
    }

    /// An injected throttle: code 17 / 2446079, transient, HTTP 400 (✅ S11).
    pub(super) fn user_limit() -> Self {
        Self {
            code: CODE_USER_LIMIT,
            is_transient: true,
            ..Self::invalid("(#17) User request limit reached", Some(SUBCODE_USER_LIMIT))
        }
        .with_user(
            "User request limit reached",
            "There have been too many calls. Wait a bit and try again.",
        )
    }

    /// The JSON body `{"error": {...}}` with a fresh `fbtrace_id`.
    pub(super) fn body(&self) -> Value {
        let mut error = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        if let Some(object) = error.as_object_mut() {
            object.insert("fbtrace_id".to_owned(), Value::String(fbtrace_id()));
        }
        json!({ "error": error })
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if self.code == CODE_TOKEN {
            // The Graph API names the OAuth problem in this header too.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("OAuth \"Facebook Platform\" \"invalid_token\""),
            );
        }
        response
    }
}

/// A random trace id like Meta's, to tell answers apart in logs.
pub(super) fn fbtrace_id() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), FBTRACE_ID_LEN)
}
