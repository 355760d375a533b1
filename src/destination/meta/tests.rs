//! The Meta destination over real HTTP against the project's own stand-in (`crate::sandbox`,
//! on 127.0.0.1:0), and its handling of secrets.
#![cfg(feature = "sandbox")]

use crate::config::CustomerField;
use std::time::Duration;

use rust_decimal::Decimal;

use super::*;
use crate::config::DestinationKind;
use crate::event::{UserData, UserValue};
use crate::sandbox::{Faults, Sandbox, SandboxOptions};

const TOKEN: &str = "EAAtestSECRETtoken0123456789";

/// The dataset the stand-in accepts.
const DATASET: &str = "123";

async fn sandbox(faults: Faults) -> Sandbox {
    let options = SandboxOptions {
        access_token: TOKEN.to_owned(),
        dataset_id: Some(DATASET.to_owned()),
        app_secret: None,
        faults,
        meta_side: crate::sandbox::MetaSide::default(),
    };
    Sandbox::start("127.0.0.1:0".parse().unwrap(), options)
        .await
        .unwrap()
}

fn settings(base_url: &str) -> DestinationConfig {
    DestinationConfig {
        kind: DestinationKind::Meta,
        dataset_id: DATASET.to_owned(),
        path: None,
        access_token_env: Some("OCAPI_TEST_TOKEN".to_owned()),
        access_token_file: None,
        app_secret_env: None,
        api_version: "v26.0".to_owned(),
        base_url: crate::config::HttpUrl::try_from(base_url.to_owned()).unwrap(),
        allow_plain_http: false,
        ad_account_id: None,
        test_event_code: None,
        upload_tag: None,
        batch_size: crate::config::BatchSize::default(),
        concurrency: 4,
        max_retries: 3,
        request_timeout: Duration::from_secs(5),
        max_requests_per_second: None,
    }
}

/// A destination with millisecond retry delays, for tests against a real socket (a paused
/// clock would fire the request timeout while the socket is idle).
fn destination_with(
    config: &DestinationConfig,
    token: &str,
    app_secret: Option<&str>,
) -> MetaDestination {
    let app_secret = app_secret.map(Secret::new);
    let mut inner = Inner::new(config, Secret::new(token), app_secret.as_ref()).unwrap();
    inner.policy.base_delay = Duration::from_millis(1);
    inner.policy.max_delay = Duration::from_millis(5);
    MetaDestination {
        inner: Box::new(inner),
    }
}

fn destination(base_url: &str) -> MetaDestination {
    destination_with(&settings(base_url), TOKEN, None)
}

/// `n` valid events; those whose index is in `poison` get an order id starting with `POISON`.
fn events(n: usize, poison: &[usize]) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let id = if poison.contains(&i) {
                format!("POISON-{i}")
            } else {
                format!("order-{i}")
            };
            Event {
                user_data: UserData::default()
                    .with(CustomerField::Em, UserValue::Text("a".repeat(64)))
                    .with(CustomerField::Ph, UserValue::Text("b".repeat(64))),
                ..Event::purchase(
                    &id,
                    chrono::Utc::now().timestamp() - 3600,
                    Decimal::new(12345, 2),
                    "USD",
                )
            }
        })
        .collect()
}

