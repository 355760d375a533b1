//! The sandbox over real HTTP: each test starts it on `127.0.0.1:0` and talks to it with
//! `reqwest`, as ocapi does.

use crate::config::CustomerField;
use std::time::Instant;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::auth::hmac_sha256_hex;
use super::*;
use crate::event::{Event, UserData, UserValue};

/// The token the test sandboxes accept.
const TOKEN: &str = "test-token";
/// The dataset the test sandboxes accept.
const DATASET: &str = "1234567890";

/// Starts a sandbox with `faults`.
async fn start(faults: Faults) -> Sandbox {
    let options = SandboxOptions {
        access_token: TOKEN.to_owned(),
        dataset_id: Some(DATASET.to_owned()),
        app_secret: None,
        faults,
        meta_side: MetaSide::default(),
    };
    Sandbox::start(([127, 0, 0, 1], 0).into(), options)
        .await
        .unwrap()
}

/// A valid ocapi event for order `order`, built with ocapi's own type.
fn event(order: &str) -> Value {
    let event = Event {
        user_data: UserData::default()
            .with(CustomerField::Em, UserValue::Text("a".repeat(64)))
            .with(CustomerField::Ph, UserValue::Text("b".repeat(64)))
            .with(CustomerField::Country, UserValue::Text("c".repeat(64))),
        ..Event::purchase(
            order,
            chrono::Utc::now().timestamp() - 3_600,
            Decimal::new(1250, 2),
            "USD",
        )
    };
    serde_json::to_value(event).unwrap()
}

/// `count` valid events, orders `R0`, `R1`, ….
fn events(count: usize) -> Vec<Value> {
    (0..count).map(|i| event(&format!("R{i}"))).collect()
}

/// POSTs `data` with the token in the body to `sandbox`'s events edge.
async fn post(
    sandbox: &Sandbox,
    data: Vec<Value>,
    token: &str,
) -> reqwest::Result<reqwest::Response> {
    let url = format!("{}/v26.0/{DATASET}/events", sandbox.base_url());
    reqwest::Client::new()
        .post(url)
        .json(&json!({ "data": data, "access_token": token }))
        .send()
        .await
}

