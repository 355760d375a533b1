//! Hostile networks and neighbours (issue #23, kinds 1, 6, 7, 9, 10 and 11): an endpoint that
//! redirects, answers without end, throttles for minutes or writes escape sequences into its
//! messages; a symlink planted beside the metrics file; settings that expose the token. Each
//! test runs the real binary (or the library) against a small local HTTP server whose answers
//! the test chooses, and asserts on what reached that server, the other server, the ledger,
//! the terminal and the chat.

mod escapes;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use futures_util::StreamExt as _;
use tokio::net::TcpListener;

use crate::support::{insert_orders, migrate, ocapi, sandbox, TestDb, TOKEN};
use ocapi::sandbox::Faults;

/// One request a [`Canned`] server received.
#[derive(Debug, Clone)]
struct Received {
    /// `GET`, `POST`.
    method: String,
    /// Path and query.
    uri: String,
    /// The body.
    body: Vec<u8>,
}

/// A local HTTP server answering every request with what the test chose, and keeping what it
/// received.
struct Canned {
    /// Where it listens.
    addr: SocketAddr,
    /// What it received, in order.
    received: Arc<Mutex<Vec<Received>>>,
}

impl Canned {
    /// Starts one answering each request with `answer(request)`.
    async fn start(answer: impl Fn(&Received) -> Response + Send + Sync + 'static) -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let sink = Arc::clone(&received);
        let answer = Arc::new(answer);
        let app = axum::Router::new().fallback(move |request: Request| {
            let sink = Arc::clone(&sink);
            let answer = Arc::clone(&answer);
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 64 << 20)
                    .await
                    .map(|b| b.to_vec())
                    .unwrap_or_default();
                let got = Received {
                    method: parts.method.to_string(),
                    uri: parts.uri.to_string(),
                    body,
                };
                let response = answer(&got);
                sink.lock().unwrap().push(got);
                response
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, received }
    }

    /// `http://127.0.0.1:PORT`.
    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What it received so far.
    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// An answer with a status, headers and a body.
fn answer(status: u16, headers: &[(&str, &str)], body: impl Into<Body>) -> Response {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body.into()).unwrap()
}

/// The exit code and stderr and stdout of a finished command.
fn outcome(output: &std::process::Output) -> (Option<i32>, String, String) {
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

// ---- 1. redirects ---------------------------------------------------------------------------

#[tokio::test]
async fn a_redirect_to_another_host_gets_neither_the_token_nor_the_events() {
    for status in [307u16, 308] {
        // GIVEN another server that would accept anything, and an endpoint redirecting every
        // request there
        let other = Canned::start(|request| {
            let body = if request.method == "POST" {
                r#"{"events_received":5,"messages":[],"fbtrace_id":"other"}"#
            } else {
                r#"{"id":"1234567890","name":"other"}"#
            };
            answer(200, &[("content-type", "application/json")], body)
        })
        .await;
        let target = format!("{}/v26.0/1234567890/events", other.base_url());
        let endpoint =
            Canned::start(move |_| answer(status, &[("location", target.as_str())], "")).await;
        let db = TestDb::new().await;
        insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
        let config = db.meta_config("", &endpoint.base_url(), TOKEN, "");
        migrate(&config).await;

        // WHEN a run sends its orders
        let (code, stderr, _) = outcome(&ocapi(&db.config_path(), &["run"]).await);

        // THEN it fails at once, naming the redirect and its target
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("answered HTTP {status}")),
            "{stderr}"
        );
        assert!(stderr.contains("follows no redirect"), "{stderr}");
        assert!(stderr.contains(&other.addr.to_string()), "{stderr}");
        // (the run's one `GET debug_token` is redirected too, and not followed either)
        let posts = endpoint
            .received()
            .into_iter()
            .filter(|r| r.method == "POST");
        assert_eq!(posts.count(), 1, "no retry of a redirect");
        // AND the other server received nothing: neither the token nor an event
        assert!(other.received().is_empty(), "{:?}", other.received());
        // AND no order is recorded sent
        assert_eq!(db.ledger_counts().await.get("sent"), None);

        // WHEN `check` reads the dataset through the same endpoint
        let (code, _, stdout) = outcome(&ocapi(&db.config_path(), &["check"]).await);
        // THEN it fails saying so, and the other server still received nothing
        assert_eq!(code, Some(1), "{stdout}");
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("FAIL") && l.contains("follows no redirect")),
            "{stdout}"
        );
        assert!(other.received().is_empty(), "{:?}", other.received());
        // AND so does `quality`, which reads the Dataset Quality API through it
        let (code, stderr, _) = outcome(&ocapi(&db.config_path(), &["quality"]).await);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains("follows no redirect"), "{stderr}");
        assert!(other.received().is_empty(), "{:?}", other.received());
    }
}

