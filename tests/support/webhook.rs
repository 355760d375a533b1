//! A local chat webhook for the alert tests: records each POSTed JSON body. The one receiver
//! of the integration tests.

use std::path::Path;
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
            .map(|b| b["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// An `[alerts]` table pointing at this webhook through a URL file in `dir`.
    pub fn alerts_table(&self, dir: &Path) -> String {
        let path = dir.join("webhook-url");
        std::fs::write(&path, &self.url).unwrap();
        format!(
            "\n[alerts]\nwebhook_url_file = {:?}\n",
            path.display().to_string()
        )
    }
}