/// The order ids the stand-in accepted, in arrival order.
fn accepted(graph: &Sandbox) -> Vec<String> {
    graph
        .events()
        .iter()
        .map(|event| {
            event["custom_data"]["order_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn poison(name_index: bool) -> Faults {
    Faults {
        reject_order_prefix: Some("POISON".to_owned()),
        name_index,
        ..Faults::default()
    }
}

#[tokio::test]
async fn a_batch_is_delivered_in_one_request_with_the_token_in_the_body_only() {
    // GIVEN the stand-in
    let graph = sandbox(Faults::default()).await;
    // WHEN a batch of 3 is sent
    let delivery = destination(&graph.base_url())
        .send(&events(3, &[]))
        .await
        .unwrap();
    // THEN it is accepted in one request, the token never in a URL
    assert_eq!((delivery.requests, delivery.retries), (1, 0));
    assert_eq!(delivery.accepted.len(), 1);
    assert_eq!(delivery.accepted[0].indices, [0, 1, 2]);
    assert!(delivery.accepted[0].fbtrace_id.is_some());
    assert_eq!(accepted(&graph), ["order-0", "order-1", "order-2"]);
    let bodies = graph.bodies();
    assert_eq!(bodies[0]["partner_agent"], PARTNER_AGENT);
    assert!(bodies[0].get("test_event_code").is_none());
    assert_eq!(graph.stats().tokens_seen_in_url, 0);
}

#[tokio::test]
async fn test_event_code_and_appsecret_proof_are_sent_when_configured() {
    let options = SandboxOptions {
        access_token: TOKEN.to_owned(),
        dataset_id: Some(DATASET.to_owned()),
        app_secret: Some("appsecret".to_owned()),
        faults: Faults::default(),
        meta_side: crate::sandbox::MetaSide::default(),
    };
    let graph = Sandbox::start("127.0.0.1:0".parse().unwrap(), options)
        .await
        .unwrap();
    let mut config = settings(&graph.base_url());
    config.test_event_code = Some("TEST4242".to_owned());
    let destination = destination_with(&config, TOKEN, Some("appsecret"));
    destination.send(&events(1, &[])).await.unwrap();
    destination.check().await.unwrap();
    let body = &graph.bodies()[0];
    assert_eq!(body["test_event_code"], "TEST4242");
    assert_eq!(
        body["appsecret_proof"],
        graph::appsecret_proof(TOKEN, "appsecret")
    );
}

#[tokio::test]
async fn a_5xx_then_a_success_is_retried_and_counted() {
    // GIVEN a stand-in failing every request, and a first retry two seconds away
    let graph = sandbox(Faults {
        error_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let mut inner = Inner::new(&settings(&graph.base_url()), Secret::new(TOKEN), None).unwrap();
    inner.policy.base_delay = Duration::from_secs(2);
    inner.policy.jitter = false;
    let destination = MetaDestination {
        inner: Box::new(inner),
    };
    // WHEN the batch is sent and the stand-in recovers after its first answer
    let batch = events(4, &[]);
    let sending = destination.send(&batch);
    let recovering = async {
        while graph.stats().requests == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        graph.set_faults(Faults::default());
    };
    let (delivery, ()) = tokio::join!(sending, recovering);
    // THEN the batch goes through on the retry
    let delivery = delivery.unwrap();
    assert_eq!((delivery.requests, delivery.retries), (2, 1));
    assert_eq!(delivery.accepted[0].indices, [0, 1, 2, 3]);
    assert_eq!(graph.stats().requests, 2);
}

#[tokio::test]
async fn a_persistent_5xx_exhausts_the_retries_with_metas_code() {
    let graph = sandbox(Faults {
        error_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let error = destination(&graph.base_url())
        .send(&events(2, &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            DestinationError::RetriesExhausted { attempts: 4, .. }
        ),
        "{error:?}"
    );
    assert!(
        matches!(error, DestinationError::RetriesExhausted { .. })
            && !error.is_permanent()
            && !error.is_config()
    );
    assert_eq!(error.code(), Some(2));
    assert_eq!(error.attempts(), 4);
    assert_eq!(graph.stats().requests, 4, "one attempt and max_retries = 3");
}

#[tokio::test]
async fn throttling_is_retried_until_the_budget_ends() {
    let graph = sandbox(Faults {
        rate_limit_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let error = destination(&graph.base_url())
        .send(&events(1, &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, DestinationError::RetriesExhausted { .. }),
        "{error:?}"
    );
    assert_eq!(
        (error.code(), error.error_subcode()),
        (Some(17), Some(2_446_079))
    );
    assert_eq!(error.attempts(), 4);
}

#[tokio::test]
async fn an_invalid_token_is_a_meta_error_at_once_and_never_shows_the_token() {
    let graph = sandbox(Faults::default()).await;
    let error = destination_with(&settings(&graph.base_url()), "wrong-token", None)
        .send(&events(2, &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DestinationError::Meta { attempts: 1, .. }),
        "{error:?}"
    );
    assert!(error.is_permanent() && !error.is_config());
    assert_eq!(error.code(), Some(190));
    assert!(error.fbtrace_id().is_some());
    assert!(!error.to_string().contains("wrong-token"));
    assert!(!format!("{error:?}").contains("wrong-token"));
    assert_eq!(graph.stats().requests, 1);
}

#[tokio::test]
async fn an_unknown_dataset_is_a_meta_error_with_code_100_subcode_33() {
    let graph = sandbox(Faults::default()).await;
    let mut config = settings(&graph.base_url());
    config.dataset_id = "999".to_owned();
    let destination = destination_with(&config, TOKEN, None);
    for error in [
        destination.send(&events(2, &[])).await.unwrap_err(),
        destination.check().await.unwrap_err(),
    ] {
        assert!(matches!(error, DestinationError::Meta { .. }), "{error:?}");
        assert_eq!((error.code(), error.error_subcode()), (Some(100), Some(33)));
    }
}

#[tokio::test]
async fn a_blamed_bad_event_is_rejected_with_its_codes_and_the_rest_delivered() {
    // GIVEN a stand-in that names the bad event in error_data
    let graph = sandbox(poison(true)).await;
    // WHEN a batch of 5 with a bad event at index 2 is sent
    let delivery = destination(&graph.base_url())
        .send(&events(5, &[2]))
        .await
        .unwrap();
    // THEN it is rejected with Meta's code and subcode, and the rest go in a second request
    assert_eq!((delivery.requests, delivery.retries), (2, 0));
    assert_eq!(delivery.rejected.len(), 1);
    let rejected = &delivery.rejected[0];
    assert_eq!(rejected.index, 2);
    assert_eq!(
        (rejected.code, rejected.error_subcode),
        (Some(100), Some(2_804_001))
    );
    assert!(
        rejected.message.contains("fbtrace_id"),
        "{}",
        rejected.message
    );
    assert_eq!(delivery.accepted[0].indices, [0, 1, 3, 4]);
    assert_eq!(
        accepted(&graph),
        ["order-0", "order-1", "order-3", "order-4"]
    );
}

#[tokio::test]
async fn an_unnamed_bad_event_is_found_by_bisection() {
    let graph = sandbox(poison(false)).await;
    let delivery = destination(&graph.base_url())
        .send(&events(8, &[5]))
        .await
        .unwrap();
    let rejected: Vec<usize> = delivery.rejected.iter().map(|r| r.index).collect();
    assert_eq!(rejected, [5]);
    assert_eq!(delivery.rejected[0].code, Some(100));
    assert_eq!(delivery.requests, 7, "1 + 2 per level of a 3-level tree");
    assert_eq!(graph.stats().requests, 7);
    assert_eq!(accepted(&graph).len(), 7);
}

/// The digests the bodies give are the events' own ([`Event::digest`]), for every event of a
/// batch that isolation split, rejected or not; an event with several values of a key (not
/// canonical as sent) is left to `Event::digest`.
#[tokio::test]
async fn each_canonical_events_digest_is_taken_from_the_body() {
    let graph = sandbox(poison(false)).await;
    let mut batch = events(6, &[4]);
    batch[1]
        .user_data
        .more
        .push(("em", UserValue::Text("c".repeat(64))));
    let delivery = destination(&graph.base_url()).send(&batch).await.unwrap();
    assert_eq!(delivery.digests.len(), batch.len());
    for (event, digest) in batch.iter().zip(&delivery.digests) {
        let expected = (event.user_data.more.is_empty()).then(|| event.digest());
        let got = digest.map(crate::event::version_text);
        assert_eq!(got, expected, "{}", event.event_id);
    }
}

#[tokio::test]
async fn a_failure_after_isolation_began_counts_every_request() {
    // GIVEN a stand-in that rejects a bad event unnamed (answering after 200 ms, so that the
    // test can change its faults while the first request is in flight), then fails every request
    let graph = sandbox(Faults {
        latency: Duration::from_millis(200),
        ..poison(false)
    })
    .await;
    let destination = destination(&graph.base_url());
    let batch = events(8, &[5]);
    let sending = destination.send(&batch);
    let revoking = async {
        while graph.stats().requests == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        graph.set_faults(Faults {
            error_rate: 1.0,
            ..poison(false)
        });
    };
    // WHEN the first sub-batch meets the outage
    let (result, ()) = tokio::join!(sending, revoking);
    // THEN the error counts the first request and the sub-batch's four attempts
    let error = result.unwrap_err();
    assert!(
        matches!(error, DestinationError::RetriesExhausted { .. }),
        "{error:?}"
    );
    assert_eq!(u64::from(error.attempts()), graph.stats().requests);
}

#[tokio::test]
async fn check_uses_a_bearer_header_and_describes_the_dataset() {
    let graph = sandbox(Faults::default()).await;
    let description = destination(&graph.base_url()).check().await.unwrap();
    assert!(
        description.starts_with("meta dataset 123 "),
        "{description}"
    );
    assert!(!description.contains('\n'));
    assert_eq!(graph.stats().requests, 0, "check sends no events");
    assert_eq!(graph.stats().tokens_seen_in_url, 0);
    let error = destination_with(&settings(&graph.base_url()), "wrong", None)
        .check()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(190));
}

#[tokio::test]
async fn the_dataset_quality_call_uses_the_destinations_client_and_errors() {
    let graph = sandbox(Faults::default()).await;
    let answer = destination(&graph.base_url())
        .dataset_quality()
        .await
        .unwrap();
    assert!(answer.is_object());
    let error = destination_with(&settings(&graph.base_url()), "wrong", None)
        .dataset_quality()
        .await
        .unwrap_err();
    assert!(matches!(error, DestinationError::Meta { .. }), "{error:?}");
    assert_eq!(error.code(), Some(190));
    assert_eq!(graph.stats().tokens_seen_in_url, 0);
}

#[tokio::test]
async fn timeouts_are_retried() {
    // GIVEN a stand-in answering after the request timeout
    let graph = sandbox(Faults {
        latency: Duration::from_secs(2),
        ..Faults::default()
    })
    .await;
    let mut config = settings(&graph.base_url());
    config.request_timeout = Duration::from_millis(200);
    config.max_retries = 1;
    // WHEN a batch is sent
    let error = destination_with(&config, TOKEN, None)
        .send(&events(1, &[]))
        .await
        .unwrap_err();
    // THEN each attempt timed out and was retried
    assert!(
        matches!(
            &error,
            DestinationError::RetriesExhausted {
                attempts: 2,
                last: Failure::Transport(transport),
            } if transport.kind() == TransportKind::Timeout
        ),
        "{error:?}"
    );
}

/// A local address where nothing listens.
fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    address
}

/// The transport failure of an `Unreachable` error, after how many attempts.
fn unreachable(error: &DestinationError) -> (TransportKind, u32, &str) {
    match error {
        DestinationError::Unreachable { error, attempts } => (error.kind(), *attempts, error.url()),
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_local_connection_fails_at_once_naming_the_url() {
    let address = closed_port();
    let destination = destination(&format!("http://{address}"));
    let sent = destination.send(&events(1, &[])).await.unwrap_err();
    let (kind, attempts, url) = unreachable(&sent);
    assert_eq!(kind, TransportKind::Refused { local: true });
    assert_eq!(attempts, 1, "no backoff cascade");
    assert_eq!(url, format!("http://{address}/v26.0/123/events"));
    assert!(sent.to_string().contains(url));
    assert!(!sent.to_string().contains(TOKEN));
    assert!(!sent.is_permanent() && !sent.is_config());
    let checked = destination.check().await.unwrap_err();
    let (kind, attempts, url) = unreachable(&checked);
    assert_eq!(
        (kind, attempts),
        (TransportKind::Refused { local: true }, 1)
    );
    assert_eq!(url, format!("http://{address}/v26.0/123"), "no query");
}

#[tokio::test]
async fn a_host_name_that_does_not_resolve_fails_at_once() {
    let error = destination("http://ocapi-no-such-host.invalid:8080")
        .send(&events(1, &[]))
        .await
        .unwrap_err();
    let (kind, attempts, _) = unreachable(&error);
    assert_eq!((kind, attempts), (TransportKind::Unresolved, 1));
}

#[tokio::test]
async fn https_against_a_plain_http_server_fails_at_once_saying_so() {
    let graph = sandbox(Faults::default()).await;
    let https = graph.base_url().replace("http://", "https://");
    let error = destination(&https).send(&events(1, &[])).await.unwrap_err();
    let (kind, attempts, url) = unreachable(&error);
    assert_eq!((kind, attempts), (TransportKind::PlainHttp, 1));
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
}

// ---- secrets and setup ----------------------------------------------------------------------

#[test]
fn debug_of_the_destination_never_shows_the_token_or_proof() {
    let destination = destination_with(&settings("http://127.0.0.1:9"), TOKEN, Some("appsecret"));
    let debug = format!("{destination:?}");
    let proof = graph::appsecret_proof(TOKEN, "appsecret");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(!debug.contains(&proof), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");
}

#[test]
fn errors_never_show_the_token_even_when_meta_echoes_it() {
    let destination = destination("http://127.0.0.1:9");
    let inner = &destination.inner;
    let echoed = graph::GraphError {
        message: Some(inner.scrub(&format!("Invalid OAuth access token - {TOKEN}"))),
        code: Some(190),
        ..graph::GraphError::default()
    };
    let refused = inner.give_up(
        GaveUp::Stopped {
            error: Failure::Meta(MetaError::http(400, Some(echoed), None, None)),
            retries: 0,
        },
        "send",
    );
    assert_eq!(refused.code(), Some(190));
    assert!(!refused.to_string().contains(TOKEN), "{refused}");
    assert!(!format!("{refused:?}").contains(TOKEN), "{refused:?}");
}

#[test]
fn from_config_reads_the_token_file_and_builds_the_urls() {
    let path = std::env::temp_dir().join(format!("ocapi-meta-token-{}", std::process::id()));
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    let destination_table = format!(
        "kind = \"meta\"\ndataset_id = \"123\"\naccess_token_file = {:?}\n\
         max_requests_per_second = 5.0",
        path.display().to_string()
    );
    let text = crate::config::TEST_CONFIG.replace(
        "kind = \"file\"\ndataset_id = \"123\"\npath = \"out.ndjson\"",
        &destination_table,
    );
    let config = Config::parse(&text, std::path::Path::new("x.toml")).unwrap();
    let destination = MetaDestination::from_config(&config).unwrap();
    std::fs::remove_file(&path).unwrap();
    let inner = &destination.inner;
    assert_eq!(inner.token.expose(), TOKEN, "trimmed");
    assert_eq!(
        inner.events_url,
        "https://graph.facebook.com/v26.0/123/events"
    );
    assert!(inner.limiter.is_some());
    assert!(!inner.advice.stand_in);
    assert!(inner.advice.token_source.contains("token file"));
}

#[test]
fn an_unset_token_variable_is_a_configuration_error() {
    let destination_table = "kind = \"meta\"\ndataset_id = \"123\"\n\
         access_token_env = \"OCAPI_TEST_TOKEN_THAT_IS_NEVER_SET\"";
    let text = crate::config::TEST_CONFIG.replace(
        "kind = \"file\"\ndataset_id = \"123\"\npath = \"out.ndjson\"",
        destination_table,
    );
    let config = Config::parse(&text, std::path::Path::new("x.toml")).unwrap();
    let error = MetaDestination::from_config(&config).unwrap_err();
    assert!(matches!(error, DestinationError::Secret(_)), "{error:?}");
    assert!(error.is_config() && error.is_permanent());
    assert_eq!(error.attempts(), 0);
}

#[test]
fn an_empty_token_and_a_zero_rate_are_configuration_errors() {
    let config = settings("http://127.0.0.1:9");
    let empty = Inner::new(&config, Secret::new(""), None).unwrap_err();
    let mut zero_rate = settings("http://127.0.0.1:9");
    zero_rate.max_requests_per_second = Some(0.0);
    let rate = Inner::new(&zero_rate, Secret::new(TOKEN), None).unwrap_err();
    for error in [empty, rate] {
        assert!(matches!(error, DestinationError::Invalid(_)), "{error:?}");
        assert!(error.is_config());
    }
}