// ---- 6. bodies without a bound --------------------------------------------------------------

/// A valid Graph answer padded with 16 MiB of white space (JSON allows it), streamed in 1 MiB
/// chunks without a `Content-Length`: read whole, it is a success.
fn padded(head: &'static str, tail: &'static str) -> Body {
    let chunks = std::iter::once(head.as_bytes().to_vec())
        .chain((0..16).map(|_| vec![b' '; 1 << 20]))
        .chain(std::iter::once(tail.as_bytes().to_vec()));
    Body::from_stream(futures_util::stream::iter(chunks).map(Ok::<_, std::io::Error>))
}

#[tokio::test]
async fn an_answer_past_the_cap_fails_the_request_naming_the_cap() {
    // GIVEN an endpoint answering every request with a valid answer padded to 16 MiB
    let endpoint = Canned::start(|request| {
        if request.method == "POST" {
            answer(
                200,
                &[],
                padded(r#"{"events_received":5,"#, r#""fbtrace_id":"big"}"#),
            )
        } else {
            // The dataset, with a Content-Length saying how large it is.
            let mut body = br#"{"id":"1234567890","#.to_vec();
            body.resize(body.len() + (8 << 20), b' ');
            body.extend_from_slice(br#""name":"big"}"#);
            answer(200, &[], body)
        }
    })
    .await;
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let config = db.meta_config("", &endpoint.base_url(), TOKEN, "");
    migrate(&config).await;

    // WHEN a run sends its orders
    let (code, stderr, _) = outcome(&ocapi(&db.config_path(), &["run"]).await);
    // THEN the request fails, naming the cap, and no order is recorded sent
    let cap = ocapi::destination::meta::MAX_ANSWER_BYTES.to_string();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("larger than {cap} bytes")),
        "{stderr}"
    );
    assert_eq!(db.ledger_counts().await.get("sent"), None);

    // WHEN `check` reads the dataset, whose Content-Length is past the cap
    let (code, _, stdout) = outcome(&ocapi(&db.config_path(), &["check"]).await);
    // THEN it fails the same way
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("FAIL")
            && l.contains(&format!("larger than {cap} bytes"))
            && l.contains("Content-Length")),
        "{stdout}"
    );
}

// ---- 7. files an attacker can plant ---------------------------------------------------------

