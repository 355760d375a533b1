//! A local chat webhook for the alert tests: records each POSTed JSON body.

use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;

/// A local chat webhook: records each POSTed JSON body; answers `status`.
pub struct Webhook {
    /// Its URL.
    pub url: String,
    /// Bodies received.
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Webhook {
    /// Starts one.
    pub async fn start() -> Self {
        let bodies: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let sink = Arc::clone(&bodies);
        let app = axum::Router::new().route(
            "/hooks/{id}",
            axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                let sink = Arc::clone(&sink);
                async move {
                    sink.lock().unwrap().push(body);
                    "ok"
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/hooks/secret-7d1e",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, bodies }
    }

    /// The `text` of each message received.
    pub fn texts(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| b["text"].as_str().unwrap().to_owned())
            .collect()
    }
}