/// The status and JSON body of a POST.
async fn post_json(sandbox: &Sandbox, data: Vec<Value>) -> (u16, Value) {
    let response = post(sandbox, data, TOKEN).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_valid_batch_is_accepted_and_recorded() {
    // GIVEN a sandbox without faults
    let sandbox = start(Faults::default()).await;
    // WHEN a batch of three events is posted
    let data = events(3);
    let (status, body) = post_json(&sandbox, data.clone()).await;
    // THEN Meta's success body comes back and the events are recorded in order
    assert_eq!(status, 200);
    assert_eq!(body["events_received"], 3);
    assert_eq!(body["messages"], json!([]));
    assert!(body["fbtrace_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(sandbox.events(), data);
    let stats = sandbox.stats();
    assert_eq!(
        (
            stats.requests,
            stats.accepted_requests,
            stats.events_accepted
        ),
        (1, 1, 3)
    );
    assert_eq!(stats.tokens_seen_in_url, 0);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn the_token_may_come_in_an_authorization_header() {
    let sandbox = start(Faults::default()).await;
    let url = format!("{}/v26.0/{DATASET}/events", sandbox.base_url());
    for scheme in ["Bearer", "OAuth"] {
        let response = reqwest::Client::new()
            .post(&url)
            .header("authorization", format!("{scheme} {TOKEN}"))
            .json(&json!({ "data": events(1) }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{scheme}");
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_wrong_or_missing_token_gives_code_190() {
    let sandbox = start(Faults::default()).await;
    let response = post(&sandbox, events(1), "wrong").await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 190);
    assert_eq!(body["error"]["type"], "OAuthException");
    assert_eq!(body["error"]["is_transient"], false);
    let response = post(&sandbox, events(1), "").await.unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 190);
    assert!(sandbox.events().is_empty());
    assert_eq!(sandbox.stats().rejected_requests, 2);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn an_unknown_dataset_gives_code_100_subcode_33() {
    let sandbox = start(Faults::default()).await;
    let response = reqwest::Client::new()
        .post(format!("{}/v26.0/999/events", sandbox.base_url()))
        .json(&json!({ "data": events(1), "access_token": TOKEN }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (
            body["error"]["code"].clone(),
            body["error"]["error_subcode"].clone()
        ),
        (json!(100), json!(33))
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_bad_event_rejects_the_whole_batch_and_is_named_by_index() {
    // GIVEN a sandbox that rejects orders starting with BAD and names indexes
    let faults = Faults {
        reject_order_prefix: Some("BAD".to_owned()),
        name_index: true,
        ..Faults::default()
    };
    let sandbox = start(faults).await;
    let mut data = events(6);
    data[3] = event("BAD-3");
    data[5] = event("BAD-5");
    // WHEN the batch is posted
    let (status, body) = post_json(&sandbox, data).await;
    // THEN the first bad event is named and nothing is recorded
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 100);
    assert_eq!(body["error"]["error_subcode"], 2_804_001);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("$['data'][3]"), "{message}");
    assert!(sandbox.events().is_empty());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn without_name_index_the_error_does_not_name_the_event() {
    let faults = Faults {
        reject_order_prefix: Some("BAD".to_owned()),
        name_index: false,
        ..Faults::default()
    };
    let sandbox = start(faults).await;
    let mut data = events(6);
    data[3] = event("BAD-3");
    let (status, body) = post_json(&sandbox, data).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 100);
    assert!(!body.to_string().contains("$['data']"), "{body}");
    assert!(sandbox.events().is_empty());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_missing_required_field_names_its_path() {
    let sandbox = start(Faults::default()).await;
    let mut data = events(5);
    data[3].as_object_mut().unwrap().remove("action_source");
    let (_, body) = post_json(&sandbox, data).await;
    assert_eq!(body["error"]["error_subcode"], 2_804_019);
    assert_eq!(
        body["error"]["message"],
        "The parameter $['data'][3]['action_source'] is required."
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn more_than_1000_events_are_rejected() {
    let sandbox = start(Faults::default()).await;
    let (status, body) = post_json(&sandbox, events(1001)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 100);
    let (status, _) = post_json(&sandbox, events(1000)).await;
    assert_eq!(status, 200);
    assert_eq!(sandbox.stats().events_accepted, 1000);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn insufficient_customer_information_is_rejected() {
    let sandbox = start(Faults::default()).await;
    let mut data = events(2);
    data[1]["user_data"] = json!({"ge": ["d".repeat(64)], "fn": ["e".repeat(64)]});
    let (status, body) = post_json(&sandbox, data).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["error_subcode"], 2_804_050);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn error_rate_one_gives_transient_5xx_until_faults_are_cleared() {
    let sandbox = start(Faults {
        error_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let response = post(&sandbox, events(1), TOKEN).await.unwrap();
    assert!(response.status().is_server_error());
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (
            body["error"]["code"].clone(),
            body["error"]["is_transient"].clone()
        ),
        (json!(2), json!(true))
    );
    sandbox.set_faults(Faults::default());
    assert_eq!(post_json(&sandbox, events(1)).await.0, 200);
    assert_eq!(sandbox.stats().faults_injected, 1);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn rate_limit_rate_one_gives_code_17() {
    let sandbox = start(Faults {
        rate_limit_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let (status, body) = post_json(&sandbox, events(1)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 17);
    assert_eq!(body["error"]["error_subcode"], 2_446_079);
    assert_eq!(body["error"]["is_transient"], true);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn drop_rate_one_gives_a_connection_error() {
    let sandbox = start(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let result = match post(&sandbox, events(1), TOKEN).await {
        Ok(response) => response.bytes().await.map(|_| ()),
        Err(error) => Err(error),
    };
    assert!(result.is_err(), "the response completed");
    assert!(sandbox.events().is_empty());
    assert_eq!(sandbox.stats().faults_injected, 1);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let sandbox = start(Faults {
        latency: Duration::from_millis(150),
        ..Faults::default()
    })
    .await;
    let started = Instant::now();
    assert_eq!(post_json(&sandbox, events(1)).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn max_in_flight_counts_concurrent_posts() {
    let sandbox = start(Faults {
        latency: Duration::from_millis(200),
        ..Faults::default()
    })
    .await;
    let posts = (0..5).map(|_| post(&sandbox, events(1), TOKEN));
    for response in futures_util::future::join_all(posts).await {
        assert_eq!(response.unwrap().status().as_u16(), 200);
    }
    assert_eq!(sandbox.stats().max_in_flight, 5);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_token_in_the_url_is_counted() {
    let sandbox = start(Faults::default()).await;
    let url = format!(
        "{}/v26.0/{DATASET}/events?access_token={TOKEN}",
        sandbox.base_url()
    );
    let response = reqwest::Client::new()
        .post(url)
        .json(&json!({ "data": events(1) }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(sandbox.stats().tokens_seen_in_url, 1);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn appsecret_proof_is_checked_when_a_secret_is_configured() {
    let options = SandboxOptions {
        access_token: TOKEN.to_owned(),
        dataset_id: None,
        app_secret: Some("secret".to_owned()),
        faults: Faults::default(),
        meta_side: MetaSide::default(),
    };
    let sandbox = Sandbox::start(([127, 0, 0, 1], 0).into(), options)
        .await
        .unwrap();
    let url = format!("{}/v26.0/{DATASET}/events", sandbox.base_url());
    let send = |proof: Option<String>| {
        let mut body = json!({ "data": events(1), "access_token": TOKEN });
        if let Some(proof) = proof {
            body["appsecret_proof"] = json!(proof);
        }
        reqwest::Client::new().post(&url).json(&body).send()
    };
    let good = hmac_sha256_hex("secret", TOKEN);
    assert_eq!(send(Some(good)).await.unwrap().status().as_u16(), 200);
    for proof in [None, Some("00".repeat(32))] {
        let body: Value = send(proof).await.unwrap().json().await.unwrap();
        assert_eq!(body["error"]["code"], 100);
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn gets_serve_the_dataset_quality_and_inspection_routes() {
    let sandbox = start(Faults::default()).await;
    assert_eq!(post_json(&sandbox, events(2)).await.0, 200);
    let client = reqwest::Client::new();
    let get = |path: &str, token: &str| {
        client
            .get(format!("{}{path}", sandbox.base_url()))
            .bearer_auth(token)
            .send()
    };
    let dataset: Value = get(&format!("/v26.0/{DATASET}"), TOKEN)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dataset["id"], DATASET);
    assert_eq!(dataset["is_consolidated_container"], true);
    let wrong: Value = get(&format!("/v26.0/{DATASET}"), "wrong")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(wrong["error"]["code"], 190);
    let unknown: Value = get("/v26.0/42", TOKEN).await.unwrap().json().await.unwrap();
    assert_eq!(unknown["error"]["error_subcode"], 33);
    let path = format!("/v26.0/dataset_quality?dataset_id={DATASET}&fields=offline");
    let quality: Value = get(&path, TOKEN).await.unwrap().json().await.unwrap();
    assert_eq!(
        quality["offline"][0]["match_key"]["email_coverage_percentage"],
        100.0
    );
    let recorded: Vec<Value> = get("/_sandbox/events", "")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(recorded, sandbox.events());
    let stats: SandboxStats = get("/_sandbox/stats", "")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats, sandbox.stats());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn serve_stops_when_its_shutdown_future_completes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = SandboxOptions {
        access_token: TOKEN.to_owned(),
        dataset_id: None,
        app_secret: None,
        faults: Faults::default(),
        meta_side: MetaSide::default(),
    };
    let served = tokio::time::timeout(Duration::from_secs(5), serve(listener, options, async {}));
    assert!(served.await.unwrap().is_ok());
}

#[tokio::test]
async fn the_meta_side_routes_answer_in_metas_shapes_with_the_version_headers() {
    let options = SandboxOptions {
        access_token: TOKEN.to_owned(),
        dataset_id: Some(DATASET.to_owned()),
        app_secret: None,
        faults: Faults::default(),
        meta_side: MetaSide {
            token_expires_in: Some(Duration::from_secs(86_400)),
            token_scopes: vec!["ads_management".to_owned()],
            stats_undercount: 0.5,
            api_version_warning: Some("v26.0 ends soon".to_owned()),
            ..MetaSide::default()
        },
    };
    let sandbox = Sandbox::start(([127, 0, 0, 1], 0).into(), options)
        .await
        .unwrap();
    assert_eq!(post_json(&sandbox, events(4)).await.0, 200);
    let client = reqwest::Client::new();
    let get = |path: String| {
        client
            .get(format!("{}{path}", sandbox.base_url()))
            .bearer_auth(TOKEN)
            .send()
    };
    let answer = get(format!("/v26.0/debug_token?input_token={TOKEN}"))
        .await
        .unwrap();
    assert_eq!(answer.headers()["facebook-api-version"], "v26.0");
    assert_eq!(
        answer.headers()["x-ad-api-version-warning"],
        "v26.0 ends soon"
    );
    let token: Value = answer.json().await.unwrap();
    assert_eq!(token["data"]["type"], "SYSTEM_USER");
    assert_eq!(token["data"]["is_valid"], true);
    assert_eq!(token["data"]["scopes"], json!(["ads_management"]));
    assert!(token["data"]["expires_at"].as_i64().unwrap() > 0);
    // Without ads_read, the read edges answer a permission error (code 200).
    let stats = get(format!("/v26.0/{DATASET}/stats?aggregation=event"))
        .await
        .unwrap();
    assert_eq!(stats.status().as_u16(), 403);
    let body: Value = stats.json().await.unwrap();
    assert_eq!(body["error"]["code"], 200);
    sandbox.shutdown().await;

    let sandbox = start(Faults::default()).await;
    assert_eq!(post_json(&sandbox, events(3)).await.0, 200);
    let client = reqwest::Client::new();
    let stats: Value = client
        .get(format!(
            "{}/v26.0/{DATASET}/stats?aggregation=event",
            sandbox.base_url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bucket = &stats["data"][0];
    assert_eq!(bucket["aggregation"], "event");
    assert!(bucket["start_time"]
        .as_str()
        .unwrap()
        .ends_with(":00:00+0000"));
    assert_eq!(bucket["data"][0]["value"], "Purchase");
    let counted: u64 = stats["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["data"][0]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 3);
    sandbox.shutdown().await;
}