#[cfg(unix)]
#[tokio::test]
async fn a_symlink_planted_at_the_metrics_files_old_temporary_name_is_not_followed() {
    // GIVEN a victim file, and symlinks to it at every temporary name the metrics file used to
    // take (`.NAME.PID.tmp`, this process's id) and at a few other guesses
    let dir = std::env::temp_dir().join(format!("ocapi-plant-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let metrics = dir.join("ocapi.prom");
    for name in [
        format!(".ocapi.prom.{}.tmp", std::process::id()),
        ".ocapi.prom.tmp".to_owned(),
        "ocapi.prom.tmp".to_owned(),
    ] {
        std::os::unix::fs::symlink(&victim, dir.join(name)).unwrap();
    }

    // WHEN the metrics file is written
    let mut file = ocapi::metrics::MetricsFile::new(metrics.clone(), "stores-test");
    file.record(&ocapi::stats::RunStats::new("stores-test"))
        .unwrap();

    // THEN the victim is untouched, and the metrics file is a regular file with the metrics
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let meta = std::fs::symlink_metadata(&metrics).unwrap();
    assert!(meta.file_type().is_file(), "{meta:?}");
    assert!(std::fs::read_to_string(&metrics)
        .unwrap()
        .contains("ocapi_runs_total"));
    // AND no temporary file is left behind (the planted links are still there, untouched)
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".tmp"))
        .filter(|path| !std::fs::symlink_metadata(path).unwrap().is_symlink())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

// ---- 9. SIGTERM while throttled -------------------------------------------------------------

/// Starts `ocapi ARGS` against an endpoint answering 429 with `Retry-After: 240`, sends SIGTERM
/// once the endpoint got a request, and returns the exit code and stderr, failing if the
/// process is still running 20 s later (far below the 240 s it was told to wait).
async fn stopped_while_throttled(args: &[&str]) {
    // GIVEN an endpoint that throttles every request for four minutes
    let endpoint = Canned::start(|_| {
        answer(
            429,
            &[("retry-after", "240"), ("content-type", "application/json")],
            r#"{"error":{"message":"User request limit reached","code":17,"is_transient":true}}"#,
        )
    })
    .await;
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let config = db.meta_config("", &endpoint.base_url(), TOKEN, "");
    migrate(&config).await;
    let mut child = crate::support::command(&db.config_path())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    // (a Meta run reads `debug_token` first: the wait that matters follows the events' POST)
    let posts = |endpoint: &Canned| {
        let received = endpoint.received();
        received.iter().filter(|r| r.method == "POST").count()
    };
    while posts(&endpoint) == 0 {
        assert!(Instant::now() < deadline, "no request reached the endpoint");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // (The retry wait starts right after the answer.)
    tokio::time::sleep(Duration::from_millis(300)).await;

    // WHEN it is asked to stop
    crate::support::send_signal(&child, "TERM");
    let stopped_at = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if stopped_at.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("`ocapi {args:?}` still running 20 s after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();

    // THEN it stopped well within the bound, without a request after the stop, and no order
    // that the endpoint did not acknowledge is recorded sent
    assert_eq!(posts(&endpoint), 1, "{stderr}");
    assert_eq!(db.ledger_counts().await.get("sent"), None, "{stderr}");
    let expected = if args[0] == "run" { 1 } else { 0 };
    assert_eq!(status.code(), Some(expected), "{stderr}");
    assert!(stderr.contains("stopped on request"), "{stderr}");
    // AND the next run sends every order
    let graph = sandbox(Faults::default()).await;
    db.edit_config_text(&[(&endpoint.base_url(), &graph.base_url())]);
    let (code, stderr, _) = outcome(&ocapi(&db.config_path(), &["run"]).await);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(db.ledger_counts().await.get("sent"), Some(&5));
}

#[tokio::test]
async fn sigterm_cuts_a_run_throttled_for_four_minutes_short() {
    stopped_while_throttled(&["run"]).await;
}

#[tokio::test]
async fn sigterm_cuts_a_watch_throttled_for_four_minutes_short() {
    stopped_while_throttled(&["watch", "--interval", "1s"]).await;
}

// ---- 10. what reaches a terminal or a chat --------------------------------------------------

/// A message with a screen clear, a colour, a fake error line, a channel mention and a link.
const HOSTILE: &str =
    "\u{1b}[2J\u{1b}[31mbad\nerror: all good <!channel> <https://evil.example|Meta>";

/// A Graph error answer with `code` (and subcode) whose message is [`HOSTILE`].
fn hostile_error(code: i64, subcode: Option<i64>) -> Response {
    let body = serde_json::json!({"error": {
        "message": HOSTILE,
        "type": "OAuthException",
        "code": code,
        "error_subcode": subcode,
        "fbtrace_id": "T1",
    }});
    answer(
        400,
        &[("content-type", "application/json")],
        body.to_string(),
    )
}

/// Asserts that `text` holds [`HOSTILE`] escaped for a terminal, and none of its controls.
fn assert_escaped_for_a_terminal(text: &str) {
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("error: all good")),
        "{text}"
    );
    assert!(
        text.contains("\\x1b[2J\\x1b[31mbad\\nerror: all good"),
        "{text}"
    );
}

// ---- 11. settings that deserve a warning ----------------------------------------------------
