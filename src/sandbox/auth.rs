//! Who may call the sandbox: the token (an `Authorization` header, a body field or the query
//! string), the `appsecret_proof` when an app secret is configured, and the dataset id in the
//! path; and the count of requests that carried the token in their URL, which ocapi must keep
//! at 0.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, Uri};
use axum::middleware::Next;
use axum::response::Response;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::graph_error::{self, GraphError};
use super::state::Shared;

impl Shared {
    /// Checks the token, its expiry (see `meta_side.rs`) and, when an app secret is configured,
    /// the `appsecret_proof`.
    pub(super) fn authorize(
        &self,
        token: Option<&str>,
        proof: Option<&str>,
    ) -> Result<(), GraphError> {
        self.authorize_identity(token, proof)?;
        self.token_refusal().map_or(Ok(()), Err)
    }

    /// Checks the token and the `appsecret_proof`, not whether the token has expired.
    pub(super) fn authorize_identity(
        &self,
        token: Option<&str>,
        proof: Option<&str>,
    ) -> Result<(), GraphError> {
        let Some(token) = token.filter(|token| !token.is_empty()) else {
            return Err(GraphError::missing_token());
        };
        if token != self.access_token {
            return Err(GraphError::invalid_token());
        }
        // Without a configured secret the proof cannot be checked and is ignored; Meta would
        // check it against the app's real secret.
        let Some(secret) = &self.app_secret else {
            return Ok(());
        };
        // Meta answers both cases with code 100, GraphMethodException (not in docs/meta-capi.md).
        let error = |message: &str| GraphError {
            kind: graph_error::ErrorType::GraphMethodException,
            ..GraphError::invalid(message, None)
        };
        let Some(proof) = proof else {
            return Err(error(
                "API calls from the server require an appsecret_proof argument",
            ));
        };
        let expected = hmac_sha256_hex(secret, token);
        if !expected.eq_ignore_ascii_case(proof) {
            return Err(error(
                "Invalid appsecret_proof provided in the API argument",
            ));
        }
        Ok(())
    }

    /// Checks the dataset id in the path against the configured one.
    pub(super) fn check_dataset(&self, dataset_id: &str) -> Result<(), GraphError> {
        match &self.dataset_id {
            Some(expected) if expected != dataset_id => Err(GraphError::unknown_object(dataset_id)),
            _ => Ok(()),
        }
    }
}

/// Checks the token of a GET (header, or the query string as Meta also allows).
pub(super) fn authorize_get(
    shared: &Shared,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(), GraphError> {
    let token = header_token(headers).or_else(|| query.get("access_token").map(String::as_str));
    let proof = query.get("appsecret_proof").map(String::as_str);
    shared.authorize(token, proof)
}

/// As [`authorize_get`], but an expired token may still ask about itself (`debug_token`).
pub(super) fn identify_get(
    shared: &Shared,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(), GraphError> {
    let token = header_token(headers).or_else(|| query.get("access_token").map(String::as_str));
    let proof = query.get("appsecret_proof").map(String::as_str);
    shared.authorize_identity(token, proof)
}

/// The query string as a map; an unparsable one is empty.
pub(super) fn query_map(uri: &Uri) -> HashMap<String, String> {
    Query::<HashMap<String, String>>::try_from_uri(uri)
        .map(|Query(map)| map)
        .unwrap_or_default()
}

/// The token of an `Authorization: Bearer …` or `Authorization: OAuth …` header.
pub(super) fn header_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let known = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth");
    known.then(|| token.trim())
}

/// Hex HMAC-SHA256 of `message` keyed with `key`, as `appsecret_proof` is defined (🟡 S21).
pub(super) fn hmac_sha256_hex(key: &str, message: &str) -> String {
    match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(message.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; an empty string never matches a proof.
        Err(_) => String::new(),
    }
}

/// Counts requests that carry the token in the URL, on every route.
pub(super) async fn count_tokens_in_url(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if query_map(request.uri()).contains_key("access_token") {
        shared.tokens_seen_in_url.fetch_add(1, Ordering::SeqCst);
        tracing::warn!(path = %request.uri().path(), "access token seen in a url query string");
    }
    next.run(request).await
}
